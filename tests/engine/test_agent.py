"""The headless agent (``core.engine.agent.run_agent``) drives the engine through ``FleetEngineAPI`` only."""

from __future__ import annotations

import json

import yaml

from core.engine.agent import run_agent
from core.model import FleetSnapshot, ResourceKey
from tests.engine.conftest import Fleet
from tests.fixtures.snapshots import fleet_snapshot
from tests.tui.fakes import FakeEngine


async def test_once_starts_waits_decides_once_and_stops() -> None:
    """``once``: start, report the settled snapshot, one round of automated-sync decisions, stop."""
    engine = FakeEngine([fleet_snapshot()])
    seen: list[FleetSnapshot] = []
    await run_agent(engine, once=True, on_ready=seen.append)
    assert [name for name, _ in engine.calls] == ["start", "wait_ready", "sync_automated_apps", "stop"]
    assert ("sync_automated_apps", (True,)) in engine.calls  # waits for the syncs it starts
    assert seen == [engine.current]


async def test_without_once_follows_snapshots_until_they_end_and_stops() -> None:
    """Without ``once`` the agent leaves automation to the engine and follows its snapshots."""
    engine = FakeEngine([fleet_snapshot()])
    await run_agent(engine, once=False)
    assert [name for name, _ in engine.calls] == ["start", "wait_ready", "stop"]


async def test_once_waits_for_the_automated_syncs_it_starts(fleet: Fleet) -> None:
    """``agent --once`` on an automated app: both targets are synced before the agent stops (the syncs
    were started as engine tasks and cancelled by the stop that followed at once: nothing was journalled)."""
    config = yaml.safe_load(fleet.fleet_file.read_text())
    config["apps"][0]["sync"] = {"automated": True}
    fleet.fleet_file.write_text(yaml.safe_dump(config))
    try:
        await run_agent(fleet.engine(), once=True)
    finally:
        for cluster in fleet.clusters.values():
            await cluster.close()
    entries = [json.loads(line) for line in fleet.journal.read_text().splitlines()]
    results = sorted((e["cluster"], e["result"]) for e in entries if e["action"] == "sync")
    assert results == [("dev", "started"), ("dev", "succeeded"), ("prod", "started"), ("prod", "succeeded")]
    assert fleet.clusters["dev"].get_object(ResourceKey("apps", "Deployment", "web", "web")) is not None
