"""The fleet evidence report for auditors (``fleetdeck audit report``), as data and as Markdown.

Every value from a cluster or Git is sanitized before it is written into Markdown, and table cells
have ``|`` escaped, so the report renders as written wherever it is pasted.
"""

from __future__ import annotations

import time
from typing import Any

from core.model import FleetSnapshot, newest_first
from core.sanitize import clean


def report_data(snap: FleetSnapshot) -> dict[str, Any]:
    """Per app and cluster: desired and live revision, drift with managers, pause, the five newest recorded
    syncs (newest first, with what started them)."""
    apps = []
    for app in snap.apps:
        apps.append({
            "app": app.app, "cluster": app.cluster, "sync": app.sync.value, "health": app.health.status.value,
            "desired_revision": app.revision.sha if app.revision else None,
            "live_revision": app.synced_revision, "approximate": app.approximate, "stale": app.stale,
            "paused": app.control.paused, "pause_reason": app.control.reason, "paused_by": app.control.by,
            "pinned": app.control.pinned,
            "drift": [{"resource": str(r.key), "state": r.state.value,
                       "changes": [{"path": c.path, "manager": c.manager, "time": c.time} for c in r.diff.changes]}
                      for r in app.resources if r.managed and r.state.drifted],
            "history": [{"id": h.id, "kind": h.kind, "trigger": h.trigger.value, "label": h.label,
                         "revision": h.revision, "by": h.by, "at": h.at, "result": h.result, "summary": h.summary}
                        for h in newest_first(app.history)[:5]],
            "conditions": [{"type": c.type, "message": c.message} for c in app.conditions],
        })
    return {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(snap.taken_at)),
        "repo": {"url": snap.repo.url, "branch": snap.repo.branch,
                 "head": snap.repo.head.sha if snap.repo and snap.repo.head else None} if snap.repo else None,
        "clusters": [{"name": c.name, "connection": c.connection.value, "message": c.message}
                     for c in snap.clusters],
        "apps": apps,
    }


def _cell(value: Any) -> str:
    return clean("" if value is None else value, max_length=300).replace("|", "\\|")


def markdown_report(data: dict[str, Any]) -> str:
    """The report as Markdown."""
    lines = [f"# fleetdeck evidence report ({data['generated_at']})", ""]
    repo = data.get("repo")
    if repo:
        lines += [f"Config repo `{_cell(repo['url'])}` branch `{_cell(repo['branch'])}` at "
                  f"`{_cell((repo['head'] or '')[:12])}`.", ""]
    lines += ["## Clusters", "", "| cluster | connection | message |", "| --- | --- | --- |"]
    lines += [f"| {_cell(c['name'])} | {_cell(c['connection'])} | {_cell(c['message'])} |" for c in data["clusters"]]
    lines += ["", "## Applications", "", "| app | cluster | sync | health | desired | live | paused |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for a in data["apps"]:
        paused = f"yes: {_cell(a['pause_reason'])} ({_cell(a['paused_by'])})" if a["paused"] else ""
        lines.append(f"| {_cell(a['app'])} | {_cell(a['cluster'])} | {a['sync']} | {a['health']} | "
                     f"{_cell((a['desired_revision'] or '')[:8])} | {_cell((a['live_revision'] or '')[:8])} | {paused} |")
    drifted = [a for a in data["apps"] if a["drift"]]
    if drifted:
        lines += ["", "## Drift", ""]
        for a in drifted:
            lines.append(f"### {_cell(a['app'])} on {_cell(a['cluster'])}")
            for d in a["drift"]:
                lines.append(f"- `{_cell(d['resource'])}` {d['state']}")
                lines += [f"  - `{_cell(c['path'])}` changed by {_cell(c['manager'] or 'unknown')} "
                          f"{_cell(c['time'] or '')}" for c in d["changes"]]
    history = [a for a in data["apps"] if a["history"]]
    if history:
        lines += ["", "## Recent syncs", "", "| app | cluster | # | kind | revision | by | result | changes |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for a in history:
            lines += [f"| {_cell(a['app'])} | {_cell(a['cluster'])} | {h['id']} | {h['label']} | "
                      f"{_cell(h['revision'][:8])} | {_cell(h['by'])} | {_cell(h['result'])} | {_cell(h['summary'])} |"
                      for h in a["history"]]
    return "\n".join(lines) + "\n"
