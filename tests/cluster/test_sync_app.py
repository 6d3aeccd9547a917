"""Syncing a realistic app against a real kube-apiserver: create, change, prune, and what the audit log saw."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.journal import Journal, read_entries, verify
from core.live.kube import KubeClient
from core.model import OperationPhase, ResourceKey
from core.reconcile.tracking import APP_LABEL, TRACKING_ANNOTATION
from core.sync.operation import OperationOptions
from core.sync.state import CONFIGMAPS, NAMESPACE, AppStateStore, state_name
from devcluster import ClusterInfo
from tests.cluster.sync_support import (
    REVISION_A,
    REVISION_B,
    REVISION_C,
    actions,
    by_key,
    configmap,
    crd,
    custom,
    deployment,
    fleetdeck_writes,
    namespace_obj,
    now_utc,
    secret,
    service,
    sync,
    unique,
)

pytestmark = pytest.mark.cluster
CANARY = "canary-7f3a-do-not-store"


@pytest.fixture
def app_namespace(cluster: ClusterInfo) -> Iterator[str]:
    """A namespace name the sync itself creates; deleted afterwards."""
    name = unique("sync-app")
    yield name
    with contextlib.suppress(Exception):  # cleanup only: the apiserver may be gone
        cluster.rest().delete(f"/api/v1/namespaces/{name}")


def _desired(ns: str, group: str, *, config: str = "1", extra: bool = False, widget: bool = True) -> list[dict[str, Any]]:
    objs = [
        namespace_obj(ns),
        crd(group),
        configmap("settings", ns, mode=config),
        secret("creds", ns, CANARY),
        service("web", ns),
        deployment("web", ns, wave=1),
        configmap("after-web", ns, wave=3),
    ]
    if widget:
        objs.append(custom(group, "w1", ns, wave=2, size=3))
    if extra:
        objs.append(configmap("extra", ns))
    return objs


async def test_sync_from_empty_then_change_then_prune(
    api: KubeClient, cluster: ClusterInfo, app_namespace: str, tmp_path: Path
) -> None:
    """A multi-kind app (CRD + CR, namespace, waves) syncs from empty, follows a change, prunes a removal."""
    app, ns, group = unique("shop"), app_namespace, f"{unique('g')}.example.com"
    journal = Journal(tmp_path / "journal.jsonl")
    since = now_utc()

    first = await sync(api, app=app, desired=by_key(_desired(ns, group)), journal=journal, revision=REVISION_A)
    assert first.phase is OperationPhase.SUCCEEDED, first.message
    assert set(actions(first).values()) == {"created"}
    assert len(first.entries) == 8
    order = [e.key.kind for e in first.entries]
    assert order.index("Namespace") < order.index("ConfigMap")
    assert order.index("CustomResourceDefinition") < order.index("Widget")
    assert order.index("Deployment") < order.index("Widget")

    second = await sync(api, app=app, desired=by_key(_desired(ns, group, config="2", extra=True)), journal=journal,
                        revision=REVISION_B)
    assert second.phase is OperationPhase.SUCCEEDED, second.message
    assert actions(second)[f"ConfigMap/{ns}/settings"] == "configured"
    assert actions(second)[f"ConfigMap/{ns}/extra"] == "created"
    assert actions(second)[f"Deployment/{ns}/web"] == "unchanged"

    third = await sync(api, app=app, desired=by_key(_desired(ns, group, config="2", widget=False)),
                       journal=journal, revision=REVISION_C, prune=True)
    assert third.phase is OperationPhase.SUCCEEDED, third.message
    assert actions(third)[f"ConfigMap/{ns}/extra"] == "pruned"
    assert actions(third)[f"Widget/{ns}/w1"] == "pruned"
    cms = {r.name for r in [await _configmap(api, ns, "extra"), await _configmap(api, ns, "settings")] if r}
    assert cms == {"settings"}

    state = await AppStateStore(api).load(app)
    assert [h.revision for h in state.history] == [REVISION_A, REVISION_B, REVISION_C]
    assert state.operation is None
    assert ResourceKey("", "ConfigMap", ns, "extra") not in state.inventory_keys
    assert ResourceKey(group, "Widget", ns, "w1") not in state.inventory_keys
    assert ResourceKey("", "Secret", ns, "creds") in state.inventory_keys
    await _assert_state_holds_no_secret(api, app)
    _assert_only_apply_and_owned_deletes(cluster, since, ns=ns, pruned={"extra", "w1"})
    results = [(e.action, e.result) for e in read_entries(journal.path)]
    assert results == [("sync", "started"), ("sync", "succeeded")] * 3
    assert verify(journal.path).ok


async def _configmap(api: KubeClient, ns: str, name: str) -> ResourceKey | None:
    obj = await api.get(CONFIGMAPS, name, ns)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        return None
    labels, notes = obj["metadata"].get("labels", {}), obj["metadata"].get("annotations", {})
    assert APP_LABEL in labels and TRACKING_ANNOTATION in notes
    return ResourceKey.of(obj)


async def _assert_state_holds_no_secret(api: KubeClient, app: str) -> None:
    stored = await api.get(CONFIGMAPS, state_name(app), NAMESPACE)
    assert stored is not None
    assert CANARY not in json.dumps(stored)


def _assert_only_apply_and_owned_deletes(cluster: ClusterInfo, since: dt.datetime, *, ns: str, pruned: set[str]) -> None:
    """Every write was an SSA patch by fleetdeck, a delete of a pruned object, or shared-state bookkeeping."""
    writes = fleetdeck_writes(cluster, since)
    assert writes
    for event in writes:
        ref, verb, uri = event.get("objectRef", {}), event["verb"], event["requestURI"]
        if verb == "patch":
            assert "fieldManager=fleetdeck" in uri, uri
        elif verb == "delete":
            assert ref.get("name") in pruned and ref.get("namespace") == ns, uri
        elif verb == "create":
            assert ref.get("namespace") == NAMESPACE and ref.get("resource") in {"configmaps", "leases"}, uri
        else:
            pytest.fail(f"unexpected {verb} {uri}")


async def test_rejected_resource_stops_its_wave(api: KubeClient, app_namespace: str, tmp_path: Path) -> None:
    """A custom resource the API rejects at apply time stops wave 1; wave 2 is not applied; the changeset says so."""
    app, ns, group = unique("broken"), app_namespace, f"{unique('g')}.example.com"
    objs = [namespace_obj(ns), crd(group), configmap("base", ns),
            custom(group, "too-big", ns, wave=1, size=99), configmap("fine", ns, wave=1),
            configmap("late", ns, wave=2)]
    result = await sync(api, app=app, desired=by_key(objs), journal=Journal(tmp_path / "j.jsonl"),
                        options=OperationOptions(health_timeout=60))
    assert result.phase is OperationPhase.FAILED
    assert result.message.startswith(f"stopped at wave 1: Widget/{ns}/too-big failed (Invalid)")
    assert f"not applied: ConfigMap/{ns}/late" in result.message
    done = actions(result)
    assert done[f"ConfigMap/{ns}/base"] == "created"
    assert done[f"ConfigMap/{ns}/fine"] == "created"
    assert done[f"Widget/{ns}/too-big"] == "failed"
    assert done[f"ConfigMap/{ns}/late"] == "skipped"
    assert await api.get(CONFIGMAPS, "late", ns) is None
    state = await AppStateStore(api).load(app)
    assert state.history == ()
    assert state.operation is None
    assert state.last_operation is not None and state.last_operation.phase is OperationPhase.FAILED
    assert ResourceKey("", "ConfigMap", ns, "fine") in state.inventory_keys


async def test_preflight_failure_changes_nothing(
    api: KubeClient, cluster: ClusterInfo, namespace: str, tmp_path: Path
) -> None:
    """An object the dry run rejects fails the operation before any object is written."""
    app = unique("invalid")
    bad = configmap("bad", namespace)
    bad["data"] = {"not a valid key!": "x"}
    objs = [configmap("good", namespace), bad]
    since = now_utc()
    result = await sync(api, app=app, desired=by_key(objs), journal=Journal(tmp_path / "j.jsonl"))
    assert result.phase is OperationPhase.FAILED
    assert "failed to apply (dry run)" in result.message and "nothing was changed" in result.message
    assert await api.get(CONFIGMAPS, "good", namespace) is None
    writes = [e for e in fleetdeck_writes(cluster, since)
              if e.get("objectRef", {}).get("namespace") == namespace]
    assert writes == []


async def test_dry_run_writes_nothing(api: KubeClient, cluster: ClusterInfo, namespace: str, tmp_path: Path) -> None:
    """A dry-run sync sends only dry-run requests: no object, no state, no lease."""
    app = unique("dry")
    since = now_utc()
    result = await sync(api, app=app, desired=by_key([configmap("a", namespace), deployment("d", namespace)]),
                        journal=Journal(tmp_path / "j.jsonl"), dry_run=True)
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert set(actions(result).values()) == {"created"}
    assert fleetdeck_writes(cluster, since) == []
    assert await api.get(CONFIGMAPS, state_name(app), NAMESPACE) is None


async def test_prune_refuses_objects_without_every_ownership_signal(
    api: KubeClient, namespace: str, tmp_path: Path
) -> None:
    """Prune skips an inventory object whose tracking id was rewritten, and one never in the inventory."""
    app = unique("owner")
    journal = Journal(tmp_path / "j.jsonl")
    keep, copied = configmap("keep", namespace), configmap("copied", namespace)
    assert (await sync(api, app=app, desired=by_key([keep, copied]), journal=journal)).phase.successful
    live = await api.get(CONFIGMAPS, "copied", namespace)
    assert live is not None
    tampered = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "copied", "namespace": namespace,
                             "annotations": {TRACKING_ANNOTATION: f"{app}:/ConfigMap:{namespace}/other"}}}
    await api.apply(CONFIGMAPS, tampered, field_manager="someone-else", force=True)
    stray = configmap("stray", namespace)
    stray["metadata"]["labels"] = {APP_LABEL: app}
    stray["metadata"]["annotations"] = {TRACKING_ANNOTATION: f"{app}:/ConfigMap:{namespace}/stray"}
    await api.apply(CONFIGMAPS, stray, field_manager="someone-else")

    from core.model import PlanStep, SyncAction
    from tests.cluster.sync_support import make_plan, operation

    plan, live_objs = await make_plan(api, app=app, desired=by_key([keep]), prune=True)
    stray_key = ResourceKey("", "ConfigMap", namespace, "stray")
    plan = type(plan)(**{**{f: getattr(plan, f) for f in plan.__dataclass_fields__},
                         "steps": (*plan.steps, PlanStep(stray_key, SyncAction.PRUNED))})
    result = await operation(api, plan, desired=by_key([keep]), live=live_objs, journal=journal).run_to_completion()
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    entries = {e.key.name: e for e in result.entries}
    assert entries["copied"].action is SyncAction.PRUNE_SKIPPED
    assert "copied from another object" in entries["copied"].message
    assert entries["stray"].action is SyncAction.PRUNE_SKIPPED
    assert "inventory" in entries["stray"].message
    assert await api.get(CONFIGMAPS, "copied", namespace) is not None
    assert await api.get(CONFIGMAPS, "stray", namespace) is not None
    state = await AppStateStore(api).load(app)
    assert ResourceKey("", "ConfigMap", namespace, "copied") in state.inventory_keys


async def test_rollback_pins_pauses_and_is_recorded(api: KubeClient, namespace: str, tmp_path: Path) -> None:
    """Rolling back re-applies the old revision, pins and pauses the app, and records a rollback entry."""
    app = unique("rollback")
    journal = Journal(tmp_path / "j.jsonl")
    old, new = configmap("cfg", namespace, mode="old"), configmap("cfg", namespace, mode="new")
    assert (await sync(api, app=app, desired=by_key([old]), journal=journal, revision=REVISION_A)).phase.successful
    assert (await sync(api, app=app, desired=by_key([new]), journal=journal, revision=REVISION_B)).phase.successful
    result = await sync(api, app=app, desired=by_key([old]), journal=journal, revision=REVISION_A, kind="rollback")
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    live = await api.get(CONFIGMAPS, "cfg", namespace)
    assert live is not None and live["data"] == {"mode": "old"}
    store = AppStateStore(api)
    state = await store.load(app)
    assert state.control.paused and state.control.pinned == REVISION_A
    assert [(h.kind, h.revision) for h in state.history] == [("sync", REVISION_A), ("sync", REVISION_B),
                                                             ("rollback", REVISION_A)]
    resumed = await store.resume(app)
    assert not resumed.control.paused and resumed.control.pinned is None
    assert [e.action for e in read_entries(journal.path)][-2:] == ["rollback", "rollback"]


async def test_history_records_what_started_each_sync(api: KubeClient, namespace: str, tmp_path: Path) -> None:
    """Against the real apiserver: manual, automated and self-heal syncs and a rollback each land in the
    state ConfigMap's history with their trigger, and read back with their labels."""
    app = unique("trigger")
    journal = Journal(tmp_path / "j.jsonl")
    old, new = configmap("cfg", namespace, mode="old"), configmap("cfg", namespace, mode="new")
    auto = OperationOptions(health_timeout=120, automated=True)
    assert (await sync(api, app=app, desired=by_key([old]), journal=journal, revision=REVISION_A)).phase.successful
    assert (await sync(api, app=app, desired=by_key([new]), journal=journal, revision=REVISION_B,
                       options=auto)).phase.successful
    drifted = ResourceKey("", "ConfigMap", namespace, "cfg")
    healed = await sync(api, app=app, desired=by_key([new]), journal=journal, revision=REVISION_B,
                        selected=(drifted,), options=OperationOptions(health_timeout=120, automated=True,
                                                                      self_heal=True))
    assert healed.phase.successful, healed.message
    assert (await sync(api, app=app, desired=by_key([old]), journal=journal, revision=REVISION_A,
                       kind="rollback")).phase.successful
    state = await AppStateStore(api).load(app)
    assert [(h.label, h.revision) for h in state.history] == [
        ("manual sync", REVISION_A), ("automated sync", REVISION_B), ("self-heal sync", REVISION_B),
        ("rollback", REVISION_A)]
    stored = await api.get(CONFIGMAPS, state_name(app), NAMESPACE)
    assert stored is not None
    assert [e["trigger"] for e in json.loads(stored["data"]["history"])] == [
        "manual", "automated", "self-heal", "manual"]
