"""A revision that does not descend from the one synced (a force-push, a rewound branch, a synced revision
gone from the repo): the row says so, the plan says so, the run needs an acknowledgement, automation waits."""

from __future__ import annotations

import pytest
import yaml

from core.engine import FleetEngine
from core.errors import NotAcknowledgedError
from core.journal import read_entries
from core.model import ResourceKey, SyncStatus
from tests.engine.conftest import CONFIG, WEB, Fleet, StartEngine, git, write_app
from tests.engine.test_engine import app_row, sha, wait_for
from tui.output import status_record, status_rows

DEPLOYMENT = ResourceKey("apps", "Deployment", "web", "web")


def force_push_orphan(fleet: Fleet, replicas: int) -> str:
    """Replace branch main by a new root commit (``git checkout --orphan`` + commit, branch moved onto it)."""
    git(fleet.repo, "checkout", "-q", "--orphan", "rewritten")
    sha_ = write_app(fleet.repo, [{**WEB, "spec": {**WEB["spec"], "replicas": replicas}}, CONFIG], "web: rewritten")
    git(fleet.repo, "branch", "-q", "-f", "main", sha_)
    git(fleet.repo, "checkout", "-q", "main")
    git(fleet.repo, "branch", "-q", "-D", "rewritten")
    return sha_


async def synced_once(fleet: Fleet, started: StartEngine) -> tuple[FleetEngine, str]:
    """A started engine after web was synced on dev, and the synced revision."""
    engine = await started()
    plan = await engine.plan_sync("web", "dev")
    assert not plan.non_descendant and not plan.needs_acknowledgement  # never synced: nothing to replace
    result = [s async for s in engine.execute_plan(plan)][-1]
    assert result.phase.successful, result.message
    await wait_for(engine, lambda s: app_row(s, "web", "dev").synced_revision == plan.revision)
    return engine, plan.revision


def replicas(fleet: Fleet) -> int:
    """The live Deployment's replicas on dev."""
    live = fleet.clusters["dev"].get_object(DEPLOYMENT)
    assert live is not None
    return int(live["spec"]["replicas"])


async def test_force_pushed_head_needs_an_acknowledgement(fleet: Fleet, started: StartEngine) -> None:
    """Synced A, main force-pushed to an unrelated B: the row and the plan name both revisions; the run is
    refused and journalled, nothing changes; acknowledged, it runs and the journal says so."""
    engine, first = await synced_once(fleet, started)
    second = force_push_orphan(fleet, replicas=5)
    await engine.refresh()
    snap = await wait_for(engine, lambda s: bool(app_row(s, "web", "dev").non_descendant))
    row = app_row(snap, "web", "dev")
    assert sha(row) == second
    assert first[:8] in row.non_descendant and second[:8] in row.non_descendant
    assert "does not descend" in row.non_descendant and "dev" in row.non_descendant
    assert [c.type for c in row.conditions if c.type == "NonDescendant"] == ["NonDescendant"]
    assert app_row(snap, "web", "prod").non_descendant == ""  # never synced on prod: nothing is replaced
    assert "non-descendant" in status_rows([row])[0][7].split()
    assert status_record(row)["non_descendant"] == row.non_descendant

    plan = await engine.plan_sync("web", "dev")
    assert plan.non_descendant == row.non_descendant and plan.synced_revision == first
    assert plan.needs_acknowledgement and not plan.blocked
    assert f"synced on dev, not in {second[:8]}: {first[:8]} web: first version" in plan.warnings
    assert not (await engine.plan_sync("web", "dev", dry_run=True)).needs_acknowledgement
    with pytest.raises(NotAcknowledgedError, match="does not descend"):
        _ = [s async for s in engine.execute_plan(plan)]
    assert replicas(fleet) == 2
    refused = read_entries(fleet.journal)[-1]
    assert (refused.action, refused.result) == ("sync", "refused")
    assert refused.details["non_descendant"] == row.non_descendant
    assert refused.details["synced_revision"] == first and refused.details["revision"] == second
    assert refused.details["acknowledged"] is False

    allowed = await engine.plan_sync("web", "dev", allow_non_descendant=True)
    assert allowed.non_descendant_allowed and not allowed.needs_acknowledgement
    result = [s async for s in engine.execute_plan(allowed)][-1]
    assert result.phase.successful, result.message
    assert replicas(fleet) == 5
    entries = [e for e in read_entries(fleet.journal) if e.action == "sync"][-2:]
    assert [e.result for e in entries] == ["started", "succeeded"]
    assert all(e.details["acknowledged"] is True and e.details["synced_revision"] == first for e in entries)
    snap = await wait_for(engine, lambda s: app_row(s, "web", "dev").synced_revision == second
                          and not app_row(s, "web", "dev").non_descendant)
    assert not [c for c in app_row(snap, "web", "dev").conditions if c.type == "NonDescendant"]


