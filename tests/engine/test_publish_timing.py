"""The publisher's timing: a change after a quiet interval is published at once (leading edge); changes
within an interval wait for its end and are coalesced into one snapshot (at most one per interval)."""

from __future__ import annotations

import asyncio
import time

from core.demo.seeding import prepare_for_apply
from core.engine import make_engine
from core.journal import Journal
from core.model import FleetSnapshot, ResourceKey, SyncStatus
from core.settings import EngineSettings
from tests.engine.conftest import CONFIG, WEB, Fleet

INTERVAL = 1.0
CONFIG_KEY = ResourceKey("", "ConfigMap", "web", "web-config")


def dev_sync(snapshot: FleetSnapshot) -> SyncStatus | None:
    row = snapshot.app("web", "dev")
    return row.sync if row is not None else None


async def test_a_change_after_a_quiet_interval_is_published_at_once_and_a_burst_once(fleet: Fleet) -> None:
    dev = fleet.clusters["dev"]
    dev.ensure_namespace("web")
    for obj in (WEB, CONFIG):
        dev.seed_apply(prepare_for_apply("web", dict(obj, metadata=dict(obj["metadata"], namespace="web"))))
    engine = make_engine(fleet.fleet_file, read_only=True, clients=fleet.clusters,
                         settings=EngineSettings(publish_interval=INTERVAL), journal=Journal(fleet.journal),
                         cache=fleet.tmp / "cache")
    seen: list[tuple[float, FleetSnapshot]] = []

    async def follow() -> None:
        async for snapshot in engine.snapshots():
            seen.append((time.monotonic(), snapshot))

    await engine.start()
    follower = asyncio.create_task(follow())
    try:
        await engine.wait_ready(timeout=20)

        async def until(status: SyncStatus, timeout: float = 10.0) -> float:
            async with asyncio.timeout(timeout):
                while not seen or dev_sync(seen[-1][1]) is not status:
                    await asyncio.sleep(0.005)
            return seen[-1][0]

        await until(SyncStatus.SYNCED, timeout=20)
        async with asyncio.timeout(20):  # a quiet interval: nothing published for longer than it
            while time.monotonic() - seen[-1][0] < INTERVAL * 1.2:
                await asyncio.sleep(0.05)
        quiet = len(seen)
        changed = time.monotonic()
        dev.update_as("kubectl-edit", CONFIG_KEY, {"data": {"mode": "green"}})
        shown = await until(SyncStatus.OUT_OF_SYNC)
        assert shown - changed < INTERVAL / 2, "published at once, not at the end of an interval"
        for mode in ("red", "yellow", "blue"):  # three changes at once, the last back to Git's value
            dev.update_as("kubectl-edit", CONFIG_KEY, {"data": {"mode": mode}})
        synced = await until(SyncStatus.SYNCED)
        assert synced - shown >= INTERVAL * 0.8, "at most one snapshot per interval"
        await asyncio.sleep(0.2)
        times = [at for at, _ in seen[quiet:]]
        assert len(times) == 2, f"the burst coalesced into one snapshot: {len(times)} after the quiet interval"
        assert [s.generation for _, s in seen[quiet:]] == [seen[quiet - 1][1].generation + 1,
                                                           seen[quiet - 1][1].generation + 2]
        assert all(s.lag < INTERVAL * 1.5 for _, s in seen[quiet:])
    finally:
        follower.cancel()
        await engine.stop()
        for cluster in fleet.clusters.values():
            await cluster.close()
