"""The owner in the console: the OWNER cell of each row and the app screen's lines about the controller."""

from __future__ import annotations

from dataclasses import replace

from rich.style import Style

from core.model import (
    AppStatus,
    ClusterName,
    ControllerRef,
    ControllerResource,
    ControllerStatus,
    HistoryEntry,
    Owner,
    ResourceKey,
    SyncTrigger,
)
from tests.fixtures.snapshots import NOW, fleet_snapshot
from tui.fleet_query import FleetRow
from tui.glyphs import UNICODE
from tui.screens.app_screen import owner_lines
from tui.widgets.fleet_columns import COLUMNS, CellContext

REF = ControllerRef(Owner.ARGOCD, ClusterName("hub"), ResourceKey("argoproj.io", "Application", "argocd", "web"))


def argocd_row() -> AppStatus:
    row = fleet_snapshot().apps[0]
    status = ControllerStatus(sync="OutOfSync", revision="a" * 40, health="Degraded", automated=True,
                              operation_phase="Running", operation_revision="b" * 40,
                              resources=(ControllerResource(ResourceKey("apps", "Deployment", "web", "web"),
                                                            sync="OutOfSync", health="Degraded"),))
    history = (HistoryEntry(1, "c" * 40, "sync", "bob", NOW - 60, "Succeeded", trigger=SyncTrigger.MANUAL),
               HistoryEntry(2, "a" * 40, "sync", "automated", NOW, "Succeeded", trigger=SyncTrigger.AUTOMATED))
    return replace(row, owner=Owner.ARGOCD, controller=REF, controller_status=status, history=history)


def test_owner_cell_names_each_owner() -> None:
    column = next(c for c in COLUMNS if c.id == "owner")
    ctx = CellContext(glyphs=UNICODE, now=NOW, styles={"dim": Style(dim=True)})
    row = fleet_snapshot().apps[0]
    cells = {owner: column.render(FleetRow.of(replace(row, owner=owner), None), ctx).plain for owner in Owner}
    assert cells == {Owner.FLEETDECK: "fd", Owner.ARGOCD: "argo", Owner.FLUX: "flux"}
    assert column.priority == 0  # shown at every width


def test_app_screen_shows_what_argocd_reports() -> None:
    text = "\n".join(line.plain for line in owner_lines(argocd_row(), UNICODE))
    assert "owner argocd · Application argocd/web on hub · says OutOfSync at aaaaaaaaaaaa, health Degraded" in text
    assert "automated sync on" in text and "operation Running bbbbbbbbbbbb" in text
    assert "OutOfSync  Degraded     Deployment/web/web" in text
    assert text.index("#2 aaaaaaaaaaaa by automated") < text.index("#1 cccccccccccc by bob")
    assert owner_lines(fleet_snapshot().apps[0], UNICODE) == []
