"""The console's sync confirmation when the sync takes fields over from another field manager: it says
"takes over N fields from MANAGER", lists the fields, and `y` runs nothing until `a` confirms it."""

from __future__ import annotations

import dataclasses

from tests.fixtures.snapshots import fleet_snapshot
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import check_second_key_gate, settle, settle_node, wait_for_screen
from tests.tui.screen import screen_text
from tests.tui.test_sync_flow import WEB_PROD_US, put_cursor
from tui.screens.confirm import ConfirmSyncModal


async def test_taking_fields_over_needs_a_second_key_before_y(build_app: AppFactory) -> None:
    """web on prod-us drifted by kubectl-edit and kubectl-set: the dialog names both managers and the fields,
    `y` does nothing until `a`; `a` again takes it back; a re-plan keeps it; the run carries the confirmation;
    a dry run needs none."""
    engine = FakeEngine([fleet_snapshot()], field_takeovers=True)
    app = build_app(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        put_cursor(app, WEB_PROD_US)
        await pilot.press("s")
        modal = await wait_for_screen(pilot, ConfirmSyncModal)
        plan = modal.plans[0]
        assert plan.takeovers and plan.needs_takeover_confirmation
        summary = plan.takeover_summary
        assert summary.startswith("takes over ") and "from kubectl-edit" in summary, summary
        text = screen_text(app)
        assert f"FIELD CONFLICT: this sync {summary}" in text, text
        assert "spec.replicas (owned by kubectl-edit)" in text, text
        assert "not confirmed: press a to take them over, then y" in text
        assert "Fields owned by another field manager would be taken over on prod-us: press a to acknowledge" \
            in text
        assert "a take over fields of other managers: off" in text
        await check_second_key_gate(pilot, modal, engine.runs, allowed=lambda p: p.takeovers_allowed,
                                    confirmed_text="confirmed: the sync takes them over (a to take it back)")
        await pilot.press("d")  # a dry run shows the same fields and needs no confirmation
        await settle_node(pilot, modal)
        assert modal.plans[0].dry_run and modal.plans[0].takeovers and not modal.plans[0].takeovers_allowed
        assert "dry run: nothing is written, no confirmation needed" in screen_text(app)
        await pilot.press("d")
        await settle_node(pilot, modal)
        await pilot.press("a")
        await pilot.press("p")  # a re-plan keeps the confirmation of the same fields
        await settle_node(pilot, modal)
        assert modal.plans[0].prune and modal.plans[0].takeovers_allowed
        await pilot.press("y")
        await settle(pilot)
        assert len(engine.runs) == 1
        ran = engine.runs[0]
        assert ran.takeovers == plan.takeovers and ran.takeovers_allowed and not ran.needs_takeover_confirmation
        assert dataclasses.replace(ran, takeovers_allowed=False).needs_takeover_confirmation
