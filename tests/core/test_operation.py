"""SyncOperation against the simulated cluster: waves, failures, prune safety, dry run, selective, rollback, crashes."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from core.errors import ClusterError, JournalError, LockedError
from core.journal import Journal, OperatorIdentity, read_entries, verify
from core.live.api import JSON, APIResource
from core.model import (
    AppName,
    ClusterName,
    OperationPhase,
    OperationState,
    PlanStep,
    ResourceKey,
    SyncAction,
    SyncPlan,
)
from core.reconcile.tracking import APP_LABEL, TRACKING_ANNOTATION, app_label_value
from core.settings import SyncSettings
from core.simulated.simulated_cluster import SimulatedCluster, SimulationTiming
from core.sync.operation import OperationOptions, SyncOperation
from core.sync.recovery import interrupted_operation
from core.sync.state import NAMESPACE, AppStateStore, state_name

APP = "shop"
NS = "shop"
GROUP = "widgets.example.com"
REV_A, REV_B = "a" * 40, "b" * 40
ALICE = OperatorIdentity(os_user="alice", host="bastion-1", pid=101)
BOB = OperatorIdentity(os_user="bob", host="bastion-2", pid=202)
FAST = OperationOptions(poll_interval=0.01, health_timeout=5)


class FaultyCluster(SimulatedCluster):
    """The simulated cluster with injectable apply failures and a log of writes."""

    def __init__(self) -> None:
        super().__init__("sim", timing=SimulationTiming.instant())
        self.reject: dict[str, ClusterError] = {}
        """Object name → error raised by a real (not dry-run) apply."""
        self.transient: dict[str, int] = {}
        """Object name → how many applies fail with 503 first."""
        self.writes: list[tuple[str, str, bool]] = []
        """(verb, name, dry_run) of every apply/delete/create, in order."""
        self.state_bodies: list[JSON] = []
        self.reads: list[str] = []
        """Names of the objects read one by one (GET), in order."""

    async def apply(self, resource: APIResource, obj: Mapping[str, Any], *, field_manager: str,
                    dry_run: bool = False, force: bool = True) -> JSON:
        name = str(obj["metadata"]["name"])
        self.writes.append(("apply", name, dry_run))
        if not dry_run and name in self.reject:
            raise self.reject[name]
        if self.transient.get(name, 0) > 0:
            self.transient[name] -= 1
            raise ClusterError("etcd leader changed", cluster=self.cluster, status=503, reason="ServiceUnavailable")
        if name.startswith("fleetdeck-app-"):
            self.state_bodies.append(json.loads(json.dumps(obj)))
        return await super().apply(resource, obj, field_manager=field_manager, dry_run=dry_run, force=force)

    async def delete(self, resource: APIResource, name: str, namespace: str = "", *, propagation: str = "Foreground",
                     uid: str | None = None, dry_run: bool = False) -> None:
        self.writes.append(("delete", name, dry_run))
        await super().delete(resource, name, namespace, propagation=propagation, uid=uid, dry_run=dry_run)

    async def create(self, resource: APIResource, obj: Mapping[str, Any], *, dry_run: bool = False) -> JSON:
        name = str(obj["metadata"].get("name") or obj["metadata"].get("generateName"))
        self.writes.append(("create", name, dry_run))
        if name.startswith("fleetdeck-app-"):
            self.state_bodies.append(json.loads(json.dumps(obj)))
        return await super().create(resource, obj, dry_run=dry_run)

    async def get(self, resource: APIResource, name: str, namespace: str = "") -> JSON | None:
        self.reads.append(name)
        return await super().get(resource, name, namespace)

    def real_writes(self) -> list[tuple[str, str]]:
        """Non-dry-run writes, as (verb, name)."""
        return [(verb, name) for verb, name, dry in self.writes if not dry]


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


# ---------------------------------------------------------------------------------------------- helpers


def _meta(name: str, ns: str = NS, wave: int | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    if wave is not None:
        meta["annotations"] = {"fleetdeck.io/sync-wave": str(wave)}
    return meta


def cm(name: str, *, wave: int | None = None, value: str = "1") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name, wave=wave), "data": {"v": value}}


def namespace(name: str = NS) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def crd() -> dict[str, Any]:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widgets.{GROUP}"},
            "spec": {"group": GROUP, "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}]}}


def widget(name: str, *, wave: int | None = None) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": _meta(name, wave=wave), "spec": {"size": 1}}


def job(name: str, *, image: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _meta(name),
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": image}]}}}}


def keyed(*objs: Mapping[str, Any]) -> dict[ResourceKey, Mapping[str, Any]]:
    return {ResourceKey.of(o): o for o in objs}


async def plan_for(api: SimulatedCluster, desired: Mapping[ResourceKey, Mapping[str, Any]], *, prune: bool = False,
                   revision: str = REV_A, **fields: Any) -> tuple[SyncPlan, dict[ResourceKey, JSON]]:
    """A plan the way the engine makes one: desired created/configured, inventory leftovers pruned."""
    state = await AppStateStore(api).load(APP)
    live = {k: o for k in [*desired, *state.inventory_keys] if (o := api.get_object(k)) is not None}
    steps = [PlanStep(k, SyncAction.CONFIGURED if k in live else SyncAction.CREATED) for k in desired]
    steps += [PlanStep(k, SyncAction.PRUNED) for k in sorted(state.inventory_keys - set(desired)) if k in live]
    plan = SyncPlan(app=AppName(APP), cluster=ClusterName("sim"), revision=revision, steps=tuple(steps), prune=prune,
                    **fields)
    return plan, live


def make_op(api: SimulatedCluster, plan: SyncPlan, desired: Mapping[ResourceKey, Mapping[str, Any]],
            live: Mapping[ResourceKey, JSON], journal: Journal, *, who: OperatorIdentity = ALICE,
            options: OperationOptions = FAST, clock: Any = None) -> SyncOperation:
    extra = {"clock": clock} if clock else {}
    return SyncOperation(plan=plan, desired=desired, live=live, api=api, store=AppStateStore(api), journal=journal,
                         identity=who, settings=SyncSettings(), options=options, **extra)


async def sync(api: SimulatedCluster, journal: Journal, *objs: Mapping[str, Any], prune: bool = False,
               revision: str = REV_A, options: OperationOptions = FAST, **fields: Any) -> OperationState:
    desired = keyed(*objs)
    plan, live = await plan_for(api, desired, prune=prune, revision=revision, **fields)
    return await make_op(api, plan, desired, live, journal, options=options).run_to_completion()


def actions(state: OperationState) -> dict[str, str]:
    return {e.key.name: e.action.value for e in state.entries}


def applied_order(api: FaultyCluster) -> list[str]:
    return [name for verb, name in api.real_writes() if verb == "apply" and not name.startswith("fleetdeck")]


# ---------------------------------------------------------------------------------------------- waves


async def test_waves_apply_in_order_with_namespaces_and_crds_first(api: FaultyCluster, journal: Journal) -> None:
    """Namespace and CRD go before their dependents; each wave is applied after the previous one."""
    result = await sync(api, journal, cm("late", wave=2), widget("w", wave=1), cm("early"), crd(), namespace())
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    order = applied_order(api)
    assert order.index(NS) < order.index("early")
    assert order.index(f"widgets.{GROUP}") < order.index("w") < order.index("late")
    assert set(actions(result).values()) == {"created"}
    state = await AppStateStore(api).load(APP)
    assert [h.revision for h in state.history] == [REV_A]
    assert state.operation is None and len(state.inventory) == 5


async def test_applied_objects_carry_tracking_label_and_annotation(api: FaultyCluster, journal: Journal) -> None:
    """Desired objects get the owner label and self-referencing tracking id before apply."""
    await sync(api, journal, namespace(), cm("c"))
    live = api.get_object(ResourceKey("", "ConfigMap", NS, "c"))
    assert live is not None
    assert live["metadata"]["labels"][APP_LABEL] == app_label_value(APP)
    assert live["metadata"]["annotations"][TRACKING_ANNOTATION] == f"{APP}:/ConfigMap:{NS}/c"


async def test_second_sync_reports_configured_and_unchanged(api: FaultyCluster, journal: Journal) -> None:
    """A changed object is configured, an identical one unchanged."""
    await sync(api, journal, namespace(), cm("a"), cm("b"))
    result = await sync(api, journal, namespace(), cm("a", value="2"), cm("b"), revision=REV_B)
    assert actions(result) == {NS: "unchanged", "a": "configured", "b": "unchanged"}


async def test_waits_between_waves_take_rule_less_health_from_the_apply(api: FaultyCluster, journal: Journal) -> None:
    """A ConfigMap's health is the apply's answer (no rule reads status): the waits send no read of it; a
    Deployment's is read after its wave (its rule reads what the controller writes)."""
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("web"),
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "c", "image": "web:1"}]}}}}
    result = await sync(api, journal, namespace(), cm("w0"), deploy, cm("w1", wave=1), cm("w2", wave=2),
                        options=replace(FAST, wait_for_health=True))
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert applied_order(api) == [NS, "w0", "web", "w1", "w2"] or applied_order(api) == [NS, "web", "w0", "w1", "w2"]
    assert not {"w0", "w1", "w2"} & set(api.reads), api.reads
    assert api.reads.count(NS) == 1  # the preflight asks whether the namespace exists; its health is not read
    assert "web" in api.reads


