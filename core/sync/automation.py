"""Whether an app should be synced automatically now: a pure port of Argo CD's ``autoSync`` safeguards.

The engine calls ``decide_auto_sync`` for each app it owns automation for (it holds the cluster's
automation lease) whenever the app's status changes or a self-heal backoff expires, and starts a
sync only on ``sync=True``. Safeguards, in Argo's order (``argo:controller/appcontroller.go::autoSync``):

* automation enabled, app neither paused (expired pauses already read as not paused) nor suspended,
  this process the automation owner, no operation in progress, app not being deleted;
* only when the app is ``OutOfSync``: ``Unknown`` (render failed, cluster unreachable) never syncs;
* never a revision that does not descend from the one last synced (a force-push, or the synced revision is
  gone from the repo): replacing history waits for an operator's explicit acknowledgement (fleetdeck's own
  safeguard; Argo CD syncs it);
* with auto-prune off, skip when only prunes are pending;
* once per revision: a revision whose last sync failed is never retried automatically (a
  ``SyncError`` condition); a revision already synced is synced again only by self-heal, with
  exponential backoff, and then only its non-Synced resources;
* with auto-prune on and ``allow_empty`` off, refuse when every resource would be pruned.

Constraint: no I/O, no clock reads (``now`` is passed in), no asyncio.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.model import AppStatus, OperationPhase, ResourceKey, ResourceState, SyncStatus


@dataclass(frozen=True, slots=True)
class AutoSyncPolicy:
    """An app's automated sync policy (Argo ``syncPolicy.automated``)."""

    enabled: bool = False
    prune: bool = False
    """Automated syncs may prune (Argo ``automated.prune``)."""
    self_heal: bool = False
    """Re-sync drift of an already-synced revision (Argo ``automated.selfHeal``)."""
    allow_empty: bool = False
    """Allow an automated sync that would prune every resource (Argo ``automated.allowEmpty``)."""
    self_heal_base: float = 5.0
    """First self-heal backoff in seconds (Argo's ``selfHealTimeout`` default)."""
    self_heal_factor: float = 2.0
    self_heal_max: float = 180.0
    """Backoff cap: drift that keeps coming back is retried at most every 3 minutes."""


@dataclass(frozen=True, slots=True)
class AppInputs:
    """The parts of an app's status the decision reads."""

    sync: SyncStatus
    revision: str
    """The SHA the desired state was rendered from (the pin when pinned)."""
    resources: tuple[tuple[ResourceKey, ResourceState], ...] = ()
    """Managed resources and their states."""
    paused: bool = False
    suspended: bool = False
    operation_running: bool = False
    deleting: bool = False
    automation_owner: bool = True
    """This process holds the cluster's automation lease."""
    non_descendant: str = ""
    """Why the revision does not descend from the one last synced (``AppStatus.non_descendant``), or ""."""
    shared: tuple[str, ...] = ()
    """Why some desired objects are tracked by another app (``SharedResourceWarning`` messages)."""

    @classmethod
    def of(cls, app: AppStatus, *, suspended: bool = False, automation_owner: bool = True) -> AppInputs:
        """Inputs read from a published ``AppStatus``."""
        running = app.operation is not None and not app.operation.phase.completed
        return cls(
            sync=app.sync,
            revision=app.revision.sha if app.revision else "",
            resources=tuple((r.key, r.state) for r in app.resources if r.managed),
            paused=app.control.paused,
            suspended=suspended,
            operation_running=running,
            automation_owner=automation_owner,
            non_descendant=app.non_descendant,
            shared=tuple(c.message for c in app.conditions if c.type == "SharedResourceWarning"),
        )


@dataclass(frozen=True, slots=True)
class LastOperation:
    """The app's most recent operation (manual or automated), as recorded."""

    revision: str
    phase: OperationPhase
    finished_at: float | None = None
    message: str = ""
    self_heal_attempts: int = 0
    """Self-heal syncs of this revision so far: drives the backoff."""


@dataclass(frozen=True, slots=True)
class AutoSyncDecision:
    """What to do about one app now."""

    sync: bool
    reason: str
    error: bool = False
    """The reason is an error condition to show (``SyncError``), not a routine skip."""
    resources: tuple[ResourceKey, ...] = ()
    """For a self-heal sync: only these (the non-Synced resources). Empty means a full sync."""
    retry_after: float | None = None
    """Seconds until the decision may change by itself (self-heal backoff)."""
    self_heal: bool = False


def self_heal_delay(attempts: int, policy: AutoSyncPolicy) -> float:
    """Backoff before self-heal attempt ``attempts + 1``: ``min(max, base * factor**attempts)``."""
    return float(min(policy.self_heal_max, policy.self_heal_base * policy.self_heal_factor ** max(0, attempts)))


