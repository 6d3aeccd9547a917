"""Operator actions end to end against the fake engine: plan → confirm → run, pause, resume, errors."""

from __future__ import annotations

import asyncio
import dataclasses

from core.errors import ClusterError
from core.model import OperationPhase, ResourceKey, SyncAction, SyncStatus
from tests.fixtures.snapshots import fleet_snapshot, with_app
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import check_second_key_gate, settle, settle_node, unique, wait_for_screen
from tests.tui.screen import screen_text
from tui.messages import PauseRequested, SyncFinished, SyncProgressed, SyncRequested
from tui.screens.app_screen import AppScreen
from tui.screens.confirm import ConfirmModal, ConfirmSyncModal
from tui.screens.error import ErrorModal
from tui.screens.fleet_screen import FleetScreen
from tui.screens.history import HistoryScreen
from tui.screens.pause import PauseModal
from tui.widgets.fleet_table import FleetTable
from tui.widgets.resource_tree import ResourceTree

WEB_PROD_US = ("web", "prod-us")
WORKER_PROD_EU = ("worker", "prod-eu")


def put_cursor(app: object, key: tuple[str, str]) -> None:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, FleetScreen)
    screen.query_one(FleetTable).move_to(key)  # type: ignore[arg-type]


async def test_sync_confirm_runs_the_plan(engine: FakeEngine, build_app: AppFactory) -> None:
    """`s` previews the plan; `y` runs exactly that plan; the row stays drifted until a new snapshot."""
    messages: list[object] = []
    app = build_app(engine)
    async with app.run_test(size=(120, 36), message_hook=messages.append) as pilot:
        await settle(pilot)
        put_cursor(app, WEB_PROD_US)
        await pilot.press("s")
        modal = await wait_for_screen(pilot, ConfirmSyncModal)
        text = screen_text(app)
        assert "sync web on cluster prod-us to 4f9d2c1e" in text
        assert "Writes to cluster(s): prod-us" in text and "Prune off" in text
        assert [s.action for s in modal.plans[0].steps] == [SyncAction.CONFIGURED, SyncAction.CONFIGURED]
        await pilot.press("y")
        await settle(pilot)
        assert engine.runs == [engine.plans[0]]
        requested = unique(messages, SyncRequested)
        assert [r.plans for r in requested] == [(engine.plans[0],)]
        assert any(isinstance(m, SyncProgressed) for m in messages)
        finished = unique(messages, SyncFinished)
        assert finished[0].state.phase is OperationPhase.SUCCEEDED
        assert app.operations[-1].phase is OperationPhase.SUCCEEDED
        assert app.snapshot is not None
        assert app.snapshot.app(*WEB_PROD_US).sync is SyncStatus.OUT_OF_SYNC  # type: ignore[union-attr]
        assert "Sync log" in screen_text(app)


async def test_failed_sync_offers_the_rollback(engine: FakeEngine, build_app: AppFactory) -> None:
    """A sync that fails says how to put back what ran before (history, pick the revision, R)."""
    engine.fail_runs = True
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        put_cursor(app, WEB_PROD_US)
        await pilot.press("s")
        await wait_for_screen(pilot, ConfirmSyncModal)
        await pilot.press("y")
        await settle(pilot)
        told = [n.message for n in app._notifications]
        assert any("sync Failed" in m and "To put back what ran before: h (history) on its row, pick that "
                   "revision, R (roll back)." in m for m in told), told


async def test_cancel_runs_nothing(engine: FakeEngine, build_app: AppFactory) -> None:
    """`n` closes the preview and nothing runs."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        put_cursor(app, WEB_PROD_US)
        await pilot.press("s")
        await wait_for_screen(pilot, ConfirmSyncModal)
        await pilot.press("n")
        await settle(pilot)
        assert engine.runs == []
        assert isinstance(app.screen, FleetScreen)


async def test_dry_run_and_prune_toggles_replan(engine: FakeEngine, build_app: AppFactory) -> None:
    """`d` and `p` in the preview re-plan with dry run and prune; the run uses the new plan."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        put_cursor(app, WORKER_PROD_EU)
        await pilot.press("s")
        modal = await wait_for_screen(pilot, ConfirmSyncModal)
        assert modal.plans[0].count(SyncAction.PRUNE_SKIPPED) == 1
        await pilot.press("p")
        await settle_node(pilot, modal)
        await pilot.press("d")
        await settle_node(pilot, modal)
        assert modal.plans[0].prune and modal.plans[0].dry_run
        assert modal.plans[0].count(SyncAction.PRUNED) == 1
        assert "Dry run: nothing is written" in screen_text(app)
        await pilot.press("y")
        await settle(pilot)
        assert engine.runs[0].dry_run and engine.runs[0].prune
        assert engine.runs[0] is engine.plans[-1]


