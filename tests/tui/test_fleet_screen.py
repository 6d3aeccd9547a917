"""Fleet screen behaviour: keys → state (filter, sort, group, matrix, marks, navigation)."""

from __future__ import annotations

from dataclasses import replace

from textual.geometry import Region
from textual.widgets import ContentSwitcher

from core.model import AppName, ClusterName, Health, HealthStatus
from tests.fixtures.snapshots import big_fleet, with_app
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle
from tests.tui.screen import screen_text
from tui.fleet_query import FleetRow, GroupRow
from tui.messages import SnapshotChanged
from tui.screens.app_screen import AppScreen
from tui.screens.diff import DiffScreen
from tui.screens.fleet_screen import FleetScreen
from tui.screens.help import HelpScreen
from tui.widgets.fleet_table import FleetTable
from tui.widgets.footer import PALETTE_CLASS, KeysFooter, key_width, palette_width

WEB_PROD_US = (AppName("web"), ClusterName("prod-us"))


def fleet(app: object) -> FleetScreen:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, FleetScreen)
    return screen


def shown_keys(screen: FleetScreen) -> list[tuple[str, str]]:
    return [r.key for r in screen.rows if isinstance(r, FleetRow)]


async def test_every_row_and_the_counts_are_shown(engine: FakeEngine, build_app: AppFactory) -> None:
    """All 16 rows reach the table and the header counts them in words."""
    messages: list[object] = []
    app = build_app(engine)
    async with app.run_test(size=(120, 36), message_hook=messages.append) as pilot:
        await settle(pilot)
        assert len(fleet(app).query_one(FleetTable).rows) == 16
        text = screen_text(app)
        assert "6 apps (16 rows) · 3 OutOfSync · 1 Degraded" in text
        assert "1 cluster unreachable" in text
        assert "✗ OutOfSync" in text and "⚠ stale" in text and "⚑ pin+3" in text
        assert any(isinstance(m, SnapshotChanged) for m in messages)
        assert engine.started


async def test_filter_by_state_word(engine: FakeEngine, build_app: AppFactory) -> None:
    """`/outofsync` keeps only the out-of-sync rows."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"outofsync", "enter")
        await pilot.pause()
        screen = fleet(app)
        assert screen.filter_text == "outofsync"
        assert shown_keys(screen) == [("api", "staging"), ("web", "prod-us"), ("worker", "prod-eu")]
        assert screen.query_one(FleetTable).has_focus


async def test_filter_by_label_and_negation(engine: FakeEngine, build_app: AppFactory) -> None:
    """`env=staging -synced` keeps staging rows that are not synced; escape clears the filter."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"env=staging -synced")
        await pilot.pause()
        assert shown_keys(fleet(app)) == [("api", "staging"), ("search", "staging")]
        await pilot.press("escape")
        await pilot.pause()
        assert fleet(app).filter_text == ""
        assert len(shown_keys(fleet(app))) == 16


async def test_sort_cycles_and_reverses(engine: FakeEngine, build_app: AppFactory) -> None:
    """`o` cycles name → cluster → sync (worst first); `O` reverses."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("o")
        assert shown_keys(fleet(app))[0] == ("api", "edge-ap")
        assert shown_keys(fleet(app))[2] == ("api", "prod-eu")
        await pilot.press("o")
        assert fleet(app).sort == "sync"
        assert shown_keys(fleet(app))[:2] == [("web", "prod-us"), ("worker", "prod-eu")]
        await pilot.press("O")
        assert shown_keys(fleet(app))[-1] == ("web", "prod-us")


async def test_group_by_cluster_then_env(engine: FakeEngine, build_app: AppFactory) -> None:
    """`g` groups under cluster headings, then env headings; the cursor skips headings."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("g")
        headings = [r.label for r in fleet(app).rows if isinstance(r, GroupRow)]
        assert headings == ["edge-ap", "prod-eu", "prod-us", "staging"]
        assert isinstance(fleet(app).query_one(FleetTable).cursor_row, FleetRow)
        await pilot.press("g")
        assert [r.label for r in fleet(app).rows if isinstance(r, GroupRow)] == ["prod", "staging"]
        await pilot.pause()
        assert "prod  12 rows · 2 OutOfSync" in screen_text(app)