def _skip(reason: str, *, error: bool = False, retry_after: float | None = None) -> AutoSyncDecision:
    return AutoSyncDecision(sync=False, reason=reason, error=error, retry_after=retry_after)


def _gate(app: AppInputs, policy: AutoSyncPolicy) -> AutoSyncDecision | None:
    if not policy.enabled:
        return _skip("automated sync is not enabled")
    if app.suspended:
        return _skip("app is suspended")
    if app.paused:
        return _skip("app is paused")
    if not app.automation_owner:
        return _skip("another fleetdeck holds this cluster's automation lease")
    if app.operation_running:
        return _skip("an operation is in progress")
    if app.deleting:
        return _skip("app is being deleted")
    if app.sync is SyncStatus.UNKNOWN:
        return _skip("sync status is Unknown (render or comparison failed): never synced automatically")
    if app.sync is not SyncStatus.OUT_OF_SYNC:
        return _skip("app is Synced")
    if app.non_descendant:
        return _skip(f"waiting for an operator: {app.non_descendant}", error=True)
    if app.shared:  # two apps taking one object from each other would flip it back and forth forever
        return _skip(f"never synced automatically while another app tracks its objects: {app.shared[0]}")
    return None


def _drifted(resources: Iterable[tuple[ResourceKey, ResourceState]]) -> list[tuple[ResourceKey, ResourceState]]:
    return [(key, state) for key, state in resources if state.drifted]


def _only_prunes_pending(app: AppInputs) -> bool:
    drifted = _drifted(app.resources)
    return bool(drifted) and all(state is ResourceState.EXTRANEOUS for _, state in drifted)


def _wipes_out(app: AppInputs) -> bool:
    return bool(app.resources) and all(state is ResourceState.EXTRANEOUS for _, state in app.resources)


def _already_attempted(app: AppInputs, policy: AutoSyncPolicy, last: LastOperation,
                       now: float) -> AutoSyncDecision | None:
    """Once-per-revision and self-heal rules; None when a full sync of the revision may start."""
    if not last.phase.completed:
        return _skip("an operation is in progress")
    if not last.phase.successful:
        detail = f": {last.message}" if last.message else ""
        return _skip(f"Failed last sync attempt to {app.revision[:12]}{detail}", error=True)
    if not policy.self_heal:
        return _skip(f"most recent sync already to {app.revision[:12]}")
    wait = (last.finished_at or now) + self_heal_delay(last.self_heal_attempts, policy) - now
    if wait > 0:
        return _skip(f"self-heal of {app.revision[:12]} backing off ({wait:.0f}s)", retry_after=wait)
    keys = tuple(key for key, state in app.resources if state is not ResourceState.SYNCED)
    return AutoSyncDecision(sync=True, reason=f"self-heal: {len(keys)} resources drifted from "
                            f"{app.revision[:12]}", resources=keys, self_heal=True)


def decide_auto_sync(
    *,
    app: AppInputs,
    policy: AutoSyncPolicy,
    last_operation: LastOperation | None,
    now: float,
) -> AutoSyncDecision:
    """Decide whether to start an automated sync of ``app`` now.

    Args:
        app: the app's current status.
        policy: its automated sync policy.
        last_operation: its most recent operation, if any.
        now: the current Unix time.

    Returns:
        The decision; ``error=True`` marks reasons the console shows as a ``SyncError`` condition.
    """
    gated = _gate(app, policy)
    if gated is not None:
        return gated
    if not policy.prune and _only_prunes_pending(app):
        return _skip("need to prune extra resources only, but automated prune is disabled")
    heal: AutoSyncDecision | None = None
    if last_operation is not None and last_operation.revision == app.revision:
        heal = _already_attempted(app, policy, last_operation, now)
        if heal is not None and not heal.sync:
            return heal
    if policy.prune and not policy.allow_empty and _wipes_out(app):
        return _skip(f"Skipping sync attempt to {app.revision[:12]}: auto-sync will wipe out all resources",
                     error=True)
    return heal or AutoSyncDecision(sync=True, reason=f"OutOfSync with {app.revision[:12]}")


def should_auto_sync(
    *,
    app: AppInputs,
    policy: AutoSyncPolicy,
    last_operation: LastOperation | None,
    now: float,
) -> tuple[bool, str]:
    """``decide_auto_sync`` reduced to ``(sync, reason)``."""
    decision = decide_auto_sync(app=app, policy=policy, last_operation=last_operation, now=now)
    return decision.sync, decision.reason