async def test_failed_resource_stops_its_wave(api: FaultyCluster, journal: Journal) -> None:
    """A rejected object stops the sync at its wave: later waves are not applied, nothing is pruned."""
    await sync(api, journal, namespace(), cm("old"))
    api.reject["bad"] = ClusterError("admission webhook denied", cluster="sim", status=400, reason="BadRequest")
    result = await sync(api, journal, namespace(), cm("first"), cm("bad", wave=1), cm("sibling", wave=1),
                        cm("never", wave=2), cm("never2", wave=3), prune=True)
    assert result.phase is OperationPhase.FAILED
    assert result.message.startswith(f"stopped at wave 1: ConfigMap/{NS}/bad failed (BadRequest)")
    assert f"not applied: ConfigMap/{NS}/never, ConfigMap/{NS}/never2" in result.message
    assert actions(result) == {NS: "unchanged", "first": "created", "bad": "failed", "sibling": "created",
                               "never": "skipped", "never2": "skipped", "old": "skipped"}
    assert api.get_object(ResourceKey("", "ConfigMap", NS, "old")) is not None
    assert "never" not in applied_order(api)
    state = await AppStateStore(api).load(APP)
    assert len(state.history) == 1
    assert ResourceKey("", "ConfigMap", NS, "sibling") in state.inventory_keys
    assert ResourceKey("", "ConfigMap", NS, "old") in state.inventory_keys
    assert state.last_operation is not None and state.last_operation.phase is OperationPhase.FAILED
    assert [e.result for e in read_entries(journal.path)][-1] == "failed"


