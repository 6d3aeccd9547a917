"""Row S4 through the engine: a Secret whose values are canaries goes through render, sync, a live edit by
another manager, drift and a rollback plan. The canary (plain or base64) never appears in a
published snapshot (every row, resource, diff, condition and operation message), in a plan, in an error,
or in any log record the engine writes at DEBUG level. (The snapshot is all the console ever reads.)
Not covered: a failed sync whose API error quotes the object (the simulated cluster quotes no values)."""

from __future__ import annotations

import base64
import logging

import pytest

from core.model import ResourceKey, ResourceState
from tests.engine.conftest import CONFIG, WEB, Fleet, StartEngine, write_app
from tests.engine.test_engine import app_row, wait_for

CANARY = "canary-5e1f-never-shown"
LIVE_CANARY = "canary-live-77ab-never-shown"
SECRET_KEY = ResourceKey("", "Secret", "web", "db")


def forms(value: str) -> list[str]:
    """The value as written and as the API server stores it."""
    return [value, base64.b64encode(value.encode()).decode()]


def leaks(text: str) -> list[str]:
    return [f for v in (CANARY, LIVE_CANARY) for f in forms(v) if f in text]


async def test_secret_values_never_reach_snapshots_plans_errors_or_logs(
    fleet: Fleet, started: StartEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "type": "Opaque",
              "stringData": {"password": CANARY}}
    write_app(fleet.repo, [WEB, CONFIG, secret], "web: with a secret")
    engine = await started()
    seen: list[str] = []
    plan = await engine.plan_sync("web", "dev")
    seen.append(repr(plan))
    states = [s async for s in engine.execute_plan(plan)]
    seen.extend(repr(s) for s in states)
    assert states[-1].phase.successful, states[-1].message
    await wait_for(engine, lambda s: app_row(s, "web", "dev").sync.value == "Synced")

    cluster = fleet.clusters["dev"]
    cluster.update_as("kubectl-edit", SECRET_KEY,
                      {"data": {"password": base64.b64encode(LIVE_CANARY.encode()).decode()}})
    snap = await wait_for(engine, lambda s: any(r.key == SECRET_KEY and r.state is ResourceState.OUT_OF_SYNC
                                                for r in app_row(s, "web", "dev").resources))
    seen.append(repr(snap))
    seen.append(repr(await engine.plan_sync("web", "dev")))

    assert "password" in repr(snap), "the diff of the Secret is in the snapshot (masked)"
    first = app_row(snap, "web", "dev").revision
    assert first is not None
    seen.append(repr(await engine.plan_rollback("web", "dev", first.sha)))
    seen.append(repr(engine.snapshot))
    seen.append(caplog.text)
    found = [(i, leaks(text)) for i, text in enumerate(seen) if leaks(text)]
    assert found == [], found
