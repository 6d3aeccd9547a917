"""sim-L: a cold start of the engine on a large simulated fleet (default 100 clusters × 100 apps × 10 objects).

``uv run python -m bench.scale_bench [--scale F] [--apps N]``: ``--scale`` is the fraction of the 100 clusters
(``--scale 0.05``: 5 clusters, 5,000 objects). Measures, against ``orjson.loads`` of every live object's JSON
bytes in the same run (wall clock, baseline before and after the candidate):

* the cold start: ``make_engine`` with an empty cache directory, ``start``, ``wait_ready``, until a snapshot
  has every row evaluated (no row loading, sync Synced or OutOfSync; ``rows_synced`` says how many are
  Synced, which is all of them when the simulated backend and the engine agree);
* the engine's memory per live object: resident set growth over the cold start (the simulated clusters are
  seeded before it starts, so their own copies are not counted), divided by the live objects;
* the garbage collector's pauses during the cold start (``gc.callbacks``): the largest and the total per
  generation.

Seeding the simulated clusters is set-up, timed apart and not part of the candidate.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import platform
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from bench.workloads import write_fleet
from core.demo.seeding import prepare_for_apply
from core.engine import make_engine
from core.journal import Journal
from core.model import FleetSnapshot, SyncStatus
from core.settings import EngineSettings
from core.simulated.simulated_cluster import SimulatedCluster, SimulationTiming

FULL_CLUSTERS = 100
OBJECTS_PER_APP = 10
RATIO_TARGET = 1.5
GC_PAUSE_TARGET_MS = 10.0


TIMING = replace(SimulationTiming.instant(), bookmark_interval=5.0)
"""Instant, but a watch bookmark every 5 s when quiet (``instant()`` sends one every 20 ms on every watch: at
100 clusters that alone keeps a core busy, a cost of the simulation, not of the engine; a real API server
sends one about every minute)."""


def app_objects(app: str) -> list[dict[str, Any]]:
    """An app's 10 manifests: a Deployment, a Service, a ServiceAccount, five ConfigMaps, two Secrets."""
    labels = {"app": app, "tier": "web"}
    objects: list[dict[str, Any]] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "labels": labels},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": app}},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"serviceAccountName": app,
                                        "containers": [{"name": app, "image": "nginx:1.27",
                                                        "ports": [{"containerPort": 8080}],
                                                        "env": [{"name": "MODE", "value": "prod"}],
                                                        "resources": {"requests": {"cpu": "100m",
                                                                                   "memory": "128Mi"}}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "labels": labels},
         "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": app, "labels": labels}},
    ]
    objects += [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{app}-config-{i}", "labels": labels},
                 "data": {"settings.yaml": f"app: {app}\nshard: {i}\nlevel: info\n", "feature": "on"}}
                for i in range(5)]
    objects += [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{app}-secret-{i}", "labels": labels},
                 "type": "Opaque", "data": {"token": "c2VjcmV0LXZhbHVl"}} for i in range(2)]
    assert len(objects) == OBJECTS_PER_APP
    return objects


def seed_clusters(clusters: list[str], apps: list[str]) -> dict[str, SimulatedCluster]:
    """Simulated clusters holding every app's objects as fleetdeck applies them (no controllers: exactly
    ``OBJECTS_PER_APP`` managed objects per app, nothing created behind them)."""
    sims = {c: SimulatedCluster(c, timing=TIMING, controllers=False) for c in clusters}
    for sim in sims.values():
        for app in apps:
            sim.ensure_namespace(app)
            for obj in app_objects(app):
                body = dict(obj, metadata=dict(obj["metadata"], namespace=app))
                sim.seed_apply(prepare_for_apply(app, body))
    return sims


