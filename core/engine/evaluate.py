"""Turn one target's desired objects and its cluster's live cache into an ``AppStatus``.

Synchronous and free of I/O: the engine calls it for dirty targets only, and reuses the previous
``AppStatus`` for the rest. The server-side dry-run verdicts arrive precomputed (``Predicted``), keyed
by the desired object's digest and the live resourceVersion, so a stale verdict is never used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from core.engine.targets import Desired, Target
from core.model import (
    AppControl,
    AppName,
    AppStatus,
    ClusterName,
    Condition,
    ControllerRef,
    ControllerStatus,
    FluxObjectStatus,
    Health,
    HealthStatus,
    HistoryEntry,
    OperationState,
    Owner,
    ResourceDiff,
    ResourceKey,
    ResourceState,
    ResourceStatus,
    Severity,
    SyncStatus,
    frozen_mapping,
)
from core.reconcile.diff import compare, compare_predicted
from core.reconcile.fastpath import Decodable, keep_compact
from core.reconcile.health import ScriptedHealth, app_health, health_of
from core.reconcile.hooks import is_hook
from core.reconcile.plan import is_tracked_by, sync_wave
from core.reconcile.tracking import tracking_of, without_own_tracking

CHILD_KINDS = {("apps", "Deployment"): ("apps", "ReplicaSet"), ("apps", "ReplicaSet"): ("", "Pod"),
               ("apps", "StatefulSet"): ("", "Pod"), ("apps", "DaemonSet"): ("", "Pod"),
               ("batch", "Job"): ("", "Pod"), ("batch", "CronJob"): ("batch", "Job")}


class LiveView(Protocol):
    """What evaluation reads from a cluster's cache."""

    @property
    def listed(self) -> bool:
        """Whether at least one full list has completed (otherwise nothing is known yet)."""
        ...

    def get(self, key: ResourceKey) -> Mapping[str, Any] | None:
        """The live object at ``key``."""
        ...

    def unknown_reason(self, group: str, kind: str) -> str | None:
        """Why objects of this kind cannot be compared (never listed, no permission), or None."""
        ...

    def served(self, group: str, kind: str) -> bool:
        """Whether the cluster serves the kind (False: its CRD is not installed)."""
        ...

    def tracked_by(self, app: str, *, excluding: Container[ResourceKey] = ()) -> Iterable[Mapping[str, Any]]:
        """Live objects carrying the app's tracking label, but those at a key in ``excluding``."""
        ...

    def owned_by(self, uid: str, group: str, kind: str) -> Iterable[Mapping[str, Any]]:
        """Live objects of ``group/kind`` with an ownerReference to ``uid``."""
        ...


@dataclass(frozen=True, slots=True)
class Predicted:
    """A server-side apply dry run's outcome for one desired object against one live version."""

    desired_digest: str
    live_version: str
    predicted: Mapping[str, Any] | None = None
    state: ResourceState | None = None
    """Set when the dry run decided the verdict by itself (Invalid)."""
    message: str = ""


Memo = dict[ResourceKey, tuple[tuple[str, str, str], ResourceDiff]]
"""Cached comparisons of one target: key → ((strategy, desired digest, live resourceVersion), verdict)."""

COUNTERS = {"compared": 0, "reused": 0}
"""How many comparisons ran and how many verdicts were reused (exact; read by benchmarks)."""


@dataclass(frozen=True, slots=True)
class Context:
    """Everything besides desired and live that shapes a row."""

    control: AppControl
    history: tuple[HistoryEntry, ...] = ()
    synced_revision: str | None = None
    operation: OperationState | None = None
    stale: bool = False
    stale_message: str = ""
    behind: int = 0
    conditions: tuple[Condition, ...] = ()
    revision_error: str = ""
    """Why the config repo cannot be fetched now (the desired state comes from the last revision fetched)."""
    non_descendant: str = ""
    """Why the desired revision does not descend from the synced one (``core.engine.lineage``), or ""."""
    owner: Owner = Owner.FLEETDECK
    """Who applies the app here (``core.reconcile.owners``)."""
    controller: ControllerRef | None = None
    """The owning controller object, when one was found."""
    controller_status: ControllerStatus | None = None
    """What the owning controller reports."""
    flux: tuple[FluxObjectStatus, ...] = ()
    """Owner flux: the Kustomization/HelmRelease's status and its source's."""


