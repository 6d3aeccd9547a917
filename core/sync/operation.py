"""``SyncOperation``: one sync or rollback of one app on one cluster, as a step machine.

The engine builds it from a confirmed ``SyncPlan`` and calls ``step()`` until it returns False,
publishing ``state()`` after each step; ``terminate()`` asks it to stop at the next resource-batch
boundary. Stages (CORE_DESIGN §6, RELIABILITY O1–O8):

1. begin: refuse a blocked plan or an empty-desired prune-everything; journal ``started`` (refused if
   the journal cannot be written); take the app's operation Lease (``LockedError`` names the holder);
   write ``operation`` (Running) into the app's state, with a rollback's pin and pause in the same write.
2. preflight: server-side apply dry run of every apply; any failure ends the operation with nothing
   changed. Objects whose kind or namespace this sync creates are checked at apply time instead.
3. namespace: create the destination namespace if asked to and missing.
4. waves, in order: Namespaces and CRDs of the wave first (then wait until each CRD is Established),
   then the wave's other applies concurrently (``SyncSettings.concurrency``), then (between waves)
   wait until the wave is healthy. A failed resource stops the operation at that wave: later waves are
   not applied and nothing is pruned.
5. prune, in reverse order: only what ``core.reconcile.plan.prunable`` allows on a fresh copy
   (inventory, self-referencing tracking annotation, owner label), deleted with a UID precondition.
6. record: one state write sets the inventory (applied ∪ previous − pruned), the last operation, a
   history entry (full, non-dry-run, successful operations only) and clears ``operation``; then the
   journal gets the result and the lease is released.

A dry run sends every apply and prune through the server's dry run and writes nothing to the cluster,
not even state or a lease. Constraint: every write to the app's objects is a server-side apply or a
DELETE with a UID precondition; this module never reads Git and never imports the engine.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar

from core.errors import ClusterError, FleetdeckError, JournalError, LockedError
from core.journal import Journal, OperatorIdentity, Result
from core.live.api import APIResource, KubeAPI
from core.model import (
    OperationPhase,
    OperationState,
    ResourceKey,
    SyncAction,
    SyncPlan,
    SyncResultEntry,
)
from core.reconcile.plan import RECONCILE_ANNOTATION, order_for_apply, order_for_prune
from core.reconcile.tracking import add_tracking
from core.settings import SyncSettings
from core.sync import record, resources
from core.sync.kinds import KindResolver, crd_kind, is_crd, is_namespace, wait_established
from core.sync.lease import OperationLease
from core.sync.retry import with_retries
from core.sync.state import NAMESPACES, AppState, AppStateStore, OperationRecord

log = logging.getLogger(__name__)
T = TypeVar("T")
APPLY_ACTIONS = frozenset({SyncAction.CREATED, SyncAction.CONFIGURED, SyncAction.UNCHANGED})
OK_HEALTH = frozenset({"Healthy", "Suspended"})
_LIST_LIMIT = 10


class Stage(StrEnum):
    """Where the step machine is."""

    BEGIN = "begin"
    PREFLIGHT = "preflight"
    NAMESPACE = "namespace"
    WAVE_INFRA = "wave-infra"
    WAVE_APPLY = "wave-apply"
    WAVE_HEALTH = "wave-health"
    PRUNE = "prune"
    RECORD = "record"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class OperationOptions:
    """How an operation runs, beyond what its plan says."""

    create_namespace: str = ""
    """The app's destination namespace, created before the first wave when missing (empty: never)."""
    allow_empty: bool = False
    """Allow pruning every resource of an app whose desired state is empty."""
    confirmed_prunes: bool = False
    """The operator confirmed prunes of objects marked ``Prune=confirm``."""
    automated: bool = False
    """Started by automation (recorded so automation never retries a failed revision)."""
    reason: str = ""
    """Why (shown in the journal; for a rollback, the pause reason)."""
    take_lease: bool = True
    """Take the app's operation Lease (False only when the caller already holds it)."""
    lease_duration: float = 60.0
    lease_renew: float = 15.0
    wait_between_waves: bool = True
    """Wait until a wave is healthy before the next one (gitops-engine's wave semantics)."""
    wait_for_health: bool = False
    """Also wait for the last wave to become healthy before pruning and succeeding."""
    health_timeout: float = 300.0
    poll_interval: float = 1.0
    """Pause between health checks while waiting (a ``step()`` waits at most this long)."""
    wave_delay: float = 0.0
    """Extra pause after a healthy wave (Argo CD uses 2 s)."""
    prune_propagation: str = "Foreground"