async def test_descendant_head_and_rollback_need_nothing(fleet: Fleet, started: StartEngine) -> None:
    """A commit on top of the synced revision is not flagged; a rollback to an older revision (the
    operator's explicit choice) runs without acknowledgement."""
    engine, first = await synced_once(fleet, started)
    write_app(fleet.repo, [{**WEB, "spec": {**WEB["spec"], "replicas": 3}}, CONFIG], "web: 3 replicas")
    await engine.refresh()
    plan = await engine.plan_sync("web", "dev")
    assert plan.revision != first and not plan.non_descendant
    assert [s async for s in engine.execute_plan(plan)][-1].phase.successful
    rollback = await engine.plan_rollback("web", "dev", first)
    assert not rollback.non_descendant and not rollback.needs_acknowledgement
    assert [s async for s in engine.execute_plan(rollback)][-1].phase.successful
    assert replicas(fleet) == 2


async def test_branch_moved_back_is_flagged(fleet: Fleet, started: StartEngine) -> None:
    """Synced a commit, then the branch was reset to its parent: the head is an ancestor of the synced
    revision, and syncing it drops the commit."""
    engine, first = await synced_once(fleet, started)
    second = write_app(fleet.repo, [{**WEB, "spec": {**WEB["spec"], "replicas": 3}}, CONFIG], "web: 3 replicas")
    await engine.refresh()
    assert [s async for s in engine.execute_plan(await engine.plan_sync("web", "dev"))][-1].phase.successful
    await wait_for(engine, lambda s: app_row(s, "web", "dev").synced_revision == second)
    git(fleet.repo, "reset", "-q", "--hard", first)
    await engine.refresh()
    plan = await engine.plan_sync("web", "dev")
    assert plan.revision == first
    assert "moved back" in plan.non_descendant and "drops 1 commit" in plan.non_descendant


async def test_synced_revision_gone_from_the_repo(fleet: Fleet, started: StartEngine) -> None:
    """The synced revision was force-pushed away and garbage-collected: flagged, naming it."""
    engine, first = await synced_once(fleet, started)
    force_push_orphan(fleet, replicas=4)
    git(fleet.repo, "reflog", "expire", "--expire=now", "--all")
    git(fleet.repo, "gc", "-q", "--prune=now")
    await engine.refresh()
    plan = await engine.plan_sync("web", "dev")
    assert f"{first[:8]} no longer exists in the config repo" in plan.non_descendant
    assert plan.needs_acknowledgement


async def test_automation_waits_for_an_operator(fleet: Fleet, started: StartEngine) -> None:
    """An automated app whose branch was force-pushed is not synced by automation passes; the row says why."""
    config = yaml.safe_load(fleet.fleet_file.read_text())
    config["apps"][0]["sync"] = {"automated": True}
    fleet.fleet_file.write_text(yaml.safe_dump(config))
    engine = await started()
    await engine.sync_automated_apps()
    await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.SYNCED
                   and app_row(s, "web", "dev").synced_revision is not None)
    force_push_orphan(fleet, replicas=6)
    await engine.refresh()
    snap = await wait_for(engine, lambda s: bool(app_row(s, "web", "dev").non_descendant))
    for _ in range(3):
        await engine.sync_automated_apps()
    assert replicas(fleet) == 2
    waits = [c.message for c in app_row(snap, "web", "dev").conditions if c.type == "NonDescendant"]
    assert waits and "automated sync waits for an operator" in waits[0]
    assert not [e for e in read_entries(fleet.journal) if e.action == "sync" and e.result == "refused"]


async def test_acknowledgement_of_another_situation_is_refused(fleet: Fleet, started: StartEngine) -> None:
    """An acknowledged plan whose situation changed before it ran (another operator rolled the cluster back,
    so the synced revision is another one) is refused: the acknowledgement named other revisions."""
    engine, first = await synced_once(fleet, started)
    second = write_app(fleet.repo, [{**WEB, "spec": {**WEB["spec"], "replicas": 3}}, CONFIG], "web: 3 replicas")
    await engine.refresh()
    assert [s async for s in engine.execute_plan(await engine.plan_sync("web", "dev"))][-1].phase.successful
    await wait_for(engine, lambda s: app_row(s, "web", "dev").synced_revision == second)
    force_push_orphan(fleet, replicas=7)
    await engine.refresh()
    acknowledged = await engine.plan_sync("web", "dev", allow_non_descendant=True)
    assert second[:8] in acknowledged.non_descendant and acknowledged.non_descendant_allowed
    assert [s async for s in engine.execute_plan(await engine.plan_rollback("web", "dev", first))][-1].phase.successful
    await wait_for(engine, lambda s: app_row(s, "web", "dev").synced_revision == first)
    with pytest.raises(NotAcknowledgedError, match="not what was acknowledged"):
        _ = [s async for s in engine.execute_plan(acknowledged)]
    assert replicas(fleet) == 2
    refused = read_entries(fleet.journal)[-1]
    assert refused.result == "refused" and refused.details["synced_revision"] == first