async def test_preflight_failure_mutates_nothing(api: FaultyCluster, journal: Journal) -> None:
    """An object the dry run rejects fails the operation before any object is written."""
    api.ensure_namespace(NS)
    bad = cm("bad")
    bad["spec"] = {"replicas": 1}  # ConfigMaps have no spec: strict field validation refuses it
    result = await sync(api, journal, cm("good"), bad)
    assert result.phase is OperationPhase.FAILED
    assert "failed to apply (dry run)" in result.message
    assert [w for w in api.real_writes() if not w[1].startswith("fleetdeck")] == []
    assert (await AppStateStore(api).load(APP)).operation is None


async def test_unknown_kind_without_crd_fails_before_writing(api: FaultyCluster, journal: Journal) -> None:
    """A custom resource whose CRD is neither served nor in the sync fails the preflight."""
    api.ensure_namespace(NS)
    result = await sync(api, journal, cm("c"), widget("w"))
    assert result.phase is OperationPhase.FAILED
    assert actions(result)["w"] == "failed"
    assert "not served" in {e.key.name: e.message for e in result.entries}["w"]
    assert applied_order(api) == []


async def test_transient_errors_are_retried(api: FaultyCluster, journal: Journal) -> None:
    """A 503 on apply is retried (SyncSettings.request_retries) and the sync succeeds."""
    api.ensure_namespace(NS)
    api.transient["flaky"] = 2
    result = await sync(api, journal, cm("flaky"))
    assert result.phase is OperationPhase.SUCCEEDED, result.message


async def test_immutable_field_needs_force_replace(api: FaultyCluster, journal: Journal) -> None:
    """An immutable change fails with guidance; with force replace the object is deleted and recreated."""
    await sync(api, journal, namespace(), job("migrate", image="db:1"))
    uid = api.get_object(ResourceKey("batch", "Job", NS, "migrate"))["metadata"]["uid"]  # type: ignore[index]
    refused = await sync(api, journal, namespace(), job("migrate", image="db:2"), revision=REV_B)
    assert refused.phase is OperationPhase.FAILED
    assert "force replace" in {e.key.name: e.message for e in refused.entries}["migrate"]
    replaced = await sync(api, journal, namespace(), job("migrate", image="db:2"), revision=REV_B, force_replace=True)
    assert replaced.phase is OperationPhase.SUCCEEDED, replaced.message
    live = api.get_object(ResourceKey("batch", "Job", NS, "migrate"))
    assert live is not None and live["metadata"]["uid"] != uid
    assert ("delete", "migrate") in api.real_writes()


