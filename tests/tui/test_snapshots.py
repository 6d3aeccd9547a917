"""Snapshot tests: one SVG per visual state, stored under the top-level ``snapshots/test_snapshots/``.

Deterministic by construction: frozen clock, fixed fixture fleet, no cursor blink, fixed theme
(textual-dark), Unicode glyphs forced. Regenerate with ``uv run pytest tests/tui --snapshot-update`` and
review the SVGs before committing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot

from core.errors import ClusterError
from tests.fixtures.snapshots import fleet_snapshot
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle, wait_for_screen
from tui.screens.app_screen import AppScreen
from tui.screens.confirm import ConfirmSyncModal
from tui.screens.diff import DiffScreen
from tui.screens.error import ErrorModal
from tui.screens.history import HistoryScreen
from tui.screens.pause import PauseModal
from tui.widgets.fleet_table import FleetTable

SnapCompare = Callable[..., bool]
WEB_PROD_US = ("web", "prod-us")


def steps(*actions: Any) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """A ``run_before`` that settles, then runs each action: a key, a tuple of keys, a screen type to
    wait for, or ``("cursor", key)`` to put the fleet cursor on a row."""

    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for action in actions:
            if isinstance(action, type):
                await wait_for_screen(pilot, action)
            elif isinstance(action, tuple) and action and action[0] == "cursor":
                pilot.app.screen.query_one(FleetTable).move_to(action[1])
            elif action == "settle":
                await settle(pilot)
            elif action == "wait":
                for _ in range(10):
                    await pilot.pause()
            else:
                await pilot.press(*(action if isinstance(action, tuple) else (action,)))
            await pilot.pause()

    return run


def test_fleet_overview(snap_compare: SnapCompare, engine: FakeEngine, build_app: AppFactory) -> None:
    """You should see 16 rows over 4 clusters: ✓/✗/? sync words, ♥/✘/↻ health words, stale edge-ap rows,
    paused and pinned badges, the header counts (3 OutOfSync, 1 Degraded, 1 cluster unreachable)."""
    assert snap_compare(build_app(engine), terminal_size=(120, 36), run_before=steps())


def test_fleet_filtered(snap_compare: SnapCompare, engine: FakeEngine, build_app: AppFactory) -> None:
    """You should see the filter box holding `env=prod -synced` and only prod rows that are not Synced
    (web on prod-us, worker on prod-eu)."""
    assert snap_compare(build_app(engine), terminal_size=(120, 36),
                        run_before=steps("slash", tuple("env=prod -synced"), "enter"))


def test_fleet_matrix(snap_compare: SnapCompare, engine: FakeEngine, build_app: AppFactory) -> None:
    """You should see apps down, clusters across; each cell a short SHA with sync and health glyphs, `·`
    where an app does not run; billing on prod-eu on the older pinned SHA; the legend in the status line."""
    assert snap_compare(build_app(engine), terminal_size=(120, 36),
                        run_before=steps(("cursor", WEB_PROD_US), "m"))


def test_fleet_grouped_at_80x24(snap_compare: SnapCompare, engine: FakeEngine, build_app: AppFactory) -> None:
    """You should see the 80x24 layout: message and cluster-state columns collapsed, rows grouped under
    cluster headings with counts, the footer's keys."""
    assert snap_compare(build_app(engine), terminal_size=(80, 24), run_before=steps("g"))


def test_app_tree(snap_compare: SnapCompare, engine: FakeEngine, build_app: AppFactory) -> None:
    """You should see web on prod-us: summary, source and revision lines, then the resource tree
    (Deployment → ReplicaSet → Pods) with per-resource ✗ OutOfSync / ✓ Synced and change counts; the
    Deployment marked (●) for a selective sync."""
    assert snap_compare(build_app(engine), terminal_size=(120, 36),
                        run_before=steps(("cursor", WEB_PROD_US), "enter", AppScreen, "space"))


def test_app_paused_and_failing(snap_compare: SnapCompare, engine: FakeEngine, build_app: AppFactory) -> None:
    """You should see billing on prod-eu: paused by bob 5h ago with the reason, pinned to 1a2b3c4d by a
    rollback, 3 commits behind the branch, resume (u) clearing the pin."""
    assert snap_compare(build_app(engine), terminal_size=(120, 36),
                        run_before=steps(("cursor", ("billing", "prod-eu")), "enter", AppScreen))