async def test_bulk_sync_shows_one_combined_preview(engine: FakeEngine, build_app: AppFactory) -> None:
    """Marked rows on two clusters get one preview listing both plans; `y` runs both."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        put_cursor(app, WEB_PROD_US)
        await pilot.press("space")
        put_cursor(app, WORKER_PROD_EU)
        await pilot.press("space")
        await pilot.press("s")
        modal = await wait_for_screen(pilot, ConfirmSyncModal)
        assert {(p.app, p.cluster) for p in modal.plans} == {WEB_PROD_US, WORKER_PROD_EU}
        text = screen_text(app)
        assert "Sync 2 app(s) on 2 cluster(s)" in text
        assert "Writes to cluster(s): prod-eu, prod-us" in text
        await pilot.press("y")
        await settle(pilot)
        assert {(p.app, p.cluster) for p in engine.runs} == {WEB_PROD_US, WORKER_PROD_EU}


async def test_blocked_plan_cannot_run(engine: FakeEngine, build_app: AppFactory) -> None:
    """A render error blocks the plan: the preview says why and `y` does nothing."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        put_cursor(app, ("search", "staging"))
        await pilot.press("s")
        await wait_for_screen(pilot, ConfirmSyncModal)
        assert "blocked: render failed" in screen_text(app)
        assert "Nothing can run" in screen_text(app)
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmSyncModal)
        assert engine.runs == []


FORCED = "4f9d2c1e does not descend from 0badc0de, the revision last synced on prod-us (force-push?)"


def force_pushed_engine() -> FakeEngine:
    """The standard fleet with web on prod-us's head force-pushed: not a descendant of what runs there."""
    snap = fleet_snapshot()
    row = snap.app(*WEB_PROD_US)
    assert row is not None
    return FakeEngine([with_app(snap, dataclasses.replace(row, non_descendant=FORCED, synced_revision="0badc0de" * 5))])


async def test_force_push_needs_a_second_key_before_y(build_app: AppFactory) -> None:
    """A plan that replaces history: the modal shows the warning with both revisions, `y` does nothing until
    `a` acknowledges it, `a` again takes it back, a re-plan keeps it; the run gets the acknowledged plan."""
    engine = force_pushed_engine()
    app = build_app(engine)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        assert "rewritten" in screen_text(app)  # the row's flag
        put_cursor(app, WEB_PROD_US)
        await pilot.press("s")
        modal = await wait_for_screen(pilot, ConfirmSyncModal)
        text = screen_text(app)
        assert "HISTORY REPLACED: 4f9d2c1e does not descend from 0badc0de" in text
        assert "not acknowledged: press a to acknowledge, then y" in text
        assert "History would be replaced on prod-us: press a to acknowledge it before y can run." in text
        assert "a acknowledge replaced history: off" in text
        await check_second_key_gate(pilot, modal, engine.runs, allowed=lambda p: p.non_descendant_allowed,
                                    confirmed_text="acknowledged (a to take it back)")
        await pilot.press("a")
        await pilot.press("p")  # a re-plan keeps the acknowledgement of the same message
        await settle_node(pilot, modal)
        assert modal.plans[0].prune and modal.plans[0].non_descendant_allowed
        await pilot.press("y")
        await settle(pilot)
        assert len(engine.runs) == 1
        ran = engine.runs[0]
        assert ran.non_descendant == FORCED and ran.non_descendant_allowed and not ran.needs_acknowledgement


