"""Failures stay contained (rows K1, G1): one unreachable cluster, or a config repo that vanished, costs
only what it must. The engine runs on simulated clusters and a real Git repo."""

from __future__ import annotations

import os
import time

import pytest

from core.model import ConnectionState, ResourceState, SyncStatus
from tests.engine.conftest import CONFIG, Fleet, StartEngine
from tests.engine.test_engine import app_row, wait_for


async def test_cluster_unreachable_at_start_leaves_the_others_working(fleet: Fleet, started: StartEngine) -> None:
    """K1: prod refuses connections from the start. The engine gets ready; prod is Unreachable with a
    reason and its row Unknown (never "in sync", nothing to plan); dev loads normally and can be synced."""
    fleet.clusters["prod"].set_reachable(False)
    began = time.monotonic()
    engine = await started()
    snap = await wait_for(engine, lambda s: s.cluster("prod") is not None
                          and s.cluster("prod").connection is ConnectionState.UNREACHABLE)  # type: ignore[union-attr]
    detected = time.monotonic() - began
    prod = snap.cluster("prod")
    assert prod is not None and prod.message and prod.since is not None
    assert app_row(snap, "web", "prod").sync is SyncStatus.UNKNOWN
    assert (await engine.plan_sync("web", "prod")).blocked
    dev = app_row(snap, "web", "dev")
    assert snap.cluster("dev").connection is ConnectionState.CONNECTED  # type: ignore[union-attr]
    assert dev.sync is SyncStatus.OUT_OF_SYNC
    assert {r.state for r in dev.resources if r.managed} == {ResourceState.MISSING}
    states = [s async for s in engine.execute_plan(await engine.plan_sync("web", "dev"))]
    assert states[-1].phase.successful, states[-1].message
    await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.SYNCED)
    print(f"\nK1: prod Unreachable {detected:.2f}s after the engine started; dev synced meanwhile")

    fleet.clusters["prod"].set_reachable(True)
    began = time.monotonic()
    snap = await wait_for(engine, lambda s: s.cluster("prod").connection is ConnectionState.CONNECTED  # type: ignore[union-attr]
                          and app_row(s, "web", "prod").sync is SyncStatus.OUT_OF_SYNC)
    print(f"K1: prod back and compared {time.monotonic() - began:.2f}s after it answered")


async def test_config_repo_gone_keeps_every_row_at_its_revision(fleet: Fleet, started: StartEngine) -> None:
    """G1: the config repo vanishes (moved away) under a running engine: a hard refresh fails to fetch, but
    every row keeps the last fetched revision, marked stale, with its objects; prune is refused; once the
    repo is back the rows are fresh again."""
    engine = await started()
    head = app_row(engine.snapshot, "web", "dev").revision
    assert head is not None
    states = [s async for s in engine.execute_plan(await engine.plan_sync("web", "dev"))]
    assert states[-1].phase.successful, states[-1].message
    moved = fleet.repo.with_name("repo-moved")
    os.rename(fleet.repo, moved)
    try:
        await engine.refresh(hard=True)
        snap = await wait_for(engine, lambda s: app_row(s, "web", "dev").revision_stale
                              and app_row(s, "web", "prod").revision_stale)
        for cluster in ("dev", "prod"):
            row = app_row(snap, "web", cluster)
            assert row.revision is not None and row.revision.sha == head.sha
            assert any(c.type == "RevisionStale" for c in row.conditions), row.conditions
            assert {r.key.kind for r in row.resources if r.managed} == {"Deployment", "ConfigMap"}, row.health
        assert app_row(snap, "web", "dev").sync is SyncStatus.SYNCED, "the last desired state is still compared"
        assert snap.repo is not None and snap.repo.error
        assert (await engine.plan_sync("web", "dev", prune=True)).blocked
    finally:
        os.rename(moved, fleet.repo)
    await engine.refresh(hard=True)
    await wait_for(engine, lambda s: not app_row(s, "web", "dev").revision_stale)


async def test_unwritable_journal_refuses_changes_and_browsing_continues(fleet: Fleet) -> None:
    """R3: the journal cannot be written (its directory is a file, as good as a full disk for it): the
    engine starts and shows every row; a sync is refused before any cluster write; the rows stay current."""
    from core.engine import make_engine
    from core.errors import FleetdeckError
    from core.journal import Journal
    from core.settings import EngineSettings, WatchSettings

    blocker = fleet.tmp / "not-a-directory"
    blocker.write_text("")
    engine = make_engine(fleet.fleet_file, read_only=False, clients=fleet.clusters,
                         journal=Journal(blocker / "journal.jsonl"),
                         cache=fleet.tmp / "cache",
                         settings=EngineSettings(watch=WatchSettings(backoff_initial=0.05, backoff_max=0.2),
                                                 publish_interval=0.01))
    await engine.start()
    try:
        await engine.wait_ready(timeout=10)
        assert {(a.app, a.cluster) for a in engine.snapshot.apps} == {("web", "dev"), ("web", "prod")}
        cluster = fleet.clusters["dev"]
        before = cluster.store.resource_version
        plan = await engine.plan_sync("web", "dev")
        with pytest.raises(FleetdeckError) as caught:
            _ = [s async for s in engine.execute_plan(plan)]
        assert "journal" in str(caught.value).lower(), str(caught.value)
        kinds = (("", "Namespace"), ("", "ConfigMap"), ("apps", "Deployment"), ("coordination.k8s.io", "Lease"))
        written = {(e.obj["kind"], e.obj["metadata"]["name"]) for gk in kinds for e in cluster.store.events_after(gk, before)}
        # The engine's own automation lease (taken at start, whatever the journal) is all there may be.
        assert written <= {("Lease", "fleetdeck-automation"), ("Namespace", "fleetdeck-system")}, written
        cluster.seed_apply({**CONFIG, "metadata": {"name": "web-config", "namespace": "web"}}, field_manager="kubectl")
        await wait_for(engine, lambda s: any(r.key.name == "web-config" and r.state is ResourceState.OUT_OF_SYNC
                                             for r in app_row(s, "web", "dev").resources))
    finally:
        await engine.stop()
        for sim in fleet.clusters.values():
            await sim.close()