async def test_reconcile_disabled_object_is_left_alone(api: FaultyCluster, journal: Journal) -> None:
    """fleetdeck.io/reconcile: disabled on the live object means no apply."""
    await sync(api, journal, namespace(), cm("hands-off"))
    api.update_as("kubectl-edit", ResourceKey("", "ConfigMap", NS, "hands-off"),
                  {"metadata": {"annotations": {"fleetdeck.io/reconcile": "disabled"}}})
    result = await sync(api, journal, namespace(), cm("hands-off", value="2"), revision=REV_B)
    assert actions(result)["hands-off"] == "skipped"
    assert api.get_object(ResourceKey("", "ConfigMap", NS, "hands-off"))["data"] == {"v": "1"}  # type: ignore[index]


async def test_terminate_stops_at_the_next_boundary(api: FaultyCluster, journal: Journal) -> None:
    """Terminate after the first wave: the rest is not applied, no history, never rolled back."""
    desired = keyed(namespace(), cm("w0"), cm("w1", wave=1), cm("w2", wave=2))
    plan, live = await plan_for(api, desired)
    op = make_op(api, plan, desired, live, journal)
    while "w0" not in applied_order(api):
        assert await op.step()
    op.terminate()
    while await op.step():
        pass
    result = op.state()
    assert result.phase is OperationPhase.FAILED
    assert "terminated by the operator" in result.message
    assert "w2" not in applied_order(api)
    state = await AppStateStore(api).load(APP)
    assert state.history == () and state.operation is None


# ---------------------------------------------------------------------------------------------- prune


async def test_prune_removes_only_owned_inventory_objects_in_reverse_order(
    api: FaultyCluster, journal: Journal
) -> None:
    """Removed objects are pruned (higher waves first); the inventory forgets them."""
    await sync(api, journal, namespace(), cm("keep"), cm("gone0"), cm("gone2", wave=2))
    result = await sync(api, journal, namespace(), cm("keep"), prune=True, revision=REV_B)
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert actions(result)["gone0"] == actions(result)["gone2"] == "pruned"
    deletes = [name for verb, name in api.real_writes() if verb == "delete"]
    assert deletes == ["gone2", "gone0"]
    state = await AppStateStore(api).load(APP)
    assert {k.name for k in state.inventory_keys} == {NS, "keep"}


async def test_prune_disabled_keeps_objects_prunable_later(api: FaultyCluster, journal: Journal) -> None:
    """Without prune an extraneous object stays (prune-skipped) and stays in the inventory for a later prune."""
    await sync(api, journal, namespace(), cm("keep"), cm("old"))
    skipped = await sync(api, journal, namespace(), cm("keep"), revision=REV_B)
    assert actions(skipped)["old"] == "prune-skipped"
    assert ResourceKey("", "ConfigMap", NS, "old") in (await AppStateStore(api).load(APP)).inventory_keys
    pruned = await sync(api, journal, namespace(), cm("keep"), prune=True, revision=REV_B)
    assert actions(pruned)["old"] == "pruned"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        pytest.param({"metadata": {"annotations": {TRACKING_ANNOTATION: f"{APP}:/ConfigMap:{NS}/elsewhere"}}},
                     "copied from another object", id="tracking-copied"),
        pytest.param({"metadata": {"annotations": {TRACKING_ANNOTATION: f"other:/ConfigMap:{NS}/victim"}}},
                     "does not name app", id="tracking-other-app"),
        pytest.param({"metadata": {"labels": {APP_LABEL: "other"}}}, "label", id="label-other-app"),
        pytest.param({"metadata": {"annotations": {"fleetdeck.io/sync-options": "Prune=false"}}}, "Prune=false",
                     id="prune-false"),
    ],
)
async def test_prune_needs_every_ownership_signal(
    api: FaultyCluster, journal: Journal, tamper: dict[str, Any], reason: str
) -> None:
    """An inventory object whose tracking or label no longer says the app owns it is never deleted."""
    await sync(api, journal, namespace(), cm("keep"), cm("victim"))
    api.update_as("kubectl-edit", ResourceKey("", "ConfigMap", NS, "victim"), tamper)
    result = await sync(api, journal, namespace(), cm("keep"), prune=True, revision=REV_B)
    assert actions(result)["victim"] == "prune-skipped"
    assert reason in {e.key.name: e.message for e in result.entries}["victim"]
    assert api.get_object(ResourceKey("", "ConfigMap", NS, "victim")) is not None


