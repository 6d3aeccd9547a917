"""The engine's drift dry runs around a sync: none while it runs, none of what it just applied."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from core.live.api import JSON, APIResource
from core.model import ResourceKey, ResourceState, SyncStatus
from tests.engine.conftest import CONFIG, WEB, Fleet, StartEngine, write_app
from tests.engine.test_engine import app_row, wait_for


async def test_a_sync_answers_for_the_dry_runs_of_what_it_applied(fleet: Fleet, started: StartEngine) -> None:
    """After a sync, the ConfigMap it changed is Synced from the apply's answer: no dry run of it is sent
    (the Deployment, whose status the controller then writes, is dry-run again at its new version)."""
    cluster = fleet.clusters["dev"]
    sent: list[tuple[str, bool]] = []
    original = cluster.apply

    async def apply(resource: APIResource, obj: Mapping[str, Any], *, field_manager: str, dry_run: bool = False,
                    force: bool = True) -> JSON:
        sent.append((str(obj["metadata"]["name"]), dry_run))
        return await original(resource, obj, field_manager=field_manager, dry_run=dry_run, force=force)

    cluster.apply = apply  # type: ignore[method-assign]
    engine = await started()
    _ = [s async for s in engine.execute_plan(await engine.plan_sync("web", "dev"))]
    await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.SYNCED)
    write_app(fleet.repo, [WEB, {**CONFIG, "data": {"mode": "green"}}], "web: green")
    await engine.refresh()
    key = ResourceKey("", "ConfigMap", "web", "web-config")
    await wait_for(engine, lambda s: next(r for r in app_row(s, "web", "dev").resources if r.key == key).state
                   is ResourceState.OUT_OF_SYNC)
    await asyncio.sleep(0.3)  # the engine's dry run of the new desired object has been answered
    before = len(sent)
    states = [s async for s in engine.execute_plan(await engine.plan_sync("web", "dev"))]
    assert states[-1].phase.successful, states[-1].message
    snap = await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.SYNCED)
    await asyncio.sleep(0.3)  # every watch event of the sync has arrived; any dry run would have been sent
    assert next(r for r in app_row(snap, "web", "dev").resources if r.key == key).state is ResourceState.SYNCED
    during = sent[before:]
    assert during.count(("web-config", False)) == 1
    assert during.count(("web-config", True)) == 1, during  # the sync's preflight; the engine sends none
    assert app_row(engine.snapshot, "web", "dev").sync is SyncStatus.SYNCED
