"""Helpers for the sync tests against the real control plane (no tests here).

They stand in for the engine: build a plan from desired objects and the app's recorded inventory,
fetch the live objects, and drive a ``SyncOperation`` to its end through a real ``KubeClient``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

from core.journal import Journal, OperatorIdentity, current_identity
from core.live.api import APIResource
from core.live.kube import KubeClient
from core.live.kubeconfig import load_kubeconfig
from core.model import (
    AppName,
    ClusterName,
    OperationState,
    PlanStep,
    ResourceKey,
    SyncAction,
    SyncPlan,
)
from core.settings import SyncSettings
from core.sync.kinds import KindResolver
from core.sync.operation import OperationOptions, SyncOperation
from core.sync.state import AppStateStore
from devcluster import ClusterInfo, audit_events

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
REVISION_A = "a1" * 20
REVISION_B = "b2" * 20
REVISION_C = "c3" * 20


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{secrets.token_hex(3)}"


def now_utc() -> dt.datetime:
    """Timezone-aware now, for audit log windows."""
    return dt.datetime.now(dt.UTC)


@contextlib.asynccontextmanager
async def kube(cluster: ClusterInfo, *, viewer: bool = False) -> AsyncIterator[KubeClient]:
    """A ``KubeClient`` for ``cluster`` (admin unless ``viewer``), closed afterwards."""
    config = load_kubeconfig(cluster.kubeconfig)
    client = KubeClient(cluster=cluster.name,
                        context=config.context(cluster.viewer_context if viewer else cluster.admin_context))
    try:
        yield client
    finally:
        await client.close()


# ---------------------------------------------------------------------------------------------- manifests


def meta(name: str, namespace: str = "", *, wave: int | None = None) -> dict[str, Any]:
    """``metadata`` with an optional sync wave."""
    out: dict[str, Any] = {"name": name}
    if namespace:
        out["namespace"] = namespace
    if wave is not None:
        out["annotations"] = {"fleetdeck.io/sync-wave": str(wave)}
    return out


def namespace_obj(name: str) -> dict[str, Any]:
    """A Namespace."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta(name)}


def configmap(name: str, namespace: str, *, wave: int | None = None, **data: str) -> dict[str, Any]:
    """A ConfigMap."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(name, namespace, wave=wave),
            "data": dict(data) or {"v": "1"}}


def secret(name: str, namespace: str, value: str) -> dict[str, Any]:
    """A Secret holding ``value``."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta(name, namespace), "type": "Opaque",
            "stringData": {"token": value}}


def deployment(name: str, namespace: str, *, wave: int | None = None, replicas: int = 1) -> dict[str, Any]:
    """A Deployment kwok runs (the image is never pulled)."""
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name, namespace, wave=wave),
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]}}}}


def service(name: str, namespace: str) -> dict[str, Any]:
    """A ClusterIP Service."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, namespace),
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}


def crd(group: str, kind: str = "Widget") -> dict[str, Any]:
    """A namespaced CRD with a small structural schema (``spec.size`` an integer ≤ 10)."""
    plural = kind.lower() + "s"
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "size": {"type": "integer", "maximum": 10}, "colour": {"type": "string"}}}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema}}]}}


def custom(group: str, name: str, namespace: str, *, wave: int | None = None, size: int = 1,
           kind: str = "Widget") -> dict[str, Any]:
    """A custom resource of ``crd(group)``."""
    return {"apiVersion": f"{group}/v1", "kind": kind, "metadata": meta(name, namespace, wave=wave),
            "spec": {"size": size}}


def by_key(objs: Iterable[Mapping[str, Any]]) -> dict[ResourceKey, Mapping[str, Any]]:
    """Objects by their key."""
    return {ResourceKey.of(o): o for o in objs}


# ---------------------------------------------------------------------------------------------- driving


async def live_objects(api: KubeClient, keys: Iterable[ResourceKey]) -> dict[ResourceKey, Mapping[str, Any]]:
    """The live objects of ``keys`` that exist (kinds the cluster does not serve are skipped)."""
    resolver = KindResolver(api)
    found: dict[ResourceKey, Mapping[str, Any]] = {}
    for key in keys:
        resource: APIResource | None = await resolver.resolve(key)
        if resource is None:
            continue
        obj = await api.get(resource, key.name, key.namespace)
        if obj is not None:
            found[key] = obj
    return found


async def make_plan(
    api: KubeClient,
    *,
    app: str,
    desired: Mapping[ResourceKey, Mapping[str, Any]],
    prune: bool = False,
    revision: str = REVISION_A,
    dry_run: bool = False,
    kind: str = "sync",
    selected: tuple[ResourceKey, ...] = (),
    force_replace: bool = False,
) -> tuple[SyncPlan, dict[ResourceKey, Mapping[str, Any]]]:
    """A plan like the engine's: desired keys created or configured, inventory leftovers pruned."""
    state = await AppStateStore(api).load(app)
    extraneous = sorted(state.inventory_keys - set(desired))
    live = await live_objects(api, [*desired, *extraneous])
    steps = [PlanStep(k, SyncAction.CONFIGURED if k in live else SyncAction.CREATED) for k in desired]
    steps += [PlanStep(k, SyncAction.PRUNED) for k in extraneous if k in live]
    plan = SyncPlan(app=AppName(app), cluster=ClusterName(api.cluster), revision=revision, steps=tuple(steps),
                    prune=prune, dry_run=dry_run, kind=kind, selected=selected, force_replace=force_replace)
    return plan, live


def operation(
    api: KubeClient,
    plan: SyncPlan,
    *,
    desired: Mapping[ResourceKey, Mapping[str, Any]],
    live: Mapping[ResourceKey, Mapping[str, Any]],
    journal: Journal,
    identity: OperatorIdentity | None = None,
    options: OperationOptions | None = None,
) -> SyncOperation:
    """A ``SyncOperation`` for ``plan``."""
    return SyncOperation(plan=plan, desired=desired, live=live, api=api, store=AppStateStore(api),
                         journal=journal, identity=identity or current_identity(kube_user="fleetdeck-admin"),
                         settings=SyncSettings(), options=options or OperationOptions(health_timeout=120))


async def sync(
    api: KubeClient,
    *,
    app: str,
    desired: Mapping[ResourceKey, Mapping[str, Any]],
    journal: Journal,
    prune: bool = False,
    revision: str = REVISION_A,
    options: OperationOptions | None = None,
    **plan_args: Any,
) -> OperationState:
    """Plan and run a sync to its end; the final state."""
    plan, live = await make_plan(api, app=app, desired=desired, prune=prune, revision=revision, **plan_args)
    return await operation(api, plan, desired=desired, live=live, journal=journal, options=options).run_to_completion()


def actions(state: OperationState) -> dict[str, str]:
    """``{Kind/ns/name: action}`` of an operation's entries."""
    return {entry.key.short: entry.action.value for entry in state.entries}


def fleetdeck_writes(cluster: ClusterInfo, since: dt.datetime, *, user: str = "fleetdeck-admin") -> list[dict[str, Any]]:
    """Mutating audit events by ``user`` since ``since``, dry runs excluded."""
    events = audit_events(cluster, since=since)
    return [e for e in events if e.get("verb") in {"create", "update", "patch", "delete", "deletecollection"}
            and e.get("user", {}).get("username") == user and "dryRun=All" not in e.get("requestURI", "")]
