"""The pure half of ``fleetdeck drift DESIRED LIVE``: one manifest against one live object, as JSON.

Role: compare a Git manifest with an object as ``kubectl get -o yaml`` prints it, by the local strategy,
and return a JSON-ready report. Constraint: pure; reading the files and printing belong to the CLI.
Secrets are masked in the report like everywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.model import FieldChange, ResourceState
from core.reconcile.diff import compare
from core.reconcile.ignore import IgnoreRule
from core.reconcile.jsonpath import as_dict, copy_json, thaw
from core.reconcile.tracking import APP_LABEL, TRACKING_ANNOTATION

DEFAULT_NAMESPACE = "default"


def _without_tracking(live: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """``live`` minus fleetdeck's tracking label and annotation when the manifest has none.

    A raw Git manifest never carries them (fleetdeck adds them when it applies), so they would otherwise
    show as pending removals.
    """
    out: dict[str, Any] = copy_json(live)
    desired_meta = as_dict(desired.get("metadata"))
    meta = as_dict(out.get("metadata"))
    for field, name in (("labels", APP_LABEL), ("annotations", TRACKING_ANNOTATION)):
        if name not in as_dict(desired_meta.get(field)):
            as_dict(meta.get(field)).pop(name, None)
    return out


def _change_json(change: FieldChange) -> dict[str, Any]:
    """One change as a JSON object."""
    return {
        "path": change.path,
        "desired": thaw(change.desired),
        "live": thaw(change.live),
        "manager": change.manager,
        "time": change.time,
    }


def drift_report(
    desired: Mapping[str, Any],
    live: Mapping[str, Any],
    *,
    namespace_default: str = DEFAULT_NAMESPACE,
    ignore_rules: Sequence[IgnoreRule] = (),
) -> dict[str, Any]:
    """Compare ``desired`` with ``live`` and report the drift as a JSON-ready dict.

    Args:
        desired: one manifest from Git.
        live: the live object (``kubectl get -o yaml``; with ``--show-managed-fields`` the changes also
            name their manager and time).
        namespace_default: the namespace a namespaced manifest without one is meant for.
        ignore_rules: extra ignore rules.

    Returns:
        ``{"in_sync": bool, "approximate": True, "changes": [{"path", "desired", "live", "manager",
        "time"}, ...]}``.
    """
    result = compare(
        desired,
        _without_tracking(live, desired),
        namespace_default=namespace_default,
        ignore_rules=ignore_rules,
    )
    return {
        "in_sync": result.state is ResourceState.SYNCED,
        "approximate": True,
        "changes": [_change_json(change) for change in result.changes],
    }
