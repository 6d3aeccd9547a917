"""The owner backends: how sync, rollback, pause, resume and refresh reach an app's owner.

``fleetdeck`` is the engine's own path (``core.engine.actions``, unchanged). A controller owner
(``argocd``, ``flux``) is a ``ControllerDriver``: pure functions that turn the live controller object into
the exact merge patches an action writes (``ControllerPatch``). The plan shows those patches and
``run_controller_action`` writes exactly them, through the same guarded client, journal and operation
Lease as fleetdeck's own syncs (docs/owners.md).

Constraint: drivers do no I/O; this module's executor is the only writer of controller objects.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.errors import ClusterError, FleetdeckError, JournalError, LockedError
from core.journal import Journal, OperatorIdentity
from core.live.api import APIResource, KubeAPI
from core.model import (
    AppName,
    ClusterName,
    ControllerPatch,
    ControllerRef,
    OperationPhase,
    OperationState,
    Owner,
    ResourceKey,
    SyncAction,
    SyncResultEntry,
)
from core.reconcile.owners import (
    CONTROL_ANNOTATIONS,
    PAUSE_EXPIRES_AT,
    PAUSE_REASON,
    PAUSED,
    PAUSED_AT,
    PAUSED_BY,
    PAUSED_POLICY,
    PINNED,
)
from core.settings import SyncSettings
from core.sync.lease import OperationLease
from core.sync.options import new_operation_id

__all__ = ["CONTROL_ANNOTATIONS", "PAUSED", "PAUSED_AT", "PAUSED_BY", "PAUSED_POLICY", "PAUSE_EXPIRES_AT",
           "PAUSE_REASON", "PINNED"]

Lookup = Callable[[str, ResourceKey], Mapping[str, Any] | None]
"""The live object at a key in a cluster (as the cache last saw it)."""


class Refused(FleetdeckError):
    """A driver cannot build the action from the controller object (shown as the plan's blocked reason)."""


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """What the operator asked a sync to do."""

    revision: str
    """The revision to sync (a Git SHA; empty: the controller's own target revision)."""
    prune: bool = False
    resources: tuple[ResourceKey, ...] = ()
    """Selective sync: only these."""
    sync_options: tuple[str, ...] = ()
    """Controller sync options (Argo CD ``syncOptions``: ``ServerSideApply=true``…)."""
    by: str = ""
    dry_run: bool = False
    """The controller's own dry run (Argo CD ``operation.sync.dryRun``): the controller runs the sync without
    applying. Not fleetdeck's ``--dry-run``, which sends the patches with ``dryRun=All`` and stores nothing."""


@dataclass(frozen=True, slots=True)
class PauseRequest:
    """A pause: why, by whom, until when (Unix time; None: until resumed)."""

    reason: str
    by: str
    expires_at: float | None = None


class ControllerDriver(Protocol):
    """What an owner backend implements (Argo CD here, Flux on its side): the patches of each action.

    Every method reads the controller object as last seen (``ref`` names it, ``obj`` is it) and returns
    the patches the action writes, in order, or raises ``Refused`` saying why it cannot. No I/O."""

    owner: Owner

    def sync(self, ref: ControllerRef, obj: Mapping[str, Any], request: SyncRequest,
             lookup: Lookup) -> tuple[ControllerPatch, ...]:
        """Make the controller sync (``revision``, prune, selected resources, options)."""
        ...

    def rollback(self, ref: ControllerRef, obj: Mapping[str, Any], revision: str, by: str,
                 lookup: Lookup) -> tuple[ControllerPatch, ...]:
        """Go back to ``revision`` and keep it there (automated reconciliation paused, recorded)."""
        ...

    def pause(self, ref: ControllerRef, obj: Mapping[str, Any], request: PauseRequest,
              lookup: Lookup) -> tuple[ControllerPatch, ...]:
        """Stop automated reconciliation, with fleetdeck's reason/owner/expiry annotations."""
        ...

    def resume(self, ref: ControllerRef, obj: Mapping[str, Any], lookup: Lookup) -> tuple[ControllerPatch, ...]:
        """Restore exactly what the pause (or rollback) replaced."""
        ...

    def refresh(self, ref: ControllerRef, obj: Mapping[str, Any], lookup: Lookup) -> tuple[ControllerPatch, ...]:
        """Make the controller look at its source again."""
        ...

    def rollback_revisions(self, obj: Mapping[str, Any]) -> tuple[str, ...]:
        """Revisions a rollback may go to (Argo CD: ``status.history``), newest first; () when any."""
        ...


def patch_of(ref: ControllerRef, patch: Mapping[str, Any], summary: str, key: ResourceKey | None = None,
             cluster: str | None = None) -> ControllerPatch:
    """A ``ControllerPatch`` of ``ref``'s object (or another object ``key`` in ``cluster``)."""
    return ControllerPatch(cluster=ClusterName(cluster or ref.cluster), key=key or ref.key, patch=patch,
                           summary=summary)


async def run_controller_action(
    *, action: str, owner: Owner, app: str, cluster: str, revision: str, patches: Sequence[ControllerPatch],
    apis: Mapping[str, KubeAPI], resource_for: Callable[[str, ResourceKey], APIResource | None],
    lease_api: KubeAPI, journal: Journal, identity: OperatorIdentity, dry_run: bool = False,
    settings: SyncSettings | None = None, clock: Callable[[], float] = time.time,
) -> OperationState:
    """Write ``patches`` (exactly them, in order) as ``identity``, the way fleetdeck's own operations write.

    The journal gets ``started`` first (an action whose journal cannot be written is refused), then the
    app's operation Lease is taken in its destination cluster (``lease_api``: the same Lease a fleetdeck
    sync of the app takes, so two operators exclude each other whoever owns the app), then each patch goes
    through the cluster's guarded client (read-only mode refuses it there), then the journal gets the
    result with the patches. A dry run sends each patch with ``dryRun=All`` (validated by the API server,
    nothing stored) and takes no Lease.

    Raises:
        LockedError: another operation holds the app's Lease (nothing was written).
        JournalError: the journal cannot be written (nothing was written).
    """
    op_id = new_operation_id()
    started = clock()
    details: dict[str, Any] = {"owner": owner.value, "revision": revision, "dry_run": dry_run,
                               "patches": [f"{p.cluster}: {p.key.kind} {p.key.namespace}/{p.key.name}: {p.text}"
                                           for p in patches]}

    async def record(result: Any, message: str) -> None:
        await journal.record(who=identity, action=action, app=app, cluster=cluster, result=result,
                             message=message, details=details)

    await record("started", f"{action} of {app} on {cluster} through its owner")
    lease = None
    if not dry_run:
        lease = OperationLease(lease_api, app=app, identity=identity, token=op_id,
                               what=f"{action} {op_id} through the owner", settings=settings)
        try:
            await lease.acquire()
        except (LockedError, ClusterError) as exc:
            await _quietly(record, "refused", f"refused: {exc}")
            raise
    entries: list[SyncResultEntry] = []
    failed = ""
    try:
        for p in patches:
            resource = resource_for(p.cluster, p.key)
            if resource is None:
                failed = f"{p.cluster} does not serve {p.key.kind}.{p.key.group}"
                entries.append(SyncResultEntry(p.key, SyncAction.FAILED, failed))
                break
            try:
                await apis[p.cluster].patch(resource, p.key.name, p.key.namespace, p.patch, dry_run=dry_run)
            except FleetdeckError as exc:
                failed = f"{p}: {exc}"
                entries.append(SyncResultEntry(p.key, SyncAction.FAILED, f"{p.summary}: {exc}"))
                break
            entries.append(SyncResultEntry(p.key, SyncAction.CONFIGURED, p.summary))
    finally:
        if lease is not None:
            await lease.release()
    phase = OperationPhase.FAILED if failed else OperationPhase.SUCCEEDED
    prefix = "dry run of " if dry_run else ""
    message = failed or f"{prefix}{action} written to its owner: {'; '.join(str(p) for p in patches)}"
    await _quietly(record, "failed" if failed else "succeeded", message)
    return OperationState(id=op_id, app=AppName(app), cluster=ClusterName(cluster), kind=action,
                          revision=revision, phase=phase, message=message, entries=tuple(entries),
                          dry_run=dry_run, started_at=started, finished_at=clock(), by=identity.by)


async def _quietly(record: Callable[[Any, str], Any], result: str, message: str) -> None:
    with contextlib.suppress(JournalError):
        await record(result, message)
