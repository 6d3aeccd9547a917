"""Diffs as data: what ``fleetdeck diff -o json|yaml`` prints and what the text diff annotates.

Role: turn the ``ResourceDiff`` of each drifted resource into plain records (key, state, strategy and per
change the path, its readable ``display_path``, both values, the manager that last wrote the live value
and the cause). Values are the core's, already normalized and masked (``core.reconcile.secrets``), so no
secret value reaches a record. Constraint: pure; strings from clusters and Git are left as data for the
caller to sanitize before printing.
"""

from __future__ import annotations

from typing import Any

from core.model import AppStatus, FieldChange, ResourceStatus
from core.reconcile.jsonpath import thaw


def change_record(change: FieldChange) -> dict[str, Any]:
    """One field change as a plain record."""
    return {
        "path": change.path,
        "display_path": change.display_path,
        "op": change.op,
        "live": thaw(change.live),
        "desired": thaw(change.desired),
        "manager": change.manager,
        "time": change.time,
        "note": change.note,
        "cause": change.cause,
    }


def resource_diff_record(status: ResourceStatus) -> dict[str, Any]:
    """One resource's verdict and changes as a plain record."""
    diff = status.diff
    return {
        "key": str(status.key),
        "state": status.state.value,
        "strategy": diff.strategy,
        "approximate": diff.approximate,
        "message": diff.message,
        "warnings": list(diff.warnings),
        "changes": [change_record(change) for change in diff.changes],
    }


def app_diff_records(app: AppStatus) -> list[dict[str, Any]]:
    """Records of every resource of ``app`` a sync would change (managed and drifted), in key order."""
    return [resource_diff_record(r) for r in app.resources if r.managed and r.state.drifted]
