"""Resource tracking: which app owns a live object.

Role: the tracking annotation ``fleetdeck.io/tracking-id: <app>:<group>/<kind>:<ns>/<name>`` (Argo CD's
format, self-referencing so a copied object is not mistaken for an owned one) and the owner label
``fleetdeck.io/app`` used for server-side label selection. Constraint: pure.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from core.model import FieldChange, ResourceDiff, ResourceKey, ResourceState
from core.reconcile.jsonpath import as_dict, copy_json

TRACKING_ANNOTATION = "fleetdeck.io/tracking-id"
APP_LABEL = "fleetdeck.io/app"
LABEL_VALUE_MAX = 63
_LABEL_HASH = 10
_LABEL_TAIL = re.compile(r"[^A-Za-z0-9]+$")
_COUNT = re.compile(r"^\d+ fields? differs?$")


@dataclass(frozen=True, slots=True)
class Tracking:
    """A parsed tracking annotation."""

    app: str
    key: ResourceKey
    """The object the annotation claims to be on."""
    self_referenced: bool
    """Whether ``key`` is the object carrying it (a copied annotation is not)."""


def tracking_id(app: str, key: ResourceKey) -> str:
    """The tracking annotation value for ``key`` in ``app``."""
    return f"{app}:{key.group}/{key.kind}:{key.namespace}/{key.name}"


def parse_tracking_id(value: str) -> tuple[str, ResourceKey] | None:
    """``(app, key)`` from a tracking annotation value, or None when malformed."""
    parts = value.split(":")
    if len(parts) != 3 or not parts[0]:
        return None
    app, group_kind, namespace_name = parts
    group, slash, kind = group_kind.partition("/")
    namespace, slash2, name = namespace_name.partition("/")
    if not (slash and slash2 and kind and name):
        return None
    return app, ResourceKey(group=group, kind=kind, namespace=namespace, name=name)


def tracking_of(obj: Mapping[str, Any]) -> Tracking | None:
    """The tracking of a live object, or None when it carries no (valid) tracking annotation."""
    annotations = as_dict(as_dict(obj.get("metadata")).get("annotations"))
    parsed = parse_tracking_id(str(annotations.get(TRACKING_ANNOTATION) or ""))
    if parsed is None:
        return None
    app, key = parsed
    return Tracking(app=app, key=key, self_referenced=key == ResourceKey.of(obj))


def is_tracked_by(obj: Mapping[str, Any], app: str) -> bool:
    """Whether ``obj`` carries a self-referencing tracking annotation naming ``app``."""
    tracking = tracking_of(obj)
    return tracking is not None and tracking.self_referenced and tracking.app == app


def app_label_value(app: str) -> str:
    """The owner label value: the app name, or a prefix plus a SHA-1 suffix when over 63 characters."""
    if len(app) <= LABEL_VALUE_MAX:
        return app
    digest = hashlib.sha1(app.encode(), usedforsecurity=False).hexdigest()[:_LABEL_HASH]
    prefix = _LABEL_TAIL.sub("", app[: LABEL_VALUE_MAX - _LABEL_HASH - 1])
    return f"{prefix}-{digest}"


def add_tracking(obj: Mapping[str, Any], *, app: str, key: ResourceKey) -> dict[str, Any]:
    """A copy of ``obj`` carrying the app's owner label and tracking annotation for ``key``.

    Args:
        obj: the desired manifest, scope already resolved.
        app: the owning app.
        key: the manifest's resource key (namespace ``""`` for cluster-scoped kinds).
    """
    out: dict[str, Any] = copy_json(obj)
    meta = out.setdefault("metadata", {})
    labels = meta["labels"] = dict(as_dict(meta.get("labels")))
    annotations = meta["annotations"] = dict(as_dict(meta.get("annotations")))
    labels[APP_LABEL] = app_label_value(app)
    annotations[TRACKING_ANNOTATION] = tracking_id(app, key)
    return out


_OWN_PATHS = {
    f"/metadata/labels/{APP_LABEL.replace('~', '~0').replace('/', '~1')}",
    f"/metadata/annotations/{TRACKING_ANNOTATION.replace('~', '~0').replace('/', '~1')}",
}
_OWN_KEYS = {"labels": APP_LABEL, "annotations": TRACKING_ANNOTATION}


def _own_tracking_change(change: FieldChange) -> bool:
    """A difference made only of fleetdeck's own tracking (its app label or tracking annotation)."""
    if change.path in _OWN_PATHS:
        return True
    for field, key in _OWN_KEYS.items():
        if change.path == f"/metadata/{field}" and change.op == "add" and isinstance(change.desired, Mapping) \
                and set(change.desired) == {key}:
            return True
    return False


def _strip_display(obj: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if obj is None or not isinstance(obj.get("metadata"), Mapping):
        return obj
    meta = dict(obj["metadata"])
    for field, key in _OWN_KEYS.items():
        values = meta.get(field)
        if isinstance(values, Mapping) and key in values:
            rest = {k: v for k, v in values.items() if k != key}
            if rest:
                meta[field] = rest
            else:
                meta.pop(field)
    return {**obj, "metadata": meta}


def without_own_tracking(diff: ResourceDiff) -> ResourceDiff:
    """``diff`` without fleetdeck's own tracking label and annotation, for an app a controller (Argo CD, Flux)
    applies: the controller never writes them, so their absence live is not drift. A difference left with no
    other change is Synced."""
    kept = tuple(c for c in diff.changes if not _own_tracking_change(c))
    if len(kept) == len(diff.changes):
        return diff
    state = diff.state
    if not kept and state is ResourceState.OUT_OF_SYNC:
        state = ResourceState.SYNCED
    message = diff.message
    if _COUNT.match(message or ""):
        message = "" if not kept else ("1 field differs" if len(kept) == 1 else f"{len(kept)} fields differ")
    return replace(diff, state=state, changes=kept, message=message, desired=_strip_display(diff.desired))
