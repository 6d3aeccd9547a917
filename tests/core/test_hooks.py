"""Argo CD hooks and sync phases against the simulated cluster: mapping, plan order, run order, delete
policies, a failing hook and SyncFail (the simulated Job controller completes a Job whose image is good and
fails one whose image contains ``crashloop``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from core.journal import Journal, read_entries
from core.model import (
    AppName,
    ClusterName,
    OperationPhase,
    OperationState,
    PlanStep,
    ResourceKey,
    SyncAction,
    SyncPhase,
    SyncPlan,
)
from core.reconcile.hooks import DeletePolicy, hook_of, hook_steps, hook_wave
from core.sync.state import NAMESPACES, AppStateStore
from tests.core.test_operation import APP, GROUP, NS, REV_A, FaultyCluster, cm, crd, keyed, make_op, widget

PRE, POST = "argocd.argoproj.io/hook", "argocd.argoproj.io/hook-delete-policy"


@pytest_asyncio.fixture
async def api() -> AsyncIterator[FaultyCluster]:
    """A fresh simulated cluster."""
    cluster = FaultyCluster()
    yield cluster
    await cluster.close()


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    """A journal in a temporary directory."""
    return Journal(tmp_path / "journal.jsonl")


def hook_job(name: str, hook: str, *, policy: str | None = None, image: str = "alpine:3",
             wave: int | None = None, generate: bool = False, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    annotations = {PRE: hook, **(extra or {})}
    if policy is not None:
        annotations[POST] = policy
    if wave is not None:
        annotations["argocd.argoproj.io/sync-wave"] = str(wave)
    meta: dict[str, Any] = {"namespace": NS, "annotations": annotations}
    meta["generateName" if generate else "name"] = f"{name}-" if generate else name
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                                                              "containers": [{"name": "c", "image": image}]}}}}


def annotated(annotations: Mapping[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "annotations": dict(annotations)}}


async def plan_with_hooks(api: FaultyCluster, desired: Mapping[ResourceKey, Mapping[str, Any]],
                          **fields: Any) -> tuple[SyncPlan, dict[ResourceKey, Any]]:
    """A plan the way the engine makes one: resources created/configured, then the hooks' steps, phase order."""
    live = {k: o for k in desired if (o := api.get_object(k)) is not None}
    steps = [PlanStep(k, SyncAction.CONFIGURED if k in live else SyncAction.CREATED)
             for k, o in desired.items() if hook_of(o) is None]
    merged = sorted([*steps, *hook_steps(desired)], key=lambda s: (s.phase.rank, s.wave))
    plan = SyncPlan(app=AppName(APP), cluster=ClusterName("sim"), revision=REV_A, steps=tuple(merged), **fields)
    return plan, live


async def run(api: FaultyCluster, journal: Journal, *objs: Mapping[str, Any], **fields: Any) -> OperationState:
    """Sync ``objs`` with hooks into namespace ``NS``, which exists before (hooks run before the Sync phase
    creates anything, as in Argo CD)."""
    if api.get_object(ResourceKey("", "Namespace", "", NS)) is None:
        await api.apply(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
                        field_manager="test")
        api.writes.clear()
    desired = keyed(*objs)
    plan, live = await plan_with_hooks(api, desired, **fields)
    return await make_op(api, plan, desired, live, journal).run_to_completion()


def writes(api: FaultyCluster) -> list[tuple[str, str]]:
    return [(verb, name) for verb, name in api.real_writes() if not name.startswith("fleetdeck")]


# ---------------------------------------------------------------------------------------------- mapping


def test_argo_hook_annotations_map_to_phases_and_policies() -> None:
    """Comma lists, phase order, the BeforeHookCreation default, Skip, and delete-time hooks a sync never runs."""
    hook = hook_of(annotated({PRE: "PostSync, PreSync"}))
    assert hook is not None
    assert hook.phases == (SyncPhase.PRE_SYNC, SyncPhase.POST_SYNC)
    assert hook.delete_policies == {DeletePolicy.BEFORE_HOOK_CREATION}
    hook = hook_of(annotated({PRE: "SyncFail", POST: "HookSucceeded,HookFailed"}))
    assert hook is not None and hook.phases == (SyncPhase.SYNC_FAIL,)
    assert hook.delete_policies == {DeletePolicy.HOOK_SUCCEEDED, DeletePolicy.HOOK_FAILED}
    skip = hook_of(annotated({PRE: "Skip"}))
    assert skip is not None and skip.skipped
    post_delete = hook_of(annotated({PRE: "PostDelete"}))
    assert post_delete is not None and post_delete.skipped and "only when an app is deleted" in post_delete.warnings[0]
    assert hook_of(annotated({"argocd.argoproj.io/sync-wave": "3"})) is None