async def test_plain_plan_has_no_acknowledgement_key(engine: FakeEngine, build_app: AppFactory) -> None:
    """Without a history replacement the dialog offers no `a` and `y` runs at once."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        put_cursor(app, WEB_PROD_US)
        await pilot.press("s")
        modal = await wait_for_screen(pilot, ConfirmSyncModal)
        assert "acknowledge" not in screen_text(app).lower()
        assert modal.check_action("acknowledge", ()) is False
        await pilot.press("a")
        await pilot.press("y")
        await settle(pilot)
        assert len(engine.runs) == 1 and not engine.runs[0].non_descendant


async def test_selective_sync_of_marked_resources(engine: FakeEngine, build_app: AppFactory) -> None:
    """In the app screen, space marks a resource; `s` plans only that resource."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        put_cursor(app, WEB_PROD_US)
        await pilot.press("enter")
        screen = await wait_for_screen(pilot, AppScreen)
        assert screen.query_one(ResourceTree).cursor_key == ResourceKey("apps", "Deployment", "shop", "web")
        await pilot.press("space")
        assert screen.marked == {ResourceKey("apps", "Deployment", "shop", "web")}
        await pilot.press("s")
        modal = await wait_for_screen(pilot, ConfirmSyncModal)
        assert modal.plans[0].selected == (ResourceKey("apps", "Deployment", "shop", "web"),)
        assert len(modal.plans[0].steps) == 1
        assert "only 1 selected resources" in screen_text(app)


async def test_pause_modal_sends_reason_and_expiry(engine: FakeEngine, build_app: AppFactory) -> None:
    """`p` asks for a reason (required) and an expiry, then calls engine.pause with them."""
    messages: list[object] = []
    app = build_app(engine)
    async with app.run_test(size=(120, 36), message_hook=messages.append) as pilot:
        await settle(pilot)
        put_cursor(app, WEB_PROD_US)
        await pilot.press("p")
        await wait_for_screen(pilot, PauseModal)
        assert "web on cluster prod-us" in screen_text(app)
        await pilot.press("enter", "enter")
        await pilot.pause()
        assert "A reason is required" in screen_text(app)
        await pilot.press(*"incident 4711", "enter", *"2h", "enter")
        await settle(pilot)
        assert engine.pauses == [("web", "prod-us", "incident 4711", 7200.0)]
        assert [m.reason for m in unique(messages, PauseRequested)] == ["incident 4711"]


async def test_resume_asks_first(engine: FakeEngine, build_app: AppFactory) -> None:
    """`u` explains what resume does where; `y` calls engine.resume."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        put_cursor(app, ("billing", "prod-eu"))
        await pilot.press("u")
        await wait_for_screen(pilot, ConfirmModal)
        assert "clear any rollback pin" in screen_text(app)
        await pilot.press("y")
        await settle(pilot)
        assert engine.resumes == [("billing", "prod-eu")]


async def test_engine_error_opens_the_error_modal(build_app: AppFactory) -> None:
    """A FleetdeckError from the engine shows its title, message and hint."""
    error = ClusterError("patch refused", cluster="prod-us", status=403, reason="Forbidden",
                         hint="ask for the fleetdeck-operator role")
    engine = FakeEngine([fleet_snapshot()], errors={"pause": error})
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        put_cursor(app, WEB_PROD_US)
        await pilot.press("p")
        await wait_for_screen(pilot, PauseModal)
        await pilot.press(*"because", "enter", "enter")
        await wait_for_screen(pilot, ErrorModal)
        text = screen_text(app)
        assert "Cluster error" in text
        assert "cluster prod-us: patch refused" in text
        assert "ask for the fleetdeck-operator role" in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)


async def test_progress_is_shown_while_the_sync_runs(build_app: AppFactory) -> None:
    """While engine.execute_plan is mid-way, the sync log shows the running operation per resource."""
    hold = asyncio.Event()
    engine = FakeEngine([fleet_snapshot()], hold_run=hold)
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        put_cursor(app, WEB_PROD_US)
        await pilot.press("s")
        await wait_for_screen(pilot, ConfirmSyncModal)
        await pilot.press("y")
        for _ in range(10):
            await pilot.pause()
        text = screen_text(app)
        assert "sync web on prod-us @ 4f9d2c1e: Running" in text
        assert "~ configured    Deployment/shop/web" in text
        hold.set()
        await settle(pilot)
        assert app.operations[-1].phase is OperationPhase.SUCCEEDED


async def test_rollback_from_history(engine: FakeEngine, build_app: AppFactory) -> None:
    """History lists revisions; enter previews one against live; `R` + `y` runs a rollback plan."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        put_cursor(app, WEB_PROD_US)
        await pilot.press("h")
        await wait_for_screen(pilot, HistoryScreen)
        await settle(pilot)
        text = screen_text(app)
        assert "4f9d2c1e" in text and "desired now" in text and "sync by alice" in text
        await pilot.press("down", "enter")
        await settle(pilot)
        assert engine.calls[-1] == ("preview", ("web", "prod-us", "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d"))
        assert "rollback preview 9e8d7c6b: 2 resource(s) would change" in screen_text(app)
        await pilot.press("R")
        await wait_for_screen(pilot, ConfirmSyncModal)
        assert "roll back web on cluster prod-us to 9e8d7c6b" in screen_text(app)
        await pilot.press("y")
        await settle(pilot)
        assert engine.runs[0].kind == "rollback"
        assert engine.runs[0].revision.startswith("9e8d7c6b")


