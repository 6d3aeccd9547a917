"""The incremental row path (``FleetView``) gives exactly what a full ``build_rows`` gives.

Randomized sequences of snapshots (changed, added, removed and reordered rows, a cluster changing state)
are fed to a ``FleetView`` and, through the app, to the fleet screen; after every snapshot the rows, their
order, the group headings and the header counts are compared with a rebuild from scratch.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from textual.geometry import Region

from core.model import (
    AppControl,
    AppName,
    AppStatus,
    ClusterName,
    ConnectionState,
    FleetSnapshot,
    Health,
    HealthStatus,
    SyncStatus,
    frozen_mapping,
)
from tests.fixtures.snapshots import big_fleet, with_app
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle
from tests.tui.screen import screen_text
from tui.fleet_query import FleetRow, GroupBy, GroupRow, SortKey, TableRow, build_rows, count_fleet
from tui.fleet_view import FleetView, ViewChange, ViewParams
from tui.messages import SnapshotChanged
from tui.screens.fleet_screen import FleetScreen
from tui.widgets.fleet_table import FleetTable


def _mutate(rng: random.Random, app: AppStatus) -> AppStatus:
    choice = rng.randrange(7)
    if choice == 0:
        return replace(app, sync=rng.choice(list(SyncStatus)))
    if choice == 1:
        return replace(app, health=Health(rng.choice(list(HealthStatus)), rng.choice(["", "boom"])))
    if choice == 2:
        return replace(app, behind=rng.randrange(4), control=AppControl(pinned=rng.choice([None, "abc"])))
    if choice == 3:
        return replace(app, labels=frozen_mapping({"env": rng.choice(["prod", "staging", ""])}))
    if choice == 4:
        return replace(app, control=AppControl(paused=rng.random() < 0.5, reason="r"))
    if choice == 5:
        return replace(app, app=AppName(f"{app.app}-{rng.randrange(1000):03d}-with-a-longer-name"))
    return replace(app, stale=not app.stale)


def _next(rng: random.Random, snapshot: FleetSnapshot) -> FleetSnapshot:
    """A few changed rows, sometimes added, removed or reordered rows, rarely a cluster change."""
    apps = list(snapshot.apps)
    for _ in range(rng.randrange(1, 4)):
        index = rng.randrange(len(apps))
        apps[index] = _mutate(rng, apps[index])
    roll = rng.random()
    if roll < 0.15 and len(apps) > 10:
        del apps[rng.randrange(len(apps))]
    elif roll < 0.3:
        base = rng.choice(apps)
        key_taken = {a.id for a in apps}
        fresh = replace(base, app=AppName(f"new-{rng.randrange(10**6):06d}"))
        if fresh.id not in key_taken:
            apps.insert(rng.randrange(len(apps) + 1), fresh)
    elif roll < 0.35:
        i, j = rng.randrange(len(apps)), rng.randrange(len(apps))
        apps[i], apps[j] = apps[j], apps[i]
    clusters = snapshot.clusters
    if rng.random() < 0.05:
        index = rng.randrange(len(clusters))
        state = rng.choice([ConnectionState.CONNECTED, ConnectionState.UNREACHABLE])
        clusters = (*clusters[:index], replace(clusters[index], connection=state), *clusters[index + 1:])
    elif rng.random() < 0.2:  # an equal but new cluster status, as the engine publishes each time
        clusters = tuple(replace(c) for c in clusters)
    return replace(snapshot, generation=snapshot.generation + 1, apps=tuple(apps), clusters=clusters)


def _start(rows: int, rng: random.Random) -> FleetSnapshot:
    first = big_fleet(rows, clusters_count=7)
    return replace(first, apps=tuple(_mutate(rng, a) if rng.random() < 0.3 else a for a in first.apps))


def _shape(rows: object) -> list[object]:
    """Keys of app rows and whole headings, in order."""
    return [r if isinstance(r, GroupRow) else r.key for r in rows]  # type: ignore[attr-defined]


PARAMS = [
    ViewParams(sort=sort, reverse=reverse, group=group, filter_text=text)
    for sort in SortKey
    for reverse in (False, True)
    for group in GroupBy
    for text in ("", "outofsync", "-degraded env=prod", "c03")
]


@pytest.mark.parametrize("params", PARAMS, ids=lambda p: f"{p.sort}-{p.reverse}-{p.group}-{p.filter_text or 'all'}")
def test_view_matches_a_full_rebuild(params: ViewParams) -> None:
    """Every order, grouping and filter: after each snapshot the rows are those of ``build_rows``."""
    rng = random.Random(hash((params.sort, params.reverse, params.group, params.filter_text)) & 0xFFFF)
    snapshot = _start(300, rng)
    view = FleetView()
    view.apply(snapshot, params)
    rebuilds = view.full_rebuilds
    for _ in range(60):
        snapshot = _next(rng, snapshot)
        view.apply(snapshot)
        expected = build_rows(snapshot, filter_text=params.filter_text, sort=params.sort, reverse=params.reverse,
                              group=params.group)
        assert _shape(view) == _shape(expected)
        assert _shape(view[i] for i in range(len(view))) == _shape(expected)
        assert view.counts == count_fleet(snapshot)
        assert view.row_count == sum(isinstance(r, FleetRow) for r in expected)
        for index, row in enumerate(expected):
            assert view.position(row.key) == index
        assert [r.app for r in view.fleet_rows()] == [r.app for r in expected if isinstance(r, FleetRow)]
        assert [r.cluster for r in view.fleet_rows()] == [r.cluster for r in expected if isinstance(r, FleetRow)]
    assert view.full_rebuilds - rebuilds < 10, "most snapshots take the incremental path"


def test_many_changed_rows_rebuild_from_scratch() -> None:
    """More than 5% changed rows: a full rebuild, still the same rows."""
    snapshot = big_fleet(200)
    view = FleetView()
    view.apply(snapshot)
    changed = replace(snapshot, apps=tuple(replace(a, sync=SyncStatus.OUT_OF_SYNC) if i % 3 else a
                                           for i, a in enumerate(snapshot.apps)))
    change = view.apply(changed)
    assert change.full and view.full_rebuilds == 2
    assert _shape(view) == _shape(build_rows(changed))


def test_one_changed_row_in_place_is_reported_alone() -> None:
    """A change that keeps the row's place (a message) is one replaced row, nothing moves."""
    snapshot = big_fleet(1000)
    view = FleetView(ViewParams(sort=SortKey.HEALTH, group=GroupBy.CLUSTER))
    view.apply(snapshot)
    app = replace(snapshot.apps[10], health=Health(HealthStatus.HEALTHY, "fine"))
    change = view.apply(with_app(snapshot, app))
    assert not change.full and not change.moved
    assert [r.key for r in change.changed] == [app.id] and change.changed[0].app is app
    assert change.headings == ()



