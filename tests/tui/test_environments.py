"""Where the console runs: NO_COLOR, ASCII locales, 80x24, with every screen and dialog."""

from __future__ import annotations

import pytest

from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle, wait_for_screen
from tests.tui.screen import screen_text
from tui.screens.app_screen import AppScreen
from tui.screens.confirm import ConfirmSyncModal
from tui.screens.diff import DiffScreen
from tui.screens.history import HistoryScreen
from tui.widgets.fleet_table import FleetTable

WALK = [("m", None), ("m", None), ("g", None), ("enter", AppScreen), ("D", DiffScreen), ("escape", AppScreen),
        ("h", HistoryScreen), ("enter", HistoryScreen), ("escape", AppScreen), ("s", ConfirmSyncModal)]


async def walk(pilot: object) -> list[str]:
    screens = []
    for key, expected in WALK:
        await pilot.press(key)  # type: ignore[attr-defined]
        if expected is not None:
            await wait_for_screen(pilot, expected)  # type: ignore[arg-type]
        await pilot.pause()  # type: ignore[attr-defined]
        screens.append(screen_text(pilot.app))  # type: ignore[attr-defined]
    return screens


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
async def test_no_color_renders_every_screen(engine: FakeEngine, build_app: AppFactory,
                                            monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]) -> None:
    """With NO_COLOR every screen renders, and states still read as words."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = build_app(engine)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert app.no_color
        assert "OutOfSync" in screen_text(app)
        screens = await walk(pilot)
        assert "blocked: cluster edge-ap is unreachable" in screens[-1]


async def test_ascii_glyphs_when_the_locale_is_not_utf8(engine: FakeEngine, build_app: AppFactory,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Under LANG=C the table and the dialogs use ASCII glyphs and borders."""
    monkeypatch.setenv("LANG", "C")
    app = build_app(engine, ascii_only=None)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(FleetTable)
        lines = screen_text(app).splitlines()[table.region.y:table.region.bottom]
        assert all(line.isascii() for line in lines), [line for line in lines if not line.isascii()]
        assert "x OutOfSync" in "\n".join(lines)
        screens = await walk(pilot)
        dialog = next(line for line in screens[-1].splitlines() if "Nothing can run" in line)
        assert dialog.isascii(), dialog
        assert "|" in dialog  # the ASCII border


async def test_ascii_at_80_columns_marks_hidden_columns_with_ascii(engine: FakeEngine, build_app: AppFactory,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Under LANG=C at 80x24 the hidden-columns sign is `>` and the status line stays ASCII."""
    monkeypatch.setenv("LANG", "C")
    app = build_app(engine, ascii_only=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        lines = screen_text(app).splitlines()
        header = next(line for line in lines if line.startswith("  APP "))
        assert header.rstrip().endswith(" >") and header.isascii()
        status = next(line for line in lines if line.startswith("sort:"))
        assert "> 3 columns hidden" in status and status.isascii()  # DRIFT too, since the OWNER column
