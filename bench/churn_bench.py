"""churn: the engine under a steady stream of changes, a burst and a relist storm, on the simulated backend.

``uv run python -m bench.churn_bench [--clusters N] [--apps N] [--rate R] [--seconds S] [--publish-interval S]
[--quick]`` (default 100 clusters × 10 apps × 10 objects, 20 changes/s per cluster for 10 s, the engine's
default ``publish_interval``). The clusters are
``core.simulated`` clusters in this process (instant timing, no controllers), not real API servers: their
watch delivery is an in-process call, so "the API's own watch latency" is ~0 here and the figures are the
engine's own. Every change is another field manager editing one ConfigMap of one app, toggled between a
drifted value and the value in Git, so each change flips that app's row between OutOfSync and Synced.

* **steady**: ``rate`` changes/s per cluster, round robin over the apps, for ``seconds``: comparisons per
  event (``core.engine.evaluate.COUNTERS``), change → visible (the first published snapshot whose row shows
  the change) p50/p99/max, and the process's CPU seconds per wall second (which include the simulated API
  servers' own work and the change generator: an upper bound on the engine's share);
* **burst**: ``burst`` changes at once (a rollout's worth), the same figures;
* **relist storm**: every watch cut, one change per cluster made meanwhile and every cluster's event log
  compacted past it, so every watcher reconnects, gets 410 Gone and lists again: seconds until every kind
  watched before is listed and watched again, then until the process is idle; comparisons made per
  relisted object (only the one changed object per cluster needs one).

Writes ``bench/results/churn-CxA.json``. ``--cost`` measures only the engine's CPU per change (see ``_cost``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.scale_bench import app_objects, seed_clusters
from bench.workloads import write_fleet
from core.engine import make_engine
from core.engine.evaluate import COUNTERS
from core.engine.fleet_engine import FleetEngine
from core.journal import Journal
from core.model import ConnectionState, FleetSnapshot, ResourceKey, SyncStatus
from core.settings import EngineSettings
from core.simulated.simulated_cluster import SimulatedCluster

CONFIG = "settings.yaml"


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Watcher:
    """Follows the engine's snapshots; records when each pending change became visible in its row."""

    def __init__(self, engine: FleetEngine) -> None:
        self.engine = engine
        self.pending: dict[tuple[str, str], tuple[float, SyncStatus]] = {}
        self.latencies: list[float] = []
        self.superseded = 0
        self.snapshots = 0

    def expect(self, app: str, cluster: str, status: SyncStatus) -> None:
        if (app, cluster) in self.pending:
            self.superseded += 1  # the earlier change is replaced by this one before it was shown
        self.pending[(app, cluster)] = (time.perf_counter(), status)

    def _seen(self, snapshot: FleetSnapshot) -> None:
        now = time.perf_counter()
        self.snapshots += 1
        if not self.pending:
            return
        for row in snapshot.apps:
            want = self.pending.get((row.app, row.cluster))
            if want is not None and row.sync is want[1]:
                self.latencies.append(now - want[0])
                del self.pending[(row.app, row.cluster)]

    async def follow(self) -> None:
        async for snapshot in self.engine.snapshots():
            self._seen(snapshot)

    async def drained(self, timeout: float) -> bool:
        deadline = time.perf_counter() + timeout
        while self.pending and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        return not self.pending

    def figures(self) -> dict[str, Any]:
        ms = [x * 1e3 for x in self.latencies]
        return {"visible": len(ms), "superseded": self.superseded, "never_visible": len(self.pending),
                "p50_ms": round(_percentile(ms, 0.5), 1), "p99_ms": round(_percentile(ms, 0.99), 1),
                "max_ms": round(max(ms, default=0.0), 1),
                "mean_ms": round(statistics.fmean(ms), 1) if ms else 0.0}


class Changes:
    """Toggles one ConfigMap per app between a drifted value and Git's."""

    def __init__(self, sims: dict[str, SimulatedCluster], apps: list[str], watcher: Watcher) -> None:
        self.sims, self.apps, self.watcher = sims, apps, watcher
        self.drifted: set[tuple[str, str]] = set()
        self.made = 0
        self._next = dict.fromkeys(sims, 0)

    def one(self, cluster: str) -> None:
        app = self.apps[self._next[cluster] % len(self.apps)]
        self._next[cluster] += 1
        key = ResourceKey("", "ConfigMap", app, f"{app}-config-0")
        drift = (app, cluster) not in self.drifted
        value = "app: edited\n" if drift else f"app: {app}\nshard: 0\nlevel: info\n"
        self.watcher.expect(app, cluster, SyncStatus.OUT_OF_SYNC if drift else SyncStatus.SYNCED)
        self.sims[cluster].update_as("kubectl-edit", key, {"data": {CONFIG: value}})
        (self.drifted.add if drift else self.drifted.discard)((app, cluster))
        self.made += 1


async def _quiet(period: float = 0.5, limit: float = 120.0) -> None:
    deadline = time.perf_counter() + limit
    last = -1
    while time.perf_counter() < deadline and COUNTERS["compared"] != last:
        last = COUNTERS["compared"]
        await asyncio.sleep(period)


