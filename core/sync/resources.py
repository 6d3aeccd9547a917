"""What a sync does to one resource: dry-run, apply, replace, prune, check health.

Each function sends the requests for one object and turns the outcome into a ``SyncResultEntry``;
per-resource failures become entries, never exceptions, so one bad object cannot hide the others'
results. Constraint: every write is a server-side apply (field manager ``fleetdeck``, forced) or a
DELETE with a UID precondition; a prune deletes only what ``core.reconcile.plan.prunable`` allows on a
copy fetched just before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import ClusterError
from core.live.api import JSON, APIResource, KubeAPI
from core.model import HealthStatus, ResourceKey, SyncAction, SyncResultEntry
from core.reconcile.health import ScriptedHealth, health_of, without_health
from core.reconcile.jsonpath import get_in
from core.reconcile.plan import prunable
from core.sync.retry import with_retries

REPLACE_TIMEOUT = 60.0
"""Seconds to wait for a replaced object to disappear before recreating it."""


def describe_error(exc: ClusterError) -> str:
    """``(Reason): message`` without the cluster prefix."""
    reason = exc.reason or (f"HTTP {exc.status}" if exc.status else "no response")
    text = exc.message.removeprefix(f"cluster {exc.cluster}: ") if exc.cluster else exc.message
    return f"({reason}): {text}"


def is_immutable(exc: ClusterError) -> bool:
    """Whether the server refused a change to an immutable field (the object must be replaced)."""
    return exc.status == 422 and "immutable" in exc.message.lower()


def _rv(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion", ""))


def _uid(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("uid", ""))


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of applying one object."""

    entry: SyncResultEntry
    result: JSON | None = None
    """The object as the server returned it (None when the apply failed)."""

    @property
    def ok(self) -> bool:
        """Whether the object was applied."""
        return not self.entry.action.failed


@dataclass(frozen=True, slots=True)
class Target:
    """One object to apply, with where and how."""

    key: ResourceKey
    resource: APIResource
    obj: Mapping[str, Any]
    """The desired manifest, tracking label and annotation already added."""
    before: Mapping[str, Any] | None
    """The live object as last seen (None: not in the cluster)."""
    wave: int = 0
    note: str = ""
    """Shown with the result (e.g. the fields left out because another manager owns them)."""


async def dry_run(api: KubeAPI, target: Target, *, field_manager: str, attempts: int) -> ClusterError | None:
    """Server-side apply dry run of ``target``; the error, or None when the server accepted it."""
    try:
        await with_retries(lambda: api.apply(target.resource, target.obj, field_manager=field_manager,
                                             dry_run=True), attempts=attempts)
    except ClusterError as exc:
        return exc
    return None


def _action(before: Mapping[str, Any] | None, result: Mapping[str, Any]) -> SyncAction:
    if before is None:
        return SyncAction.CREATED
    return SyncAction.UNCHANGED if _rv(result) == _rv(before) else SyncAction.CONFIGURED


async def apply(api: KubeAPI, target: Target, *, field_manager: str, attempts: int,
                missing_kind_retries: int = 0) -> Applied:
    """Server-side apply ``target`` (forced, strict validation) and classify what changed.

    Args:
        api: the cluster.
        target: the object.
        field_manager: fleetdeck's field manager.
        attempts: attempts for transient errors.
        missing_kind_retries: extra attempts on 404 for a kind whose CRD this sync just created (the
            API server may serve it a moment after ``Established``).
    """
    for remaining in range(missing_kind_retries, -1, -1):
        try:
            result = await with_retries(lambda: api.apply(target.resource, target.obj,
                                                          field_manager=field_manager), attempts=attempts)
        except ClusterError as exc:
            if exc.not_found and remaining:
                await asyncio.sleep(0.5)
                continue
            return Applied(SyncResultEntry(target.key, SyncAction.FAILED, describe_error(exc), target.wave))
        entry = SyncResultEntry(target.key, _action(target.before, result), target.note, target.wave)
        return Applied(entry, result)
    raise AssertionError("unreachable")


async def wait_gone(api: KubeAPI, target: Target, *, uid: str, attempts: int) -> None:
    deadline = time.monotonic() + REPLACE_TIMEOUT
    key = target.key
    while True:
        current = await with_retries(lambda: api.get(target.resource, key.name, key.namespace), attempts=attempts)
        if current is None or _uid(current) != uid:
            return
        if time.monotonic() >= deadline:
            raise ClusterError(f"{key} was still being deleted after {REPLACE_TIMEOUT:.0f}s", cluster=api.cluster,
                               status=504, reason="Timeout")
        await asyncio.sleep(0.25)


