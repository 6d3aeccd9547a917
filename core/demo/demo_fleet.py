"""``build_demo``: the demo config repo plus four pre-seeded simulated clusters.

Role: create the repo (``core.demo.repo``), load its fleet file with the real loader, and seed every
(app, cluster) target so the console opens on a fleet that tells a story: most apps Synced and
Healthy, two drifted by ``kubectl-edit``, one Degraded by a crash-looping build, one whose
production overlay fails to render, one paused during an incident, and one behind the branch.

Constraint: blocking (git and kustomize subprocesses, about a second); call it before the engine
starts, or through ``asyncio.to_thread``. The returned clusters belong to the event loop that first
uses them.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.demo.render_cache import DemoRenderStore
from core.demo.repo import (
    FLEET_FILE,
    commit_shas,
    commit_times,
    create_demo_repo,
    export_tree,
    revision_files,
    touching,
)
from core.demo.seeding import Prepare, drift, prepare_for_apply, render_overlay, seed_app, seed_paused
from core.desired.fleet_file import FleetConfig, load_fleet
from core.errors import ManifestError, RenderError
from core.model import ResourceKey
from core.simulated.simulated_cluster import SimulatedCluster, SimulationTiming

WARM_UP_SECONDS = 900.0
"""How long the seeded clusters pretend to have been running (pods Ready, deadlines passed)."""


class DemoState(StrEnum):
    """What a target of the demo fleet shows when the console opens."""

    SYNCED = "synced"
    DRIFTED = "drifted"
    """A field fleetdeck applied was changed by ``kubectl-edit``."""
    DEGRADED = "degraded"
    """Synced, but the build crash-loops (``ProgressDeadlineExceeded``)."""
    RENDER_ERROR = "render-error"
    """The overlay at the branch head fails to render; the cluster runs the previous revision."""
    PAUSED = "paused"
    """Automation paused by an operator (and a release waiting behind the pause)."""
    BEHIND = "behind"
    """Applied at an older revision; the branch has a newer one not synced yet (manual sync policy)."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """How one target is seeded (targets not listed are Synced at the branch head)."""

    state: DemoState
    note: str
    revision: int = -1
    """Index into the repo's commits (oldest first) of the revision applied; -1 is the head."""
    drift: tuple[ResourceKey, Mapping[str, Any]] | None = None
    paused: tuple[str, str] | None = None
    """``(reason, by)``."""
    prelude: int | None = None
    """A revision applied (and rolled out) first, so the cluster keeps its ReplicaSet history."""


SCENARIOS: Mapping[tuple[str, str], Scenario] = {
    ("web", "prod-eu"): Scenario(
        DemoState.DRIFTED, "replicas scaled 3 → 5 by kubectl-edit during a traffic spike",
        drift=(ResourceKey("apps", "Deployment", "web", "web"), {"spec": {"replicas": 5}})),
    ("api", "staging-eu"): Scenario(
        DemoState.DRIFTED, "LOG_LEVEL set to debug by kubectl-edit",
        drift=(ResourceKey("apps", "Deployment", "api", "api"),
               {"spec": {"template": {"spec": {"containers": [
                   {"name": "api", "env": [{"name": "LOG_LEVEL", "value": "debug"}]}]}}}})),
    ("worker", "staging-eu"): Scenario(
        DemoState.DEGRADED, "worker 3.2.0 crash-loops on staging; the 3.1.0 pod keeps running", prelude=3),
    ("ledger", "prod-eu"): Scenario(
        DemoState.RENDER_ERROR, "the production overlay references ledger-prod.env, which is not in the repo",
        revision=-2),
    ("payments", "prod-us"): Scenario(
        DemoState.PAUSED, "paused during an incident; release 1.10.0 waits behind the pause", revision=2,
        paused=("INC-4521: card processor timeouts in us-east; hold payments changes", "alice@bastion-us")),
    ("search", "staging-eu"): Scenario(
        DemoState.BEHIND, "runs search 0.12.0; the branch has 0.13.0 (manual sync policy)", revision=4),
}


@dataclass(frozen=True, slots=True)
class DemoTarget:
    """One app on one cluster of the demo fleet."""

    app: str
    cluster: str
    path: str
    namespace: str
    state: DemoState
    revision: str
    """The SHA whose render was applied to the cluster."""
    note: str = ""
    prelude: str | None = None
    """The SHA applied before ``revision``, if any."""


