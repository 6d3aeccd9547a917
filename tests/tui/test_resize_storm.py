"""Row R5: a resize storm. 40 terminal resizes in a row (between 60×20, 80×24, 120×36 and 200×50) on a
5,000-row fleet: no crash, the last layout is the one for the final size (no line wider than the terminal,
the status words still shown), and each resize costs about the same whether the fleet has 50 or 5,000 rows
(the table lays out the visible rows only)."""

from __future__ import annotations

import time

from tests.fixtures.snapshots import big_fleet
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle
from tests.tui.screen import screen_text

SIZES = [(60, 20), (80, 24), (120, 36), (200, 50)]
RESIZES = 40


async def storm(build_app: AppFactory, rows: int) -> float:
    """Seconds per resize over the storm; asserts the final screen fits."""
    app = build_app(FakeEngine([big_fleet(rows)]))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        started = time.perf_counter()
        for i in range(RESIZES):
            await pilot.resize_terminal(*SIZES[i % len(SIZES)])
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        per_resize = (time.perf_counter() - started) / (RESIZES + 1)
        text = screen_text(app)
        assert max(len(line) for line in text.splitlines()) <= 80
        assert "SYNC" in text and "HEALTH" in text and "app-0" in text
    return per_resize


async def test_resize_storm_does_not_crash_or_scale_with_the_fleet(build_app: AppFactory) -> None:
    small = await storm(build_app, 50)
    large = await storm(build_app, 5000)
    print(f"\nR5: {RESIZES} resizes, {small * 1000:.1f} ms each on 50 rows, {large * 1000:.1f} ms each on 5,000 rows")
    assert large < max(3 * small, small + 0.02), (small, large)
