"""Row O4: rolling back to a revision whose manifests no longer render is refused with the reason, and
nothing is written, pinned or paused (simulated cluster, real Git)."""

from __future__ import annotations

import pytest

from core.errors import FleetdeckError
from core.journal import read_entries
from core.model import SyncStatus
from tests.engine.conftest import CONFIG, WEB, Fleet, StartEngine, git, write_app
from tests.engine.test_engine import app_row, wait_for


async def test_rollback_to_a_revision_that_does_not_render_is_refused(fleet: Fleet, started: StartEngine) -> None:
    (fleet.repo / "apps" / "web" / "broken.yaml").write_text("kind: [unclosed\n")
    git(fleet.repo, "add", "-A")
    git(fleet.repo, "commit", "-q", "-m", "web: broken manifest")
    broken = git(fleet.repo, "rev-parse", "HEAD").strip()
    write_app(fleet.repo, [WEB, CONFIG], "web: fixed")
    engine = await started()
    states = [s async for s in engine.execute_plan(await engine.plan_sync("web", "dev"))]
    assert states[-1].phase.successful, states[-1].message
    await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.SYNCED)
    cluster = fleet.clusters["dev"]
    before = cluster.store.resource_version

    plan = await engine.plan_rollback("web", "dev", broken)
    assert plan.blocked and "broken.yaml" in plan.blocked, plan.blocked
    assert plan.steps == () or all(s.key.kind in ("Deployment", "ConfigMap") for s in plan.steps)
    with pytest.raises(FleetdeckError, match="rollback of web on dev refused: the desired state does not render"):
        _ = [s async for s in engine.execute_plan(plan)]
    assert [(e.action, e.result) for e in read_entries(fleet.journal)][-1] == ("rollback", "refused")
    assert cluster.store.resource_version == before, "nothing was written: no object, no state, no lease"
    row = app_row(engine.snapshot, "web", "dev")
    assert row.control.pinned is None and not row.control.paused
    assert row.sync is SyncStatus.SYNCED


async def test_rollback_to_an_unknown_revision_is_an_error(fleet: Fleet, started: StartEngine) -> None:
    engine = await started()
    with pytest.raises(FleetdeckError, match=r"cannot roll back web to 0{40}") as caught:
        await engine.plan_rollback("web", "dev", "0" * 40)
    assert "history" in caught.value.hint
