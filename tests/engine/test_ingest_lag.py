"""Fault R2 (CPU starvation): when the engine cannot run for a while, the snapshot it publishes next says how
far behind the clusters it is (``FleetSnapshot.lag``), and the console's header shows it; an engine that
keeps up says nothing."""

from __future__ import annotations

import asyncio
import time

from core.model import FleetSnapshot, ResourceKey
from tests.engine.conftest import Fleet, StartEngine

CONFIG_KEY = ResourceKey("", "ConfigMap", "web", "web-config")
STARVED = 1.5


async def test_a_starved_engine_publishes_how_far_behind_it_is(fleet: Fleet, started: StartEngine) -> None:
    engine = await started()
    states = [s async for s in engine.execute_plan(await engine.plan_sync("web", "dev"))]
    assert states[-1].phase.successful, states[-1].message
    await asyncio.sleep(0.5)
    for attempt in range(20):
        generation = engine.snapshot.generation
        fleet.clusters["dev"].update_as("kubectl-edit", CONFIG_KEY, {"data": {"mode": f"starved-{attempt}"}})
        while engine._changed_since is None and engine.snapshot.generation == generation:
            await asyncio.sleep(0)  # until the watch event has reached the engine and woken its publisher
            # (or was published already: after a quiet interval the publisher runs at once; then try again,
            # within the interval that publish began)
        if engine.snapshot.generation == generation:
            break  # not published yet: starve the engine now
    else:
        raise AssertionError("every change was published before the test could starve the engine")
    published: list[FleetSnapshot] = []
    publish = engine._latest.publish

    async def record(snap: FleetSnapshot) -> None:
        published.append(snap)
        await publish(snap)

    engine._latest.publish = record  # type: ignore[method-assign,assignment]
    time.sleep(STARVED)  # nothing on the engine's loop runs: another process has the CPU
    deadline = time.monotonic() + 10
    while not published and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert published, "a snapshot was published after the starvation"
    assert published[0].lag >= STARVED, published[0].lag  # at least as long as the loop could not run
