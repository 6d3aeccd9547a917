"""``CountedSlots``: the one counted semaphore behind the connection budget (K17) and the fleet list cap (K7)."""

from __future__ import annotations

import asyncio

import pytest

from core.aio import CountedSlots
from core.live.connection_budget import ConnectionBudget
from core.live.list_gate import FleetListLimit


async def test_holders_never_exceed_the_slots_and_waiters_are_served_in_order() -> None:
    slots = CountedSlots(2)
    order: list[int] = []
    gate = asyncio.Event()

    async def hold(i: int) -> None:
        async with slots:
            order.append(i)
            await gate.wait()

    tasks = [asyncio.create_task(hold(i)) for i in range(5)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert (slots.in_flight, slots.waiting, slots.queued, slots.peak) == (2, 3, 3, 2)
    gate.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert (slots.in_flight, slots.waiting, slots.peak) == (0, 0, 2)


async def test_a_cancelled_waiter_leaves_the_counts_true() -> None:
    slots = CountedSlots(1)
    await slots.acquire()
    waiter = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    assert slots.waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (slots.waiting, slots.in_flight) == (0, 1)
    slots.release()
    assert slots.in_flight == 0


def test_both_caps_refuse_fewer_than_one_slot_and_say_which() -> None:
    with pytest.raises(ValueError, match="a connection budget's slots must be at least 1, not 0"):
        ConnectionBudget(0)
    with pytest.raises(ValueError, match="fleet_list_concurrency must be at least 1, not 0"):
        FleetListLimit(0)
    assert FleetListLimit(3).limit == 3 == ConnectionBudget(3).slots