async def test_prune_never_touches_keys_outside_the_inventory(api: FaultyCluster, journal: Journal) -> None:
    """A plan naming a labelled, tracked object that no sync applied does not delete it."""
    await sync(api, journal, namespace(), cm("keep"))
    forged = cm("forged")
    forged["metadata"]["labels"] = {APP_LABEL: APP}
    forged["metadata"]["annotations"] = {TRACKING_ANNOTATION: f"{APP}:/ConfigMap:{NS}/forged"}
    api.seed_apply(forged, field_manager="someone")
    desired = keyed(namespace(), cm("keep"))
    plan, live = await plan_for(api, desired, prune=True)
    forged_key = ResourceKey("", "ConfigMap", NS, "forged")
    plan = replace(plan, steps=(*plan.steps, PlanStep(forged_key, SyncAction.PRUNED)))
    result = await make_op(api, plan, desired, live, journal).run_to_completion()
    assert actions(result)["forged"] == "prune-skipped"
    assert api.get_object(forged_key) is not None


async def test_blocked_plan_is_refused(api: FaultyCluster, journal: Journal) -> None:
    """A plan blocked by a failed render never applies or prunes; the journal records the refusal."""
    await sync(api, journal, namespace(), cm("a"))
    api.writes.clear()
    desired = keyed(namespace())
    plan, live = await plan_for(api, desired, prune=True)
    plan = replace(plan, blocked="render failed: kustomize exited 1")
    result = await make_op(api, plan, desired, live, journal).run_to_completion()
    assert result.phase is OperationPhase.FAILED and "render failed" in result.message
    assert api.writes == []
    assert read_entries(journal.path)[-1].result == "refused"


async def test_empty_desired_never_prunes_everything_unless_allowed(api: FaultyCluster, journal: Journal) -> None:
    """An empty desired set with prune is refused; with allow_empty it prunes."""
    await sync(api, journal, namespace(), cm("a"))
    refused = await sync(api, journal, prune=True, revision=REV_B)
    assert refused.phase is OperationPhase.FAILED and "desired state is empty" in refused.message
    assert api.get_object(ResourceKey("", "ConfigMap", NS, "a")) is not None
    allowed = await sync(api, journal, prune=True, revision=REV_B, options=replace(FAST, allow_empty=True))
    assert allowed.phase is OperationPhase.SUCCEEDED, allowed.message
    assert api.get_object(ResourceKey("", "ConfigMap", NS, "a")) is None


# ---------------------------------------------------------------------------------------------- modes


async def test_dry_run_writes_nothing_not_even_state(api: FaultyCluster, journal: Journal) -> None:
    """A dry run sends only dry-run requests: no object, no state ConfigMap, no lease."""
    await sync(api, journal, namespace(), cm("a"), cm("old"))
    api.writes.clear()
    result = await sync(api, journal, namespace(), cm("a", value="2"), cm("new"), prune=True, dry_run=True,
                        revision=REV_B)
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert result.dry_run
    assert actions(result) == {NS: "configured", "a": "configured", "new": "created", "old": "pruned"}
    assert api.real_writes() == []
    assert api.get_object(ResourceKey("", "ConfigMap", NS, "new")) is None
    assert len((await AppStateStore(api).load(APP)).history) == 1


async def test_selective_sync_applies_only_selection_and_skips_history(api: FaultyCluster, journal: Journal) -> None:
    """Only the selected resources are applied; the sync is not recorded in history."""
    await sync(api, journal, namespace(), cm("a"), cm("b"))
    picked = ResourceKey("", "ConfigMap", NS, "b")
    result = await sync(api, journal, namespace(), cm("a", value="2"), cm("b", value="2"), revision=REV_B,
                        selected=(picked,))
    assert actions(result) == {"b": "configured"}
    assert api.get_object(ResourceKey("", "ConfigMap", NS, "a"))["data"] == {"v": "1"}  # type: ignore[index]
    state = await AppStateStore(api).load(APP)
    assert [h.revision for h in state.history] == [REV_A]
    assert state.last_operation is not None and state.last_operation.selective


