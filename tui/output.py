"""Plain-text, JSON and YAML output of the command line (no Rich: scripts read this).

Every string that came from a cluster or from Git passes through ``core.sanitize.clean`` before it is
printed in a table or a diff, so no escape sequence from data reaches the terminal. JSON and YAML
output are data, escaped by their serializers.
"""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from enum import Enum
from typing import Any

import yaml

from core.model import AppStatus, Condition, ResourceStatus
from core.reconcile.diff_report import app_diff_records, resource_diff_record
from core.sanitize import clean, escape_json_text, has_unsafe

FORMATS = ("table", "json", "yaml")


def to_data(value: Any) -> Any:
    """Convert dataclasses, enums, mappings and tuples into plain JSON-able values."""
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {k: to_data(v) for k, v in asdict(value).items()}
    if isinstance(value, Mapping):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_data(v) for v in value]
    return value


def dump(data: Any, fmt: str) -> str:
    """Serialize ``data`` as ``json`` or ``yaml``."""
    plain = to_data(data)
    if fmt == "yaml":
        text = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
        if has_unsafe(text):  # a control or bidi character from a cluster or Git: let YAML escape it
            text = yaml.safe_dump(plain, sort_keys=False, allow_unicode=False)
        return text
    return escape_json_text(json.dumps(plain, indent=2, ensure_ascii=False, default=str))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A left-aligned text table; every cell sanitized."""
    cells = [[clean(c, max_length=200) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells]
    return "\n".join(lines)


def age(timestamp: float | None, now: float | None = None) -> str:
    """``5s``, ``3m``, ``2h``, ``4d`` since ``timestamp``; ``-`` when unknown."""
    if timestamp is None:
        return "-"
    seconds = max(0, int((now if now is not None else time.time()) - timestamp))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def status_rows(apps: Iterable[AppStatus], now: float | None = None) -> list[list[str]]:
    """One row per app and cluster for ``fleetdeck status``."""
    rows = []
    for app in apps:
        revision = revision_text(app)
        badges = [b for b, on in (("paused", app.control.paused), ("pinned", bool(app.control.pinned)),
                                  ("stale", app.stale), ("old-rev", app.revision_stale),
                                  ("non-descendant", bool(app.non_descendant)), ("~", app.approximate)) if on]
        rows.append([
            app.app, app.cluster, app.sync.value, app.health.status.value, revision,
            age(app.revision.committed_at if app.revision else None, now),
            "-" if not app.drift_count and (app.loading or app.sync.value == "Unknown") else str(app.drift_count),
            " ".join(badges), app.owner.value, first_condition(app),
        ])
    return rows


def revision_text(app: AppStatus) -> str:
    """What runs on the cluster and what Git wants: ``9f7680a → 405dd38`` when they differ, one SHA when
    they agree (``AppStatus.running_revision``), ``- → 405dd38`` when fleetdeck never synced it there."""
    desired = app.revision.short if app.revision else "-"
    running = (app.running_revision or "")[:len(desired) if app.revision else 8]
    if not running:
        return f"- → {desired}" if app.revision else "-"
    if app.revision and app.revision.sha == app.running_revision:
        return desired
    return f"{running} → {desired}"


STATUS_HEADERS = ("APP", "CLUSTER", "SYNC", "HEALTH", "REVISION", "AGE", "DRIFT", "FLAGS", "OWNER", "MESSAGE")


def first_condition(app: AppStatus) -> str:
    """The most severe condition's message, shortened for a table cell."""
    if not app.conditions:
        return app.health.message if app.health.status.value != "Healthy" else ""
    # errors first, then a revision that would replace history (it stops the next sync), then the rest
    worst = sorted(app.conditions, key=lambda c: (("error", "warning", "info").index(c.severity.value),
                                                  c.type != "NonDescendant"))[0]
    return clean(worst.message, max_length=80)


def condition_record(condition: Condition) -> dict[str, Any]:
    """A condition (of an app, or of the fleet) for ``-o json|yaml``."""
    return {"type": condition.type, "message": condition.message, "severity": condition.severity.value}


def status_record(app: AppStatus) -> dict[str, Any]:
    """The JSON/YAML record of one row of ``fleetdeck status``."""
    return {
        "app": app.app,
        "cluster": app.cluster,
        "namespace": app.namespace,
        "path": app.path,
        "sync": app.sync.value,
        "health": {"status": app.health.status.value, "message": app.health.message},
        "revision": app.revision.sha if app.revision else None,
        "synced_revision": app.synced_revision,
        "running_revision": app.running_revision,
        "drifted": [str(r.key) for r in app.resources if r.managed and r.state.drifted],
        "paused": app.control.paused,
        "pinned": app.control.pinned,
        "stale": app.stale,
        "revision_stale": app.revision_stale,
        "non_descendant": app.non_descendant,
        "depends_on": list(app.depends_on),
        "approximate": app.approximate,
        "owner": app.owner.value,
        "owner_object": ({"cluster": app.controller.cluster, "group": app.controller.key.group,
                          "kind": app.controller.key.kind, "namespace": app.controller.key.namespace,
                          "name": app.controller.key.name} if app.controller is not None else None),
        "conditions": [condition_record(c) for c in app.conditions],
        "controller": controller_record(app),
        "flux": [f.as_dict() for f in app.flux],
    }


