"""Row B12, the rest: cluster strings with bidi overrides, C1 controls, carriage returns, emoji, CJK and a
10,000-character message. The console removes the controls, keeps the readable characters, and no line
of the screen is wider than the terminal (double-width characters counted as two cells)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from rich.cells import cell_len

from core.model import AppName, FleetSnapshot, Health, HealthStatus
from tests.fixtures.snapshots import hostile_snapshot
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle
from tests.tui.screen import screen_text, terminal_bytes

WIDE = "支付服务🚀"
BIDI = "\u202egnp.exe\u202c"
MESSAGE = "\r\x9b31m" + "注意" * 5_000  # 10,000 characters, 20,000 cells


def wide_snapshot() -> FleetSnapshot:
    snap = hostile_snapshot()
    app = replace(snap.apps[0], app=AppName(WIDE + BIDI), health=Health(HealthStatus.DEGRADED, MESSAGE))
    return replace(snap, apps=(app,))


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
async def test_wide_bidi_and_long_strings_fit_and_stay_inert(build_app: AppFactory, size: tuple[int, int]) -> None:
    app = build_app(FakeEngine([wide_snapshot()]))
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        text = screen_text(app)
        raw = terminal_bytes(app)
        width = size[0]
        assert WIDE in text or WIDE[:2] in text, "CJK and emoji are shown, not dropped"
        assert all(cell_len(line) <= width for line in text.splitlines()), \
            [cell_len(line) for line in text.splitlines() if cell_len(line) > width]
        for forbidden in ("\u202e", "\u202c", "\x9b", "\r"):
            assert forbidden not in raw, repr(forbidden)
        if width >= 120:  # at 80 columns the name column ends after the double-width characters
            assert WIDE + "gnp.exe" in text, "the text around a bidi override stays readable"