async def test_matrix_toggle_keeps_the_selected_row(engine: FakeEngine, build_app: AppFactory) -> None:
    """`m` switches to apps × clusters on the same (app, cluster), and back."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        fleet(app).query_one(FleetTable).move_to(WEB_PROD_US)
        await pilot.press("m")
        await pilot.pause()
        assert fleet(app).query_one(ContentSwitcher).current == "matrix"
        assert fleet(app).cursor_key == WEB_PROD_US
        text = screen_text(app)
        assert "edge-ap" in text and "4f9d2c1 ✗♥" in text
        await pilot.press("right")
        assert fleet(app).cursor_key == ("web", "staging")
        await pilot.press("m")
        await pilot.pause()
        assert fleet(app).query_one(ContentSwitcher).current == "table"
        assert fleet(app).cursor_key == ("web", "staging")


async def test_enter_opens_the_app_and_d_the_diff(engine: FakeEngine, build_app: AppFactory) -> None:
    """Enter opens the app screen of the cursor row; escape returns; `d` opens its diff."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        fleet(app).query_one(FleetTable).move_to(WEB_PROD_US)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AppScreen) and app.screen.key == WEB_PROD_US
        assert "Deployment/shop/web  ✗ OutOfSync" in screen_text(app)
        await pilot.press("escape")
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, DiffScreen)
        text = screen_text(app)
        assert "-   replicas: 5" in text and "+   replicas: 3" in text
        assert "changed by kubectl-edit 3m ago" in text


async def test_space_marks_rows_for_bulk_actions(engine: FakeEngine, build_app: AppFactory) -> None:
    """Space marks the cursor row and moves down; `A` clears; marks show as a glyph and a count."""
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("space", "space")
        screen = fleet(app)
        assert screen.marked == {("api", "edge-ap"), ("api", "prod-eu")}
        assert screen.targets() == (("api", "edge-ap"), ("api", "prod-eu"))
        assert "2 marked" in screen_text(app)
        assert screen_text(app).count("●") >= 2
        await pilot.press("A")
        assert screen.marked == frozenset()
        assert screen.targets() == (("api", "prod-us"),)


async def test_a_new_snapshot_repaints_only_the_changed_row(build_app: AppFactory) -> None:
    """With 5,000 rows, one changed row costs one line refresh, not a whole-table repaint."""
    first = big_fleet(5000)
    changed_app = replace(first.apps[3], health=Health(HealthStatus.DEGRADED, "boom"))
    second = with_app(first, changed_app)
    engine = FakeEngine([first])
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        table = fleet(app).query_one(FleetTable)
        regions: list[Region] = []
        original = table.refresh

        def spy(*regions_: Region, **kwargs: object) -> object:
            regions.extend(regions_)
            if not regions_:
                regions.append(Region(0, 0, table.size.width, table.size.height))
            return original(*regions_, **kwargs)  # type: ignore[arg-type]

        table.refresh = spy  # type: ignore[method-assign, assignment]
        app.post_message(SnapshotChanged(second))
        await pilot.pause()
        assert table.refreshed_keys == [changed_app.id]
        assert sum(r.height for r in regions) == 1
        assert "✘ Degraded" in screen_text(app)


async def test_large_fleet_scrolls_to_the_end(build_app: AppFactory) -> None:
    """`end` on 5,000 rows puts the cursor on the last row and scrolls it into view."""
    engine = FakeEngine([big_fleet(5000)])
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("end")
        await pilot.pause()
        table = fleet(app).query_one(FleetTable)
        assert table.cursor == 4999
        assert "app-00249" in screen_text(app)