@dataclass(frozen=True, slots=True)
class DemoFleet:
    """The demo: a config repo, its fleet file and one simulated cluster per fleet cluster."""

    repo_dir: Path
    fleet_file: Path
    fleet: FleetConfig
    clusters: Mapping[str, SimulatedCluster]
    """By cluster name: pass as the engine's injected clients."""
    targets: tuple[DemoTarget, ...]
    revisions: tuple[str, ...]
    """The branch's commits, oldest first."""
    seed: int = 7
    """Seed of ``live_changes``."""

    def target(self, app: str, cluster: str) -> DemoTarget | None:
        """The target ``(app, cluster)``, if the fleet has it."""
        return next((t for t in self.targets if (t.app, t.cluster) == (app, cluster)), None)

    def in_state(self, state: DemoState) -> tuple[DemoTarget, ...]:
        """The targets seeded in ``state``."""
        return tuple(t for t in self.targets if t.state is state)

    async def close(self) -> None:
        """Stop every simulated cluster's controller loop and watches."""
        for cluster in self.clusters.values():
            await cluster.close()


def build_demo(
    directory: str | os.PathLike[str],
    *,
    timing: SimulationTiming | None = None,
    clock: Callable[[], float] = time.time,  # injected in tests
    prepare: Prepare = prepare_for_apply,
    seed: int = 7,
    recent: bool = False,
    store: DemoRenderStore | None = None,
    controllers: bool = True,
) -> DemoFleet:
    """Create the demo repo in ``directory/config`` and four simulated clusters seeded from it.

    Args:
        directory: an empty or new directory.
        timing: the clusters' delays (``SimulationTiming.instant()`` in tests).
        clock: the clusters' wall clock.
        prepare: how fleetdeck turns a rendered object into the applied one (tracking metadata).
        seed: seed of ``live_changes``.
        recent: date the last commit 40 minutes before ``clock()`` (for the console) instead of at the
            fixed, reproducible date tests use.
        store: renders kept by content across runs (``DemoRenderStore``); None renders everything.
        controllers: run the clusters' controllers after seeding (False: a still fleet, nothing changes
            by itself: no crash loop restarts, no rollout progress; for measuring an idle console).

    Returns:
        The demo fleet. Its clusters have settled: pods Ready, crash loops past their deadline.

    Raises:
        DemoError: git failed or the directory is not empty.
        ConfigError: the generated fleet file does not load (a bug).
    """
    ending_at = datetime.fromtimestamp(clock() - 40 * 60, tz=UTC) if recent else None
    repo_dir = create_demo_repo(Path(directory) / "config", ending_at=ending_at)
    fleet = load_fleet(repo_dir / FLEET_FILE)
    revisions = tuple(commit_shas(repo_dir))
    times = dict(zip(revisions, commit_times(ending_at), strict=True))
    clusters = {spec.name: SimulatedCluster(spec.name, timing=timing, clock=clock, controllers=controllers,
                                            server=f"https://{spec.name}.demo.fleetdeck.invalid:6443")
                for spec in fleet.clusters}
    targets = _plan(fleet, revisions)
    renders = _render_all(repo_dir, revisions, targets, store)
    for target in targets:
        _seed(clusters[target.cluster], target, renders, revisions, times, fleet, prepare)
    _settle(clusters)
    return DemoFleet(repo_dir, repo_dir / FLEET_FILE, fleet, clusters, tuple(targets), revisions, seed)


def _plan(fleet: FleetConfig, revisions: tuple[str, ...]) -> list[DemoTarget]:
    targets = []
    for app in fleet.apps:
        for cluster, path in app.targets(fleet.clusters):
            scenario = SCENARIOS.get((app.name, cluster.name))
            state = scenario.state if scenario else DemoState.SYNCED
            revision = revisions[scenario.revision if scenario else -1]
            prelude = revisions[scenario.prelude] if scenario and scenario.prelude is not None else None
            targets.append(DemoTarget(app.name, cluster.name, path, app.namespace, state, revision,
                                      scenario.note if scenario else "", prelude))
    return targets