def test_helm_hooks_map_the_way_argo_cd_maps_them() -> None:
    """pre-install/pre-upgrade → PreSync, post-* → PostSync, crd-install is a resource, test hooks never run,
    hook-weight is the wave, Helm delete policies map; an Argo CD hook annotation wins over Helm's."""
    hook = hook_of(annotated({"helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-weight": "-5",
                              "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded"}))
    assert hook is not None and hook.phases == (SyncPhase.PRE_SYNC,) and hook.source == "helm"
    assert hook.delete_policies == {DeletePolicy.BEFORE_HOOK_CREATION, DeletePolicy.HOOK_SUCCEEDED}
    assert hook_wave(annotated({"helm.sh/hook": "pre-install", "helm.sh/hook-weight": "-5"})) == -5
    assert hook_wave(annotated({"helm.sh/hook-weight": "-5", "argocd.argoproj.io/sync-wave": "2"})) == 2
    post = hook_of(annotated({"helm.sh/hook": "post-upgrade", "helm.sh/hook-delete-policy": "hook-failed"}))
    assert post is not None and post.phases == (SyncPhase.POST_SYNC,)
    assert post.delete_policies == {DeletePolicy.HOOK_FAILED}
    assert hook_of(annotated({"helm.sh/hook": "crd-install"})) is None
    test_hook = hook_of(annotated({"helm.sh/hook": "test"}))
    assert test_hook is not None and test_hook.skipped and "not run by a sync" in test_hook.why_skipped
    both = hook_of(annotated({"helm.sh/hook": "pre-install", PRE: "PostSync"}))
    assert both is not None and both.phases == (SyncPhase.POST_SYNC,) and both.source == "argocd"


def test_plan_steps_come_in_phase_then_wave_order() -> None:
    """The pre-post-sync example: the PreSync Job first, the PostSync Job last, SyncFail marked conditional."""
    desired = keyed(hook_job("after", "PostSync", policy="HookSucceeded"), cm("guestbook"),
                    hook_job("before", "PreSync", policy="HookSucceeded"), hook_job("late-pre", "PreSync", wave=5),
                    hook_job("cleanup", "SyncFail"), hook_job("never", "Skip"))
    steps = hook_steps(desired)
    assert [(s.phase, s.key.name, s.wave) for s in steps] == [
        (SyncPhase.PRE_SYNC, "before", 0), (SyncPhase.PRE_SYNC, "late-pre", 5), (SyncPhase.SYNC, "never", 0),
        (SyncPhase.POST_SYNC, "after", 0), (SyncPhase.SYNC_FAIL, "cleanup", 0)]
    assert all(s.hook for s in steps)
    assert steps[2].action is SyncAction.SKIPPED and "Skip" in steps[2].reason
    assert "only if the sync fails" in steps[4].reason
    assert "HookSucceeded" in steps[0].reason


# ---------------------------------------------------------------------------------------------- runs