async def test_history_records_what_started_each_sync(api: FaultyCluster, journal: Journal) -> None:
    """Manual, automated and self-heal syncs and a rollback are recorded as such; a self-heal sync (only
    the drifted resources of the synced revision) is recorded, an operator's selective sync is not."""
    await sync(api, journal, namespace(), cm("a"), cm("b"))
    await sync(api, journal, namespace(), cm("a", value="2"), cm("b"), revision=REV_B,
               options=replace(FAST, automated=True))
    drifted = ResourceKey("", "ConfigMap", NS, "a")
    await sync(api, journal, namespace(), cm("a", value="2"), cm("b"), revision=REV_B, selected=(drifted,),
               options=replace(FAST, automated=True, self_heal=True))
    await sync(api, journal, namespace(), cm("a", value="2"), cm("b"), revision=REV_B, selected=(drifted,))
    await sync(api, journal, namespace(), cm("a"), cm("b"), revision=REV_A, kind="rollback")
    state = await AppStateStore(api).load(APP)
    assert [(h.id, h.label, h.revision) for h in state.history] == [
        (1, "manual sync", REV_A), (2, "automated sync", REV_B), (3, "self-heal sync", REV_B),
        (4, "rollback", REV_A)]
    stored = json.loads(api.state_bodies[-1]["data"]["history"])
    assert [e["trigger"] for e in stored] == ["manual", "automated", "self-heal", "manual"]
    assert state.last_operation is not None and state.last_operation.trigger.value == "manual"


async def test_rollback_pins_and_pauses_in_the_operation_start_write(api: FaultyCluster, journal: Journal) -> None:
    """Rollback: one state write sets the pin, the pause and the running operation; history says rollback."""
    await sync(api, journal, namespace(), cm("a", value="new"), revision=REV_B)
    api.state_bodies.clear()
    result = await sync(api, journal, namespace(), cm("a", value="old"), revision=REV_A, kind="rollback")
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    first = api.state_bodies[0]["data"]
    assert json.loads(first["operation"])["phase"] == "Running"
    control = json.loads(first["control"])
    assert control["paused"] is True and control["pinned"] == REV_A
    store = AppStateStore(api)
    state = await store.load(APP)
    assert [(h.kind, h.revision) for h in state.history] == [("sync", REV_B), ("rollback", REV_A)]
    assert state.control.paused and state.control.pinned == REV_A
    resumed = await store.resume(APP)
    assert not resumed.control.paused and resumed.control.pinned is None


# ---------------------------------------------------------------------------------------------- refusals


async def test_second_operator_gets_locked_error_naming_the_holder(api: FaultyCluster, journal: Journal) -> None:
    """While Alice's sync holds the app, Bob's is refused with her identity and since when."""
    desired = keyed(namespace(), cm("a"))
    plan, live = await plan_for(api, desired)
    alice = make_op(api, plan, desired, live, journal, who=ALICE)
    assert await alice.step()
    bob = make_op(api, plan, desired, live, journal, who=BOB)
    with pytest.raises(LockedError) as refused:
        await bob.step()
    assert refused.value.holder == ALICE.holder
    assert "alice@bastion-1" in str(refused.value) and refused.value.since
    assert (await alice.run_to_completion()).phase is OperationPhase.SUCCEEDED
    assert (await make_op(api, plan, desired, live, journal, who=BOB).run_to_completion()).phase is OperationPhase.SUCCEEDED
    assert [e.result for e in read_entries(journal.path)] == ["started", "started", "refused", "succeeded",
                                                               "started", "succeeded"]


