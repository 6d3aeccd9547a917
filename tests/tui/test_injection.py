"""Untrusted strings are shown literally: no escape sequence from data reaches the terminal, no markup.

Names, messages, commit subjects, field managers and errors carry a clipboard OSC 52, a screen clear,
Rich ``[link]`` markup and an unclosed ``[bold``. Every screen that shows them is rendered to the bytes
a terminal would receive; those bytes must hold no OSC (so no OSC 8 hyperlink either), no ``ESC [2J``
and no BEL, while the text itself shows the markup literally.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.command import Hit

from core.errors import FleetdeckError
from tests.fixtures.snapshots import HEAD, HOSTILE, hostile_snapshot
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle, wait_for_screen
from tests.tui.screen import screen_text, terminal_bytes
from tui.commands import FleetdeckCommands
from tui.screens.app_screen import AppScreen
from tui.screens.confirm import ConfirmSyncModal
from tui.screens.diff import DiffScreen
from tui.screens.error import ErrorModal
from tui.screens.history import HistoryScreen
from tui.screens.pause import PauseModal


def assert_clean(app: object, *, literal: bool = True) -> None:
    raw = terminal_bytes(app)  # type: ignore[arg-type]
    assert "\x1b]" not in raw, "an OSC sequence (title, clipboard or hyperlink) reached the terminal"
    assert "\x1b[2J" not in raw and "\x07" not in raw
    text = screen_text(app)  # type: ignore[arg-type]
    assert "\x1b" not in text
    if literal:
        assert "[link=http" in text or "[bold" in text, "markup must be shown literally"


def hostile_engine(**kwargs: object) -> FakeEngine:
    revisions = (replace(HEAD, subject=HOSTILE, author=HOSTILE),)
    return FakeEngine([hostile_snapshot()], revision_list=revisions, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [(120, 36), (80, 24)])
async def test_fleet_and_matrix(build_app: AppFactory, size: tuple[int, int]) -> None:
    """The fleet table, header and matrix show hostile names and messages literally."""
    app = build_app(hostile_engine())
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert_clean(app)
        assert "evil" in screen_text(app)
        await pilot.press("m")
        await pilot.pause()
        assert_clean(app)


async def test_app_diff_and_history_screens(build_app: AppFactory) -> None:
    """Resource names, conditions, field managers and commit subjects stay inert everywhere."""
    app = build_app(hostile_engine())
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await wait_for_screen(pilot, AppScreen)
        assert_clean(app)
        await pilot.press("D")
        await wait_for_screen(pilot, DiffScreen)
        assert_clean(app)
        assert "changed by" in screen_text(app)
        await pilot.press("v")
        await pilot.pause()
        assert_clean(app)
        await pilot.press("escape", "h")
        await wait_for_screen(pilot, HistoryScreen)
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert_clean(app)


async def test_error_modal_and_pause_dialog(build_app: AppFactory) -> None:
    """An engine error quoting hostile text, and the pause dialog naming the row, stay inert."""
    error = FleetdeckError(HOSTILE, title=HOSTILE, hint=HOSTILE)
    app = build_app(hostile_engine(errors={"pause": error}))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await wait_for_screen(pilot, PauseModal)
        assert_clean(app)
        await pilot.press(*"why", "enter", "enter")
        await wait_for_screen(pilot, ErrorModal)
        assert_clean(app)


async def test_palette_rows_are_plain(build_app: AppFactory) -> None:
    """``open:`` hits for hostile app names are plain content, never parsed as markup."""
    app = build_app(hostile_engine())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        provider = FleetdeckCommands(app.screen)
        hits = [hit async for hit in provider.search("open web")]
        assert hits
        hit = hits[0]
        assert isinstance(hit, Hit)
        display = hit.match_display
        assert "[link=http://x]click[/link]" in str(getattr(display, "plain", display))
        assert "\x1b" not in str(getattr(display, "plain", display))


async def test_notifications_and_sync_log_stay_inert(build_app: AppFactory) -> None:
    """Syncing the hostile app: the preview, the sync log and the result notification show names literally."""
    snapshot = hostile_snapshot()
    runnable = replace(snapshot, apps=tuple(replace(a, conditions=()) for a in snapshot.apps))
    app = build_app(FakeEngine([runnable]))
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await wait_for_screen(pilot, ConfirmSyncModal)
        assert_clean(app)
        await pilot.press("y")
        await settle(pilot)
        assert app._notifications, "the result is notified"
        await pilot.pause()
        assert "Rows update with the next" in screen_text(app), "the toast is on screen"
        assert_clean(app)
        assert "Sync log" in screen_text(app)