def controller_record(app: AppStatus) -> dict[str, Any] | None:
    """What the owning controller reports (Argo CD ``Application.status``), for ``-o json|yaml``; None when
    fleetdeck owns the row."""
    status = app.controller_status
    if status is None:
        return None
    return {
        "sync": status.sync, "revision": status.revision,
        "health": {"status": status.health, "message": status.health_message},
        "automated": status.automated,
        "operation": {"phase": status.operation_phase, "message": status.operation_message,
                      "revision": status.operation_revision, "pending": status.operation_pending},
        "conditions": [condition_record(c) for c in status.conditions],
        "resources": [{"resource": str(r.key), "sync": r.sync, "health": r.health, "message": r.message}
                      for r in status.resources],
        "history": [{"id": h.id, "revision": h.revision, "initiated_by": h.by, "trigger": h.trigger.value,
                     "at": h.at} for h in app.history],
        "reconciled_at": status.reconciled_at,
        "generated_by": status.generated_by,
    }


# ---------------------------------------------------------------------------------------------- diffs


def _yaml_lines(obj: Mapping[str, Any] | None) -> list[str]:
    if obj is None:
        return []
    text = yaml.safe_dump(to_data(obj), sort_keys=True, allow_unicode=True, width=1000)
    return [clean(line, keep_newlines=False) for line in text.splitlines()]


def _listing(value: Any) -> str:
    items = value if isinstance(value, list | tuple) else [value]
    return clean(", ".join(str(item) for item in items), max_length=200)


def _annotation(record: Mapping[str, Any]) -> str:
    """``#   spec.replicas: changed by kubectl-edit at …`` (or the cause the core found: changed in Git…)."""
    line = f"#   {clean(record['display_path'], max_length=200)}: {clean(record['cause'], max_length=160)}"
    if record["note"] == "order differs":
        line += f" (live: {_listing(record['live'])}; Git: {_listing(record['desired'])})"
    return line


def resource_diff_text(status: ResourceStatus, *, cluster: str, context: int = 3) -> str:
    """A unified diff of one resource, desired (``+``) against live (``-``), as ``kubectl diff`` shows it."""
    diff = status.diff
    name = clean(str(status.key))
    header = [f"--- live/{cluster}/{name}", f"+++ desired/{cluster}/{name}"]
    body = list(difflib.unified_diff(_yaml_lines(diff.live), _yaml_lines(diff.desired), lineterm="", n=context))
    notes = [_annotation(change) for change in resource_diff_record(status)["changes"]]
    approx = ["#   (compared locally; approximate)"] if diff.approximate else []
    state = [f"# {status.state.value}: {clean(diff.message)}" if diff.message else f"# {status.state.value}"]
    return "\n".join(header + state + approx + notes + body[2:])


def app_diff_text(app: AppStatus, *, context: int = 3) -> str:
    """Unified diffs of every drifted resource of ``app`` (the resources ``app_diff_records`` lists).

    The body compares live with what the apply would produce (the server's dry-run result, or live
    projected onto the manifest's fields), so server defaults never show as changes.
    """
    drifted = {record["key"] for record in app_diff_records(app)}
    parts = [resource_diff_text(r, cluster=app.cluster, context=context)
             for r in app.resources if r.managed and str(r.key) in drifted]
    if parts and app.owner.value != "fleetdeck":  # marked: the controller applies, fleetdeck only compares
        where = f" ({clean(str(app.controller))} on {clean(app.controller.cluster)})" if app.controller else ""
        parts.insert(0, f"# owner {app.owner.value}{where}: fleetdeck's own comparison; {app.owner.value} "
                        "applies the app's objects")
    return "\n".join(parts)


def diff_record(app: AppStatus) -> dict[str, Any]:
    """The JSON/YAML record of ``fleetdeck diff`` for one app target: its verdict, and every resource a sync
    would change with its fields (records of ``core.reconcile.diff_report``)."""
    return {
        "cluster": app.cluster,
        "sync": app.sync.value,
        "health": app.health.status.value,
        "stale": app.stale,
        "approximate": app.approximate,
        "owner": app.owner.value,
        "resources": app_diff_records(app),
        "conditions": [condition_record(c) for c in app.conditions],
    }


# ---------------------------------------------------------------------------------------------- events

EVENT_HEADERS = ("CLUSTER", "LAST SEEN", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE")


def event_rows(found: Iterable[Any], now: float | None = None) -> list[list[str]]:
    """One row per folded event line of each ``AppEvents`` for ``fleetdeck events`` (cells are cleaned by
    ``table``)."""
    return [[f.cluster, age(e.last_seen, now), e.type, e.reason, e.object.short, str(e.count), e.message]
            for f in found for e in f.events]


def event_record(found: Any) -> dict[str, Any]:
    """The JSON/YAML record of one cluster's events of an app (strings as the cluster sent them; ``dump``
    escapes them)."""
    return {
        "cluster": found.cluster,
        "listed": found.listed,
        "error": found.error,
        "omitted": found.omitted,
        "events": [{"type": e.type, "reason": e.reason, "message": e.message, "object": str(e.object),
                    "kind": e.object.kind, "namespace": e.object.namespace, "name": e.object.name,
                    "count": e.count, "first_seen": e.first_seen, "last_seen": e.last_seen, "source": e.source}
                   for e in found.events],
    }
