"""Read-only audit mode: no mutating action is bound, offered or sent; everything else works."""

from __future__ import annotations

from typing import Any

from textual.command import DiscoveryHit, Hit
from textual.screen import Screen

from core.model import AppName, ClusterName
from tests.fixtures.snapshots import fleet_snapshot
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle, wait_for_screen
from tests.tui.screen import screen_text
from tui.actions import ACTIONS
from tui.commands import FleetdeckCommands
from tui.messages import PauseRequested, SyncRequested
from tui.screens.app_screen import AppScreen
from tui.screens.diff import DiffScreen
from tui.screens.fleet_screen import FleetScreen
from tui.screens.help import HelpScreen
from tui.screens.history import HistoryScreen
from tui.widgets.fleet_table import FleetTable

MUTATING_KEYS = {"s", "p", "u", "R"}


def bound_keys(node: object) -> set[str]:
    return set(node._bindings.key_to_bindings)  # type: ignore[attr-defined]


def read_only_engine() -> FakeEngine:
    return FakeEngine([fleet_snapshot(read_only=True)], read_only=True)


async def test_mutating_keys_do_nothing(build_app: AppFactory) -> None:
    """Pressing s, p, u and R on every screen never reaches engine.execute_plan, pause or resume."""
    engine = read_only_engine()
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert app.read_only
        app.screen.query_one(FleetTable).move_to(("web", "prod-us"))  # type: ignore[arg-type]
        await pilot.press("space", *MUTATING_KEYS)
        await settle(pilot)
        assert isinstance(app.screen, FleetScreen)
        await pilot.press("enter")
        await wait_for_screen(pilot, AppScreen)
        await pilot.press(*MUTATING_KEYS)
        await pilot.press("h")
        await wait_for_screen(pilot, HistoryScreen)
        await settle(pilot)
        await pilot.press("down", "enter", *MUTATING_KEYS)
        await settle(pilot)
        assert isinstance(app.screen, HistoryScreen)
        called = {name for name, _ in engine.calls}
        assert called.isdisjoint({"execute_plan", "pause", "resume", "plan_sync", "plan_rollback"})
        assert "preview" in called and "revisions" in called


async def test_mutating_bindings_are_not_registered(build_app: AppFactory) -> None:
    """The bindings of every screen lack the mutating keys; the footer does not show them."""
    app = build_app(read_only_engine())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        key = (AppName("web"), ClusterName("prod-us"))
        screens: list[Screen[Any]] = [app.screen, AppScreen(app.ctx, key), HistoryScreen(app.ctx, key),
                                      DiffScreen(app.ctx, key)]
        for screen in screens:
            assert not bound_keys(screen) & MUTATING_KEYS, screen
        footer = screen_text(app).splitlines()[-1]
        assert "Sync" not in footer and "Pause" not in footer
        assert "Filter" in footer and "Diff" in footer


async def test_banner_and_browsing(build_app: AppFactory) -> None:
    """A banner says read-only; filter, app, diff and help still work; help lists no sync."""
    app = build_app(read_only_engine())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert "READ-ONLY AUDIT MODE" in screen_text(app)
        await pilot.press("slash", *"degraded", "enter", "d")
        await wait_for_screen(pilot, DiffScreen)
        await pilot.press("escape", "question_mark")
        await wait_for_screen(pilot, HelpScreen)
        text = screen_text(app)
        assert "Read-only audit mode" in text
        assert "sync: selected rows" not in text and "view: filter" in text


async def test_requests_are_refused_by_the_app_too(build_app: AppFactory) -> None:
    """Even a posted SyncRequested or PauseRequested never reaches the engine in read-only mode."""
    engine = read_only_engine()
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        plan = await engine.plan_sync("web", "prod-us")
        app.post_message(SyncRequested((plan,)))
        app.post_message(PauseRequested(((AppName("web"), ClusterName("prod-us")),), "x"))
        await settle(pilot)
        assert engine.runs == [] and engine.pauses == []
        notes = [n.message for n in app._notifications]
        assert "read-only audit mode: sync refused" in notes
        assert "read-only audit mode: pause refused" in notes


async def test_engine_read_only_turns_the_console_read_only(build_app: AppFactory) -> None:
    """make_app(read_only=False) with a read-only engine is still read-only."""
    app = build_app(read_only_engine(), read_only=False)
    assert app.read_only


async def test_palette_offers_no_mutating_action(build_app: AppFactory) -> None:
    """The command palette's hits come from the registry without sync, pause, resume, rollback."""
    app = build_app(read_only_engine())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        provider = FleetdeckCommands(app.screen)
        discovered = [hit async for hit in provider.discover()]
        titles = {str(h.text) for h in discovered if isinstance(h, DiscoveryHit)}
        mutating = {a.title for a in ACTIONS.values() if a.mutating}
        assert titles and not titles & mutating
        found = [hit async for hit in provider.search("sync")]
        assert not any(isinstance(h, Hit) and h.text in mutating for h in found)




async def test_impersonation_banner_names_the_identity_and_the_clusters(build_app: AppFactory) -> None:
    """A fleet acting as another identity says so in a banner under the header, with the impersonated name
    made inert (no escape sequence or markup from the kubeconfig reaches the terminal); none without."""
    import dataclasses

    plain = fleet_snapshot()
    acting = dataclasses.replace(plain, clusters=tuple(
        dataclasses.replace(c, impersonating="release-bot\x1b[31m [b]x[/b] (groups ops)")
        if c.name == "prod-us" else c for c in plain.clusters))
    app = build_app(FakeEngine([acting]))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "AS release-bot [b]x[/b] (groups ops): every request to prod-us is impersonated" in text
        assert "\x1b" not in text
    app = build_app(FakeEngine([plain]))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert "impersonated" not in screen_text(app)
