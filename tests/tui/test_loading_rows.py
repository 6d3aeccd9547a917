"""The console's first screen while the engine starts: every row listed, each saying "loading", never a state.

``fleetdeck demo`` (and ``console``) hand the console a ``loading_snapshot`` of the fleet file; the rows are
on screen at once and fill in when the engine publishes. Nothing on that first screen may read as a verdict
(Synced, Healthy, OutOfSync, Degraded, Unknown counts): nothing has been compared yet.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from core.demo import demo_fleet_config, demo_preview
from core.engine import loading_snapshot
from core.model import ConnectionState, HealthStatus, SyncStatus
from tests.fixtures.snapshots import fleet_snapshot
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle
from tests.tui.screen import screen_text

VERDICTS = ("Synced", "OutOfSync", "Healthy", "Degraded", "Progressing", "Missing", "Suspended", "Unknown")


@dataclass
class SlowEngine(FakeEngine):
    """A fake engine whose ``start`` waits until the test lets it go, with a loading placeholder."""

    placeholder: object = None
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        await self.gate.wait()
        await super().start()


def test_the_demo_placeholder_lists_every_row_as_loading() -> None:
    fleet = demo_fleet_config()
    snapshot = demo_preview()
    expected = sorted((app.name, cluster.name) for app in fleet.apps for cluster, _ in app.targets(fleet.clusters))
    assert [(a.app, a.cluster) for a in snapshot.apps] == expected
    assert len(expected) == 20
    for row in snapshot.apps:
        assert row.loading
        assert row.sync is SyncStatus.UNKNOWN and row.health.status is HealthStatus.UNKNOWN
        assert row.revision is None and not row.resources and not row.conditions
    assert {c.connection for c in snapshot.clusters} == {ConnectionState.CONNECTING}
    assert snapshot.repo is None and snapshot.generation == 0


def test_the_engine_never_publishes_loading_rows() -> None:
    """``loading`` is only ever set by ``loading_snapshot``: the engine's rows default to False."""
    assert not any(a.loading for a in fleet_snapshot().apps)
    assert all(a.loading for a in loading_snapshot(demo_fleet_config()).apps)


async def test_the_first_screen_says_loading_and_no_state_until_the_engine_publishes(build_app: AppFactory) -> None:
    engine = SlowEngine([fleet_snapshot()], placeholder=demo_preview())
    app = build_app(engine)
    async with app.run_test(size=(140, 40)) as pilot:
        for _ in range(50):  # the snapshot worker waits on the gate: only pause, never wait for it
            await pilot.pause()
            if "20 loading" in screen_text(app):
                break
        first = screen_text(app)
        rows = [line for line in first.splitlines() if "loading" in line and "Connecting" in line]
        assert len(rows) == 20, first
        assert all(row.split("○ Connecting")[0].split()[-1] == "-" for row in rows), first  # DRIFT claims no 0
        assert "20 loading" in first and "repo: not loaded yet" in first, first
        for word in VERDICTS:
            assert word not in first, (word, first)
        engine.gate.set()
        await app.workers.wait_for_complete()
        await settle(pilot)
        after = screen_text(app)
        assert "loading" not in after, after
        assert "Synced" in after, after
