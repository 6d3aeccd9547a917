"""The engine end to end on simulated clusters: snapshots, drift, sync, pause, read-only."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core.engine import FleetEngine
from core.model import (
    AppStatus,
    FleetSnapshot,
    HealthStatus,
    ResourceKey,
    ResourceState,
    SyncAction,
    SyncStatus,
)
from tests.engine.conftest import Fleet, StartEngine


def app_row(snap: FleetSnapshot, app: str, cluster: str) -> AppStatus:
    """The row the test expects ``snap`` to have for ``app`` on ``cluster``."""
    status = snap.app(app, cluster)
    assert status is not None, f"no row for {app} on {cluster}"
    return status


def idle(status: AppStatus) -> bool:
    """No operation is running on the row's app (none, or the last one has ended)."""
    return status.operation is None or status.operation.phase.completed


def sha(status: AppStatus) -> str:
    """The SHA of the revision the test expects the row to have."""
    assert status.revision is not None
    return status.revision.sha


async def wait_for(engine: FleetEngine, predicate: Callable[[FleetSnapshot], bool], timeout: float = 10.0) -> FleetSnapshot:
    """The first snapshot satisfying ``predicate``."""
    async with asyncio.timeout(timeout):
        async for snap in engine.snapshots():
            if predicate(snap):
                return snap
    raise AssertionError("no matching snapshot")


async def test_new_app_is_missing_everywhere(fleet: Fleet, started: StartEngine) -> None:
    """Before any sync, every desired resource is Missing and the app OutOfSync on both clusters."""
    engine = await started()
    snap = engine.snapshot
    assert {(a.app, a.cluster) for a in snap.apps} == {("web", "dev"), ("web", "prod")}
    for row in snap.apps:
        assert row.sync is SyncStatus.OUT_OF_SYNC
        assert {r.state for r in row.resources if r.managed} == {ResourceState.MISSING}
        assert row.revision is not None and len(row.revision.sha) == 40


async def test_sync_then_synced_and_healthy(fleet: Fleet, started: StartEngine) -> None:
    """A sync creates both objects; the next snapshots show Synced, then Healthy once pods are ready."""
    engine = await started()
    plan = await engine.plan_sync("web", "dev")
    assert not plan.blocked
    assert {s.action for s in plan.steps} == {SyncAction.CREATED}
    states = [s async for s in engine.execute_plan(plan)]
    assert states[-1].phase.successful, states[-1].message
    snap = await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.SYNCED
                          and app_row(s, "web", "dev").health.status is HealthStatus.HEALTHY)
    row = app_row(snap, "web", "dev")
    assert row.history and row.history[-1].revision == plan.revision
    assert app_row(snap, "web", "prod").sync is SyncStatus.OUT_OF_SYNC


async def test_kubectl_edit_shows_drift_with_manager(fleet: Fleet, started: StartEngine) -> None:
    """A field changed by another manager shows OutOfSync with that field and its manager."""
    engine = await started()
    _ = [s async for s in engine.execute_plan(await engine.plan_sync("web", "dev"))]
    await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.SYNCED)
    key = ResourceKey("apps", "Deployment", "web", "web")
    fleet.clusters["dev"].update_as("kubectl-edit", key, {"spec": {"replicas": 5}})
    snap = await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.OUT_OF_SYNC)
    web = next(r for r in app_row(snap, "web", "dev").resources if r.key == key)
    change = next(c for c in web.diff.changes if c.path == "/spec/replicas")
    assert (change.desired, change.live, change.manager) == (2, 5, "kubectl-edit")


async def test_pause_is_shared_through_the_cluster(fleet: Fleet, started: StartEngine) -> None:
    """A pause written by one engine is seen by another engine on the same cluster."""
    first = await started()
    second = await started()
    await first.pause("web", "prod", reason="incident 42")
    snap = await wait_for(second, lambda s: app_row(s, "web", "prod").control.paused)
    assert app_row(snap, "web", "prod").control.reason == "incident 42"


async def test_read_only_sends_no_writes(fleet: Fleet, started: StartEngine) -> None:
    """In read-only mode plans are blocked, pause is refused and the cluster sees no mutating call."""
    engine = await started(read_only=True)
    plan = await engine.plan_sync("web", "dev")
    assert "read-only" in plan.blocked
    try:
        await engine.pause("web", "dev", reason="x")
    except Exception as exc:  # ReadOnlyError
        assert "read-only" in str(exc)
    else:
        raise AssertionError("pause was not refused")
    reviews = {"selfsubjectaccessreviews", "selfsubjectreviews"}
    writes = [(verb, what) for verb, what in fleet.clusters["dev"].requests
              if verb not in {"discover", "list", "watch", "get"} and what not in reviews]
    assert writes == []


