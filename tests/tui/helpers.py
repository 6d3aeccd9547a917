"""Small waits for pilot tests: settle the app, or wait until a given screen is on top.

Waiting is done by letting the app process messages (``pilot.pause()``), never by sleeping.
"""

from __future__ import annotations

from typing import Any, TypeVar

from textual.pilot import Pilot
from textual.screen import Screen

S = TypeVar("S", bound=Screen[Any])
M = TypeVar("M")


async def settle(pilot: Pilot[Any]) -> None:
    """Let finite workers finish and the screen catch up."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def wait_for_screen(pilot: Pilot[Any], screen_type: type[S], *, rounds: int = 50) -> S:
    """Process messages until a ``screen_type`` screen is active (a worker may still be awaiting it)."""
    for _ in range(rounds):
        if isinstance(pilot.app.screen, screen_type):
            await pilot.pause()
            return pilot.app.screen
        await pilot.pause()
    raise AssertionError(f"{screen_type.__name__} never appeared; on top: {pilot.app.screen!r}")


def unique(messages: list[object], kind: type[M]) -> list[M]:
    """Messages of ``kind`` seen by the hook, once each (a bubbling message is seen at every level)."""
    seen: dict[int, M] = {}
    for message in messages:
        if isinstance(message, kind):
            seen.setdefault(id(message), message)
    return list(seen.values())


async def settle_node(pilot: Pilot[Any], node: object) -> None:
    """Wait for the workers started by ``node`` only (another worker may be awaiting a modal)."""
    mine = [w for w in pilot.app.workers if w.node is node]
    if mine:  # an empty list would mean "every worker" to wait_for_complete
        await pilot.app.workers.wait_for_complete(mine)
    await pilot.pause()
