"""Incremental evaluation on a simulated fleet: how much work one watch event costs (exact counters)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from bench.workloads import write_fleet
from core.engine import make_engine
from core.engine.evaluate import COUNTERS
from core.journal import Journal
from core.model import ResourceKey
from core.settings import EngineSettings
from core.simulated.simulated_cluster import SimulatedCluster, SimulationTiming

CLUSTERS = ("c1", "c2")


def _objects(app: str) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{app}-config"}, "data": {"k": "v"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": app},
         "spec": {"selector": {"app": app}, "ports": [{"port": 80}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}},
                  "template": {"metadata": {"labels": {"app": app}},
                               "spec": {"containers": [{"name": app, "image": "nginx:1.27"}]}}}},
    ]


async def _quiet(period: float = 0.5, limit: float = 60.0) -> None:
    """Wait until no comparison has run for ``period`` seconds (the engine has caught up)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    last = -1
    while loop.time() < deadline and COUNTERS["compared"] != last:
        last = COUNTERS["compared"]
        await asyncio.sleep(period)


async def _churn(apps: int, events: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clusters = {c: SimulatedCluster(c, timing=SimulationTiming.instant()) for c in CLUSTERS}
        fleet = write_fleet(root, list(CLUSTERS), [f"app{i:03d}" for i in range(apps)], _objects)
        engine = make_engine(fleet, read_only=True, clients=clusters,
                             settings=EngineSettings(publish_interval=0.01), journal=Journal(root / "j.jsonl"),
                             cache=root / "cache")
        await engine.start()
        await engine.wait_ready(timeout=60)
        for (app, cluster), desired in engine.desired.items():
            clusters[cluster].ensure_namespace(app)
            for obj in desired.objects.values():
                clusters[cluster].seed_apply(dict(obj))
        await _quiet()
        before = dict(COUNTERS)
        generation = engine.snapshot.generation
        for i in range(events):
            app = f"app{i % apps:03d}"
            key = ResourceKey("", "ConfigMap", app, f"{app}-config")
            clusters["c1"].update_as("kubectl-edit", key, {"data": {"k": f"v{i}"}})
            await asyncio.sleep(0.02)
        await _quiet()
        compared = COUNTERS["compared"] - before["compared"]
        reused = COUNTERS["reused"] - before["reused"]
        snapshots = engine.snapshot.generation - generation
        await engine.stop()
        for c in clusters.values():
            await c.close()
    return {"targets": apps * len(CLUSTERS), "events": events, "compares_per_event": compared / events,
            "reused_verdicts": reused, "snapshots": snapshots}


def churn(apps: int = 100, events: int = 100) -> dict[str, float]:
    """P3/P4: single-object changes on a fleet of ``apps`` × 2 clusters; comparisons per event."""
    return asyncio.run(_churn(apps, events))
