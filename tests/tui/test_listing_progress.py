"""K3 on the console: while a cluster's big list is under way, the header says which cluster is listing what
and how many objects so far; the app screen's cluster line says it too."""

from __future__ import annotations

import dataclasses

from core.model import ConnectionState
from tests.fixtures.snapshots import fleet_snapshot
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle
from tests.tui.screen import screen_text
from tui.fleet_query import count_fleet

LISTING = "listing ConfigMap: 12,500 objects so far"


def listing_snapshot(*names: str):  # type: ignore[no-untyped-def]
    base = fleet_snapshot()
    clusters = tuple(dataclasses.replace(c, connection=ConnectionState.CONNECTING, listing=LISTING)
                     if c.name in names else c for c in base.clusters)
    return dataclasses.replace(base, clusters=clusters)


def test_the_header_count_names_one_listing_cluster_and_counts_several() -> None:
    assert count_fleet(listing_snapshot("prod-eu")).listing == f"prod-eu: {LISTING}"
    assert count_fleet(listing_snapshot("prod-eu", "staging")).listing == "2 clusters listing"
    assert count_fleet(fleet_snapshot()).listing == ""


async def test_the_console_header_shows_the_list_under_way(build_app: AppFactory) -> None:
    app = build_app(FakeEngine([listing_snapshot("prod-eu")]))
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert f"prod-eu: {LISTING}" in text, text
