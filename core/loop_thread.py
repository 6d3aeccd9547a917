"""Run an engine on its own asyncio loop in its own thread, and call it from another loop.

The console's loop stalls whenever the terminal does (Textual's writer thread blocks on a full queue;
a 6 s stall of an SSH reader measured a 3.7 s loop gap). Watches sharing that loop would stall with
it and come back to ``410 Gone``. So the engine lives here, and every call from the console is
marshalled with ``run_coroutine_threadsafe`` and awaited through ``wrap_future``. Async iterators
(snapshots, sync progress) are bridged through a thread-safe hand-off that keeps only the newest
snapshot.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class EngineThread:
    """A daemon thread that owns an event loop until ``close``."""

    def __init__(self, name: str = "fleetdeck-engine") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the engine loop and await its result from the caller's loop."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wrap_future(future)

    def call_blocking(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the engine loop and block this (non-engine) thread for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def iterate(self, make: Callable[[], AsyncIterator[T]], *, latest_only: bool) -> AsyncIterator[T]:
        """Iterate an async iterator created and consumed on the engine loop.

        Args:
            make: creates the iterator (called on the engine loop).
            latest_only: keep only the newest undelivered item (snapshots); otherwise keep all (progress).
        """
        caller = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def deliver(kind: str, item: Any) -> None:
            if latest_only and kind == "item":
                while not queue.empty():
                    queue.get_nowait()
            queue.put_nowait((kind, item))

        async def pump() -> None:
            try:
                async for item in make():
                    caller.call_soon_threadsafe(deliver, "item", item)
            except BaseException as exc:  # handed to the consumer, re-raised there
                caller.call_soon_threadsafe(deliver, "error", exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            caller.call_soon_threadsafe(deliver, "end", None)

        future = asyncio.run_coroutine_threadsafe(pump(), self.loop)
        try:
            while True:
                kind, item = await queue.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise item
                yield item
        finally:
            future.cancel()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the loop and join the thread."""
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