def evaluate(
    target: Target,
    desired: Desired,
    live: LiveView,
    *,
    predicted: Mapping[ResourceKey, Predicted],
    context: Context,
    memo: Memo | None = None,
    scripts: ScriptedHealth | None = None,
) -> AppStatus:
    """The ``AppStatus`` of ``target``.

    Args:
        target: the app on the cluster.
        desired: its rendered desired objects.
        live: the cluster's cache.
        predicted: server-side dry-run verdicts (used when fresh).
        context: control state, history, operation, staleness.
        memo: verdicts from earlier evaluations; pairs whose desired digest and live resourceVersion are
            unchanged reuse theirs (and new ones are stored).
        scripts: custom health checks (``core.reconcile.health_lua``), run before the built-in rules.
    """
    conditions = list(context.conditions)
    if desired.error:
        conditions.append(Condition("ComparisonError", desired.error, Severity.ERROR))
    revision_stale = bool(context.revision_error) and desired.revision is not None
    if revision_stale and desired.revision is not None:
        conditions.append(Condition("RevisionStale", f"desired state from {desired.revision.short}, the last "
                                    f"revision fetched; fetching fails: {context.revision_error}", Severity.WARNING))
    if context.non_descendant:
        waits = "; automated sync waits for an operator" if target.app.sync.automated else ""
        conditions.append(Condition("NonDescendant", f"{context.non_descendant}: a sync needs an explicit "
                                    f"acknowledgement{waits}", Severity.WARNING))
    conditions += [Condition("RenderWarning", w, Severity.INFO) for w in desired.warnings]
    conditions += _shared(target, desired, live)
    if context.stale:
        conditions.append(Condition("Stale", context.stale_message, Severity.WARNING))
    resources = _resources(target, desired, live, predicted, {} if memo is None else memo, scripts)
    if context.owner is not Owner.FLEETDECK:  # the controller applies: fleetdeck's own tracking is never live
        resources = [_controller_owned(r) for r in resources]
    managed = [r for r in resources if r.managed]
    sync = SyncStatus.UNKNOWN if desired.error else SyncStatus.of(r.state for r in managed)
    known = [r for r in managed if r.state is not ResourceState.UNKNOWN]
    if desired.error:  # nothing to judge the live objects against: not "Healthy"
        health = Health(HealthStatus.UNKNOWN, f"the desired state does not render: {desired.error}")
    elif known or not managed:
        health = app_health(known)
    else:
        health = Health(HealthStatus.UNKNOWN, managed[0].diff.message)
    return AppStatus(
        app=AppName(target.app.name), cluster=ClusterName(target.cluster.name), namespace=target.app.namespace,
        path=target.path, sync=sync, health=health, revision=desired.revision, resources=tuple(resources),
        conditions=tuple(conditions), control=context.control, operation=context.operation,
        history=context.history, synced_revision=context.synced_revision, behind=context.behind,
        stale=context.stale, approximate=any(r.diff.approximate for r in managed),
        labels=frozen_mapping(target.cluster.labels), automated=target.app.sync.automated,
        revision_stale=revision_stale, non_descendant=context.non_descendant, depends_on=target.app.depends_on,
        owner=context.owner, controller=context.controller, controller_status=context.controller_status,
        flux=context.flux,
    )


def _resources(
    target: Target, desired: Desired, live: LiveView, predicted: Mapping[ResourceKey, Predicted], memo: Memo,
    scripts: ScriptedHealth | None = None,
) -> list[ResourceStatus]:
    result: list[ResourceStatus] = []
    for key, obj in sorted(desired.objects.items()):
        if is_hook(obj):
            continue  # hooks run during a sync; they are not resources of the app (never drift)
        reason = live.unknown_reason(key.group, key.kind) if live.served(key.group, key.kind) else None
        if reason is not None:
            result.append(ResourceStatus(key=key, api_version=str(obj.get("apiVersion", "")),
                                         state=ResourceState.UNKNOWN, health=None, wave=sync_wave(obj)[0],
                                         diff=ResourceDiff(ResourceState.UNKNOWN, message=reason)))
            continue
        live_obj = live.get(key)
        diff = _memoized(key, obj, live_obj, predicted.get(key), target, desired, memo,
                         getattr(live, "compact", None))
        health = health_of(live_obj, scripts) if live_obj is not None else Health(HealthStatus.MISSING,
                                                                                   "not in the cluster")
        result.append(ResourceStatus(key=key, api_version=str(obj.get("apiVersion", "")), state=diff.state,
                                     health=health, diff=diff, wave=sync_wave(obj)[0]))
        if live_obj is not None:
            result += _children(key, live_obj, live, scripts=scripts)
    if desired.ok:
        result += _extraneous(target, desired, live, scripts)
    else:
        result += _unjudged(target, desired, live, scripts)
    return result


SHARED_RESOURCE = "SharedResourceWarning"
"""Condition type: a desired object's live copy is tracked by another app (Argo CD's name for it)."""


