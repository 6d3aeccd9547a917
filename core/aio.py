"""asyncio helpers: owned, named, guarded tasks, a single-slot "latest value" channel, counted slots and two
rate limits (a token bucket for requests, a throttle for the publisher).

No feature code calls ``asyncio.create_task`` directly: tasks are created here so that a failure is
logged instead of vanishing, and shutdown drains then cancels with a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


def create_guarded_task(coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
    """Start ``coro`` as a named task whose failure or unexpected exit is logged.

    Args:
        coro: the coroutine to run.
        name: a name that says what the task owns, e.g. ``watch:fd-a:apps/Deployment``.
    """
    task = asyncio.get_running_loop().create_task(_guard(coro, name), name=name)
    task.add_done_callback(lambda _: coro.close())  # a task cancelled before it ran never awaited coro
    return task


async def _guard(coro: Coroutine[Any, Any, Any], name: str) -> Any:
    try:
        return await coro
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("task %s failed", name)
        raise


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that a timeout helper swallowed.

    On Python 3.11, ``asyncio.wait_for`` can lose a ``cancel()`` that arrives while its inner awaitable
    completes (fixed in 3.12, where it is built on ``asyncio.timeout``). A loop that awaits through it
    would then never end. Loops call this after every such await.

    Raises:
        asyncio.CancelledError: the current task has a pending cancellation request.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]], *, timeout: float = 5.0) -> None:
    """Cancel ``tasks`` and wait up to ``timeout`` seconds; log any that do not stop."""
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    if not pending:
        return
    _, stuck = await asyncio.wait(pending, timeout=timeout)
    for task in stuck:
        log.warning("task %s did not stop within %.1fs", task.get_name(), timeout)


class Latest(Generic[T]):
    """A single-slot channel: readers always get the newest value, skipping those they missed.

    One writer calls ``publish``; any number of readers iterate ``subscribe()``. A slow reader never
    makes the writer wait and never falls behind by more than one value.
    """

    def __init__(self) -> None:
        self._value: T | None = None
        self._version = 0
        self._changed = asyncio.Condition()
        self._closed = False

    @property
    def value(self) -> T | None:
        """The newest published value."""
        return self._value

    async def publish(self, value: T) -> None:
        """Replace the value and wake every reader."""
        async with self._changed:
            self._value = value
            self._version += 1
            self._changed.notify_all()

    async def close(self) -> None:
        """End every reader's iteration."""
        async with self._changed:
            self._closed = True
            self._changed.notify_all()

    async def subscribe(self) -> AsyncIterator[T]:
        """Yield the current value (if any), then each newer one, until ``close``."""
        seen = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda seen=seen: self._closed or self._version != seen)  # type: ignore[misc]
                if self._version == seen and self._closed:
                    return
                seen = self._version
                value = self._value
            assert value is not None
            yield value


class CountedSlots:
    """At most ``slots`` holders at once, counted: a semaphore that says how many hold, wait and waited.

    One mechanism for every process-wide cap (the connection budget of K17, the fleet-wide list cap of K7):
    ``async with slots:`` or ``acquire``/``release``; waiters are served in the order they asked.

    Args:
        slots: holders at once (at least 1).
        what: what a slot is, for the error when ``slots`` is below 1.
    """

    def __init__(self, slots: int, *, what: str = "slots") -> None:
        if slots < 1:
            raise ValueError(f"{what} must be at least 1, not {slots}")
        self.slots = slots
        self._semaphore = asyncio.Semaphore(slots)
        self.in_flight = 0
        """Slots held now."""
        self.peak = 0
        """The most slots held at once (for tests and metrics)."""
        self.waiting = 0
        """Callers waiting for a slot now."""
        self.queued = 0
        """Callers that had to wait for a slot, in all."""

    async def acquire(self) -> None:
        """Take a slot (waits while all ``slots`` are held)."""
        if self._semaphore.locked():
            self.queued += 1
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

    def release(self) -> None:
        """Give a slot back."""
        self.in_flight -= 1
        self._semaphore.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.release()


class TokenBucket:
    """A client-side request rate limit: ``rate`` requests per second on average, bursts of ``burst``.

    ``take`` reserves the next token and sleeps until it is due, so concurrent callers are spaced out in
    the order they asked, without a lock (the reservation happens before the first await).

    Args:
        rate: tokens added per second (> 0).
        burst: tokens the bucket holds at most (>= 1): that many requests go at once after a quiet spell.
        clock: monotonic seconds (injected in tests).
        sleep: the sleep to wait with (injected in tests).
    """

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        import time

        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock or time.monotonic
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._at = self._clock()
        self.waits = 0
        """Takes that had to wait (requests the limit delayed)."""
        self.waited = 0.0
        """Seconds waited in all."""

    async def take(self) -> float:
        """Wait for a token; the seconds waited."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        delay = -self._tokens / self.rate
        self.waits += 1
        self.waited += delay
        await self._sleep(delay)
        return delay


class Throttle:
    """At most one run per ``interval``, the first after a quiet spell at once (leading and trailing edge).

    The caller waits for ``turn`` before each run and calls ``ran`` when the run is done. A run is due at
    once when none ended in the last ``interval`` (or none ever ran); otherwise at ``interval`` after the
    end of the last one, so what arrived meanwhile is coalesced into that one run. Measuring from the end
    leaves the rest of the program at least ``interval`` between two runs however long a run takes.

    Args:
        interval: seconds between the end of one run and the start of the next (>= 0).
        clock: monotonic seconds (injected in tests).
        sleep: the sleep to wait with (injected in tests).
    """

    def __init__(self, interval: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.interval = max(0.0, interval)
        self._clock = clock
        self._sleep = sleep
        self._last: float | None = None

    def delay(self) -> float:
        """Seconds until a run is due (0 when it is due now)."""
        if self._last is None:
            return 0.0
        return max(0.0, self._last + self.interval - self._clock())

    async def turn(self) -> float:
        """Wait until a run is due; the seconds waited."""
        delay = self.delay()
        if delay > 0:
            await self._sleep(delay)
        return delay

    def ran(self) -> None:
        """Record that a run ended now."""
        self._last = self._clock()