def _render_all(repo_dir: Path, revisions: tuple[str, ...], targets: list[DemoTarget],
                store: DemoRenderStore | None = None) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every (revision, path) the targets need, rendered concurrently (kustomize is a subprocess).

    With ``store``, renders are looked up by the revision's files (held in memory: an old revision is
    written out only when one of its renders is missing) and kept there, where the engine's renders of
    the same content find them. The branch head of every target's path is rendered too (into the store
    only, a failure included), so that the engine, which renders the head, finds them all and runs no
    kustomize after the seeding."""
    seeded = {(t.revision, t.path) for t in targets} | {(t.prelude, t.path) for t in targets if t.prelude}
    head = revisions[-1]
    for_engine = {(head, t.path) for t in targets} - seeded if store is not None else set()
    wanted = sorted(seeded | for_engine)
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    keys: dict[tuple[str, str], str | None] = {}
    if store is not None:
        from core.desired.kustomize import kustomize_command
        from core.settings import GitSettings

        files = dict(zip(revisions, revision_files(), strict=True))
        command, max_bytes = kustomize_command(), GitSettings().max_manifest_bytes
        for sha, path in wanted:
            keys[(sha, path)] = key = store.key_of_files(files[sha], path, command, max_bytes)
            stored = store.get(key) if key else None
            if (sha, path) in for_engine and stored is not None:
                found[(sha, path)] = []  # the engine's, already kept
            elif stored is not None and not isinstance(stored, RenderError):  # a failure renders again (and raises)
                found[(sha, path)] = [dict(obj) for obj in stored.objects]
    missing = [w for w in wanted if w not in found]
    if not missing:
        return {w: objects for w, objects in found.items() if w in seeded}
    with tempfile.TemporaryDirectory(prefix="fleetdeck-demo-") as scratch:
        trees = {sha: repo_dir if sha == head else export_tree(repo_dir, sha, Path(scratch) / sha)
                 for sha in {sha for sha, _ in missing}}
        with ThreadPoolExecutor(max_workers=8) as pool:
            if store is None:
                results = list(pool.map(lambda key: render_overlay(trees[key[0]], key[1]), missing))
            else:
                results = list(pool.map(lambda key: _render_and_keep(store, keys[key], trees[key[0]], key[1],
                                                                     seeding=key in seeded), missing))
    renders = {**found, **dict(zip(missing, results, strict=True))}
    return {w: objects for w, objects in renders.items() if w in seeded}


def _render_and_keep(store: DemoRenderStore, key: str | None, tree: Path, path: str,
                     seeding: bool = True) -> list[dict[str, Any]]:
    """``path`` of ``tree`` rendered as the engine renders it (``core.desired.render.render``), kept in ``store``.
    Not ``seeding`` (a render only the engine will ask for): a build's failure is kept as the engine keeps it
    (``Renderer``), and nothing is returned."""
    import asyncio

    from core.desired.render import render, tree_marked
    from core.settings import GitSettings

    try:
        result = asyncio.run(render(tree, path, max_bytes=GitSettings().max_manifest_bytes))  # a worker: no loop
    except (RenderError, ManifestError) as exc:
        if seeding:
            raise
        if key and type(exc) is RenderError:
            store.put(key, tree_marked(exc, tree))
        return []
    if key:
        store.put(key, result)
    return [dict(obj) for obj in result.objects] if seeding else []


def _seed(cluster: SimulatedCluster, target: DemoTarget, renders: Mapping[tuple[str, str], list[dict[str, Any]]],
          revisions: tuple[str, ...], times: Mapping[str, float], fleet: FleetConfig, prepare: Prepare) -> None:
    app = fleet.app(target.app)
    assert app is not None
    by = "fleetdeck (automated)" if app.sync.automated else "ana.ops@bastion-eu"
    for revision in (target.prelude, target.revision):
        if revision is None:
            continue
        seed_app(cluster, app=target.app, namespace=target.namespace, objects=renders[(revision, target.path)],
                 history=_history(revisions, times, target, revision), by=by, revision=(revision, times[revision]),
                 automated=app.sync.automated, prepare=prepare)
        if revision == target.prelude:
            cluster.fast_forward(WARM_UP_SECONDS)
    scenario = SCENARIOS.get((target.app, target.cluster))
    if scenario is not None and scenario.drift is not None:
        drift(cluster, *scenario.drift)
    if scenario is not None and scenario.paused is not None:
        reason, who = scenario.paused
        seed_paused(cluster, target.app, reason, who)


def _history(revisions: tuple[str, ...], times: Mapping[str, float], target: DemoTarget,
             revision: str) -> list[tuple[str, float]]:
    """The commits up to ``revision`` that changed what the target renders (its base or its overlay), as
    ``git log -- paths`` would list them (computed from the generated files, without a git process)."""
    overlay = target.path.rsplit("/", 1)[-1]
    paths = [f"apps/{target.app}/base", f"apps/{target.app}/overlays/{overlay}"]
    return [(revisions[i], times[revisions[i]]) for i in touching(revisions.index(revision), paths)]


def _settle(clusters: Mapping[str, SimulatedCluster]) -> None:
    """Run every cluster's controllers to a steady state, as if they had been running for a while."""
    for cluster in clusters.values():
        cluster.fast_forward(WARM_UP_SECONDS)