async def test_rollback_pins_pauses_and_counts_behind(fleet: Fleet, started: StartEngine) -> None:
    """Rolling back to the previous revision pins and pauses the app, restores the old object, and the row
    says how many commits the branch is ahead of the pin."""
    from tests.engine.conftest import CONFIG, WEB, write_app

    engine = await started()
    first = (await engine.plan_sync("web", "dev")).revision
    _ = [s async for s in engine.execute_plan(await engine.plan_sync("web", "dev"))]
    changed = {**WEB, "spec": {**WEB["spec"], "replicas": 4}}
    write_app(fleet.repo, [changed, CONFIG], "web: 4 replicas")
    await engine.refresh()
    _ = [s async for s in engine.execute_plan(await engine.plan_sync("web", "dev"))]
    plan = await engine.plan_rollback("web", "dev", first)
    assert plan.kind == "rollback" and not plan.blocked
    assert [s.key.kind for s in plan.steps if s.action is SyncAction.CONFIGURED] == ["Deployment"]
    result = [s async for s in engine.execute_plan(plan)][-1]
    assert result.phase.successful, result.message
    # wait for the row to be rendered at the pin: until then (a few ms after the pin is seen) it still
    # compares the head's render, and the pin's distance from the head is stored with the pin's render
    snap = await wait_for(engine, lambda s: app_row(s, "web", "dev").control.pinned == first
                          and getattr(app_row(s, "web", "dev").revision, "sha", None) == first
                          and app_row(s, "web", "dev").sync is SyncStatus.SYNCED)
    row = app_row(snap, "web", "dev")
    assert row.control.paused and row.behind == 1 and sha(row) == first
    assert row.history[-1].kind == "rollback"
    await engine.resume("web", "dev")
    snap = await wait_for(engine, lambda s: app_row(s, "web", "dev").control.pinned is None
                          and app_row(s, "web", "dev").sync is SyncStatus.OUT_OF_SYNC)
    assert sha(app_row(snap, "web", "dev")) != first


async def test_flux_kustomizations_become_apps(fleet: Fleet, started: StartEngine) -> None:
    """With ``import: {flux: true}``, a Flux Kustomization in the repo is an app of the fleet."""
    import yaml

    from tests.engine.conftest import git

    flux_dir = fleet.repo / "clusters" / "dev"
    flux_dir.mkdir(parents=True)
    (flux_dir / "apps.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "webapps", "namespace": "flux-system"},
        "spec": {"path": "./apps/web", "prune": True, "targetNamespace": "webapps", "interval": "10m",
                 "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
    }))
    git(fleet.repo, "add", "-A")
    git(fleet.repo, "commit", "-q", "-m", "flux")
    config = yaml.safe_load(fleet.fleet_file.read_text())
    config["import"] = {"flux": True}
    fleet.fleet_file.write_text(yaml.safe_dump(config))
    engine = await started()
    rows = {(a.app, a.cluster) for a in engine.snapshot.apps}
    assert ("webapps", "dev") in rows, rows
    assert app_row(engine.snapshot, "webapps", "dev").namespace == "webapps"


async def test_automation_syncs_but_never_rolls_a_rollback_forward(fleet: Fleet, started: StartEngine) -> None:
    """An automated app is synced by the automation pass; after a rollback (pinned and paused in one step)
    further passes leave it at the pinned revision although the branch moved on."""
    import yaml

    from tests.engine.conftest import CONFIG, WEB, write_app

    config = yaml.safe_load(fleet.fleet_file.read_text())
    config["apps"][0]["sync"] = {"automated": True}
    fleet.fleet_file.write_text(yaml.safe_dump(config))
    engine = await started()
    first = sha(app_row(engine.snapshot, "web", "dev"))
    await engine.sync_automated_apps(wait=True)  # finished, lease released: the rollback below cannot meet it
    await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.SYNCED)
    write_app(fleet.repo, [{**WEB, "spec": {**WEB["spec"], "replicas": 4}}, CONFIG], "web: 4 replicas")
    await engine.refresh()
    await engine.sync_automated_apps(wait=True)
    # the engine's own automation round may be the one that syncs the new head: wait until that sync has
    # ended too (its objects look synced a moment before it releases the app), or the rollback meets its lock
    await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.SYNCED
                   and sha(app_row(s, "web", "dev")) != first
                   and idle(app_row(s, "web", "dev")))
    _ = [s async for s in engine.execute_plan(await engine.plan_rollback("web", "dev", first))]
    await wait_for(engine, lambda s: app_row(s, "web", "dev").control.pinned == first)
    for _ in range(3):
        await engine.sync_automated_apps()
    # rendered at the pin and compared with what the rollback applied (a moment after the pin is seen, the
    # row still compares the head's render with objects the cache has not seen change yet)
    snap = await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.SYNCED
                          and getattr(app_row(s, "web", "dev").revision, "sha", None) == first)
    row = app_row(snap, "web", "dev")
    assert sha(row) == first and row.control.paused
    live = fleet.clusters["dev"].get_object(ResourceKey("apps", "Deployment", "web", "web"))
    assert live is not None
    assert live["spec"]["replicas"] == 2


async def test_automation_records_automated_and_self_heal_syncs(fleet: Fleet, started: StartEngine) -> None:
    """With automated sync and self-heal, the first automated sync is recorded as "automated sync" and the
    sync undoing a kubectl edit as "self-heal sync" (it was not recorded at all: it syncs only the drifted
    resources)."""
    import time

    import yaml

    config = yaml.safe_load(fleet.fleet_file.read_text())
    config["apps"][0]["sync"] = {"automated": True, "selfHeal": True}
    fleet.fleet_file.write_text(yaml.safe_dump(config))
    engine = await started()
    await engine.sync_automated_apps()
    await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.SYNCED
                   and len(app_row(s, "web", "dev").history) == 1)
    key = ResourceKey("apps", "Deployment", "web", "web")
    fleet.clusters["dev"].update_as("kubectl-edit", key, {"spec": {"replicas": 5}})
    await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.OUT_OF_SYNC)
    engine.clock = lambda: time.time() + 60.0  # past the first self-heal backoff (5 s)
    await engine.sync_automated_apps()
    snap = await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.SYNCED
                          and len(app_row(s, "web", "dev").history) == 2)
    row = app_row(snap, "web", "dev")
    assert [(h.label, h.revision) for h in row.history] == [("automated sync", sha(row)), ("self-heal sync", sha(row))]
    live = fleet.clusters["dev"].get_object(key)
    assert live is not None and live["spec"]["replicas"] == 2