def new_operation_id() -> str:
    """A fresh operation id: ``op-<unix time>-<random>``."""
    return f"op-{int(time.time())}-{secrets.token_hex(4)}"


def _keys(keys: Iterable[ResourceKey]) -> str:
    listed = [key.short for key in keys]
    extra = f" and {len(listed) - _LIST_LIMIT} more" if len(listed) > _LIST_LIMIT else ""
    return ", ".join(listed[:_LIST_LIMIT]) + extra


class SyncOperation:
    """One sync or rollback, advanced by ``step()``.

    Args:
        plan: the confirmed plan (``kind``, ``revision``, ``prune``, ``dry_run``, ``selected``…).
        desired: desired manifests by key (rendered at ``plan.revision``, scope resolved).
        live: live objects by key as last seen (used to tell created from configured, and to order prunes).
        api: the destination cluster (through the read-only guard).
        store: the app's shared state in that cluster.
        journal: the operator journal.
        identity: the operator.
        settings: sync settings.
        options: operation options.
        resolver: kind discovery (a fresh ``KindResolver`` when omitted).
        operation_id: the id (fresh when omitted).
        clock: wall clock (injected in tests).
    """

    def __init__(
        self,
        *,
        plan: SyncPlan,
        desired: Mapping[ResourceKey, Mapping[str, Any]],
        live: Mapping[ResourceKey, Mapping[str, Any]],
        api: KubeAPI,
        store: AppStateStore,
        journal: Journal,
        identity: OperatorIdentity,
        settings: SyncSettings | None = None,
        options: OperationOptions | None = None,
        resolver: KindResolver | None = None,
        operation_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.plan = plan
        self.desired = desired
        self.live = live
        self.api = api
        self.store = store
        self.journal = journal
        self.identity = identity
        self.settings = settings or SyncSettings()
        self.options = options or OperationOptions()
        self.resolver = resolver or KindResolver(api, attempts=self.settings.request_retries)
        self.id = operation_id or new_operation_id()
        self.clock = clock
        self.recovered = ""
        """What a previous, interrupted operation of this app left behind (found at begin)."""
        self._stage = Stage.BEGIN
        self._phase = OperationPhase.PENDING
        self._message = ""
        self._started_at: float | None = None
        self._finished_at: float | None = None
        self._terminate = False
        self._failed = False
        self._lease: OperationLease | None = None
        self._app_state = AppState(app=plan.app)
        self._limit = asyncio.Semaphore(max(1, self.settings.concurrency))
        self._targets: dict[ResourceKey, resources.Target] = {}
        self._deferred: set[ResourceKey] = set()
        self._recreate: set[ResourceKey] = set()
        self._health_deadline: float | None = None
        self._entries: dict[ResourceKey, SyncResultEntry] = {}
        self._apply_waves, self._prune_waves = self._plan_waves()
        self._wave_index = 0
        self._prune_index = 0
        self._wave: int | None = None
        self._stage_name = "preflight"

    # ------------------------------------------------------------------------------------ planning

    def _selected(self, key: ResourceKey) -> bool:
        return not self.plan.selected or key in self.plan.selected

    def _plan_waves(self) -> tuple[list[tuple[int, list[ResourceKey]]], list[tuple[int, list[ResourceKey]]]]:
        applies = [s.key for s in self.plan.steps
                   if s.action in APPLY_ACTIONS and self._selected(s.key) and s.key in self.desired]
        prunes = [s.key for s in self.plan.steps if s.action is SyncAction.PRUNED and self._selected(s.key)]
        for step in self.plan.steps:
            if step.action in APPLY_ACTIONS and self._selected(step.key) and step.key not in self.desired:
                self._entries[step.key] = SyncResultEntry(step.key, SyncAction.FAILED, "no desired manifest",
                                                          step.wave)
        apply_order = order_for_apply(applies, obj_of=lambda k: self.desired[k])
        prune_order = order_for_prune(prunes, obj_of=lambda k: self.live.get(k) or _stub(k))
        for key, wave in apply_order:
            self._entries[key] = SyncResultEntry(key, SyncAction.PENDING, "", wave)
        for key, wave in prune_order:
            action = SyncAction.PENDING if self.plan.prune else SyncAction.PRUNE_SKIPPED
            self._entries[key] = SyncResultEntry(key, action, "" if self.plan.prune else "prune not enabled", wave)
        for step in self.plan.steps:
            if step.action is SyncAction.PRUNE_SKIPPED and self._selected(step.key):
                self._entries.setdefault(step.key, SyncResultEntry(step.key, step.action, step.reason, step.wave))
        return _group(apply_order), _group(prune_order) if self.plan.prune else []

    # ------------------------------------------------------------------------------------ public

    @property
    def done(self) -> bool:
        """Whether the operation has ended."""
        return self._stage is Stage.DONE

    def terminate(self) -> None:
        """Stop after the requests in flight; the operation ends Failed ("terminated"), never rolls back."""
        if not self.done:
            self._terminate = True
            if self._phase is OperationPhase.RUNNING:
                self._phase = OperationPhase.TERMINATING

    def state(self) -> OperationState:
        """Progress so far, or the result once ``done``."""
        return OperationState(
            id=self.id, app=self.plan.app, cluster=self.plan.cluster, kind=self.plan.kind,
            revision=self.plan.revision, phase=self._phase, message=self._message,
            entries=tuple(self._entries.values()), dry_run=self.plan.dry_run, started_at=self._started_at,
            finished_at=self._finished_at, by=self.identity.by,
        )

    async def step(self) -> bool:
        """Advance one stage; False once the operation has ended.

        Raises:
            LockedError: another operation holds the app's lease (nothing was changed).
            JournalError: the journal cannot be written (nothing was changed).
            ClusterError: the app's state could not be read or written at the start (nothing changed).
        """
        if self.done:
            return False
        if self._terminate and self._stage not in (Stage.BEGIN, Stage.RECORD):
            self._fail(f"terminated by the operator at {self._where()}{self._not_applied()}")
            self._stage = Stage.RECORD
        try:
            self._stage = await self._run_stage()
        except asyncio.CancelledError:
            self._abandon("cancelled")
            raise
        return not self.done

    async def run(self) -> OperationState:
        """Step until done (for callers that do not publish progress); the final state."""
        while await self.step():
            pass
        return self.state()

    async def _run_stage(self) -> Stage:
        handlers: dict[Stage, Callable[[], Awaitable[Stage]]] = {
            Stage.BEGIN: self._begin, Stage.PREFLIGHT: self._preflight, Stage.NAMESPACE: self._namespace,
            Stage.WAVE_INFRA: self._wave_infra, Stage.WAVE_APPLY: self._wave_apply,
            Stage.WAVE_HEALTH: self._wave_health, Stage.PRUNE: self._prune, Stage.RECORD: self._record,
        }
        if self._stage in (Stage.BEGIN, Stage.RECORD):
            return await handlers[self._stage]()
        try:
            return await handlers[self._stage]()
        except FleetdeckError as exc:
            self._fail(f"failed at {self._where()}: {exc}{self._not_applied()}")
            return Stage.RECORD

    # ------------------------------------------------------------------------------------ begin

    def _refusal(self) -> str:
        if self.plan.blocked:
            return f"plan is blocked: {self.plan.blocked}"
        if any(e.action is SyncAction.FAILED for e in self._entries.values()):
            return "the plan names resources without a desired manifest"
        applies = sum(len(keys) for _, keys in self._apply_waves)
        prunes = sum(len(keys) for _, keys in self._prune_waves)
        if prunes and not self.desired and not applies and not self.options.allow_empty:
            return "refusing to prune every resource: the desired state is empty (allow empty not set)"
        return ""

    def _details(self) -> dict[str, Any]:
        details: dict[str, Any] = {"revision": self.plan.revision, "dry_run": self.plan.dry_run,
                                   "prune": self.plan.prune, "operation": self.id}
        if self.plan.selected:
            details["resources"] = [str(k) for k in self.plan.selected]
        if self.options.reason:
            details["reason"] = self.options.reason
        return details

    async def _journal(self, result: Result, message: str) -> None:
        await self.journal.record(who=self.identity, action=self.plan.kind, app=self.plan.app,
                                  cluster=self.plan.cluster, result=result, details=self._details(),
                                  message=message)

    def _op_record(self, *, phase: OperationPhase) -> OperationRecord:
        return OperationRecord(
            id=self.id, kind=self.plan.kind, revision=self.plan.revision, phase=phase,
            started_at=self._started_at or self.clock(), by=self.identity.by, holder=self.identity.holder,
            wave=self._wave, stage=self._stage_name, finished_at=self._finished_at, message=self._message,
            automated=self.options.automated, selective=bool(self.plan.selected),
        )

    async def _begin(self) -> Stage:
        self._started_at = self.clock()
        refusal = self._refusal()
        if refusal:
            self._fail(refusal)
            self._phase, self._finished_at = OperationPhase.FAILED, self.clock()
            await self._journal("refused", refusal)
            return Stage.DONE
        try:
            await self._journal("started", f"{self.plan.kind} of {self.plan.app} to {self.plan.revision[:12]}")
        except JournalError as exc:
            self._end_refused(f"refused: {exc}")
            raise
        await self._take_lease()
        try:
            await self._start_state()
        except ClusterError as exc:
            await self._release_lease()
            self._end_refused(f"failed to record the operation's start: {exc}")
            await self._journal_quietly("failed", self._message)
            raise
        self._phase = OperationPhase.TERMINATING if self._terminate else OperationPhase.RUNNING
        return Stage.PREFLIGHT

    def _end_refused(self, message: str) -> None:
        self._message = message
        self._phase, self._finished_at, self._stage = OperationPhase.FAILED, self.clock(), Stage.DONE

    async def _take_lease(self) -> None:
        if self.plan.dry_run or not self.options.take_lease:
            return
        lease = OperationLease(self.api, app=self.plan.app, identity=self.identity, token=self.id,
                               what=f"{self.plan.kind} {self.id} to {self.plan.revision[:12]}",
                               duration=self.options.lease_duration, renew_every=self.options.lease_renew,
                               settings=self.settings, clock=self.clock)
        try:
            await lease.acquire()
        except (LockedError, ClusterError) as exc:
            self._end_refused(f"refused: {exc}")
            await self._journal_quietly("refused", self._message)
            raise
        self._lease = lease

    async def _start_state(self) -> None:
        self._app_state = await self.store.load(self.plan.app)
        if self.plan.dry_run:
            return
        pin = None
        if self.plan.kind == "rollback":
            reason = self.options.reason or f"rollback to {self.plan.revision[:12]}"
            pin = record.Pin(revision=self.plan.revision, reason=reason, by=self.identity.by, at=self.clock())
        op = self._op_record(phase=OperationPhase.RUNNING)
        now = self.clock()
        interrupted: list[str] = []

        def start(state: AppState) -> AppState:
            left = state.operation is not None and state.operation.id != op.id
            interrupted[:] = [state.interrupted] if left else []
            return record.begin(state, op, now=now, pin=pin)

        self._app_state = await self.store.update(self.plan.app, start)
        if interrupted:
            self.recovered = interrupted[0]
            self._message = f"previous operation: {self.recovered}"

    # ------------------------------------------------------------------------------------ preflight

    def _created_here(self) -> tuple[set[tuple[str, str]], set[str]]:
        keys = [k for _, wave in self._apply_waves for k in wave]
        crd_kinds = {crd_kind(self.desired[k]) for k in keys if is_crd(k)}
        namespaces = {k.name for k in keys if is_namespace(k)}
        if self.options.create_namespace:
            namespaces.add(self.options.create_namespace)
        return crd_kinds, namespaces

    async def _missing_namespaces(self, namespaces: set[str]) -> set[str]:
        async def missing(name: str) -> bool:
            return await self._retry(lambda: self.api.get(NAMESPACES, name)) is None

        names = sorted(namespaces)
        flags = await asyncio.gather(*(missing(n) for n in names))
        return {name for name, flag in zip(names, flags, strict=True) if flag}

    async def _preflight(self) -> Stage:
        await self.resolver.refresh()
        crd_kinds, namespaces = self._created_here()
        missing_ns = await self._missing_namespaces(namespaces)
        for wave, keys in self._apply_waves:
            for key in keys:
                await self._prepare(key, wave, crd_kinds=crd_kinds, missing_ns=missing_ns)
        errors = await self._gather([self._dry_run_one(t) for t in self._targets.values()
                                     if t.key not in self._deferred])
        failed = [e for e in errors if e is not None]
        if failed:
            self._fail(f"one or more objects failed to apply (dry run): {failed[0].key.short} "
                       f"{failed[0].message.removeprefix('dry run ')}; nothing was changed")
            return Stage.RECORD
        if self.plan.dry_run:
            self._predict()
            return Stage.PRUNE if self._prune_waves else Stage.RECORD
        return Stage.NAMESPACE

    async def _prepare(self, key: ResourceKey, wave: int, *, crd_kinds: set[tuple[str, str]],
                       missing_ns: set[str]) -> None:
        obj = add_tracking(self.desired[key], app=self.plan.app, key=key)
        before = self.live.get(key)
        annotations = ((before or {}).get("metadata") or {}).get("annotations") or {}
        if annotations.get(RECONCILE_ANNOTATION) == "disabled":
            self._set(key, SyncAction.SKIPPED, f"{RECONCILE_ANNOTATION}: disabled on the live object")
            return
        resource = await self.resolver.resolve(key)
        if resource is None and (key.group, key.kind) not in crd_kinds:
            self._set(key, SyncAction.FAILED, f"kind {key.kind}.{key.group or 'core'} is not served by the "
                      "cluster and no CRD in this sync defines it")
            return
        if resource is None or key.namespace in missing_ns:
            self._deferred.add(key)
        placeholder = resource or _placeholder(key)
        self._targets[key] = resources.Target(key, placeholder, obj, before, wave)

    async def _dry_run_one(self, target: resources.Target) -> SyncResultEntry | None:
        exc = await resources.dry_run(self.api, target, field_manager=self.settings.field_manager,
                                      attempts=self.settings.request_retries)
        if exc is None:
            return None
        if resources.is_immutable(exc) and self.plan.force_replace:
            self._recreate.add(target.key)
            self._set(target.key, SyncAction.PENDING, "will be replaced: an immutable field changed")
            return None
        hint = "; re-run with force replace to delete and recreate it" if resources.is_immutable(exc) else ""
        return self._set(target.key, SyncAction.FAILED, f"dry run {resources.describe_error(exc)}{hint}")

    def _predict(self) -> None:
        predicted = {s.key: s.action for s in self.plan.steps}
        for key in self._targets:
            entry = self._entries[key]
            if entry.action is SyncAction.PENDING:
                note = "dry run skipped: its kind or namespace is created by this sync" \
                    if key in self._deferred else "dry run"
                self._set(key, predicted.get(key, SyncAction.CONFIGURED), note)

    # ------------------------------------------------------------------------------------ apply

    async def _namespace(self) -> Stage:
        name = self.options.create_namespace
        in_plan = any(is_namespace(k) and k.name == name for k in self._targets)
        if name and not in_plan and await self._retry(lambda: self.api.get(NAMESPACES, name)) is None:
            key = ResourceKey("", "Namespace", "", name)
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            try:
                await self._retry(lambda: self.api.apply(NAMESPACES, body, field_manager=self.settings.field_manager))
            except ClusterError as exc:
                self._entries[key] = SyncResultEntry(key, SyncAction.FAILED, resources.describe_error(exc), 0)
                self._fail(f"failed to create namespace {name}: {resources.describe_error(exc)}")
                return Stage.RECORD
            self._entries = {key: SyncResultEntry(key, SyncAction.CREATED, "destination namespace", 0),
                             **self._entries}
        return self._next_wave_stage()

    def _next_wave_stage(self) -> Stage:
        if self._wave_index < len(self._apply_waves):
            return Stage.WAVE_INFRA
        return Stage.PRUNE if self._prune_waves else Stage.RECORD

    def _wave_targets(self, *, infra: bool) -> list[resources.Target]:
        _, keys = self._apply_waves[self._wave_index]
        return [self._targets[k] for k in keys if k in self._targets and self._entries[k].action is SyncAction.PENDING
                and (is_namespace(k) or is_crd(k)) == infra]

    async def _wave_infra(self) -> Stage:
        wave, _ = self._apply_waves[self._wave_index]
        await self._progress(wave=wave, stage="apply")
        targets = self._wave_targets(infra=True)
        applied = await self._gather([self._apply_one(t) for t in targets])
        stopped = self._stopped_at(wave)
        if stopped is not None:
            return stopped
        crds = [a.entry.key for a in applied if is_crd(a.entry.key)]
        await self._gather([self._wait_crd(key) for key in crds])
        if crds:
            await self.resolver.refresh()
        return self._stopped_at(wave) or Stage.WAVE_APPLY

    async def _wait_crd(self, key: ResourceKey) -> None:
        try:
            await wait_established(self.api, key.name, timeout=self.settings.crd_established_timeout)
        except ClusterError as exc:
            self._set(key, SyncAction.FAILED, resources.describe_error(exc))

    async def _wave_apply(self) -> Stage:
        wave, _ = self._apply_waves[self._wave_index]
        targets = []
        for target in self._wave_targets(infra=False):
            resource = await self.resolver.resolve(target.key, refresh_missing=target.key in self._deferred)
            if resource is None:
                self._set(target.key, SyncAction.FAILED, f"kind {target.key.kind} is not served by the cluster")
            else:
                self._targets[target.key] = replace(target, resource=resource)
                targets.append(self._targets[target.key])
        await self._gather([self._apply_one(t) for t in targets])
        stopped = self._stopped_at(wave)
        if stopped is not None:
            return stopped
        last = self._wave_index + 1 >= len(self._apply_waves)
        if self.options.wait_for_health if last else self.options.wait_between_waves:
            self._health_deadline = time.monotonic() + self.options.health_timeout
            return Stage.WAVE_HEALTH
        return self._advance_wave()

    def _advance_wave(self) -> Stage:
        self._wave_index += 1
        return self._next_wave_stage()

    async def _apply_one(self, target: resources.Target) -> resources.Applied:
        crd_kinds, _ = self._created_here()
        retries = 20 if (target.key.group, target.key.kind) in crd_kinds else 0
        async with self._limit:
            if target.key in self._recreate:
                applied = await resources.replace(self.api, target, field_manager=self.settings.field_manager,
                                                  attempts=self.settings.request_retries)
            else:
                applied = await resources.apply(self.api, target, field_manager=self.settings.field_manager,
                                                attempts=self.settings.request_retries,
                                                missing_kind_retries=retries)
        self._entries[target.key] = applied.entry
        return applied

    def _stopped_at(self, wave: int) -> Stage | None:
        _, keys = self._apply_waves[self._wave_index]
        failed = [self._entries[k] for k in keys if self._entries[k].action is SyncAction.FAILED]
        if not failed:
            return None
        first = failed[0]
        self._fail(f"stopped at wave {wave}: {first.key.short} failed {first.message}{self._not_applied()}")
        return Stage.RECORD

    async def _wave_health(self) -> Stage:
        wave, keys = self._apply_waves[self._wave_index]
        checks = [k for k in keys if self._entries[k].action in APPLY_ACTIONS and k in self._targets]
        verdicts = await self._gather([self._health_of(k) for k in checks])
        degraded = [(k, v) for k, v in zip(checks, verdicts, strict=True) if v[0] == "Degraded"]
        waiting = [(k, v) for k, v in zip(checks, verdicts, strict=True) if v[0] not in OK_HEALTH]
        if degraded:
            key, (_, message) = degraded[0]
            self._fail(f"stopped at wave {wave}: {key.short} is Degraded: {message}{self._not_applied()}")
            return Stage.RECORD
        if not waiting:
            await asyncio.sleep(self.options.wave_delay)
            return self._advance_wave()
        key, (status, message) = waiting[0]
        if time.monotonic() >= (self._health_deadline or 0):
            self._fail(f"stopped at wave {wave}: {key.short} still {status} after "
                       f"{self.options.health_timeout:.0f}s: {message}{self._not_applied()}")
            return Stage.RECORD
        self._message = f"waiting for wave {wave} to become healthy: {key.short} is {status}"
        await asyncio.sleep(self.options.poll_interval)
        return Stage.WAVE_HEALTH

    async def _health_of(self, key: ResourceKey) -> tuple[str, str]:
        status, message = await resources.health(self.api, key, self._targets[key].resource,
                                                 attempts=self.settings.request_retries)
        return status.value, message

    # ------------------------------------------------------------------------------------ prune

    async def _prune(self) -> Stage:
        if self._failed:
            return Stage.RECORD
        wave, keys = self._prune_waves[self._prune_index]
        await self._progress(wave=wave, stage="prune")
        entries = await self._gather([self._prune_one(k, wave) for k in keys])
        for entry in entries:
            self._entries[entry.key] = entry
        failed = [e for e in entries if e.action is SyncAction.FAILED]
        if failed:
            self._fail(f"prune failed: {failed[0].key.short} {failed[0].message}")
            return Stage.RECORD
        self._prune_index += 1
        return Stage.PRUNE if self._prune_index < len(self._prune_waves) else Stage.RECORD

    async def _prune_one(self, key: ResourceKey, wave: int) -> SyncResultEntry:
        resource = await self.resolver.resolve(key, refresh_missing=True)
        async with self._limit:
            return await resources.prune(
                self.api, resources.PruneTarget(key, resource, wave), app=self.plan.app,
                inventory=self._app_state.inventory_keys, propagation=self.options.prune_propagation,
                attempts=self.settings.request_retries, dry_run=self.plan.dry_run,
                confirmed=self.options.confirmed_prunes,
            )

    # ------------------------------------------------------------------------------------ record

    async def _record(self) -> Stage:
        self._finished_at = self.clock()
        self._settle_pending()
        self._phase = OperationPhase.FAILED if self._failed else OperationPhase.SUCCEEDED
        if not self._failed:
            self._message = self._success_message()
        if not self.plan.dry_run:
            await self._write_outcome()
        await self._journal_quietly("failed" if self._failed else "succeeded", self._message)
        await self._release_lease()
        return Stage.DONE

    def _success_message(self) -> str:
        prefix = "dry run of " if self.plan.dry_run else ""
        recovered = f" (previous operation: {self.recovered})" if self.recovered else ""
        return f"{prefix}{self.plan.kind} to {self.plan.revision[:12]} succeeded: {self.state().summary}{recovered}"

    def _settle_pending(self) -> None:
        for key, entry in list(self._entries.items()):
            if entry.action is SyncAction.PENDING:
                note = "not pruned: the operation failed" if key in self._prune_keys() else "not applied"
                self._entries[key] = replace(entry, action=SyncAction.SKIPPED, message=note)

    def _prune_keys(self) -> set[ResourceKey]:
        return {k for _, keys in self._prune_waves for k in keys}

    async def _write_outcome(self) -> None:
        record_history = not self._failed and not self.plan.selected
        outcome = record.Outcome(
            operation=self._op_record(phase=self._phase),
            entries=tuple(self._entries.values()),
            api_versions={k: str(t.obj.get("apiVersion", "")) for k, t in self._targets.items()},
            record_history=record_history, summary=self.state().summary,
        )
        try:
            self._app_state = await self.store.update(
                self.plan.app, lambda s: record.finish(s, outcome, history_limit=self.settings.history_limit))
        except ClusterError as exc:
            self._phase = OperationPhase.ERROR
            self._message += f"; failed to record the result in the cluster: {exc}"

    # ------------------------------------------------------------------------------------ helpers

    async def _progress(self, *, wave: int, stage: str) -> None:
        self._message = f"{stage} wave {wave}"
        self._wave, self._stage_name = wave, stage
        if self.plan.dry_run:
            return
        self._app_state = await self.store.update(
            self.plan.app, lambda s: record.at_wave(s, self.id, wave=wave, stage=stage))

    def _set(self, key: ResourceKey, action: SyncAction, message: str) -> SyncResultEntry:
        entry = SyncResultEntry(key, action, message, self._entries[key].wave if key in self._entries else 0)
        self._entries[key] = entry
        return entry

    def _fail(self, message: str) -> None:
        self._failed = True
        self._message = message

    def _where(self) -> str:
        if self._stage in (Stage.WAVE_INFRA, Stage.WAVE_APPLY, Stage.WAVE_HEALTH):
            return f"wave {self._apply_waves[self._wave_index][0]}"
        return self._stage.value

    def _not_applied(self) -> str:
        pending = [k for k, e in self._entries.items()
                   if e.action is SyncAction.PENDING and k not in self._prune_keys()]
        return f"; not applied: {_keys(pending)}" if pending else ""

    async def _gather(self, coros: Iterable[Awaitable[T]]) -> list[T]:
        return list(await asyncio.gather(*coros))

    async def _retry(self, request: Callable[[], Awaitable[T]]) -> T:
        return await with_retries(request, attempts=self.settings.request_retries)

    async def _journal_quietly(self, result: Result, message: str) -> None:
        try:
            await self._journal(result, message)
        except JournalError as exc:
            log.error("operation %s: %s", self.id, exc)
            self._message += f"; the journal could not be written: {exc.message}"

    async def _release_lease(self) -> None:
        lease, self._lease = self._lease, None
        if lease is None:
            return
        try:
            await lease.release()
        except ClusterError as exc:
            log.warning("operation %s: failed to release lease: %s (it expires by itself)", self.id, exc)

    def _abandon(self, why: str) -> None:
        """Cancelled mid-stage: journal it synchronously, stop renewing; state keeps ``operation``."""
        message = f"{why} at {self._where()}; the cluster state shows it as interrupted"
        self._message, self._phase, self._stage = message, OperationPhase.ERROR, Stage.DONE
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.abandon()
        try:
            self.journal.append(who=self.identity, action=self.plan.kind, app=self.plan.app,
                                cluster=self.plan.cluster, result="failed", details=self._details(),
                                message=message)
        except JournalError as exc:
            log.error("operation %s: %s", self.id, exc)


def _group(order: list[tuple[ResourceKey, int]]) -> list[tuple[int, list[ResourceKey]]]:
    groups: list[tuple[int, list[ResourceKey]]] = []
    for key, wave in order:
        if groups and groups[-1][0] == wave:
            groups[-1][1].append(key)
        else:
            groups.append((wave, [key]))
    return groups


def _stub(key: ResourceKey) -> dict[str, Any]:
    api_version = f"{key.group}/v1" if key.group else "v1"
    meta = {"name": key.name, **({"namespace": key.namespace} if key.namespace else {})}
    return {"apiVersion": api_version, "kind": key.kind, "metadata": meta}


def _placeholder(key: ResourceKey) -> APIResource:
    """Stands in for a kind this sync creates, until discovery serves it."""
    return APIResource(group=key.group, version="", kind=key.kind, plural="", namespaced=bool(key.namespace))
