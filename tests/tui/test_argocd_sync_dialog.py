"""The console's sync dialog for an Argo CD-owned app: `c` asks for Argo CD's own dry run, `o` for Argo CD sync
options (checked against Argo CD's documented set, a misspelling refused with the right spelling), each re-plans,
and the plan shown is the patch that runs. A fleetdeck-owned row offers neither, and in a bulk sync the options go
to the Argo CD-owned plans only."""

from __future__ import annotations

import dataclasses
from typing import Any

from core.model import ControllerRef, Owner, ResourceKey
from tests.fixtures.snapshots import fleet_snapshot, with_app
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle, settle_node, wait_for_screen
from tests.tui.screen import screen_text
from tests.tui.test_sync_flow import WEB_PROD_US, WORKER_PROD_EU, mark, put_cursor
from tui.screens.confirm import ConfirmSyncModal
from tui.screens.sync_options import SyncOptionsModal

APPLICATION = ResourceKey("argoproj.io", "Application", "argocd", "web")


def argocd_engine() -> FakeEngine:
    """The standard fleet with web on prod-us owned by an Argo CD Application."""
    snap = fleet_snapshot()
    row = snap.app(*WEB_PROD_US)
    assert row is not None
    ref = ControllerRef(owner=Owner.ARGOCD, cluster=row.cluster, key=APPLICATION)
    return FakeEngine([with_app(snap, dataclasses.replace(row, owner=Owner.ARGOCD, controller=ref))])


def on_top(app: Any) -> object:
    """The screen on top (typed loosely: it changes as keys are pressed)."""
    return app.screen  # type: ignore[no-any-return]


def operation_sync(modal: ConfirmSyncModal, index: int = 0) -> dict[str, Any]:
    patch = modal.plans[index].patches[0].patch
    return dict(patch["operation"]["sync"])


async def test_argocd_options_and_dry_run_are_chosen_in_the_dialog_and_run_as_shown(build_app: AppFactory) -> None:
    engine = argocd_engine()
    app = build_app(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        put_cursor(app, WEB_PROD_US)
        await pilot.press("s")
        modal = await wait_for_screen(pilot, ConfirmSyncModal)
        text = screen_text(app)
        assert "Argo CD: c its own dry run: off, o sync options: none" in text, text
        assert "Application argocd/web: set operation.sync{revision: 4f9d2c1e" in text, text
        assert "syncOptions" not in operation_sync(modal) and "dryRun" not in operation_sync(modal)

        await pilot.press("o")
        options = await wait_for_screen(pilot, SyncOptionsModal)
        await pilot.press(*"createNamespace=true", "enter")
        await pilot.pause()
        assert "did you mean CreateNamespace?" in screen_text(app)
        assert on_top(app) is options  # a misspelt option is never sent: the dialog stays
        await pilot.press("ctrl+u", *"CreateNamespace=true, PruneLast=true", "enter")
        await settle_node(pilot, modal)
        assert on_top(app) is modal
        assert operation_sync(modal)["syncOptions"] == ["CreateNamespace=true", "PruneLast=true"]
        assert "o sync options: CreateNamespace=true PruneLast=true" in screen_text(app)

        await pilot.press("c")
        await settle_node(pilot, modal)
        assert operation_sync(modal)["dryRun"] is True
        assert "c its own dry run: on" in screen_text(app)
        assert ("plan_sync_controller", ("web", "prod-us", ("CreateNamespace=true", "PruneLast=true"), True)) \
            in engine.calls

        await pilot.press("o")
        await wait_for_screen(pilot, SyncOptionsModal)
        await pilot.press("escape")  # esc keeps the options
        await pilot.pause()
        assert on_top(app) is modal and modal.sync_options == ("CreateNamespace=true", "PruneLast=true")

        shown = modal.plans[0].patches
        await pilot.press("y")
        await settle(pilot)
        assert len(engine.runs) == 1 and engine.runs[0].patches == shown  # what ran is what was shown
        assert operation_sync(modal)["syncOptions"] == ["CreateNamespace=true", "PruneLast=true"]


async def test_fleetdeck_owned_rows_offer_no_argocd_options(build_app: AppFactory) -> None:
    engine = FakeEngine([fleet_snapshot()])
    app = build_app(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        put_cursor(app, WEB_PROD_US)
        await pilot.press("s")
        modal = await wait_for_screen(pilot, ConfirmSyncModal)
        assert "Argo CD" not in screen_text(app)
        await pilot.press("o", "c")
        await pilot.pause()
        assert app.screen is modal and not modal.controller_dry_run and modal.sync_options == ()
        assert not any(name == "plan_sync_controller" for name, _ in engine.calls)


async def test_bulk_sync_sends_argocd_options_to_argocd_plans_only(build_app: AppFactory) -> None:
    engine = argocd_engine()
    app = build_app(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await mark(pilot, app, WEB_PROD_US, WORKER_PROD_EU)
        await pilot.press("s")
        modal = await wait_for_screen(pilot, ConfirmSyncModal)
        await pilot.press("c")
        await settle_node(pilot, modal)
        by_row = {(str(p.app), str(p.cluster)): p for p in modal.plans}
        assert by_row[WEB_PROD_US].patches[0].patch["operation"]["sync"]["dryRun"] is True
        worker = by_row[WORKER_PROD_EU]
        assert worker.owner is Owner.FLEETDECK and not worker.blocked and not worker.patches
        assert [args for name, args in engine.calls if name == "plan_sync_controller"] == [
            ("web", "prod-us", (), True)]