API_STAGING = ("api", "staging")
"""Paused by alice: "load test in progress"."""


def fleet_screen(app: object) -> FleetScreen:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, FleetScreen)
    return screen


def status_line(app: object) -> str:
    return next(line for line in screen_text(app).splitlines() if line.startswith("sort:")).rstrip()  # type: ignore[arg-type]


async def mark(pilot: object, app: object, *keys: tuple[str, str]) -> None:
    for key in keys:
        put_cursor(app, key)
        await pilot.press("space")  # type: ignore[attr-defined]


async def test_bulk_sync_names_and_leaves_out_paused_rows(engine: FakeEngine, build_app: AppFactory) -> None:
    """A marked paused row is named in the bulk preview with who paused it and why, and left out by
    default; `y` runs the others and clears the marks."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await mark(pilot, app, WEB_PROD_US, API_STAGING)
        assert fleet_screen(app).marked == {WEB_PROD_US, API_STAGING}
        await pilot.press("s")
        modal = await wait_for_screen(pilot, ConfirmSyncModal)
        text = screen_text(app)
        assert "‖ paused by alice: load test in progress · left out of this sync (i includes it)" in text
        assert "Press y to run 1 of 2 plans." in text
        assert "1 paused row(s) left out (i includes them)." in text
        assert "i paused rows: left out" in text
        assert [(p.app, p.cluster) for p in modal.to_run()] == [WEB_PROD_US]
        await pilot.press("y")
        await settle(pilot)
        assert [(p.app, p.cluster) for p in engine.runs] == [WEB_PROD_US]
        assert fleet_screen(app).marked == frozenset()
        assert status_line(app).endswith("16 of 16 rows · ? help")


async def test_bulk_sync_includes_paused_rows_on_request(engine: FakeEngine, build_app: AppFactory) -> None:
    """`i` includes the paused rows: the preview says a manual sync still applies, `y` runs both."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await mark(pilot, app, WEB_PROD_US, API_STAGING)
        await pilot.press("s")
        await wait_for_screen(pilot, ConfirmSyncModal)
        await pilot.press("i")
        await pilot.pause()
        text = screen_text(app)
        assert "‖ paused by alice: load test in progress · a manual sync still applies; automated sync stays " \
               "paused" in text
        assert "Press y to run 2 of 2 plans." in text
        assert "Includes 1 paused row(s): their automated sync stays paused." in text
        await pilot.press("y")
        await settle(pilot)
        assert {(p.app, p.cluster) for p in engine.runs} == {WEB_PROD_US, API_STAGING}
        assert fleet_screen(app).marked == frozenset()