async def test_phases_run_in_order_and_hooks_are_deleted_by_policy(api: FaultyCluster, journal: Journal) -> None:
    """PreSync Job completes before the Sync phase's objects, the PostSync Job runs last; HookSucceeded deletes
    both; hooks are not in the inventory (a later prune never considers them); the journal names the phases."""
    result = await run(api, journal, hook_job("after", "PostSync", policy="HookSucceeded"), cm("guestbook"),
                       hook_job("before", "PreSync", policy="HookSucceeded"))
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    order = writes(api)
    assert order.index(("apply", "before")) < order.index(("delete", "before")) < order.index(("apply", "guestbook"))
    assert order.index(("apply", "guestbook")) < order.index(("apply", "after")) < order.index(("delete", "after"))
    assert api.get_object(ResourceKey("batch", "Job", NS, "before")) is None
    assert api.get_object(ResourceKey("batch", "Job", NS, "after")) is None
    hooks = [(e.phase, e.key.name, e.action) for e in result.entries if e.hook]
    assert hooks == [(SyncPhase.PRE_SYNC, "before", SyncAction.CREATED), (SyncPhase.POST_SYNC, "after", SyncAction.CREATED)]
    assert result.entries[0].key.name == "before" and result.entries[-1].key.name == "after"
    state = await AppStateStore(api).load(APP)
    assert {k.name for k in state.inventory_keys} == {"guestbook"}
    finished = [e for e in read_entries(journal.path) if e.result == "succeeded"][-1]
    assert finished.details["hooks"] == ["PreSync Job/shop/before: created", "PostSync Job/shop/after: created"]


async def test_a_failed_presync_hook_stops_the_sync_and_runs_syncfail(api: FaultyCluster, journal: Journal) -> None:
    """The Sync phase writes nothing, PostSync never runs, the SyncFail hook runs; the message names the phase."""
    result = await run(api, journal, hook_job("migrate", "PreSync", image="example/crashloop:1"), cm("guestbook"),
                       hook_job("after", "PostSync"), hook_job("cleanup", "SyncFail", policy="HookSucceeded"))
    assert result.phase is OperationPhase.FAILED
    assert "stopped at PreSync hooks wave 0: Job/shop/migrate failed" in result.message
    names = [name for verb, name in writes(api) if verb == "apply"]
    assert names == ["migrate", "cleanup"]
    by_name = {e.key.name: e for e in result.entries}
    assert by_name["guestbook"].action is SyncAction.SKIPPED
    assert by_name["after"].action is SyncAction.SKIPPED and by_name["after"].phase is SyncPhase.POST_SYNC
    assert by_name["cleanup"].action is SyncAction.CREATED and "deleted (HookSucceeded)" in by_name["cleanup"].message
    assert api.get_object(ResourceKey("batch", "Job", NS, "migrate")) is not None  # kept: no HookFailed policy
    failed = [e for e in read_entries(journal.path) if e.result == "failed"][-1]
    assert "PreSync" in failed.message


async def test_before_hook_creation_replaces_the_previous_run(api: FaultyCluster, journal: Journal) -> None:
    """With the default policy the completed Job of the last sync is deleted before the hook is created again."""
    desired = [hook_job("before", "PreSync")]
    first = await run(api, journal, *desired)
    assert first.phase is OperationPhase.SUCCEEDED, first.message
    uid = api.get_object(ResourceKey("batch", "Job", NS, "before"))["metadata"]["uid"]  # type: ignore[index]
    api.writes.clear()
    second = await run(api, journal, *desired)
    assert second.phase is OperationPhase.SUCCEEDED, second.message
    assert writes(api)[:2] == [("delete", "before"), ("apply", "before")]
    again = api.get_object(ResourceKey("batch", "Job", NS, "before"))
    assert again is not None and again["metadata"]["uid"] != uid


async def test_generate_name_hooks_get_a_name_per_run(api: FaultyCluster, journal: Journal) -> None:
    """A generateName hook is created by POST; each sync runs a new object."""
    desired = [hook_job("migrate", "PreSync", generate=True)]
    first = await run(api, journal, *desired)
    second = await run(api, journal, *desired)
    assert first.phase is second.phase is OperationPhase.SUCCEEDED, (first.message, second.message)
    made = [e.key.name for r in (first, second) for e in r.entries if e.hook]
    assert len(set(made)) == 2 and all(n.startswith("migrate-") for n in made)


async def test_sync_hooks_run_within_their_wave(api: FaultyCluster, journal: Journal) -> None:
    """A Sync hook of wave 1 runs after wave 1's resources and before wave 2's."""
    result = await run(api, journal, cm("one", wave=1), cm("two", wave=2), hook_job("mid", "Sync", wave=1))
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    names = [name for verb, name in writes(api) if verb == "apply"]
    assert names.index("one") < names.index("mid") < names.index("two")


