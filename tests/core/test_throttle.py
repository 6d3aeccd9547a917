"""``core.aio.Throttle``: at most one run per interval, the first after a quiet spell at once."""

from __future__ import annotations

from core.aio import Throttle


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_the_first_run_and_a_run_after_a_quiet_interval_go_at_once() -> None:
    t = FakeTime()
    throttle = Throttle(0.1, clock=t.clock, sleep=t.sleep)
    assert throttle.delay() == 0.0 and await throttle.turn() == 0.0  # never ran: at once
    throttle.ran()
    t.now += 0.1  # exactly one interval since the last run ended
    assert await throttle.turn() == 0.0
    throttle.ran()
    t.now += 5.0
    assert await throttle.turn() == 0.0
    assert t.slept == []


async def test_a_run_within_the_interval_waits_for_its_end() -> None:
    """A change 30 ms after a run waits the 70 ms left of the interval; runs are never closer than it."""
    t = FakeTime()
    throttle = Throttle(0.1, clock=t.clock, sleep=t.sleep)
    await throttle.turn()
    throttle.ran()
    t.now += 0.03
    assert round(throttle.delay(), 9) == 0.07
    assert round(await throttle.turn(), 9) == 0.07
    assert round(t.now, 9) == 100.1
    throttle.ran()
    assert round(await throttle.turn(), 9) == 0.1  # straight after a run: the whole interval
    assert [round(s, 9) for s in t.slept] == [0.07, 0.1]


async def test_the_interval_counts_from_the_end_of_a_long_run() -> None:
    """A run that took longer than the interval still leaves a whole interval before the next one."""
    t = FakeTime()
    throttle = Throttle(0.1, clock=t.clock, sleep=t.sleep)
    await throttle.turn()
    t.now += 0.3  # the run itself
    throttle.ran()
    assert round(await throttle.turn(), 9) == 0.1


async def test_a_zero_interval_never_waits() -> None:
    t = FakeTime()
    throttle = Throttle(0.0, clock=t.clock, sleep=t.sleep)
    for _ in range(3):
        assert await throttle.turn() == 0.0
        throttle.ran()
    assert t.slept == []