async def test_only_paused_rows_marked_runs_nothing_until_included(engine: FakeEngine,
                                                                   build_app: AppFactory) -> None:
    """Two paused rows marked: nothing runs by default (`y` does nothing), `i` then `y` runs both."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await mark(pilot, app, API_STAGING, ("billing", "prod-eu"))
        await pilot.press("s")
        await wait_for_screen(pilot, ConfirmSyncModal)
        assert "Nothing runs: 2 paused row(s) left out (i includes them)" in screen_text(app)
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmSyncModal) and engine.runs == []
        await pilot.press("i", "y")
        await settle(pilot)
        assert {(p.app, p.cluster) for p in engine.runs} == {API_STAGING, ("billing", "prod-eu")}


async def test_cancelled_bulk_sync_keeps_the_marks(engine: FakeEngine, build_app: AppFactory) -> None:
    """`n` in the bulk preview runs nothing and keeps the marks for another try."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await mark(pilot, app, WEB_PROD_US, WORKER_PROD_EU)
        await pilot.press("s")
        await wait_for_screen(pilot, ConfirmSyncModal)
        await pilot.press("n")
        await settle(pilot)
        assert engine.runs == []
        assert fleet_screen(app).marked == {WEB_PROD_US, WORKER_PROD_EU}
        assert "2 marked" in status_line(app)


async def test_single_paused_row_sync_says_it_still_applies(engine: FakeEngine, build_app: AppFactory) -> None:
    """`s` on one paused row (no marks) includes it, as `fleetdeck sync` does, and says the pause stays."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        put_cursor(app, API_STAGING)
        await pilot.press("s")
        await wait_for_screen(pilot, ConfirmSyncModal)
        text = screen_text(app)
        assert "paused by alice: load test in progress · a manual sync still applies" in text
        assert "i paused rows: included" in text
        await pilot.press("y")
        await settle(pilot)
        assert [(p.app, p.cluster) for p in engine.runs] == [API_STAGING]


async def test_bulk_pause_and_resume_clear_the_marks(engine: FakeEngine, build_app: AppFactory) -> None:
    """A confirmed bulk pause clears the marks; a cancelled resume keeps them, a confirmed one clears them."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await mark(pilot, app, WEB_PROD_US, WORKER_PROD_EU)
        await pilot.press("p")
        await wait_for_screen(pilot, PauseModal)
        await pilot.press(*"maintenance", "enter", "enter")
        await settle(pilot)
        assert {p[:2] for p in engine.pauses} == {WEB_PROD_US, WORKER_PROD_EU}
        assert fleet_screen(app).marked == frozenset()
        await mark(pilot, app, WEB_PROD_US, WORKER_PROD_EU)
        await pilot.press("u")
        await wait_for_screen(pilot, ConfirmModal)
        await pilot.press("n")
        await settle(pilot)
        assert fleet_screen(app).marked == {WEB_PROD_US, WORKER_PROD_EU}
        await pilot.press("u")
        await wait_for_screen(pilot, ConfirmModal)
        await pilot.press("y")
        await settle(pilot)
        assert set(engine.resumes) == {WEB_PROD_US, WORKER_PROD_EU}
        assert fleet_screen(app).marked == frozenset()


async def test_selective_sync_clears_resource_marks(engine: FakeEngine, build_app: AppFactory) -> None:
    """After a confirmed selective sync the app screen's resource marks are cleared."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        put_cursor(app, WEB_PROD_US)
        await pilot.press("enter")
        screen = await wait_for_screen(pilot, AppScreen)
        await pilot.press("space", "s")
        await wait_for_screen(pilot, ConfirmSyncModal)
        await pilot.press("y")
        await settle(pilot)
        assert engine.runs[0].selected == (ResourceKey("apps", "Deployment", "shop", "web"),)
        assert screen.marked == frozenset()
        assert "marked" not in screen_text(app)


async def test_small_terminal_keeps_what_y_does_on_screen(engine: FakeEngine, build_app: AppFactory) -> None:
    """At 80x24 a bulk preview longer than the screen scrolls its plans, and the lines that say what `y` runs,
    where it writes and which rows are left out stay visible; also after the terminal shrinks under it."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("a", "s")  # every row marked: 16 plans
        await wait_for_screen(pilot, ConfirmSyncModal)
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        text = screen_text(app)
        assert "Press y to run 11 of 16 plans. Writes to cluster(s): prod-eu," in text, text
        assert "2 paused row(s) left out (i includes them)." in text, text
        assert "y run, n cancel, d dry run: off, p prune: off, i paused rows: left" in text, text
