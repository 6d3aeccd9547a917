"""Per-request retries of transient cluster errors (429, 5xx, no response) with jittered backoff.

Used by every request the sync layer sends. Constraint: only ``ClusterError.transient`` is retried;
a 4xx answer (invalid, forbidden, conflict) is returned to the caller at once, since retrying it
cannot succeed and a conflict needs a fresh read, not the same write again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from core.errors import ClusterError

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


async def with_retries(
    request: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    base_delay: float = 0.2,
    max_delay: float = 5.0,
    sleep: Sleep = asyncio.sleep,  # injected in tests
) -> T:
    """Await ``request()``; on a transient ``ClusterError`` try again, up to ``attempts`` times in all.

    Args:
        request: makes one request (called again for each attempt).
        attempts: total attempts (``SyncSettings.request_retries``); at least one is made.
        base_delay: the first backoff; it doubles per attempt, with full jitter.
        max_delay: backoff cap.
        sleep: the sleep function.

    Raises:
        ClusterError: the last error, when every attempt failed or the error is not transient.
    """
    for attempt in range(max(1, attempts)):
        try:
            return await request()
        except ClusterError as exc:
            if not exc.transient or attempt + 1 >= max(1, attempts):
                raise
            await sleep(random.uniform(0, min(max_delay, base_delay * 2**attempt)))
    raise AssertionError("unreachable")


async def conflict_pause(attempt: int, *, base_delay: float = 0.02, sleep: Sleep = asyncio.sleep) -> None:
    """Wait a little (jittered, growing) before re-reading after a lost write race, so racers spread out."""
    await sleep(random.uniform(0, base_delay * 2 ** min(attempt, 5)))
