"""``SyncOperation``: one sync or rollback of one app on one cluster, as a step machine.

The engine builds it from a confirmed ``SyncPlan`` and iterates ``execute()``, which calls ``step()`` until
it returns False and yields ``state()`` after each step (``run_to_completion()`` returns only the result);
``terminate()`` asks it to stop at the next resource-batch boundary. Stages (faults O1–O8 in docs/reliability.md):

1. begin: refuse a blocked plan or an empty-desired prune-everything; journal ``started`` (refused if
   the journal cannot be written); take the app's operation Lease (``LockedError`` names the holder);
   write ``operation`` (Running) into the app's state, with a rollback's pin and pause in the same write.
2. preflight: server-side apply dry run of every apply; any failure ends the operation with nothing
   changed. Objects whose kind or namespace this sync creates are checked at apply time instead.
3. namespace: create the destination namespace if asked to and missing; then the PreSync hooks, wave by
   wave, each waited for (Job Complete / Pod Succeeded) and deleted by its policy (docs/hooks.md).
4. waves, in order: Namespaces and CRDs of the wave first (then wait until each CRD is Established),
   then the wave's other applies concurrently (``SyncSettings.concurrency``), then (between waves)
   wait until the wave is healthy. A failed resource stops the operation at that wave: later waves are
   not applied and nothing is pruned. A wave's Sync hooks run after its objects are applied.
5. prune, in reverse order: only what ``core.reconcile.plan.prunable`` allows on a fresh copy
   (inventory, self-referencing tracking annotation, owner label), deleted with a UID precondition.
   Then the PostSync hooks. A failure after the namespace stage runs the SyncFail hooks before the record.
6. record: one state write sets the inventory (applied ∪ previous − pruned), the last operation, a
   history entry (non-dry-run, successful, full or self-heal operations only, with what started them:
   manual, automated or self-heal) and clears ``operation``; then the
   journal gets the result and the lease is released.

A dry run sends every apply and prune through the server's dry run and writes nothing to the cluster,
not even state or a lease (and runs no hook). Constraint: every write to the app's objects is a server-side
apply or a DELETE with a UID precondition (a ``generateName`` hook is created by POST); this module never reads Git and never imports the engine.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from core.errors import ClusterError, FleetdeckError, JournalError, LockedError
from core.journal import Journal, OperatorIdentity, Result
from core.live.api import KubeAPI
from core.model import OperationPhase, OperationState, ResourceKey, SyncAction, SyncPlan
from core.settings import SyncSettings
from core.sync import record
from core.sync.kinds import KindResolver
from core.sync.lease import LeaseRecord, OperationLease
from core.sync.options import OperationOptions, Stage, new_operation_id
from core.sync.stages import StageRunner
from core.sync.state import AppState, AppStateStore, OperationRecord

__all__ = ["OperationOptions", "SyncOperation", "new_operation_id"]

log = logging.getLogger(__name__)


class SyncOperation(StageRunner):
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
        clock: wall clock for records and the journal (injected in tests); the operation's lease is on the
            API server's clock (``KubeAPI.server_time``).
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
        settings = settings or SyncSettings()
        super().__init__(plan=plan, desired=desired, live=live, api=api, settings=settings,
                         options=options or OperationOptions(),
                         resolver=resolver or KindResolver(api, attempts=settings.request_retries))
        self.store = store
        self.journal = journal
        self.identity = identity
        self.id = operation_id or new_operation_id()
        self.clock = clock
        self.recovered = ""
        """What a previous, interrupted operation of this app left behind (found at begin)."""
        self._phase = OperationPhase.PENDING
        self._started_at: float | None = None
        self._finished_at: float | None = None
        self._terminate = False
        self._lease: OperationLease | None = None

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
            entries=self.all_entries(), dry_run=self.plan.dry_run, started_at=self._started_at,
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

    async def execute(self) -> AsyncIterator[OperationState]:
        """Step until done, yielding the state after each step; the last state yielded is the result."""
        while await self.step():
            yield self.state()
        yield self.state()

    async def run_to_completion(self) -> OperationState:
        """Step until done (for callers that do not publish progress); the final state."""
        while await self.step():
            pass
        return self.state()

    async def _run_stage(self) -> Stage:
        handlers: dict[Stage, Callable[[], Awaitable[Stage]]] = {
            Stage.BEGIN: self._begin, Stage.PREFLIGHT: self._preflight, Stage.NAMESPACE: self._namespace,
            Stage.WAVE_INFRA: self._wave_infra, Stage.WAVE_APPLY: self._wave_apply,
            Stage.WAVE_HEALTH: self._wave_health, Stage.HOOKS: self._hooks, Stage.PRUNE: self._prune,
            Stage.RECORD: self._record,
        }
        if self._stage in (Stage.BEGIN, Stage.RECORD):
            return await handlers[self._stage]()
        try:
            return self.sync_fail_or(await handlers[self._stage]())
        except FleetdeckError as exc:
            self._fail(f"failed at {self._where()}: {exc}{self._not_applied()}")
            return self.sync_fail_or(Stage.RECORD)

    # ------------------------------------------------------------------------------------ begin

    def _refusal(self) -> str:
        if self.plan.blocked:
            return f"plan is blocked: {self.plan.blocked}"
        if self.plan.needs_acknowledgement:
            return f"not acknowledged: {self.plan.non_descendant}"
        if self.plan.needs_takeover_confirmation:
            return f"not confirmed: it {self.plan.takeover_summary}"
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
        if self._hook_entries:
            details["hooks"] = [f"{e.phase.value} {e.key.short}: {e.action.value}" for e in
                                sorted(self._hook_entries.values(), key=lambda e: (e.phase.rank, e.wave))]
        if self.plan.non_descendant:
            details.update(synced_revision=self.plan.synced_revision, non_descendant=self.plan.non_descendant,
                           acknowledged=self.plan.non_descendant_allowed)
        if self.plan.takeovers:
            details.update(takeovers=[str(t) for t in self.plan.takeovers],
                           force_conflicts=self.plan.takeovers_allowed)
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
            self_heal=self.options.automated and self.options.self_heal,
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
                               request=self.plan.request_key,
                               duration=self.options.lease_duration, renew_every=self.options.lease_renew,
                               settings=self.settings, on_takeover=self._journal_takeover)  # server's clock
        try:
            await lease.acquire()
        except (LockedError, ClusterError) as exc:
            self._end_refused(f"refused: {exc}")
            await self._journal_quietly("refused", self._message)
            raise
        self._lease = lease

    async def _journal_takeover(self, dead: LeaseRecord) -> None:
        pid = dead.process.pid if dead.process is not None else 0
        message = f"released lock of dead process {pid} ({dead.holder}{', ' + dead.what if dead.what else ''})"
        try:
            await self.journal.record(who=self.identity, action="lock-takeover", app=self.plan.app,
                                      cluster=self.plan.cluster, result="succeeded", message=message,
                                      details={"operation": self.id, "lease": dead.name})
        except JournalError as exc:
            log.warning("operation %s: %s; could not journal it: %s", self.id, message, exc)

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

        self._app_state = await self.store.update(self.plan.app, start, known=self._app_state)
        if interrupted:
            self.recovered = interrupted[0]
            self._message = f"previous operation: {self.recovered}"

    # ------------------------------------------------------------------------------------ record

    async def _record(self) -> Stage:
        self._finished_at = self.clock()
        self._settle_pending()
        self._settle_hooks()
        failed = [e for e in self._entries.values() if e.action is SyncAction.FAILED]
        if failed and not self._failed:  # one failed resource fails the operation, dry runs included
            self._fail(f"{len(failed)} resource(s) failed: {failed[0].key.short}: {failed[0].message}")
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

    async def _write_outcome(self) -> None:
        # A selective sync leaves the rest of the app as it was: not a sync of the revision. Self-heal
        # selects only the drifted resources of the revision already synced, so afterwards the whole
        # app runs that revision again: it is recorded.
        self_heal = self.options.automated and self.options.self_heal
        record_history = not self._failed and (not self.plan.selected or self_heal)
        outcome = record.Outcome(
            operation=self._op_record(phase=self._phase),
            entries=tuple(self._entries.values()),
            api_versions={k: str(t.obj.get("apiVersion", "")) for k, t in self._targets.items()},
            record_history=record_history, summary=self.state().summary,
        )
        try:
            self._app_state = await self.store.update(
                self.plan.app, lambda s: record.finish(s, outcome, history_limit=self.settings.history_limit),
                known=self._app_state)
        except ClusterError as exc:
            self._phase = OperationPhase.ERROR
            self._message += f"; failed to record the result in the cluster: {exc}"

    async def _progress(self, *, wave: int, stage: str) -> None:
        await super()._progress(wave=wave, stage=stage)
        if self.plan.dry_run:
            return
        self._app_state = await self.store.update(
            self.plan.app, lambda s: record.at_wave(s, self.id, wave=wave, stage=stage), known=self._app_state)

    def _stop_reason(self) -> str:
        """Terminate requested, or (automated operations only) the app was paused meanwhile (O6)."""
        if self._terminate:
            return "terminated by the operator"
        control = self._app_state.control
        if self.options.automated and control.paused and self.plan.kind != "rollback":
            return f"paused by {control.by or 'an operator'} ({control.reason or 'no reason given'})"
        return ""

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
