"""What fleetdeck's memory budget (R1, docs/reliability.md) changes: the same fleet read with no budget and with
one far below what the process uses, each in its own process.

Workload: 2 simulated clusters, 40 apps of 50 ConfigMaps (4 KiB each), all synced (seeded) so every object is
live, and ``REVISIONS`` commits that each change every app; the engine starts, settles, then every app's row
is evaluated three times, every app's events are asked for and every app's history is listed (which renders
each app at every revision: the render cache's main use). Printed per run: the resident size after settling and at the end, the peak (``ru_maxrss``), the
decoded objects and render bytes still kept, and what one shedding gave back.

    uv run python -m bench.memory_budget
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.workloads import git, write_fleet
from core.engine import make_engine
from core.journal import Journal
from core.memory import statm
from core.settings import EngineSettings
from core.simulated.simulated_cluster import SimulatedCluster, SimulationTiming

CLUSTERS = ["east", "west"]
APPS = [f"app{i:02d}" for i in range(40)]
PER_APP = 50
REVISIONS = 6


def objects(app: str, revision: int = 0) -> list[dict[str, Any]]:
    return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i:02d}", "namespace": app},
             "data": {"blob": f"{app}-{i}-" + "x" * 4096, "revision": str(revision)}} for i in range(PER_APP)]


def commit_revisions(repo: Path) -> None:
    """``REVISIONS`` more commits, each changing every app; the first fleet is the head again at the end."""
    import yaml

    for revision in (*range(1, REVISIONS), 0):
        for app in APPS:
            (repo / app / "all.yaml").write_text(yaml.safe_dump_all(objects(app, revision)))
        git(repo, "commit", "-q", "-am", f"revision {revision}")


async def run(limit: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fleet = write_fleet(root, CLUSTERS, APPS, objects)
        commit_revisions(root / "repo")
        clusters = {c: SimulatedCluster(c, timing=SimulationTiming.instant()) for c in CLUSTERS}
        for cluster in clusters.values():
            for app in APPS:
                cluster.ensure_namespace(app)
                for obj in objects(app):
                    cluster.seed_apply(obj)
        engine = make_engine(fleet, read_only=True, clients=clusters, journal=Journal(root / "journal.jsonl"),
                             cache=root / "cache",
                             settings=EngineSettings(publish_interval=0.05, memory_limit=limit))
        started = time.perf_counter()
        await engine.start()
        await engine.wait_ready(timeout=120)
        settled = statm()[1]
        for _ in range(3):
            for target in engine.targets.values():
                engine.evaluate_target(target)
        for app in APPS:
            for name in CLUSTERS:
                await engine.app_events(app, name)
        history = [len(await engine.revisions(app, CLUSTERS[0])) for app in APPS]
        await asyncio.sleep(0.5)
        engine.memory.check()
        result = {
            "limit": limit, "seconds": round(time.perf_counter() - started, 2),
            "rss_settled_mib": round(settled / 2**20, 1), "rss_end_mib": round(statm()[1] / 2**20, 1),
            "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "decoded_kept": sum(c.cache.decoded_kept for c in engine.clusters.values()),
            "render_bytes": engine.renderer.cached_bytes, "sheds": engine.memory.sheds,
            "freed_mib": round(engine.memory.freed / 2**20, 1),
            "shed_ms": round(engine.memory.shed_seconds * 1000, 1),
            "warning": next((c.message for c in engine.snapshot.conditions if c.type == "MemoryLimit"), ""),
            "history": history,
            "rows": sorted((a.app, a.cluster, a.sync.value) for a in engine.snapshot.apps),
        }
        await engine.stop()
        for cluster in clusters.values():
            await cluster.close()
        return result


def main() -> None:
    if len(sys.argv) > 1:
        print(json.dumps(asyncio.run(run(int(sys.argv[1])))))
        return
    results = []
    for limit in (0, 16 * 1024 * 1024):
        out = subprocess.run([sys.executable, "-m", "bench.memory_budget", str(limit)], capture_output=True,
                             text=True, check=True).stdout
        results.append(json.loads(out.splitlines()[-1]))
    for r in results:
        print({k: v for k, v in r.items() if k not in ("rows", "history")})
    print("same rows:", results[0]["rows"] == results[1]["rows"], f"({len(results[0]['rows'])} rows);",
          "same history:", results[0]["history"] == results[1]["history"], results[0]["history"][:3])


if __name__ == "__main__":
    main()
