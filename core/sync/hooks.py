"""Running one hook: delete its previous object (BeforeHookCreation), create it, read how it ended, delete
it by policy.

A hook with a name is created by server-side apply (like every other write); a ``generateName`` hook by a
POST, so each run gets a fresh name. Completion is the object's health (``core.reconcile.health``): a Job
Complete or a Pod Succeeded is Healthy (the hook succeeded), a Job Failed or a Pod Failed is Degraded (it
failed); kinds without a health rule succeed once created. Constraint: every delete carries a UID
precondition; per-hook failures are returned as messages, never raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import ClusterError
from core.live.api import APIResource, KubeAPI
from core.model import HealthStatus, ResourceKey, SyncPhase
from core.reconcile.hooks import DeletePolicy
from core.sync import resources
from core.sync.retry import with_retries


@dataclass(frozen=True, slots=True)
class HookRun:
    """One hook in one phase."""

    key: ResourceKey
    """Its key in the desired state (name ``""`` for a ``generateName`` hook)."""
    obj: Mapping[str, Any]
    """The manifest to create, tracking label and annotation added."""
    phase: SyncPhase
    wave: int
    policies: frozenset[DeletePolicy]

    @property
    def generated(self) -> bool:
        """Whether the server names each run (``metadata.generateName``)."""
        return not self.key.name


def _uid(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("uid", ""))


async def delete_previous(api: KubeAPI, run: HookRun, resource: APIResource, *, attempts: int) -> None:
    """BeforeHookCreation: delete the hook's previous object (if any) and wait until it is gone.

    Raises:
        ClusterError: the delete failed or the object was still there after ``resources.REPLACE_TIMEOUT``.
    """
    key = run.key
    current = await with_retries(lambda: api.get(resource, key.name, key.namespace), attempts=attempts)
    if current is None:
        return
    uid = _uid(current)
    await with_retries(lambda: api.delete(resource, key.name, key.namespace, propagation="Background", uid=uid),
                       attempts=attempts)
    await resources.wait_gone(api, resources.Target(key, resource, run.obj, current), uid=uid, attempts=attempts)


async def create(api: KubeAPI, run: HookRun, resource: APIResource, *, field_manager: str,
                 attempts: int) -> ResourceKey:
    """Create the hook's object; the key it got (a generated name for a ``generateName`` hook).

    Raises:
        ClusterError: the server refused it.
    """
    if run.generated:
        created = await api.create(resource, run.obj)
        name = str((created.get("metadata") or {}).get("name", ""))
        return ResourceKey(run.key.group, run.key.kind, run.key.namespace, name)
    await with_retries(lambda: api.apply(resource, run.obj, field_manager=field_manager), attempts=attempts)
    return run.key


async def outcome(api: KubeAPI, key: ResourceKey, resource: APIResource, *, attempts: int) -> tuple[bool | None, str]:
    """Whether the hook's object succeeded (True), failed (False) or is still running (None), and why."""
    status, message = await resources.health(api, key, resource, attempts=attempts)
    if status is HealthStatus.HEALTHY:
        return True, message
    if status is HealthStatus.DEGRADED:
        return False, message or "Degraded"
    if status is HealthStatus.MISSING:
        return False, "the hook's object disappeared before it completed"
    return None, f"{status.value}{': ' + message if message else ''}"


async def delete_by_policy(api: KubeAPI, key: ResourceKey, resource: APIResource, *, attempts: int) -> str:
    """Delete the hook's object (UID precondition); ``""`` or the error."""
    try:
        current = await with_retries(lambda: api.get(resource, key.name, key.namespace), attempts=attempts)
        if current is None:
            return ""
        uid = _uid(current)
        await with_retries(lambda: api.delete(resource, key.name, key.namespace, propagation="Background",
                                              uid=uid), attempts=attempts)
    except ClusterError as exc:
        return resources.describe_error(exc)
    return ""