def test_diff_unified(snap_compare: SnapCompare, engine: FakeEngine, build_app: AppFactory) -> None:
    """You should see the whole-app diff of web on prod-us: each resource's heading and field summary,
    `-` live / `+` desired lines coloured as YAML, unchanged runs folded, and "← changed by kubectl-edit
    3m ago" under the drifted replicas."""
    assert snap_compare(build_app(engine), terminal_size=(120, 36),
                        run_before=steps(("cursor", WEB_PROD_US), "d", DiffScreen))


def test_diff_side_by_side(snap_compare: SnapCompare, engine: FakeEngine, build_app: AppFactory) -> None:
    """You should see the same diff at 160x40 in two columns: live on the left, desired on the right,
    changed lines paired, blame rows across the full width."""
    assert snap_compare(build_app(engine), terminal_size=(160, 40),
                        run_before=steps(("cursor", WEB_PROD_US), "d", DiffScreen, "v"))


def test_history_with_preview(snap_compare: SnapCompare, engine: FakeEngine, build_app: AppFactory) -> None:
    """You should see web on prod-us's revisions (newest first, the desired one marked, recorded syncs
    labelled by what started them: self-heal and manual by dana, automated by alice, manual by carol) and,
    below, the rollback preview of 9e8d7c6b against live."""
    assert snap_compare(build_app(engine), terminal_size=(120, 36),
                        run_before=steps(("cursor", WEB_PROD_US), "h", HistoryScreen, "settle", "down",
                                         "enter", "settle"))


def test_sync_confirmation(snap_compare: SnapCompare, engine: FakeEngine, build_app: AppFactory) -> None:
    """You should see the combined preview of two marked rows: sync web on prod-us (2 configured) and
    worker on prod-eu (1 created, 1 prune-skipped), which clusters get writes, and the y/n/d/p keys."""
    assert snap_compare(build_app(engine), terminal_size=(120, 36),
                        run_before=steps(("cursor", WEB_PROD_US), "space", ("cursor", ("worker", "prod-eu")),
                                         "space", "s", ConfirmSyncModal))


def test_bulk_sync_with_a_paused_row(snap_compare: SnapCompare, engine: FakeEngine, build_app: AppFactory) -> None:
    """You should see the bulk preview of web on prod-us and the paused api on staging: api's plan under
    "‖ paused by alice: load test in progress · left out of this sync (i includes it)", "Press y to run 1
    of 2 plans", the line "1 paused row(s) left out (i includes them).", and `i Paused` in the keys."""
    assert snap_compare(build_app(engine), terminal_size=(120, 36),
                        run_before=steps(("cursor", WEB_PROD_US), "space", ("cursor", ("api", "staging")),
                                         "space", "s", ConfirmSyncModal))


def test_sync_in_progress(snap_compare: SnapCompare, build_app: AppFactory) -> None:
    """You should see the sync log open under the table: "↻ sync web on prod-us … Running" with the first
    resource configured; the web row still ✗ OutOfSync (the drift clears only with a new snapshot)."""
    engine = FakeEngine([fleet_snapshot()], hold_run=asyncio.Event())
    assert snap_compare(build_app(engine), terminal_size=(120, 36),
                        run_before=steps(("cursor", WEB_PROD_US), "s", ConfirmSyncModal, "y", "wait"))


def test_read_only_banner(snap_compare: SnapCompare, build_app: AppFactory) -> None:
    """You should see the READ-ONLY AUDIT MODE banner on top and a footer without Sync or Pause."""
    engine = FakeEngine([fleet_snapshot(read_only=True)], read_only=True)
    assert snap_compare(build_app(engine), terminal_size=(120, 36), run_before=steps())


def test_error_modal(snap_compare: SnapCompare, build_app: AppFactory) -> None:
    """You should see an error dialog over the fleet: "Error: Cluster error", what failed on which
    cluster, the context (while pausing) and what to do."""
    error = ClusterError("patch configmaps \"fleetdeck-control\" is forbidden", cluster="prod-us", status=403,
                         reason="Forbidden", hint="ask for the fleetdeck-operator role on prod-us")
    engine = FakeEngine([fleet_snapshot()], errors={"pause": error})
    assert snap_compare(build_app(engine), terminal_size=(120, 36),
                        run_before=steps(("cursor", WEB_PROD_US), "p", PauseModal, tuple("incident 4711"),
                                         "enter", "enter", ErrorModal))


def test_pause_dialog(snap_compare: SnapCompare, engine: FakeEngine, build_app: AppFactory) -> None:
    """You should see the pause dialog naming web on cluster prod-us, a typed reason and an expiry."""
    assert snap_compare(build_app(engine), terminal_size=(120, 36),
                        run_before=steps(("cursor", WEB_PROD_US), "p", PauseModal, tuple("incident 4711"),
                                         "enter", tuple("2h")))