def _shared(target: Target, desired: Desired, live: LiveView) -> list[Condition]:
    """One warning per desired object whose live copy another app's tracking annotation claims."""
    conditions = []
    for key in sorted(desired.objects):
        live_obj = live.get(key)
        tracking = tracking_of(live_obj) if live_obj is not None else None
        if tracking is None or not tracking.self_referenced or tracking.app == target.app.name:
            continue
        conditions.append(Condition(
            SHARED_RESOURCE, f"{key.short} is also tracked by app {tracking.app!r}: automated sync leaves it to "
            f"that app, and {target.app.name!r} never prunes it; sync by hand to take it over", Severity.WARNING))
    return conditions


def _unjudged(target: Target, desired: Desired, live: LiveView,
              scripts: ScriptedHealth | None = None) -> list[ResourceStatus]:
    """The app's live objects when there is no desired state to compare them with: shown, state Unknown."""
    result = []
    message = f"no desired state to compare with: {desired.error or 'not rendered'}"
    for obj in live.tracked_by(target.app.name):
        if not is_tracked_by(obj, target.app.name):
            continue
        key = ResourceKey.of(obj)
        result.append(ResourceStatus(key=key, api_version=str(obj.get("apiVersion", "")),
                                     state=ResourceState.UNKNOWN, health=health_of(obj, scripts),
                                     diff=ResourceDiff(ResourceState.UNKNOWN, message=message)))
        result += _children(key, obj, live, scripts=scripts)
    return result


def _memoized(key: ResourceKey, obj: Mapping[str, Any], live_obj: Mapping[str, Any] | None,
              pred: Predicted | None, target: Target, desired: Desired, memo: Memo,
              source: Callable[[ResourceKey], Decodable | None] | None = None) -> ResourceDiff:
    desired_digest = desired.digest_of(key)
    version = _version(live_obj) if live_obj is not None else ""
    fresh = live_obj is not None and pred is not None and pred.live_version == version \
        and pred.desired_digest == desired_digest
    stamp = ("ssa" if fresh else "local", desired_digest, version)
    cached = memo.get(key)
    if cached is not None and cached[0] == stamp:
        COUNTERS["reused"] += 1
        return cached[1]
    COUNTERS["compared"] += 1
    diff = _diff(obj, live_obj, pred if fresh else None, target, desired_digest)
    if live_obj is not None and source is not None:
        entry = source(key)
        if entry is not None:  # the memoized verdict keeps the cache's compact entry, not the decoded dicts
            keep_compact(diff, live_obj, entry)
    memo[key] = (stamp, diff)
    return diff


def _controller_owned(resource: ResourceStatus) -> ResourceStatus:
    if not resource.managed:
        return resource
    diff = without_own_tracking(resource.diff)
    if diff is resource.diff:
        return resource
    return dataclasses.replace(resource, state=diff.state, diff=diff)


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _diff(
    desired: Mapping[str, Any], live: Mapping[str, Any] | None, pred: Predicted | None, target: Target,
    desired_digest: str,
) -> ResourceDiff:
    """``pred`` is given only when it is fresh for this desired digest and live version; the digest is
    also the local comparison's cache key for the normalized manifest."""
    rules = target.ignore_rules
    if live is not None and pred is not None:
        if pred.state is not None:
            return ResourceDiff(pred.state, message=pred.message, strategy="ssa-dry-run")
        if pred.predicted is not None:
            return compare_predicted(pred.predicted, live, ignore_rules=rules)
    return compare(desired, live, ignore_rules=rules, desired_digest=desired_digest)


def _extraneous(target: Target, desired: Desired, live: LiveView,
                scripts: ScriptedHealth | None = None) -> list[ResourceStatus]:
    result = []
    for obj in live.tracked_by(target.app.name, excluding=desired.objects):  # the desired ones are not read
        key = ResourceKey.of(obj)
        if key in desired.objects or not is_tracked_by(obj, target.app.name) or is_hook(obj):
            continue
        diff = compare(None, obj)
        result.append(ResourceStatus(key=key, api_version=str(obj.get("apiVersion", "")),
                                     state=ResourceState.EXTRANEOUS, health=health_of(obj, scripts), diff=diff))
    return result


def _children(parent: ResourceKey, obj: Mapping[str, Any], live: LiveView, depth: int = 0, *,
              scripts: ScriptedHealth | None = None) -> list[ResourceStatus]:
    child_kind = CHILD_KINDS.get((parent.group, parent.kind))
    uid = str((obj.get("metadata") or {}).get("uid", ""))
    if child_kind is None or not uid or depth > 2:
        return []
    result = []
    for child in live.owned_by(uid, *child_kind):
        key = ResourceKey.of(child)
        result.append(ResourceStatus(key=key, api_version=str(child.get("apiVersion", "")),
                                     state=ResourceState.SYNCED, health=health_of(child, scripts),
                                     diff=ResourceDiff(ResourceState.SYNCED), parent=parent, managed=False))
        result += _children(key, child, live, depth + 1, scripts=scripts)
    return result
