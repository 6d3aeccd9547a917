"""Hooks through the engine: the plan lists them phase by phase, a sync runs them, and afterwards the row
is Synced: a hook deleted by its policy is never Missing, one kept is never extraneous (nor pruned)."""

from __future__ import annotations

from typing import Any

from core.model import OperationPhase, ResourceKey, SyncAction, SyncPhase, SyncStatus
from tests.engine.conftest import CONFIG, WEB, Fleet, StartEngine, write_app
from tests.engine.test_engine import app_row, wait_for


def hook(name: str, phase: str, policy: str | None = None) -> dict[str, Any]:
    annotations = {"argocd.argoproj.io/hook": phase}
    if policy:
        annotations["argocd.argoproj.io/hook-delete-policy"] = policy
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "annotations": annotations},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                                                              "containers": [{"name": "c", "image": "alpine:3"}]}}}}


async def test_hooks_run_in_phase_order_and_never_show_as_drift(fleet: Fleet, started: StartEngine) -> None:
    write_app(fleet.repo, [hook("after", "PostSync"), WEB, CONFIG, hook("before", "PreSync", "HookSucceeded")],
              "web: hooks")
    engine = await started()
    await wait_for(engine, lambda s: app_row(s, "web", "dev").revision is not None)
    row = app_row(engine.snapshot, "web", "dev")
    assert {r.key.name for r in row.resources if r.managed} == {"web", "web-config"}
    plan = await engine.plan_sync("web", "dev", prune=True)
    assert not plan.blocked, plan.blocked
    applied = [s for s in plan.steps if s.action is SyncAction.CREATED and s.key.kind != "Namespace"]
    assert [(s.phase, s.key.name) for s in applied] == [
        (SyncPhase.PRE_SYNC, "before"), (SyncPhase.SYNC, "web-config"), (SyncPhase.SYNC, "web"),
        (SyncPhase.POST_SYNC, "after")]
    assert plan.phased
    result = None
    async for state in engine.execute_plan(plan):
        result = state
    assert result is not None and result.phase is OperationPhase.SUCCEEDED, result and result.message
    cluster = fleet.clusters["dev"]
    assert cluster.get_object(ResourceKey("batch", "Job", "web", "before")) is None  # HookSucceeded
    assert cluster.get_object(ResourceKey("batch", "Job", "web", "after")) is not None  # BeforeHookCreation keeps it
    snap = await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.SYNCED)
    row = app_row(snap, "web", "dev")
    assert not any(r.key.kind == "Job" and r.managed for r in row.resources)
    again = await engine.plan_sync("web", "dev", prune=True)
    assert not any(s.action is SyncAction.PRUNED for s in again.steps), again.steps


async def test_plan_warns_when_presync_hooks_need_a_namespace_the_sync_phase_creates(
        fleet: Fleet, started: StartEngine) -> None:
    """Argo CD runs PreSync hooks before any Sync-phase object, Namespaces included: the plan says the hook
    will fail; the destination namespace (created before PreSync) needs no warning."""
    elsewhere = hook("migrate", "PreSync")
    elsewhere["metadata"]["namespace"] = "jobs"
    jobs = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "jobs"}}
    write_app(fleet.repo, [WEB, CONFIG, jobs, elsewhere, hook("before", "PreSync")], "web: hook in jobs")
    engine = await started()
    await wait_for(engine, lambda s: app_row(s, "web", "dev").revision is not None)
    plan = await engine.plan_sync("web", "dev")
    early = [w for w in plan.warnings if "PreSync hooks in namespace" in w]
    assert early == ["PreSync hooks in namespace jobs run before the Sync phase creates it: they will fail (make "
                     "it the app's destination namespace, or create it first)"]
