"""Small waits for pilot tests: settle the app, or wait until a given screen is on top.

Waiting is done by letting the app process messages (``pilot.pause()``), never by sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from textual.pilot import Pilot
from textual.screen import Screen

from tests.tui.screen import screen_text
from tui.screens.confirm import ConfirmSyncModal

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


async def check_second_key_gate(pilot: Pilot[Any], modal: Any, runs: list[Any], *,
                                allowed: Callable[[Any], bool], confirmed_text: str) -> None:
    """The sync dialog's second-key gate: `y` runs nothing until `a` confirms; `a` confirms (the dialog says
    ``confirmed_text`` and that y runs the plan); `a` again takes it back and `y` runs nothing again."""
    await pilot.press("y")
    await pilot.pause()
    assert isinstance(pilot.app.screen, ConfirmSyncModal) and runs == []
    await pilot.press("a")
    await pilot.pause()
    assert allowed(modal.plans[0])
    assert confirmed_text in screen_text(pilot.app)
    assert "Press y to run 1 of 1 plans." in screen_text(pilot.app)
    await pilot.press("a")
    await pilot.pause()
    assert not allowed(modal.plans[0])
    await pilot.press("y")
    await pilot.pause()
    assert runs == []
