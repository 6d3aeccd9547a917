"""K8 on the console: a Throttled cluster says so in words (its rows' connection cell and its group line),
distinct from Degraded and Unreachable."""

from __future__ import annotations

import dataclasses

from core.model import ConnectionState
from tests.fixtures.snapshots import fleet_snapshot
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle
from tests.tui.screen import screen_text
from tui.glyphs import ASCII, UNICODE


def test_throttled_has_its_own_glyph_and_word() -> None:
    assert UNICODE.connection_label(ConnectionState.THROTTLED) == "◔ Throttled"
    assert ASCII.connection_label(ConnectionState.THROTTLED) == "t Throttled"
    glyphs = {UNICODE.connection[state] for state in ConnectionState}
    assert len(glyphs) == len(ConnectionState)  # every state tells itself apart


async def test_a_throttled_cluster_reads_throttled_on_its_rows(build_app: AppFactory) -> None:
    base = fleet_snapshot()
    clusters = tuple(dataclasses.replace(c, connection=ConnectionState.THROTTLED,
                                         message="throttled by the API server: 1 of 5 kinds waiting (ConfigMap)")
                     if c.name == "prod-eu" else c for c in base.clusters)
    engine = FakeEngine([dataclasses.replace(base, clusters=clusters)])
    app = build_app(engine)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        rows = [line for line in text.splitlines() if "prod-eu" in line]
        assert rows and all("◔ Throttled" in line for line in rows), text
        assert all("◐ Degraded" not in line and "Unreachable" not in line for line in rows), text
        others = [line for line in text.splitlines() if "prod-us" in line]
        assert others and not any("Throttled" in line for line in others), text
