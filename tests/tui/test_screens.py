"""Screen details: the header's repo line, help from the registry, errors from screen workers,
the external diff, and pause validation."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core.errors import GitError
from core.model import HistoryEntry, SyncTrigger
from tests.fixtures.snapshots import NOW, OLDER, OLDEST, REVISIONS, fleet_snapshot, with_app
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle, wait_for_screen
from tests.tui.screen import screen_text
from tui.actions import actions_for
from tui.glyphs import UNICODE
from tui.screens.diff import DiffScreen
from tui.screens.error import ErrorModal
from tui.screens.help import HelpScreen
from tui.screens.history import HistoryScreen, item_prompt, merge_history
from tui.screens.pause import PauseModal
from tui.widgets.fleet_table import FleetTable


async def test_header_shows_the_repo_fetch_error(build_app: AppFactory) -> None:
    """A failed fetch is stated in the header next to the head still in use."""
    engine = FakeEngine([fleet_snapshot(repo_error="fetch origin: connection refused")])
    app = build_app(engine)
    async with app.run_test(size=(160, 36)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "repo main @ 4f9d2c1e" in text
        assert "fetch failed: fetch origin: connection refused" in text


async def test_help_lists_the_registry(engine: FakeEngine, build_app: AppFactory) -> None:
    """`?` shows every fleet and global action title, generated from the registry."""
    app = build_app(engine)
    async with app.run_test(size=(120, 90)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await wait_for_screen(pilot, HelpScreen)
        text = screen_text(app)
        for action in (*actions_for("fleet", read_only=False), *actions_for("global", read_only=False)):
            assert action.title in text, action.title
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_a_screen_worker_error_opens_the_error_modal(build_app: AppFactory) -> None:
    """When loading revisions fails, the history screen's worker error reaches the ErrorModal."""
    engine = FakeEngine([fleet_snapshot()], errors={"revisions": GitError("git log failed", hint="run git fsck")})
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("h")
        await wait_for_screen(pilot, ErrorModal)
        text = screen_text(app)
        assert "git log failed" in text and "run git fsck" in text and "loading revisions" in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)


async def test_pause_rejects_a_bad_expiry(engine: FakeEngine, build_app: AppFactory) -> None:
    """An unparsable expiry is explained and nothing is paused."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await wait_for_screen(pilot, PauseModal)
        await pilot.press(*"why", "enter", *"soon", "enter")
        await pilot.pause()
        assert "not a duration" in screen_text(app)
        assert isinstance(app.screen, PauseModal) and engine.pauses == []


async def test_external_diff_gets_both_sides(engine: FakeEngine, build_app: AppFactory,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`o` writes live and desired YAML to temporary files and runs $FLEETDECK_DIFF on them, suspended."""
    seen: dict[str, Any] = {}

    def fake_run(argv: list[str], check: bool) -> subprocess.CompletedProcess[bytes]:
        seen["argv"] = argv
        seen["live"], seen["desired"] = (Path(p).read_text() for p in argv[-2:])
        return subprocess.CompletedProcess(argv, 1)

    @contextlib.contextmanager
    def fake_suspend() -> Iterator[None]:
        seen["suspended"] = True
        yield

    monkeypatch.setattr(subprocess, "run", fake_run)
    app = build_app(engine, diff_command="delta --side-by-side")
    monkeypatch.setattr(app, "suspend", fake_suspend)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.screen.query_one(FleetTable).move_to(("web", "prod-us"))  # type: ignore[arg-type]
        await pilot.press("d")
        await wait_for_screen(pilot, DiffScreen)
        await pilot.press("o")
        await pilot.pause()
    assert seen["suspended"]
    assert seen["argv"][:2] == ["delta", "--side-by-side"]
    assert seen["argv"][-2].endswith("web-prod-us.live.yaml")
    assert "replicas: 5" in seen["live"] and "replicas: 3" in seen["desired"]
    assert "# Deployment.apps/shop/web" in seen["live"]
    assert not Path(seen["argv"][-1]).exists(), "temporary files are removed afterwards"


