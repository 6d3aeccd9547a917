"""Honest state: rows when the desired state cannot be had (a failed render, a deleted branch); a dead
process's automation Lease."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys

from core.journal import read_entries
from core.model import HealthStatus, ResourceState, SyncAction, SyncStatus
from core.sync.lease import AUTOMATION_LEASE, Claim, LeaseClient, this_process
from tests.engine.conftest import Fleet, StartEngine, git
from tests.engine.test_engine import app_row, wait_for
from tui.output import status_rows


async def test_app_that_cannot_render_is_unknown_not_healthy(fleet: Fleet, started: StartEngine) -> None:
    """A render failure: health and sync Unknown with the reason, never Healthy with nothing live."""
    (fleet.repo / "apps" / "web" / "broken.yaml").write_text("kind: [unclosed\n")
    git(fleet.repo, "add", "-A")
    git(fleet.repo, "commit", "-q", "-m", "web: broken manifest")
    engine = await started()
    row = app_row(engine.snapshot, "web", "dev")
    assert row.sync is SyncStatus.UNKNOWN
    assert row.health.status is HealthStatus.UNKNOWN
    assert "does not render" in row.health.message and "broken.yaml" in row.health.message
    assert any(c.type == "ComparisonError" for c in row.conditions)
    assert row.revision is not None  # the revision that failed to render is still named
    plan = await engine.plan_sync("web", "dev")
    assert "does not render" in plan.blocked


async def test_live_objects_stay_listed_when_the_render_breaks(fleet: Fleet, started: StartEngine) -> None:
    """After a sync, a broken commit: the live objects are still shown (Unknown, with live health), app Unknown."""
    engine = await started()
    states = [s async for s in engine.execute_plan(await engine.plan_sync("web", "dev"))]
    assert states[-1].phase.successful, states[-1].message
    await wait_for(engine, lambda s: app_row(s, "web", "dev").health.status is HealthStatus.HEALTHY)
    (fleet.repo / "apps" / "web" / "broken.yaml").write_text("kind: [unclosed\n")
    git(fleet.repo, "add", "-A")
    git(fleet.repo, "commit", "-q", "-m", "web: broken manifest")
    await engine.refresh(hard=True)
    snap = await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.UNKNOWN)
    row = app_row(snap, "web", "dev")
    assert row.health.status is HealthStatus.UNKNOWN
    shown = {r.key.kind: r for r in row.resources if r.managed}
    assert set(shown) == {"Deployment", "ConfigMap"}
    assert {r.state for r in shown.values()} == {ResourceState.UNKNOWN}
    assert "no desired state to compare with" in shown["Deployment"].diff.message
    assert shown["Deployment"].health is not None
    assert shown["Deployment"].health.status is HealthStatus.HEALTHY  # the live object's own health
    assert "does not render" in (await engine.plan_sync("web", "dev", prune=True)).blocked


async def test_deleted_branch_keeps_the_last_fetched_revision_marked_stale(fleet: Fleet, started: StartEngine) -> None:
    """A new process after the branch was deleted shows the last fetched revision, stale, and refuses prune."""
    first = await started()
    head = app_row(first.snapshot, "web", "dev").revision
    assert head is not None
    await first.stop()

    git(fleet.repo, "checkout", "-q", "-b", "elsewhere")
    git(fleet.repo, "branch", "-q", "-D", "main")
    engine = await started()
    snap = engine.snapshot
    assert snap.repo is not None and "main" in snap.repo.error
    row = app_row(snap, "web", "dev")
    assert row.revision is not None and row.revision.sha == head.sha
    assert row.revision_stale
    assert "old-rev" in status_rows([row])[0][7].split()  # `fleetdeck status` flags it
    assert status_rows([row])[0][4] == f"- → {head.short}"  # never synced here; Git wants the last fetched head
    stale = [c for c in row.conditions if c.type == "RevisionStale"]
    assert stale and head.short in stale[0].message and "fetching fails" in stale[0].message
    assert row.sync is SyncStatus.OUT_OF_SYNC  # still compared against the last good desired state
    assert {s.action for s in (await engine.plan_sync("web", "dev")).steps} == {SyncAction.CREATED}
    assert "cannot be fetched" in (await engine.plan_sync("web", "dev", prune=True)).blocked


async def test_deleted_branch_in_a_running_engine_keeps_its_revision(fleet: Fleet, started: StartEngine) -> None:
    """The branch vanishes under a running engine: a refresh keeps the revision and marks it stale."""
    engine = await started()
    head = app_row(engine.snapshot, "web", "dev").revision
    git(fleet.repo, "checkout", "-q", "-b", "elsewhere")
    git(fleet.repo, "branch", "-q", "-D", "main")
    await engine.refresh(hard=True)
    snap = await wait_for(engine, lambda s: app_row(s, "web", "dev").revision_stale)
    assert app_row(snap, "web", "dev").revision == head


async def test_automation_lease_of_a_dead_local_process_is_taken_over_and_journalled(
    fleet: Fleet, started: StartEngine,
) -> None:
    """The per-cluster automation Lease left by a dead fleetdeck on this host is taken over at once."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    dead = dataclasses.replace(this_process(), pid=proc.pid, start="")
    await LeaseClient(fleet.clusters["dev"]).acquire(
        Claim(AUTOMATION_LEASE, f"ghost@{dead.host}:{proc.pid}", "automation", "ghost", "automated sync owner",
              duration=300, process=dead))
    engine = await started()
    async with asyncio.timeout(10):
        while not [e for e in read_entries(fleet.journal) if e.action == "lock-takeover"]:
            await asyncio.sleep(0.05)
    entry = next(e for e in read_entries(fleet.journal) if e.action == "lock-takeover")
    assert (entry.cluster, entry.result) == ("dev", "succeeded")
    assert f"released lock of dead process {proc.pid}" in entry.message
    assert engine.clusters["dev"].automation.held