def _say(what: str) -> None:
    print(f"[churn {time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def _cpu() -> float:
    return time.process_time()


async def _scenario(clusters_n: int, apps_n: int, rate: float, seconds: float, burst: int,
                    settings: EngineSettings) -> dict[str, Any]:
    clusters = [f"c{i:03d}" for i in range(clusters_n)]
    apps = [f"app{i:03d}" for i in range(apps_n)]
    out: dict[str, Any] = {"clusters": clusters_n, "apps": apps_n, "rows": clusters_n * apps_n,
                           "objects": clusters_n * apps_n * 10, "publish_interval": settings.publish_interval}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fleet = write_fleet(root, clusters, apps, app_objects)
        sims = seed_clusters(clusters, apps)
        engine = make_engine(fleet, read_only=True, clients=sims, settings=settings,
                             journal=Journal(root / "journal.jsonl"), cache=root / "cache")
        _say(f"seeded {clusters_n} clusters; cold start")
        start = time.perf_counter()
        await engine.start()
        await engine.wait_ready(timeout=600)
        await _quiet()
        out["cold_start_s"] = round(time.perf_counter() - start, 2)
        watcher = Watcher(engine)
        follower = asyncio.create_task(watcher.follow())
        changes = Changes(sims, apps, watcher)
        try:
            _say("steady")
            out["steady"] = await _steady(engine, changes, watcher, clusters, rate, seconds)
            _say("burst")
            out["burst"] = await _burst(changes, watcher, clusters, burst)
            _say("relist storm")
            out["relist"] = await _relist(engine, sims, changes)
        finally:
            follower.cancel()
            await engine.stop()
            for sim in sims.values():
                await sim.close()
    return out


def _reset(watcher: Watcher) -> None:
    watcher.latencies.clear()
    watcher.superseded = 0
    watcher.snapshots = 0


async def _steady(engine: FleetEngine, changes: Changes, watcher: Watcher, clusters: list[str], rate: float,
                  seconds: float) -> dict[str, Any]:
    _reset(watcher)
    before, made = COUNTERS["compared"], changes.made
    tick = 0.02  # every tick, the changes due by now (a saturated loop gets them in larger batches)
    total_rate = rate * len(clusters)
    loop = asyncio.get_running_loop()
    cpu0, wall0 = _cpu(), loop.time()
    sent = 0
    while loop.time() - wall0 < seconds:
        due = int((loop.time() - wall0) * total_rate)
        while sent < due:
            changes.one(clusters[sent % len(clusters)])
            sent += 1
        await asyncio.sleep(tick)
    drained = await watcher.drained(30)
    wall, cpu = loop.time() - wall0, _cpu() - cpu0
    await _quiet()
    events = changes.made - made
    return {"changes": events, "changes_per_s": round(events / seconds, 1),
            "target_per_cluster_per_s": rate, "comparisons_per_event": round((COUNTERS["compared"] - before) / events, 3),
            "cpu_share": round(cpu / wall, 3), "snapshots": watcher.snapshots, "all_visible": drained,
            **watcher.figures()}


async def _burst(changes: Changes, watcher: Watcher, clusters: list[str], burst: int) -> dict[str, Any]:
    _reset(watcher)
    before, made = COUNTERS["compared"], changes.made
    cpu0, start = _cpu(), time.perf_counter()
    for i in range(burst):
        changes.one(clusters[i % len(clusters)])
    drained = await watcher.drained(60)
    wall, cpu = time.perf_counter() - start, _cpu() - cpu0
    await _quiet()
    events = changes.made - made
    return {"changes": events, "comparisons_per_event": round((COUNTERS["compared"] - before) / events, 3),
            "seconds_until_all_visible": round(wall, 3), "cpu_share": round(cpu / wall, 3),
            "snapshots": watcher.snapshots, "all_visible": drained, **watcher.figures()}


async def _relist(engine: FleetEngine, sims: dict[str, SimulatedCluster], changes: Changes) -> dict[str, Any]:
    before = COUNTERS["compared"]
    watched = {c: {what for verb, what in sim.requests if verb == "watch"} for c, sim in sims.items()}
    for sim in sims.values():
        sim.requests.clear()
    cpu0, start = _cpu(), time.perf_counter()
    for sim in sims.values():
        sim.set_reachable(False)  # every watch ends
    for name, sim in sims.items():
        changes.one(name)  # one change each watcher missed, then the log compacted past it:
        sim.compact()
    for sim in sims.values():
        sim.set_reachable(True)  # the watchers reconnect from their resourceVersion: 410 Gone, relist

    def relisted() -> bool:  # every kind watched before was listed and is watched again
        for c, sim in sims.items():
            seen = list(sim.requests)
            listed = {what for verb, what in seen if verb == "list"}
            rewatched = {what for verb, what in seen if verb == "watch"}
            if not watched[c] <= listed or not watched[c] <= rewatched:
                return False
        return all(c.connection is ConnectionState.CONNECTED for c in engine.snapshot.clusters)

    deadline = time.perf_counter() + 300
    while not relisted() and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    relisted_s = time.perf_counter() - start
    # then idle again: under 5 % of a core over 0.25 s (the relisted pages ingested, nothing left to do)
    idle_at = None
    while time.perf_counter() < deadline:
        cpu_before = _cpu()
        await asyncio.sleep(0.25)
        if _cpu() - cpu_before < 0.0125:
            idle_at = time.perf_counter() - 0.25
            break
    wall = (idle_at or time.perf_counter()) - start
    await _quiet()
    objects = sum(len(sim.objects(g, k)) for sim in sims.values()
                   for g, k in (("apps", "Deployment"), ("", "Service"), ("", "ServiceAccount"), ("", "ConfigMap"),
                                ("", "Secret")))
    compared = COUNTERS["compared"] - before
    return {"seconds_until_every_kind_relisted_and_watched": round(relisted_s, 3),
            "kinds_rewatched": sum(map(len, watched.values())),
            "seconds_until_relisted_and_idle": round(wall, 3), "cpu_s": round(_cpu() - cpu0, 2),
            "managed_objects_relisted": objects, "comparisons": compared,
            "comparisons_per_relisted_object": round(compared / max(objects, 1), 4), "recovered": relisted()}


async def _cost(clusters_n: int, apps_n: int, rounds: int = 3, reps: int = 10) -> dict[str, Any]:
    """The engine's own CPU per change, without the loop: ``evaluate_target`` of every target (verdicts
    memoized, as after a change to one object: everything but its one comparison) and ``cluster_changed``
    for one ConfigMap key; microseconds of process CPU per call, the best of ``rounds``."""
    clusters = [f"c{i:03d}" for i in range(clusters_n)]
    apps = [f"app{i:03d}" for i in range(apps_n)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fleet = write_fleet(root, clusters, apps, app_objects)
        sims = seed_clusters(clusters, apps)
        engine = make_engine(fleet, read_only=True, clients=sims, settings=EngineSettings(),
                             journal=Journal(root / "journal.jsonl"), cache=root / "cache")
        await engine.start()
        await engine.wait_ready(timeout=600)
        await _quiet()
        targets = list(engine.targets.values())
        key = {ResourceKey("", "ConfigMap", apps[0], f"{apps[0]}-config-0")}
        evaluate, changed = [], []
        for _ in range(rounds):
            cpu0 = _cpu()
            for _ in range(reps):
                for target in targets:
                    engine.evaluate_target(target)
            evaluate.append((_cpu() - cpu0) / (reps * len(targets)) * 1e6)
            cpu0 = _cpu()
            for _ in range(reps * 20):
                engine.cluster_changed(clusters[-1], key)
            changed.append((_cpu() - cpu0) / (reps * 20) * 1e6)
        await engine.stop()
        for sim in sims.values():
            await sim.close()
    return {"clusters": clusters_n, "apps": apps_n, "evaluate_target_us": round(min(evaluate), 1),
            "cluster_changed_us": round(min(changed), 1)}


def run(clusters_n: int, apps_n: int, rate: float, seconds: float, burst: int,
        publish_interval: float | None = None) -> dict[str, Any]:
    load = [round(x, 2) for x in os.getloadavg()]
    import core.engine.fleet_engine  # noqa: F401  # imports once, not timed
    settings = EngineSettings() if publish_interval is None else EngineSettings(publish_interval=publish_interval)
    result = asyncio.run(_scenario(clusters_n, apps_n, rate, seconds, burst, settings))
    result.update(loadavg_before=load, loadavg_after=[round(x, 2) for x in os.getloadavg()],
                  machine=f"{platform.machine()} {os.cpu_count()} CPU, Python {platform.python_version()}",
                  started=time.strftime("%Y-%m-%d %H:%M", time.gmtime()))
    return result


def main(argv: list[str] | None = None, out: Callable[[str], object] = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.churn_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--apps", type=int, default=10)
    parser.add_argument("--rate", type=float, default=20.0, help="changes per second per cluster")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--publish-interval", type=float, default=None,
                        help="the engine's publish_interval in seconds (default: the engine's default)")
    parser.add_argument("--quick", action="store_true", help="3 clusters × 3 apps, 1 s, a burst of 50")
    parser.add_argument("--cost", action="store_true",
                        help="only the engine's CPU per change: evaluate_target and cluster_changed, in µs")
    args = parser.parse_args(argv)
    if args.quick:
        args.clusters, args.apps, args.seconds, args.burst = 3, 3, 1.0, 50
    if args.cost:
        load = [round(x, 2) for x in os.getloadavg()]
        cost = asyncio.run(_cost(args.clusters, args.apps))
        out(json.dumps({**cost, "loadavg_before": load, "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                        "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}, indent=2))
        return 0
    result = run(args.clusters, args.apps, args.rate, args.seconds, args.burst, args.publish_interval)
    out(json.dumps(result, indent=2))
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"churn-{args.clusters}x{args.apps}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