def _live_bytes(sims: dict[str, SimulatedCluster], apps: list[str]) -> list[bytes]:
    """Every live managed object as the JSON bytes a list or watch would carry."""
    out: list[bytes] = []
    for sim in sims.values():
        for group, kind in (("apps", "Deployment"), ("", "Service"), ("", "ServiceAccount"), ("", "ConfigMap"),
                            ("", "Secret")):
            for app in apps:
                out += [orjson.dumps(obj) for obj in sim.objects(group, kind, app)]
    return out


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class GCPauses:
    """Collector pauses via ``gc.callbacks`` while installed: wall clock, and the thread's CPU time (on a
    loaded machine the wall clock of a pause also counts the time the OS ran other processes meanwhile)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float, float]] = []
        self._start = (0.0, 0.0)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = (time.perf_counter(), time.thread_time())
        else:
            self.pauses.append((int(info["generation"]), time.perf_counter() - self._start[0],
                                time.thread_time() - self._start[1]))

    def summary(self) -> dict[str, object]:
        by_gen = {g: [d for gen, d, _ in self.pauses if gen == g] for g in (0, 1, 2)}
        return {
            "max_pause_ms": round(max((d for _, d, _ in self.pauses), default=0.0) * 1e3, 2),
            "max_pause_cpu_ms": round(max((c for _, _, c in self.pauses), default=0.0) * 1e3, 2),
            "collections": {g: len(v) for g, v in by_gen.items()},
            "max_ms_by_generation": {g: round(max(v, default=0.0) * 1e3, 2) for g, v in by_gen.items()},
            "total_ms": round(sum(d for _, d, _ in self.pauses) * 1e3, 1),
            "total_cpu_ms": round(sum(c for _, _, c in self.pauses) * 1e3, 1),
        }


def _fully_evaluated(snapshot: FleetSnapshot, rows: int) -> bool:
    return len(snapshot.apps) == rows and all(
        not row.loading and row.revision is not None and row.resources and row.sync is not SyncStatus.UNKNOWN
        for row in snapshot.apps)


async def _cold_start(fleet: Path, root: Path, sims: dict[str, SimulatedCluster], rows: int,
                      timeout: float) -> tuple[float, int, dict[str, float]]:
    """Seconds to a fully evaluated view, the rows evaluated, and when ``start`` and ``wait_ready`` returned.

    The snapshot itself is not returned: ``asyncio.run`` formats its main task (result included) when it
    restores the SIGINT handler, and the repr of 10,000 rows takes seconds.
    """
    phases: dict[str, float] = {}
    start = time.perf_counter()
    engine = make_engine(fleet, read_only=True, clients=sims, settings=EngineSettings(publish_interval=0.05),
                         journal=Journal(root / "journal.jsonl"), cache=root / "cache")
    await engine.start()
    phases["started_s"] = time.perf_counter() - start
    snapshot = await engine.wait_ready(timeout=timeout)
    phases["ready_s"] = time.perf_counter() - start
    deadline = time.perf_counter() + timeout
    while not _fully_evaluated(snapshot, rows) and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
        snapshot = engine.snapshot
    elapsed = time.perf_counter() - start
    evaluated = sum(1 for r in snapshot.apps if not r.loading and r.resources and r.sync is not SyncStatus.UNKNOWN)
    phases["synced_rows"] = sum(1 for r in snapshot.apps if r.sync is SyncStatus.SYNCED)
    await engine.stop()
    return elapsed, evaluated, phases


def run(scale: float, apps_count: int, timeout: float, profile: Path | None = None) -> dict[str, object]:
    """Seed, measure the baseline, the cold start, the baseline again; return the figures."""
    clusters = [f"c{i:03d}" for i in range(max(1, round(FULL_CLUSTERS * scale)))]
    apps = [f"app{i:03d}" for i in range(apps_count)]
    rows = len(clusters) * len(apps)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fleet = write_fleet(root, clusters, apps, app_objects)
        t0 = time.perf_counter()
        sims = seed_clusters(clusters, apps)
        seed_s = time.perf_counter() - t0
        lines = _live_bytes(sims, apps)
        objects = len(lines)

        def baseline() -> float:
            gc.collect()
            start = time.perf_counter()
            for line in lines:
                orjson.loads(line)
            return time.perf_counter() - start

        import core.engine.fleet_engine  # noqa: F401  # the engine's imports (~0.4 s once) are not the fleet's cost

        base_before = baseline()
        gc.collect()
        rss_before = _rss()
        pauses = GCPauses()
        gc.callbacks.append(pauses)
        try:
            if profile is None:
                elapsed, evaluated, phases = asyncio.run(_cold_start(fleet, root, sims, rows, timeout))
            else:  # cProfile over the cold start (it slows it: the timings of a profiled run are not figures)
                profiler = cProfile.Profile()
                profiler.enable()
                elapsed, evaluated, phases = asyncio.run(_cold_start(fleet, root, sims, rows, timeout))
                profiler.disable()
                profiler.dump_stats(profile)
                with profile.with_suffix(".txt").open("w") as report:
                    stats = pstats.Stats(profiler, stream=report)
                    stats.sort_stats("tottime").print_stats(40)
                    stats.sort_stats("cumulative").print_stats(60)
        finally:
            gc.callbacks.remove(pauses)
        rss_peak_delta = _rss() - rss_before  # the engine is stopped, but CPython/glibc keep most of the arena
        base_after = baseline()
    base = (base_before + base_after) / 2
    return {
        "clusters": len(clusters), "apps": len(apps), "rows": rows, "objects": objects,
        "json_bytes_per_object": round(sum(map(len, lines)) / max(objects, 1)),
        "seed_s": round(seed_s, 2),
        "cold_start_s": round(elapsed, 3), "started_s": round(phases["started_s"], 3),
        "ready_s": round(phases["ready_s"], 3), "rows_synced": int(phases["synced_rows"]),
        "rows_evaluated": evaluated, "complete": evaluated == rows,
        "baseline_orjson_s": round(base, 4),
        "ratio": round(elapsed / base, 1), "ratio_target": RATIO_TARGET,
        "per_object_us": round(elapsed / max(objects, 1) * 1e6, 1),
        "rss_delta_bytes_per_object": round(rss_peak_delta / max(objects, 1)),
        "gc": pauses.summary(), "gc_pause_target_ms": GC_PAUSE_TARGET_MS,
        "load_before": os.getloadavg()[0],
        "machine": f"{platform.machine()} {os.cpu_count()} CPU, Python {platform.python_version()}",
    }


def main(argv: list[str] | None = None, out: Callable[[str], object] = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 100 clusters (default 1.0)")
    parser.add_argument("--apps", type=int, default=100, help="apps per cluster (default 100)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the fleet view")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write a cProfile of the cold start to FILE (and its top functions to FILE.txt)")
    parser.add_argument("--gc-thresholds", default="",
                        help="A,B,C: the engine's collector thresholds instead of core.engine.gcpolicy's (an experiment)")
    args = parser.parse_args(argv)
    if args.gc_thresholds:
        from core.engine import gcpolicy
        gcpolicy.THRESHOLDS = tuple(int(x) for x in args.gc_thresholds.split(","))  # type: ignore[assignment]
    load = os.getloadavg()
    result = run(args.scale, args.apps, args.timeout, args.profile)
    result["loadavg_1_5_15"] = [round(x, 2) for x in load]
    result["gc_thresholds"] = list(gc.get_threshold())
    out(json.dumps(result, indent=2))
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"scale-{result['clusters']}x{result['apps']}.json").write_text(json.dumps(result, indent=2))
    return 0 if result["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