async def replace(api: KubeAPI, target: Target, *, field_manager: str, attempts: int) -> Applied:
    """Delete (background propagation, UID precondition), wait until gone, apply again: force replace."""
    key = target.key
    try:
        current = await with_retries(lambda: api.get(target.resource, key.name, key.namespace), attempts=attempts)
        if current is not None:
            uid = _uid(current)
            await with_retries(lambda: api.delete(target.resource, key.name, key.namespace,
                                                  propagation="Background", uid=uid), attempts=attempts)
            await wait_gone(api, target, uid=uid, attempts=attempts)
    except ClusterError as exc:
        return Applied(SyncResultEntry(key, SyncAction.FAILED, f"replace: {describe_error(exc)}", target.wave))
    applied = await apply(api, Target(key, target.resource, target.obj, None, target.wave, target.note),
                          field_manager=field_manager, attempts=attempts)
    if not applied.ok:
        return applied
    entry = SyncResultEntry(key, SyncAction.CONFIGURED, "replaced (deleted and recreated): immutable field changed",
                            target.wave)
    return Applied(entry, applied.result)


@dataclass(frozen=True, slots=True)
class PruneTarget:
    """One object to prune."""

    key: ResourceKey
    resource: APIResource | None
    """None when the cluster no longer serves its kind."""
    wave: int = 0


async def prune(
    api: KubeAPI,
    target: PruneTarget,
    *,
    app: str,
    inventory: Collection[ResourceKey],
    propagation: str,
    attempts: int,
    dry_run: bool = False,
    confirmed: bool = False,
) -> SyncResultEntry:
    """Delete ``target`` if, on a fresh copy, every ownership signal says the app owns it.

    Returns:
        ``pruned`` (also when already gone), ``prune-skipped`` with the reason the object is not
        prunable (or was replaced since it was read), or ``failed``.
    """
    key, resource = target.key, target.resource
    if resource is None:
        return SyncResultEntry(key, SyncAction.PRUNED, "already gone (kind no longer served)", target.wave)
    try:
        fresh = await with_retries(lambda: api.get(resource, key.name, key.namespace), attempts=attempts)
        if fresh is None:
            return SyncResultEntry(key, SyncAction.PRUNED, "already gone", target.wave)
        allowed, why = prunable(fresh, app=app, inventory=inventory, confirmed=confirmed)
        if not allowed:
            return SyncResultEntry(key, SyncAction.PRUNE_SKIPPED, why, target.wave)
        uid = _uid(fresh)
        await with_retries(lambda: api.delete(resource, key.name, key.namespace, propagation=propagation,
                                              uid=uid, dry_run=dry_run), attempts=attempts)
    except ClusterError as exc:
        if exc.conflict:
            return SyncResultEntry(key, SyncAction.PRUNE_SKIPPED, "replaced since it was read (UID changed)",
                                   target.wave)
        return SyncResultEntry(key, SyncAction.FAILED, f"prune {describe_error(exc)}", target.wave)
    return SyncResultEntry(key, SyncAction.PRUNED, "dry run" if dry_run else "", target.wave)


def health_on_apply(applied: Mapping[str, Any], scripts: ScriptedHealth | None = None) -> tuple[HealthStatus, str] | None:
    """The health of an object from the apply's answer, when no controller's later work can change it; None
    when it must be read (and waited for) after the wave.

    Final on apply: Kubernetes kinds without a health rule (ConfigMap, Secret, ServiceAccount, RBAC,
    Namespace…: Healthy whatever their status) and a Service that is not of type LoadBalancer (its rule reads
    only ``spec.type``). Everything else is read: kinds whose rule reads status a controller writes
    (Deployment, StatefulSet, Job, Pod, a LoadBalancer Service, Ingress, PVC, CRD…), custom resources
    (conditions), a kind a health script covers, and an object being deleted.
    """
    if get_in(applied, "metadata", "deletionTimestamp") is not None:
        return None
    if scripts is not None and scripts.check(applied) is not None:
        return None
    group = str(applied.get("apiVersion") or "").rpartition("/")[0]
    kind = str(applied.get("kind") or "")
    if without_health(group, kind):
        return HealthStatus.HEALTHY, ""
    if (group, kind) == ("", "Service") and get_in(applied, "spec", "type") != "LoadBalancer":
        verdict = health_of(applied)
        return (verdict.status, verdict.message) if verdict is not None else (HealthStatus.HEALTHY, "")
    return None


async def health(api: KubeAPI, key: ResourceKey, resource: APIResource, *, attempts: int,
                 scripts: ScriptedHealth | None = None) -> tuple[HealthStatus, str]:
    """The live health of ``key`` (Healthy for kinds without a health rule; Missing when absent).

    ``scripts`` are the custom health checks the engine loaded (they override the built-in rule of their kind).
    """
    obj = await with_retries(lambda: api.get(resource, key.name, key.namespace), attempts=attempts)
    if obj is None:
        return HealthStatus.MISSING, "not found"
    verdict = health_of(obj, scripts)
    if verdict is None:
        return HealthStatus.HEALTHY, ""
    return verdict.status, verdict.message