async def test_unwritable_journal_refuses_before_any_cluster_write(api: FaultyCluster, tmp_path: Path) -> None:
    """When the journal cannot be written the operation is refused and the cluster is not touched."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    desired = keyed(namespace(), cm("a"))
    plan, live = await plan_for(api, desired)
    op = make_op(api, plan, desired, live, Journal(blocker / "j.jsonl"))
    with pytest.raises(JournalError):
        await op.step()
    assert op.state().phase is OperationPhase.FAILED
    assert api.writes == []


# ---------------------------------------------------------------------------------------------- crashes


async def test_crash_mid_sync_is_reported_and_recorded_once(api: FaultyCluster, journal: Journal) -> None:
    """An operation abandoned mid-wave reads as interrupted; the next one records it and one history entry."""
    desired = keyed(namespace(), cm("w0"), cm("w1", wave=1), cm("w2", wave=2), cm("w3", wave=3))
    plan, live = await plan_for(api, desired)
    crashed = make_op(api, plan, desired, live, journal)
    while "w1" not in applied_order(api):
        assert await crashed.step()
    assert crashed._lease is not None
    crashed._lease.abandon()  # the process dies: no more renewals, nothing cleaned up
    store = AppStateStore(api)
    state = await store.load(APP)
    assert state.operation is not None and "interrupted at wave 1" in state.interrupted
    assert await interrupted_operation(api, state) is None  # its lease has not expired yet

    def later() -> float:
        return time.time() + 120

    assert await interrupted_operation(api, state, clock=later) == state.operation
    with pytest.raises(LockedError):
        await make_op(api, plan, desired, live, journal).step()
    api.store.clock = later  # two minutes pass on the server's clock, which leases are judged on
    restarted = await make_op(api, plan, desired, live, journal, clock=later).run_to_completion()
    assert restarted.phase is OperationPhase.SUCCEEDED, restarted.message
    assert "interrupted at wave 1" in restarted.message
    state = await store.load(APP)
    assert len(state.history) == 1 and state.operation is None
    assert state.last_operation is not None and state.last_operation.phase is OperationPhase.SUCCEEDED
    assert verify(journal.path).ok


async def test_state_configmap_lives_in_fleetdeck_system(api: FaultyCluster, journal: Journal) -> None:
    """The app's state is a ConfigMap in fleetdeck-system with the documented keys."""
    await sync(api, journal, namespace(), cm("a"))
    stored = api.get_object(ResourceKey("", "ConfigMap", NAMESPACE, state_name(APP)))
    assert stored is not None
    assert set(stored["data"]) == {"control", "inventory", "history", "operation", "last-operation"}
    assert json.loads(stored["data"]["operation"]) is None
    assert {i["key"] for i in json.loads(stored["data"]["inventory"])} == {f"Namespace/{NS}", f"ConfigMap/{NS}/a"}


async def test_pause_during_an_automated_sync_stops_it_at_the_next_wave(api: FaultyCluster, journal: Journal) -> None:
    """O6: an operator pausing the app mid-way stops an automated sync before its next wave."""
    desired = keyed(namespace(), cm("w0"), cm("w1", wave=1), cm("w2", wave=2))
    plan, live = await plan_for(api, desired)
    op = make_op(api, plan, desired, live, journal, options=replace(FAST, automated=True))
    while "w0" not in applied_order(api):
        assert await op.step()
    await AppStateStore(api).pause(APP, reason="incident 42", by="bob@bastion-2")
    result = await op.run_to_completion()
    assert result.phase is OperationPhase.FAILED
    assert result.message.startswith("paused by bob@bastion-2 (incident 42): stopped before wave 1")
    assert "w1" not in applied_order(api)
    state = await AppStateStore(api).load(APP)
    assert state.control.paused and state.history == ()
    assert state.last_operation is not None and state.last_operation.automated


async def test_pause_does_not_stop_a_manual_sync(api: FaultyCluster, journal: Journal) -> None:
    """Manual syncs stay available while paused (pause only stops automation)."""
    await AppStateStore(api).pause(APP, reason="incident", by="bob")
    result = await sync(api, journal, namespace(), cm("w0"), cm("w1", wave=1))
    assert result.phase is OperationPhase.SUCCEEDED, result.message


async def test_unknown_kind_fails_before_its_namespace_is_written(api: FaultyCluster, journal: Journal) -> None:
    """A sync holding a Namespace and a custom resource of an unserved kind (a Flux HelmRelease on a cluster
    without Flux) writes nothing at all, not even the Namespace, even when the plan was not blocked (the
    engine's discovery had not yet seen the kind missing)."""
    result = await sync(api, journal, namespace("fresh"), widget("w"))
    assert result.phase is OperationPhase.FAILED
    assert "not served" in result.message and "nothing was changed" in result.message, result.message
    assert actions(result)["w"] == "failed"
    assert [w for w in api.real_writes() if not w[1].startswith("fleetdeck")] == []
