"""Planning syncs for one or many rows: concurrent ``plan_sync`` calls, failures kept as blocked plans.

Called only from workers. A planning failure for one row does not hide the others: it becomes a plan
with ``blocked`` set, so the combined preview shows every target and says why one cannot run. Nothing
here writes; ``FleetEngineAPI.plan_sync`` never does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from core.api import FleetEngineAPI
from core.errors import FleetdeckError
from core.model import AppName, ClusterName, ResourceKey, SyncPlan
from core.sanitize import clean
from tui.fleet_query import RowKey


@dataclass(frozen=True, slots=True)
class PlanChoices:
    """What the operator chose in the sync dialog: fleetdeck's options, and Argo CD's for its apps."""

    prune: bool = False
    dry_run: bool = False
    sync_options: tuple[str, ...] = ()
    """Argo CD sync options (checked), sent only for the Argo CD-owned targets."""
    controller_dry_run: bool = False
    """Argo CD's own dry run, only for the Argo CD-owned targets."""


def failed_plan(target: RowKey, error: BaseException) -> SyncPlan:
    """A plan that cannot run because planning itself failed."""
    reason = error.message if isinstance(error, FleetdeckError) else f"{type(error).__name__}: {error}"
    return SyncPlan(
        app=AppName(target[0]),
        cluster=ClusterName(target[1]),
        revision="",
        steps=(),
        blocked=f"planning failed: {clean(reason, max_length=300)}",
    )


async def plan_targets(
    engine: FleetEngineAPI,
    targets: Sequence[RowKey],
    *,
    prune: bool = False,
    dry_run: bool = False,
    resources: Sequence[ResourceKey] = (),
    sync_options: Sequence[str] = (),
    controller_dry_run: bool = False,
    controller_targets: Collection[RowKey] = (),
) -> tuple[SyncPlan, ...]:
    """Plan a sync of every target concurrently.

    Args:
        engine: the engine.
        targets: (app, cluster) rows.
        prune: delete extraneous resources.
        dry_run: plan a server dry run (nothing is written).
        resources: a selective sync of these resources (only for a single target).
        sync_options: Argo CD sync options, for the targets in ``controller_targets`` only.
        controller_dry_run: Argo CD's own dry run, for the targets in ``controller_targets`` only.
        controller_targets: the Argo CD-owned targets (other owners refuse these options).

    Returns:
        One plan per target, in order; a failed planning is a blocked plan.
    """

    async def plan(target: RowKey) -> SyncPlan:
        argo = target in controller_targets
        try:
            return await engine.plan_sync(
                target[0], target[1], prune=prune, dry_run=dry_run, resources=tuple(resources),
                sync_options=tuple(sync_options) if argo else (), controller_dry_run=controller_dry_run and argo,
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a failure here must not hide the other targets' plans
            return failed_plan(target, error)

    return tuple(await asyncio.gather(*(plan(t) for t in targets)))