async def test_external_diff_without_a_command_explains(engine: FakeEngine, build_app: AppFactory) -> None:
    """Without $FLEETDECK_DIFF, `o` says how to set it."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("d")
        await wait_for_screen(pilot, DiffScreen)
        await pilot.press("o")
        await pilot.pause()
        assert any("FLEETDECK_DIFF" in n.message for n in app._notifications)


async def test_history_says_what_started_each_sync_newest_first(build_app: AppFactory) -> None:
    """Each recorded sync is labelled manual, automated, self-heal or rollback, newest first; a rollback
    to an old revision annotates that revision where Git has it instead of lifting it above newer ones."""
    snapshot = fleet_snapshot()
    row = snapshot.app("web", "prod-us")
    assert row is not None
    rollback = HistoryEntry(5, OLDER.sha, "rollback", "bob", NOW - 300, "Succeeded", "2 configured",
                            trigger=SyncTrigger.MANUAL)
    app = build_app(FakeEngine([with_app(snapshot, replace(row, history=(*row.history, rollback)))]))
    async with app.run_test(size=(200, 36)) as pilot:
        await settle(pilot)
        app.screen.query_one(FleetTable).move_to(("web", "prod-us"))  # type: ignore[arg-type]
        await pilot.press("h")
        screen = await wait_for_screen(pilot, HistoryScreen)
        await settle(pilot)
        assert [item.sha for item in screen.items] == [r.sha for r in REVISIONS]  # HEAD, PREVIOUS, OLDER, OLDEST
        lines = [line for line in screen_text(app).splitlines() if line.lstrip()[:8] in {r.short for r in REVISIONS}]
        assert [line.split()[0] for line in lines] == [r.sha[:8] for r in REVISIONS]
        assert "✓ self-heal sync by dana 10m ago: 1 configured  ✓ manual sync by dana 1h ago: 2 configured" in lines[0]
        assert "✓ automated sync by alice 2d ago" in lines[1]
        assert "✓ rollback by bob 5m ago: 2 configured" in lines[2]
        assert "✓ manual sync by carol 4w ago: 12 created" in lines[3]


def test_merge_history_orders_by_commit_not_by_sync() -> None:
    """Revisions stay in commit order whatever was synced last; their entries are newest first (by id);
    a recorded SHA that Git did not list is placed by its newest sync."""
    stray = "f" * 40
    entries = (HistoryEntry(1, OLDEST.sha, "sync", "a", NOW - 100, "Succeeded"),
               HistoryEntry(2, stray, "sync", "a", NOW - 3 * 86400, "Succeeded"),
               HistoryEntry(3, OLDEST.sha, "rollback", "b", NOW - 50, "Succeeded"))
    items = merge_history(REVISIONS, entries)
    assert [i.sha for i in items] == [REVISIONS[0].sha, REVISIONS[1].sha, stray, REVISIONS[2].sha, OLDEST.sha]
    assert [e.id for e in items[-1].entries] == [3, 1]


def test_history_line_counts_the_syncs_it_does_not_show() -> None:
    """A revision synced more than twice shows the two newest syncs and counts the others."""
    entries = tuple(HistoryEntry(i, OLDEST.sha, "sync", "a", NOW - 100 * i, "Succeeded",
                                 trigger=SyncTrigger.AUTOMATED) for i in range(1, 5))
    item = merge_history((OLDEST,), entries)[0]
    text = item_prompt(item, current=None, now=NOW, glyphs=UNICODE).plain
    assert text.count("automated sync by a") == 2
    assert text.endswith("⋯ 2 older syncs of it (fleetdeck history)")


async def test_resource_diff_shows_its_health_and_the_rule_that_judged_it(build_app: AppFactory) -> None:
    """The one-resource view (enter on a resource) names its health and its source in the title."""
    from core.model import Health, HealthStatus

    base = fleet_snapshot()
    web = next(a for a in base.apps if (a.app, a.cluster) == ("web", "prod-us"))
    judged = Health(HealthStatus.PROGRESSING, "rolling", "built-in: Deployment")
    resources = tuple(replace(r, health=judged) if r.key.kind == "Deployment" else r for r in web.resources)
    app = build_app(FakeEngine([with_app(base, replace(web, resources=resources))]))
    async with app.run_test(size=(160, 36)) as pilot:
        await settle(pilot)
        app.screen.query_one(FleetTable).move_to(("web", "prod-us"))  # type: ignore[arg-type]
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("enter")
        await wait_for_screen(pilot, DiffScreen)
        await pilot.pause()
        assert "Deployment/shop/web" in screen_text(app)
        assert "Progressing (built-in: Deployment)" in screen_text(app)
