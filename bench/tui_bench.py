"""Console benchmarks: first paint of a fleet-sized table and one changed row, as ratios (P7, P8)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from bench.harness import RatioResult
from core.model import (
    AppName,
    AppStatus,
    ClusterName,
    ClusterStatus,
    ConnectionState,
    FleetSnapshot,
    Health,
    HealthStatus,
    Revision,
    SyncStatus,
)
from tui.app import make_app

NOW = 1_790_000_000.0


def snapshot(rows: int, generation: int = 1, changed: int | None = None) -> FleetSnapshot:
    """A fleet of ``rows`` (app, cluster) rows over 100 clusters; row ``changed`` is OutOfSync."""
    revision = Revision("a" * 40, "main", NOW - 3600, "ada", "bump")
    apps = tuple(
        AppStatus(app=AppName(f"app-{i // 100:05d}"), cluster=ClusterName(f"cluster-{i % 100:03d}"), namespace="ns",
                  path="apps/x", sync=SyncStatus.OUT_OF_SYNC if i == changed else SyncStatus.SYNCED,
                  health=Health(HealthStatus.HEALTHY), revision=revision)
        for i in range(rows)
    )
    clusters = tuple(ClusterStatus(ClusterName(f"cluster-{c:03d}"), ConnectionState.CONNECTED) for c in range(100))
    return FleetSnapshot(generation=generation, taken_at=NOW, apps=apps, clusters=clusters)


class StubEngine:
    """Just enough engine for the console: a snapshot stream fed by the benchmark."""

    read_only = True

    def __init__(self, first: FleetSnapshot) -> None:
        self.queue: asyncio.Queue[FleetSnapshot] = asyncio.Queue()
        self.queue.put_nowait(first)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def snapshots(self) -> AsyncIterator[FleetSnapshot]:
        while True:
            yield await self.queue.get()

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


async def _first_paint(rows: int) -> float:
    engine = StubEngine(snapshot(rows))
    app = make_app(engine, read_only=True, clock=lambda: NOW, cursor_blink=False)  # type: ignore[arg-type]
    start = time.perf_counter()
    async with app.run_test(size=(160, 50)) as pilot:
        while app.snapshot is None:
            await pilot.pause()
        await pilot.pause()
        took = time.perf_counter() - start
    return took


async def _update(rows: int, samples: int) -> tuple[float, float]:
    first = snapshot(rows)
    engine = StubEngine(first)
    app = make_app(engine, read_only=True, clock=lambda: NOW, cursor_blink=False)  # type: ignore[arg-type]
    updates, noops = [], []
    async with app.run_test(size=(160, 50)) as pilot:
        while app.snapshot is None:
            await pilot.pause()
        await pilot.pause()
        for i in range(samples):
            t = time.perf_counter()
            await pilot.pause()
            noops.append(time.perf_counter() - t)
            sync = SyncStatus.OUT_OF_SYNC if i % 2 == 0 else SyncStatus.SYNCED
            changed = replace(first, generation=i + 2,
                              apps=(*first.apps[:5], replace(first.apps[5], sync=sync), *first.apps[6:]))
            t = time.perf_counter()
            engine.queue.put_nowait(changed)
            while app.snapshot is None or app.snapshot.generation != i + 2:
                await pilot.pause()
            await pilot.pause()
            updates.append(time.perf_counter() - t)
    return sorted(updates)[len(updates) // 2], sorted(noops)[len(noops) // 2]


def run(*, quick: bool = False) -> list[RatioResult]:
    """R7: first paint at N rows / at 0 rows; R8: one changed row at N rows / a no-op pause."""
    rows = 10_000 if quick else 100_000
    empty = [asyncio.run(_first_paint(0)) for _ in range(3)]
    full = [asyncio.run(_first_paint(rows)) for _ in range(3)]
    base, cand = sorted(empty)[1], sorted(full)[1]
    update, noop = asyncio.run(_update(rows, 7))
    return [
        RatioResult(f"console first paint, {rows} rows (vs 0 rows)", cand / base, 0.0, 3.0, cand, base, 3),
        RatioResult(f"console one changed row at {rows} rows (vs no-op)", update / noop, 0.0, 1.5 * 2, update,
                    noop, 7, notes={"note": "an update takes two pauses (message, then refresh): target 2 × 1.5"}),
    ]
