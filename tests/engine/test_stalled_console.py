"""Row K16: the console's loop stalls (a terminal that stops reading blocks the UI thread). The engine runs
on its own thread (``ThreadedEngine``), so it keeps ingesting live changes through the stall; when the
console's loop runs again it gets the newest snapshot at once, coalesced (not a backlog of every
intermediate one)."""

from __future__ import annotations

import asyncio
import time

from core.engine.threaded import ThreadedEngine
from core.model import FleetSnapshot, ResourceKey
from tests.engine.conftest import Fleet

CONFIG_KEY = ResourceKey("", "ConfigMap", "web", "web-config")
STALL = 3.0
EDITS = 20


async def test_engine_keeps_ingesting_while_the_console_loop_is_stalled(fleet: Fleet) -> None:
    threaded = ThreadedEngine(fleet.engine)
    await threaded.start()
    received: list[tuple[float, FleetSnapshot]] = []

    async def consume() -> None:
        async for snap in threaded.snapshots():
            received.append((time.monotonic(), snap))

    consumer = asyncio.create_task(consume())
    try:
        states = [s async for s in threaded.execute_plan(await threaded.plan_sync("web", "dev"))]
        assert states[-1].phase.successful, states[-1].message
        engine = threaded.engine
        cluster = fleet.clusters["dev"]
        runtime = engine.clusters["dev"]

        async def edits() -> None:  # on the engine loop, like a colleague's kubectl edits
            for i in range(EDITS):
                cluster.update_as("kubectl-edit", CONFIG_KEY, {"data": {"mode": f"v{i}"}})
                await asyncio.sleep(STALL / 2 / EDITS)

        await asyncio.sleep(0.5)
        generation_before = engine.snapshot.generation
        edit_task = asyncio.run_coroutine_threadsafe(edits(), threaded._t().loop)
        time.sleep(STALL)  # the console's loop is blocked: nothing here runs, the engine thread does
        stall_ended = time.monotonic()
        edit_task.result(timeout=5)
        live = runtime.cache.get(CONFIG_KEY)
        assert live is not None and live["data"]["mode"] == f"v{EDITS - 1}", "the engine ingested every edit"
        generation_after = engine.snapshot.generation
        assert generation_after > generation_before, "the engine published snapshots during the stall"

        await asyncio.sleep(0.5)
        after = [(t, s) for t, s in received if t >= stall_ended]
        assert after, "the console got a snapshot after the stall"
        first_delay = after[0][0] - stall_ended
        assert after[0][1].generation >= generation_after, "the first one is already the newest"
        assert len(after) <= 2, [s.generation for _, s in after]  # coalesced, not one per edit
        print(f"\nK16: {STALL:.0f}s stall, {EDITS} live edits ingested, generations "
              f"{generation_before}->{generation_after} published meanwhile; the console got "
              f"{len(after)} snapshot(s) after it, the first {first_delay * 1000:.0f} ms after the stall")
    finally:
        consumer.cancel()
        await threaded.stop()