async def test_narrow_terminal_collapses_columns(engine: FakeEngine, build_app: AppFactory) -> None:
    """At 80x24 the low-priority columns go first; status words and flags stay."""
    app = build_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "SYNC" in text and "HEALTH" in text and "FLAGS" in text
        assert "MESSAGE" not in text and "CLUSTER STATE" not in text
        assert "✗ OutOfSync" in text
        assert max(len(line) for line in text.splitlines()) <= 80


def fleet_table_width(app: object) -> int:
    return app.screen_stack[0].query_one(FleetTable).width_for_all_columns()  # type: ignore[attr-defined, no-any-return]


def footer_line(app: object) -> str:
    return screen_text(app).splitlines()[-1].rstrip()  # type: ignore[arg-type]


async def test_narrow_terminal_says_what_it_hides(engine: FakeEngine, build_app: AppFactory) -> None:
    """At 80x24 the table header ends with `›`, the status line counts the hidden columns, help names them
    with the width that shows them, and the footer ends with `? 6 more keys` before `^p palette`."""
    app = build_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        lines = screen_text(app).splitlines()
        header = next(line for line in lines if line.startswith("  APP "))
        assert "OWNER" in header and header.rstrip().endswith("REVISION      ›")
        status = next(line for line in lines if line.startswith("sort:"))
        assert "› 3 columns hidden · ? help" in status
        assert footer_line(app).endswith("? 6 more keys       ▏^p palette")
        footer = app.screen.query_one(KeysFooter)
        assert footer.hidden_keys == ("Mark", "History", "Matrix", "Group", "Help", "Quit")
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = " ".join(app.screen.notes)
        assert "Hidden at this width (› at the end of the table header): DRIFT, CLUSTER STATE, MESSAGE." in text
        wide = fleet_table_width(app)
        assert f"A terminal {wide} columns wide shows every column" in text
        await pilot.press("escape")
        for width, hidden in ((wide - 1, "› 1 column hidden"), (wide, "")):
            await pilot.resize_terminal(width, 24)
            await settle(pilot)
            await pilot.pause()
            lines = screen_text(app).splitlines()
            status = next(line for line in lines if line.startswith("sort:"))
            assert (hidden in status) if hidden else ("hidden" not in status)
        assert next(line for line in lines if line.startswith("  APP ")).rstrip().endswith("MESSAGE")
        assert "  web      prod-eu " in "\n".join(lines)
        assert "h History  ? 4 more keys" in footer_line(app)


async def test_footer_measures_keys_as_textual_lays_them_out(engine: FakeEngine, build_app: AppFactory) -> None:
    """The widths the footer computes are the widths Textual gives its keys (a Textual upgrade that
    changes the footer's CSS fails here, not silently on a terminal)."""
    app = build_app(engine)
    async with app.run_test(size=(160, 24)) as pilot:
        await settle(pilot)
        footer = app.screen.query_one(KeysFooter)
        assert footer.hidden_keys == ()
        for child in footer.children:
            key_display, description = getattr(child, "key_display"), getattr(child, "description")  # noqa: B009
            expected = (palette_width if child.has_class(PALETTE_CLASS) else key_width)(key_display, description)
            assert child.outer_size.width == expected, (key_display, description)
        assert "? Help  q Quit" in footer_line(app)


async def test_header_says_when_the_picture_lags_behind_the_clusters(build_app: AppFactory) -> None:
    """A snapshot published 2.5 s after the first change it reflects (a starved engine) says so in the
    header; one published at the usual pace says nothing."""
    from tests.fixtures.snapshots import fleet_snapshot

    app = build_app(FakeEngine([replace(fleet_snapshot(), lag=2.5)]))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert "updates 2.5s behind" in screen_text(app)
    app = build_app(FakeEngine([replace(fleet_snapshot(), lag=0.3)]))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert "behind" not in screen_text(app)