def test_statuses_made_again_but_equal_change_nothing() -> None:
    """A Git poll re-evaluates every row into new but equal statuses: nothing to repaint, no rebuild; a
    real change after that is still one row in place, and the rows are still those of ``build_rows``."""
    snapshot = big_fleet(200)
    view = FleetView(ViewParams(group=GroupBy.CLUSTER))
    view.apply(snapshot)
    again = replace(snapshot, apps=tuple(replace(a) for a in snapshot.apps))
    assert all(a is not b and a == b for a, b in zip(snapshot.apps, again.apps, strict=True))
    change = view.apply(again)
    assert change == ViewChange(full=False) and view.full_rebuilds == 1
    app = replace(again.apps[7], health=Health(HealthStatus.HEALTHY, "fine"))
    changed = with_app(again, app)
    change = view.apply(changed)
    assert not change.full and [r.key for r in change.changed] == [app.id]
    assert _shape(view) == _shape(build_rows(changed, group=GroupBy.CLUSTER))
    assert view.counts == count_fleet(changed)

def _table_shape(table: FleetTable) -> list[object]:
    return _shape(table.rows[i] for i in range(len(table.rows)))


def _expected(screen: FleetScreen, snapshot: FleetSnapshot) -> tuple[TableRow, ...]:
    return build_rows(snapshot, filter_text=screen.filter_text, sort=screen.sort, reverse=screen.reverse,
                      group=screen.group)


