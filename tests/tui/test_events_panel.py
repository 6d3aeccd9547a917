"""The app screen's events panel: why an app is unhealthy, from its objects' Kubernetes Events.

Warnings come first, a hostile reason, object name or message is shown literally and inert, a cluster that
forbids listing events says so without failing the screen, and ``e`` hides or shows the panel.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from core.model import AppName, ClusterName, EventRecord, ResourceKey
from tests.fixtures.snapshots import HOSTILE, NOW, fleet_snapshot, hostile_snapshot
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle, wait_for_screen
from tests.tui.screen import screen_text
from tests.tui.test_injection import assert_clean
from tui.screens.app_screen import AppScreen
from tui.widgets.events_panel import EventsPanel
from tui.widgets.fleet_table import FleetTable


def lines_for(namespace: str, *, hostile: str = "") -> tuple[EventRecord, ...]:
    pod = ResourceKey("", "Pod", namespace, f"web-7d9f-{hostile or 'x1'}")
    return (
        EventRecord(type="Warning", reason=f"BackOff{hostile}", object=pod, count=12, last_seen=NOW - 120,
                    message=f"Back-off restarting failed container web {hostile}", source="kubelet"),
        EventRecord(type="Normal", reason="ScalingReplicaSet", object=ResourceKey("apps", "Deployment", namespace, "web"),
                    count=1, last_seen=NOW - 60, message="Scaled up replica set web-7d9f to 3"),
    )


def engine_with_events(*, hostile: str = "", **kwargs: object) -> FakeEngine:
    snap = hostile_snapshot() if hostile else fleet_snapshot()
    lines = {(a.app, a.cluster): lines_for(a.namespace, hostile=hostile) for a in snap.apps}
    return FakeEngine([snap], event_lines=lines, **kwargs)  # type: ignore[arg-type]


async def test_panel_shows_warnings_first_and_hostile_strings_inert(build_app: AppFactory) -> None:
    """A hostile reason, pod name and message: shown literally, no escape sequence reaches the terminal."""
    app = build_app(engine_with_events(hostile=HOSTILE))
    async with app.run_test(size=(160, 44)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        screen = await wait_for_screen(pilot, AppScreen)
        await settle(pilot)
        panel = screen.query_one(EventsPanel)
        assert not panel.has_class("-hidden")
        assert_clean(app)
        text = screen_text(app)
        assert "Events  1 warning, 2 lines" in text
        warning_at, normal_at = text.index("BackOff"), text.index("ScalingReplicaSet")
        assert warning_at < normal_at, "Warnings are listed first"
        assert "evil" in text and "×12" in text and "2m ago" in text
        assert "1 event warning (e)" in text


async def test_forbidden_events_are_said_not_fatal(build_app: AppFactory) -> None:
    """Credentials that may not list events: the panel says so, the rest of the screen is unchanged."""
    engine = FakeEngine([fleet_snapshot()], events_error="events not readable: forbidden")
    app = build_app(engine)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await wait_for_screen(pilot, AppScreen)
        await settle(pilot)
        text = screen_text(app)
        assert "events not readable: forbidden" in text
        assert "resources" in text


async def test_e_hides_and_shows_the_panel(build_app: AppFactory) -> None:
    """The panel shows itself when there are events; ``e`` hides it and shows it again (listed in the
    footer as Events)."""
    app = build_app(engine_with_events())
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        screen = await wait_for_screen(pilot, AppScreen)
        await settle(pilot)
        panel = screen.query_one(EventsPanel)
        assert not panel.has_class("-hidden") and "Events" in screen_text(app)
        await pilot.press("e")
        await pilot.pause()
        assert panel.has_class("-hidden")
        screen.fetch_events()  # a later answer does not undo the operator's choice
        await settle(pilot)
        assert panel.has_class("-hidden")
        await pilot.press("e")
        await pilot.pause()
        assert not panel.has_class("-hidden") and "BackOff" in screen_text(app)


async def test_no_events_keeps_the_panel_out_of_the_way(build_app: AppFactory) -> None:
    """An app without events shows no panel until asked; asked, it says there are none."""
    app = build_app(FakeEngine([fleet_snapshot()]))
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        screen = await wait_for_screen(pilot, AppScreen)
        await settle(pilot)
        assert screen.query_one(EventsPanel).has_class("-hidden")
        await pilot.press("e")
        await pilot.pause()
        assert "no events for this app's objects" in screen_text(app)


async def test_demo_events_reach_the_app_screen_live(tmp_path: Path, build_app: AppFactory) -> None:
    """The real engine on its own thread over the demo's simulated clusters: opening worker on staging-eu
    (crash looping) starts the cluster's event watch, and the kubelet's BackOff Warning arrives in the panel."""
    from core.demo import demo_engine
    from core.engine import ThreadedEngine

    engine = ThreadedEngine(lambda: demo_engine(tmp_path / "demo", live_changes=False))
    app = build_app(engine, clock=time.time)
    async with app.run_test(size=(200, 50)) as pilot:
        async with asyncio.timeout(60):
            while app.snapshot is None or app.snapshot.app("worker", "staging-eu") is None:
                await asyncio.sleep(0.05)
            app.screen.query_one(FleetTable).move_to((AppName("worker"), ClusterName("staging-eu")))
            await pilot.press("enter")
            screen = await wait_for_screen(pilot, AppScreen)
            while screen.events is None or not screen.events.warnings:
                await asyncio.sleep(0.1)
        await pilot.pause()
        text = screen_text(app)
        assert "BackOff" in text and "Back-off restarting failed container" in text, text
        assert screen.events.events[0].reason == "BackOff" and screen.events.events[0].object.kind == "Pod"


async def test_an_engine_failure_is_said_in_the_panel_not_in_a_dialog(build_app: AppFactory) -> None:
    """Asked every 2 s, a failing answer must not open an error dialog each time: the panel says it."""
    engine = FakeEngine([fleet_snapshot()])

    async def broken(app: str, cluster: str) -> object:
        raise RuntimeError("the engine has not been started")

    engine.app_events = broken  # type: ignore[method-assign, assignment]
    app = build_app(engine)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        screen = await wait_for_screen(pilot, AppScreen)
        await settle(pilot)
        assert isinstance(app.screen, AppScreen) and screen.events is not None
        assert "events not readable: the engine has not been started" in screen_text(app)
