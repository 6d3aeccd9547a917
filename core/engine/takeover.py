"""Fields a sync would take over from other field managers (SSA conflicts, decided before the apply).

fleetdeck's apply is forced (``force=true``): where another field manager owns a field with a different
value, server-side apply would report a conflict, and the forced apply instead sets Git's value and moves
the field's ownership to fleetdeck. The diff already names the manager that wrote each live value; a
change whose live value was written by another manager (not an ignored field, not a value fleetdeck applied
before) is such a takeover. A manual sync runs them only when the operator confirmed it (the CLI's
``--force-conflicts``, the console's ``a``); automated syncs take them over (the app's ``automated``
policy is the standing consent, as self-heal undoing a live edit is exactly this).
"""

from __future__ import annotations

from collections.abc import Iterable

from core.model import FieldTakeover, PlanStep, ResourceStatus, SyncAction


def takeovers(steps: Iterable[PlanStep], resources: Iterable[ResourceStatus], *,
              field_manager: str) -> tuple[FieldTakeover, ...]:
    """The fields the applied steps of a plan take over from another manager, in step order."""
    by_key = {r.key: r for r in resources}
    out: list[FieldTakeover] = []
    for step in steps:
        status = by_key.get(step.key)
        if step.action not in (SyncAction.CONFIGURED, SyncAction.UNCHANGED) or step.hook or status is None:
            continue
        for change in status.diff.changes:
            if change.op == "replace" and not change.note and change.manager and change.manager != field_manager:
                out.append(FieldTakeover(step.key, change.path, change.manager))
    return tuple(out)

