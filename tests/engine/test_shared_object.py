"""Row B8: the same object in two apps. Both apps are automated with self-heal and want a different value
in one ConfigMap. Whichever app writes it first keeps it: the other app shows a SharedResourceWarning naming
the owner and is never synced automatically while the conflict lasts, so the object does not flip back and
forth (before, each app's self-heal took it back from the other every 5 s, 10 s, … up to 180 s, forever)."""

from __future__ import annotations

import asyncio
from typing import Any

import yaml

from core.model import ResourceKey, SyncStatus
from core.sync.automation import AppInputs, AutoSyncPolicy, decide_auto_sync
from tests.engine.conftest import Fleet, StartEngine, git
from tests.engine.test_engine import app_row, wait_for

SHARED = ResourceKey("", "ConfigMap", "web", "shared")


def shared(mode: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"mode": mode}}


async def test_two_automated_apps_do_not_flip_flop_a_shared_object(fleet: Fleet, started: StartEngine) -> None:
    for app, mode in (("web", "blue"), ("other", "green")):
        (fleet.repo / "apps" / app).mkdir(parents=True, exist_ok=True)
        (fleet.repo / "apps" / app / "shared.yaml").write_text(yaml.safe_dump(shared(mode)))
    git(fleet.repo, "add", "-A")
    git(fleet.repo, "commit", "-q", "-m", "two apps claim one ConfigMap")
    config = yaml.safe_load(fleet.fleet_file.read_text())
    config["clusters"] = config["clusters"][:1]
    config["apps"] = [{"name": app, "path": f"apps/{app}", "namespace": "web",
                       "sync": {"automated": True, "selfHeal": True}} for app in ("web", "other")]
    fleet.fleet_file.write_text(yaml.safe_dump(config))
    engine = await started()
    cluster = fleet.clusters["dev"]

    clock = [engine.clock()]
    engine.clock = lambda: clock[0]  # each pass is an hour later: every self-heal backoff has expired
    values: list[str] = []
    for _ in range(8):
        clock[0] += 3600
        await engine.sync_automated_apps()
        await asyncio.sleep(0.3)
        await engine.refresh()
        live = cluster.get_object(SHARED)
        values.append(live["data"]["mode"] if live is not None else "-")
    owner_value = values[1]
    assert values[1:] == [owner_value] * 7, values
    owner, loser = ("web", "other") if owner_value == "blue" else ("other", "web")

    snap = await wait_for(engine, lambda s: any(c.type == "SharedResourceWarning"
                                                for c in app_row(s, loser, "dev").conditions))
    warning = next(c for c in app_row(snap, loser, "dev").conditions if c.type == "SharedResourceWarning")
    assert f"ConfigMap/web/shared is also tracked by app {owner!r}" in warning.message
    assert not any(c.type == "SharedResourceWarning" for c in app_row(snap, owner, "dev").conditions)
    assert app_row(snap, loser, "dev").sync is SyncStatus.OUT_OF_SYNC
    decision = decide_auto_sync(app=AppInputs.of(app_row(snap, loser, "dev")),
                                policy=AutoSyncPolicy(enabled=True, self_heal=True), last_operation=None, now=0.0)
    assert not decision.sync and "another app tracks its objects" in decision.reason

    # A hand sync is the explicit way to take the object over; the warning then moves to the other app.
    plan = await engine.plan_sync(loser, "dev")
    assert any(f"also tracked by app {owner!r}" in w for w in plan.warnings), plan.warnings  # shown to confirm
    states = [s async for s in engine.execute_plan(plan)]
    assert states[-1].phase.successful, states[-1].message
    snap = await wait_for(engine, lambda s: any(c.type == "SharedResourceWarning"
                                                for c in app_row(s, owner, "dev").conditions))
    print(f"\nB8: live value over 8 automation passes an hour apart: {values}")