async def test_screen_rows_and_counts_match_a_full_rebuild(build_app: AppFactory) -> None:
    """Through the app: random snapshots under each sort, reverse, group and a filter; table and header
    always agree with ``build_rows`` and ``count_fleet`` from scratch."""
    rng = random.Random(7)
    snapshot = _start(400, rng)
    engine = FakeEngine([snapshot])
    app = build_app(engine)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        table = screen.query_one(FleetTable)
        for step in range(40):
            if step % 8 == 0:
                await pilot.press("o")
            if step % 12 == 5:
                await pilot.press("g")
            if step % 10 == 3:
                await pilot.press("O")
            if step == 20:
                screen.filter_text = "-synced"
            snapshot = _next(rng, snapshot)
            app.post_message(SnapshotChanged(snapshot))
            await pilot.pause()
            assert app.snapshot is snapshot
            assert _table_shape(table) == _shape(_expected(screen, snapshot))
            counts = count_fleet(snapshot)
            assert f"{counts.apps} apps ({counts.rows} rows) · {counts.out_of_sync} OutOfSync" in screen_text(app)
            cursor = table.cursor_row
            if cursor is not None:
                assert table.rows[table.cursor] is cursor
        shown = sum(isinstance(r, FleetRow) for r in _expected(screen, snapshot))
        assert f"{shown} of {len(snapshot.apps)} rows" in screen_text(app)


@pytest.mark.parametrize("group", list(GroupBy))
async def test_one_changed_row_refreshes_one_line(build_app: AppFactory, group: GroupBy) -> None:
    """At 5,000 rows, sorted by health and grouped or not: a change that keeps the row's place refreshes
    exactly its line, through the incremental path."""
    first = big_fleet(5000)
    engine = FakeEngine([first])
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        screen.sort = SortKey.HEALTH
        screen.group = group
        await pilot.pause()
        table = screen.query_one(FleetTable)
        changed = replace(first.apps[2], revision=None)  # no column gets wider, the row keeps its place
        rebuilds = screen.rows.full_rebuilds  # type: ignore[attr-defined]
        regions: list[Region] = []
        original = table.refresh

        def spy(*regions_: Region, **kwargs: object) -> object:
            regions.extend(regions_)
            if not regions_:
                regions.append(Region(0, 0, table.size.width, table.size.height))
            return original(*regions_, **kwargs)  # type: ignore[arg-type]

        table.refresh = spy  # type: ignore[method-assign, assignment]
        app.post_message(SnapshotChanged(with_app(first, changed)))
        await pilot.pause()
        assert screen.rows.full_rebuilds == rebuilds  # type: ignore[attr-defined]
        assert table.refreshed_keys == [changed.id]
        assert sum(r.height for r in regions) == 1
        row = table.rows[table.rows.index(changed.id)]
        assert isinstance(row, FleetRow) and row.app is changed


async def test_a_moved_row_keeps_the_cursor_on_its_row(build_app: AppFactory) -> None:
    """A row that sorts elsewhere after a change moves; the cursor stays on the row it was on."""
    first = big_fleet(500)
    engine = FakeEngine([first])
    app = build_app(engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        screen.sort = SortKey.SYNC
        await pilot.pause()
        table = screen.query_one(FleetTable)
        await pilot.press("down", "down", "down")
        key = table.cursor_key
        moved = replace(first.apps[40], sync=SyncStatus.OUT_OF_SYNC)
        second = with_app(first, moved)
        app.post_message(SnapshotChanged(second))
        await pilot.pause()
        assert table.cursor_key == key
        assert table.rows[0].key == moved.id
        assert _table_shape(table) == _shape(_expected(screen, second))
        removed = replace(second, apps=tuple(a for a in second.apps if a.id != key))
        app.post_message(SnapshotChanged(removed))
        await pilot.pause()
        assert _table_shape(table) == _shape(_expected(screen, removed))
        assert table.cursor_row is not None
        assert ClusterName("c00") in {r.key[1] for r in screen.rows if isinstance(r, FleetRow)}


@pytest.mark.parametrize("group", list(GroupBy))
def test_a_cluster_going_unreachable_updates_its_rows_in_place(group: GroupBy) -> None:
    """A changed cluster status re-makes only that cluster's rows (no rebuild); filters and headings
    that read the cluster follow."""
    snapshot = big_fleet(2000, clusters_count=40)
    for text in ("", "unreachable", "-unreachable"):
        view = FleetView(ViewParams(group=group, filter_text=text))
        view.apply(snapshot)
        list(view)  # hand out every row and heading, as a scrolled table would
        down = replace(snapshot.clusters[3], connection=ConnectionState.UNREACHABLE)
        second = replace(snapshot, generation=2, clusters=(*snapshot.clusters[:3], down, *snapshot.clusters[4:]))
        change = view.apply(second)
        assert not change.full and view.full_rebuilds == 1
        expected = build_rows(second, filter_text=text, group=group)
        assert _shape(view) == _shape(expected)
        assert [r.cluster for r in view.fleet_rows()] == [r.cluster for r in expected if isinstance(r, FleetRow)]
        assert view.counts == count_fleet(second)
