"""The command palette: built from the registry, opened with `:` or ctrl+p, runs the same actions."""

from __future__ import annotations

from textual.command import CommandList, CommandPalette, DiscoveryHit, Hit

from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle, wait_for_screen
from tui.actions import actions_for
from tui.commands import FleetdeckCommands
from tui.screens.app_screen import AppScreen
from tui.screens.fleet_screen import FleetScreen


async def test_discover_lists_the_screen_and_global_actions(engine: FakeEngine, build_app: AppFactory) -> None:
    """Discovery offers every palette action of the fleet scope plus the global ones."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        hits = [h async for h in FleetdeckCommands(app.screen).discover()]
        titles = {h.text for h in hits if isinstance(h, DiscoveryHit)}
        expected = {a.title for a in (*actions_for("fleet", read_only=False), *actions_for("global", read_only=False))
                    if a.palette}
        assert titles == expected
        assert "sync: selected rows" in titles


async def test_search_runs_the_action(engine: FakeEngine, build_app: AppFactory) -> None:
    """A matching hit runs the screen's action (here: the matrix toggle)."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        hits = [h async for h in FleetdeckCommands(app.screen).search("toggle matrix")]
        best = max((h for h in hits if isinstance(h, Hit)), key=lambda h: h.score)
        assert best.text == "view: toggle matrix"
        await best.command()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FleetScreen) and screen.matrix


async def test_open_row_hits_jump_to_the_app(engine: FakeEngine, build_app: AppFactory) -> None:
    """`open: web on prod-us` opens that app screen."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        hits = [h async for h in FleetdeckCommands(app.screen).search("open: web on prod-us")]
        best = max((h for h in hits if isinstance(h, Hit)), key=lambda h: h.score)
        assert best.text == "open: web on prod-us"
        best.command()
        screen = await wait_for_screen(pilot, AppScreen)
        assert screen.key == ("web", "prod-us")


async def test_colon_and_ctrl_p_open_the_palette(engine: FakeEngine, build_app: AppFactory) -> None:
    """Both keys open the command palette."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("colon")
        await wait_for_screen(pilot, CommandPalette)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("ctrl+p")
        await wait_for_screen(pilot, CommandPalette)


async def test_page_keys_before_the_hit_list_is_laid_out_do_not_crash(engine: FakeEngine,
                                                                      build_app: AppFactory) -> None:
    """PageDown/PageUp in the palette while its hit list has no size yet (hits just arrived, not laid out)
    are ignored; Textual's OptionList raised KeyError there and the console exited (found by the read-only
    random walk, tests/cluster/test_read_only_walk.py)."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("colon", "v", "i", "e", "w")
        palette = await wait_for_screen(pilot, CommandPalette)
        commands = palette.query_one(CommandList)
        for _ in range(50):
            if commands.option_count:
                break
            await pilot.pause(0.02)
        commands.highlighted = 0
        commands.styles.max_height = 0  # no content region: the list cannot compute its lines
        await pilot.pause()
        await pilot.press("pagedown", "pageup", "pagedown")
        assert app.is_running and isinstance(app.screen, CommandPalette)
        commands.styles.max_height = None
        await pilot.pause()
        await pilot.press("pagedown", "escape")
        assert isinstance(app.screen, FleetScreen)
