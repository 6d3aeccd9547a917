"""Fault R1 (fleetdeck's own memory cap), with the simulated clusters and real Git: an engine given a budget
below what it already uses warns (a ``MemoryLimit`` fleet condition), drops and keeps no cached renders,
decoded live objects or event feeds however much it reads, and still shows the same rows and makes the
same plans as an engine without a budget; a sync under pressure re-reads what it needs and lands; when
usage falls back under the budget the warning clears and the caches are used again."""

from __future__ import annotations

import asyncio
from typing import Any

from core.engine import FleetEngine, make_engine
from core.journal import Journal
from core.live.cache import DECODED_KEPT
from core.memory import Limit, MemoryBudget
from core.model import AppStatus, FleetSnapshot, ResourceKey, SyncPlan
from core.settings import EngineSettings, WatchSettings
from tests.engine.conftest import CONFIG, WEB, Fleet, write_app

MANY = 150
"""ConfigMaps of 2 KiB added to the app, so that the caches have something to hold."""
TINY = 1024 * 1024
"""A budget far below what any Python process uses: the engine is under pressure from its first check."""


def bulky(index: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"bulk-{index:03d}"},
            "data": {"blob": f"x{index:03d}" * 500}}


def engine(fleet: Fleet, memory_limit: int) -> FleetEngine:
    settings = EngineSettings(watch=WatchSettings(backoff_initial=0.05, backoff_max=0.2, unreachable_after=0.5),
                              publish_interval=0.01, memory_limit=memory_limit, memory_check_interval=0.05)
    return make_engine(fleet.fleet_file, read_only=False, clients=fleet.clusters, settings=settings,
                       journal=Journal(fleet.journal), cache=fleet.tmp / "cache")


def rows(snap: FleetSnapshot) -> list[tuple[Any, ...]]:
    """What an operator reads in the rows (and the details of each resource)."""
    def row(a: AppStatus) -> tuple[Any, ...]:
        return (a.app, a.cluster, a.sync, a.health.status, a.revision.sha if a.revision else None,
                tuple((r.key, r.state, r.health.status if r.health else None) for r in a.resources))

    return [row(a) for a in snap.apps]


def steps(plan: SyncPlan) -> list[tuple[Any, ...]]:
    return [(s.key, s.action) for s in plan.steps]


def memory_warning(snap: FleetSnapshot) -> str:
    return next((c.message for c in snap.conditions if c.type == "MemoryLimit"), "")


async def settled(engine: FleetEngine) -> FleetSnapshot:
    await asyncio.sleep(0.3)
    await engine._settle_dry_runs(10)
    return engine.snapshot


def assert_nothing_kept(engine: FleetEngine) -> None:
    assert engine.renderer.cached_bytes == 0
    assert all(c.cache.decoded_kept == 0 for c in engine.clusters.values()), \
        [c.cache.decoded_kept for c in engine.clusters.values()]


async def test_a_low_budget_warns_sheds_and_keeps_rows_and_plans_correct(fleet: Fleet) -> None:
    write_app(fleet.repo, [WEB, CONFIG, *(bulky(i) for i in range(MANY))], "web: many config maps")
    free = engine(fleet, 0)
    tight = engine(fleet, TINY)
    try:
        await free.start()
        await tight.start()
        await free.wait_ready(timeout=20)
        await tight.wait_ready(timeout=20)
        assert memory_warning(free.snapshot) == "" and not free.memory.active
        warning = memory_warning(tight.snapshot)
        assert "resident memory" in warning and "over fleetdeck's 1 MiB budget (--memory-limit" in warning, warning
        assert "read again when needed" in warning
        assert rows(tight.snapshot) == rows(free.snapshot)
        assert tight.memory.sheds >= 1
        assert_nothing_kept(tight)
        assert free.renderer.cached_bytes > 0  # the control engine keeps what the tight one drops

        # plans under pressure are made from complete data: the same steps as without a budget
        plan_free = await free.plan_sync("web", "dev")
        plan_tight = await tight.plan_sync("web", "dev")
        assert len(plan_tight.steps) == MANY + 3 and not plan_tight.blocked  # + namespace, Deployment, ConfigMap
        assert steps(plan_tight) == steps(plan_free)

        # a sync under pressure re-reads what it needs and lands every object
        states = [s async for s in tight.execute_plan(plan_tight)]
        assert states[-1].phase.successful, states[-1].message
        dev = fleet.clusters["dev"]
        assert all(dev.get_object(ResourceKey("", "ConfigMap", "web", f"bulk-{i:03d}")) for i in range(MANY))

        # live churn and event reads while pressed: nothing piles up, rows match the control engine
        for round_ in range(20):
            dev.update_as("kubectl-edit", ResourceKey("", "ConfigMap", "web", f"bulk-{round_:03d}"),
                          {"data": {"blob": f"edited-{round_}"}})
            await tight.app_events("web", "dev")
            await asyncio.sleep(0.02)
        snap_tight, snap_free = await settled(tight), await settled(free)
        for _ in range(50):  # the simulated watches deliver at their own pace: wait until both have seen it all
            if rows(snap_tight) == rows(snap_free):
                break
            snap_tight, snap_free = await settled(tight), await settled(free)
        assert rows(snap_tight) == rows(snap_free)
        assert sum(1 for r in snap_tight.apps[0].resources if r.state.value == "OutOfSync") == 20
        assert_nothing_kept(tight)
        assert memory_warning(snap_tight)
        print(f"\nR1: {tight.memory.sheds} sheddings, the last gave back {tight.memory.freed / 2**20:.1f} MiB; "
              f"peak RSS {tight.memory.budget.peak / 2**20:.0f} MiB (both engines in one process)")

        # usage back under the budget: the warning clears and the caches are used again
        tight.memory.budget.limits = (Limit(1 << 50, "--memory-limit"),)
        tight.memory.check()
        snap = await settled(tight)
        assert memory_warning(snap) == ""
        tight.evaluate_target(tight.target("web", "dev"))
        assert tight.clusters["dev"].cache.decoded_kept > 0
        assert tight.clusters["dev"].cache._decoded_limit == DECODED_KEPT
    finally:
        await free.stop()
        await tight.stop()
        for cluster in fleet.clusters.values():
            await cluster.close()


def test_budget_hysteresis_and_the_closest_limit() -> None:
    used = {"resident": 500}
    budget = MemoryBudget((Limit(1000, "--memory-limit"), Limit(10_000, "75% of RLIMIT_AS")),
                          measure=lambda: used["resident"])
    budget.check()
    assert not budget.pressed and budget.message() == ""
    used.update(resident=820)
    budget.check()
    assert budget.pressed and "resident memory 0 MiB is near" in budget.message()
    assert "(--memory-limit)" in budget.message()  # the limit closest to being reached is the one named
    used.update(resident=750)  # under the pressure mark but not under relief: still pressed
    budget.check()
    assert budget.pressed
    used.update(resident=600)
    budget.check()
    assert not budget.pressed
    used.update(resident=1200)
    budget.check()
    assert budget.pressed and "is over" in budget.message() and budget.peak == 1200