async def test_dry_run_runs_no_hooks(api: FaultyCluster, journal: Journal) -> None:
    """A dry run writes nothing and says the hooks are not run."""
    result = await run(api, journal, hook_job("before", "PreSync"), cm("guestbook"), dry_run=True)
    assert writes(api) == []
    assert {e.key.name: e.message for e in result.entries if e.hook} == {"before": "dry run: hooks are not run"}


async def test_hook_of_an_unserved_kind_fails_before_anything_is_written(api: FaultyCluster, journal: Journal) -> None:
    """A hook whose kind no CRD of the sync defines fails the preflight: nothing is written."""
    workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                "metadata": {"name": "wf", "namespace": NS, "annotations": {PRE: "PreSync"}}}
    result = await run(api, journal, workflow, cm("guestbook"))
    assert result.phase is OperationPhase.FAILED
    assert "PreSync hook Workflow/shop/wf" in result.message and "nothing was changed" in result.message
    assert writes(api) == []


async def test_a_crd_created_by_a_presync_hook_serves_the_sync_phase(api: FaultyCluster, journal: Journal) -> None:
    """A kind defined by a CRD of the same sync (here a PreSync hook) is not "unserved": the CRD is created
    and Established first, then the custom resource is applied in the Sync phase."""
    definition = crd()
    definition["metadata"]["annotations"] = {PRE: "PreSync", POST: "HookFailed"}
    result = await run(api, journal, widget("w"), definition)
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    names = [name for verb, name in writes(api) if verb == "apply"]
    assert names.index(f"widgets.{GROUP}") < names.index("w")


async def test_a_failed_pod_hook_is_deleted_with_hook_failed(api: FaultyCluster, journal: Journal) -> None:
    """A Pod hook that ends Failed fails the sync and, with HookFailed, is deleted."""
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "check", "namespace": NS, "annotations": {PRE: "PostSync", POST: "HookFailed"}},
           "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "example/crashloop:1"}]}}
    result = await run(api, journal, cm("guestbook"), pod)
    assert result.phase is OperationPhase.FAILED
    assert "stopped at PostSync hooks wave 0: Pod/shop/check failed" in result.message, result.message
    entry = next(e for e in result.entries if e.hook)
    assert entry.action is SyncAction.FAILED and "deleted (HookFailed)" in entry.message
    assert api.get_object(ResourceKey("", "Pod", NS, "check")) is None
    assert api.get_object(ResourceKey("", "ConfigMap", NS, "guestbook")) is not None


async def test_helm_hooks_run_by_weight_and_policy(api: FaultyCluster, journal: Journal) -> None:
    """Helm pre-install hooks run in PreSync ordered by hook-weight; hook-succeeded deletes them; a Helm test
    hook is never applied."""
    def helm_job(name: str, hook: str, weight: str) -> dict[str, Any]:
        job = hook_job(name, "x")
        job["metadata"]["annotations"] = {"helm.sh/hook": hook, "helm.sh/hook-weight": weight,
                                          "helm.sh/hook-delete-policy": "hook-succeeded"}
        return job

    result = await run(api, journal, helm_job("second", "pre-install,pre-upgrade", "5"), cm("guestbook"),
                       helm_job("first", "pre-upgrade", "-5"), helm_job("smoke", "test", "0"))
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert [name for verb, name in writes(api) if verb == "apply"] == ["first", "second", "guestbook"]
    assert ("delete", "first") in writes(api) and ("delete", "second") in writes(api)
    assert {e.key.name: e.phase for e in result.entries if e.hook} == {"first": SyncPhase.PRE_SYNC,
                                                                      "second": SyncPhase.PRE_SYNC}


async def test_a_hook_in_two_phases_runs_in_both(api: FaultyCluster, journal: Journal) -> None:
    """``PreSync,PostSync`` with a fixed name: created in PreSync, deleted (BeforeHookCreation) and created
    again in PostSync; one result entry per phase."""
    result = await run(api, journal, hook_job("check", "PreSync,PostSync"), cm("guestbook"))
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert writes(api) == [("apply", "check"), ("apply", "guestbook"), ("delete", "check"), ("apply", "check")]
    assert [(e.phase, e.key.name) for e in result.entries if e.hook] == [(SyncPhase.PRE_SYNC, "check"),
                                                                         (SyncPhase.POST_SYNC, "check")]
