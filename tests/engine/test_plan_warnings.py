"""Row G2: after a force-push (the new head does not descend from the one fetched before) the console's
sync confirmation carries the warning naming both revisions; a sync that takes over another app's object
says so too."""

from __future__ import annotations

from tests.engine.conftest import CONFIG, WEB, Fleet, StartEngine, git, write_app
from tests.engine.test_engine import app_row, wait_for


async def test_sync_plan_after_a_force_push_carries_the_warning(fleet: Fleet, started: StartEngine) -> None:
    write_app(fleet.repo, [{**WEB, "spec": {**WEB["spec"], "replicas": 3}}, CONFIG], "web: 3 replicas")
    engine = await started()
    old = app_row(engine.snapshot, "web", "dev").revision
    assert old is not None
    assert not any("force-pushed" in w for w in (await engine.plan_sync("web", "dev")).warnings)
    git(fleet.repo, "reset", "-q", "--hard", "HEAD~1")
    write_app(fleet.repo, [{**WEB, "spec": {**WEB["spec"], "replicas": 5}}, CONFIG], "web: 5 replicas, rewritten")
    await engine.refresh(hard=True)
    await wait_for(engine, lambda s: (r := app_row(s, "web", "dev").revision) is not None and r.sha != old.sha)
    plan = await engine.plan_sync("web", "dev")
    warning = next((w for w in plan.warnings if "force-pushed" in w), None)
    assert warning is not None and old.sha[:8] in warning, plan.warnings
    assert not plan.blocked
