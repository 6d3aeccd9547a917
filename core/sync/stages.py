"""The cluster-facing stages of a sync: preflight dry run, namespace, waves, health, prune.

``StageRunner`` holds what the stages share (the plan split into waves, the per-resource entries, the
resolved targets) and one coroutine per stage, each returning the next stage. ``SyncOperation``
(``core.sync.operation``) adds the lifecycle around them: journal, lease, shared state, the result.

Constraint: every write to the app's objects is a server-side apply or a DELETE with a UID
precondition (``core.sync.resources``); a failed resource stops the operation at its wave.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from core.errors import ClusterError
from core.live.api import APIResource, KubeAPI
from core.model import ResourceKey, SyncAction, SyncPhase, SyncPlan, SyncResultEntry, display_path
from core.reconcile.hooks import DeletePolicy, hook_of, hook_wave
from core.reconcile.ignore import respect_ignore
from core.reconcile.plan import RECONCILE_ANNOTATION, order_for_apply, order_for_prune
from core.reconcile.tracking import add_tracking
from core.settings import SyncSettings
from core.sync import hooks, resources
from core.sync.kinds import KindResolver, crd_kind, is_crd, is_namespace, wait_established
from core.sync.options import OperationOptions, Stage
from core.sync.retry import with_retries
from core.sync.state import NAMESPACES, AppState

T = TypeVar("T")
Waves = list[tuple[int, list[ResourceKey]]]
APPLY_ACTIONS = frozenset({SyncAction.CREATED, SyncAction.CONFIGURED, SyncAction.UNCHANGED})
OK_HEALTH = frozenset({"Healthy", "Suspended"})
_LIST_LIMIT = 10


def _keys(keys: Iterable[ResourceKey]) -> str:
    listed = [key.short for key in keys]
    extra = f" and {len(listed) - _LIST_LIMIT} more" if len(listed) > _LIST_LIMIT else ""
    return ", ".join(listed[:_LIST_LIMIT]) + extra


NOT_SERVED_HERE = "is not served by the cluster and no CRD in this sync defines it"


class StageRunner:
    """The stages from preflight to prune, over shared per-operation state.

    Args:
        plan: the confirmed plan.
        desired: desired manifests by key.
        live: live objects by key as last seen.
        api: the destination cluster.
        settings: sync settings.
        options: operation options.
        resolver: kind discovery.
    """

    def __init__(self, *, plan: SyncPlan, desired: Mapping[ResourceKey, Mapping[str, Any]],
                 live: Mapping[ResourceKey, Mapping[str, Any]], api: KubeAPI, settings: SyncSettings,
                 options: OperationOptions, resolver: KindResolver) -> None:
        self.plan = plan
        self.desired = desired
        self.live = live
        self.api = api
        self.settings = settings
        self.options = options
        self.resolver = resolver
        self._stage = Stage.BEGIN
        self._message = ""
        self._failed = False
        self._app_state = AppState(app=plan.app)
        self._limit = asyncio.Semaphore(max(1, settings.concurrency))
        self._targets: dict[ResourceKey, resources.Target] = {}
        self._deferred: set[ResourceKey] = set()
        """Keys whose kind or namespace this sync creates: checked at apply time, not by the dry run."""
        self._recreate: set[ResourceKey] = set()
        self._present_ns: set[str] = set()
        """Namespaces the preflight found (the namespace stage does not ask again)."""
        self._health_deadline: float | None = None
        self._settled: dict[ResourceKey, tuple[str, str]] = {}
        """Health known from the apply's answer (``resources.health_on_apply``): no read after the wave."""
        self._entries: dict[ResourceKey, SyncResultEntry] = {}
        self._hook_waves: dict[SyncPhase, list[tuple[int, list[hooks.HookRun]]]] = {}
        self._hook_entries: dict[tuple[SyncPhase, ResourceKey], SyncResultEntry] = {}
        """Hook results by (phase, desired key); kept apart from the app's resources."""
        self._apply_waves, self._prune_waves = self._plan_waves()
        self._plan_hooks()
        self._hook_phase = SyncPhase.PRE_SYNC
        self._hook_index = 0
        self._hook_live: dict[ResourceKey, tuple[ResourceKey, APIResource]] = {}
        """The running wave's hooks: desired key → (the key the object got, its resource)."""
        self._hook_deadline: float | None = None
        self._sync_fail_started = False
        self._writing = False
        """Set once the operation may have written (after preflight): only then do SyncFail hooks run."""
        self._wave_index = 0
        self._prune_index = 0
        self._wave: int | None = None
        self._stage_name = "preflight"

    # ------------------------------------------------------------------------------------ planning

    def _selected(self, key: ResourceKey) -> bool:
        return not self.plan.selected or key in self.plan.selected

    def _plan_waves(self) -> tuple[list[tuple[int, list[ResourceKey]]], list[tuple[int, list[ResourceKey]]]]:
        applies = [s.key for s in self.plan.steps if s.action in APPLY_ACTIONS and self._selected(s.key)
                   and not s.hook and s.key in self.desired and hook_of(self.desired[s.key]) is None]
        prunes = [s.key for s in self.plan.steps if s.action is SyncAction.PRUNED and self._selected(s.key)]
        destination = ResourceKey("", "Namespace", "", self.options.create_namespace)
        for step in self.plan.steps:
            if (step.key == destination and step.key not in self.desired) or step.hook:
                continue  # the plan names the namespace the namespace stage creates; hooks come from desired
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

    def _plan_hooks(self) -> None:
        """Hooks of the desired state by phase and wave (none in a selective sync, as in Argo CD); Sync-phase
        hook waves without resources get an (empty) apply wave of their own."""
        if self.plan.selected:
            return
        by_phase: dict[SyncPhase, dict[int, list[hooks.HookRun]]] = {}
        for key, obj in sorted(self.desired.items()):
            hook = hook_of(obj)
            if hook is None or hook.skipped:
                continue
            manifest = add_tracking(obj, app=self.plan.app, key=key)
            for phase in hook.phases:
                run = hooks.HookRun(key, manifest, phase, hook_wave(obj), hook.delete_policies)
                by_phase.setdefault(phase, {}).setdefault(run.wave, []).append(run)
                when = "runs only if the sync fails" if phase is SyncPhase.SYNC_FAIL else ""
                self._hook_entries[(phase, key)] = SyncResultEntry(key, SyncAction.PENDING, when, run.wave,
                                                                   phase, hook=True)
        for phase, waves in by_phase.items():
            self._hook_waves[phase] = [(wave, waves[wave]) for wave in sorted(waves)]
        have = {wave for wave, _ in self._apply_waves}
        extra: Waves = [(wave, []) for wave, _ in self._hook_waves.get(SyncPhase.SYNC, []) if wave not in have]
        if extra:
            self._apply_waves = sorted([*self._apply_waves, *extra], key=lambda w: w[0])

    def all_entries(self) -> tuple[SyncResultEntry, ...]:
        """Every result in run order: PreSync hooks, the Sync phase (resources, then its hooks), PostSync,
        SyncFail."""
        hooks_by_phase = sorted(self._hook_entries.values(), key=lambda e: (e.phase.rank, e.wave))
        before = [e for e in hooks_by_phase if e.phase is SyncPhase.PRE_SYNC]
        during = [e for e in hooks_by_phase if e.phase is SyncPhase.SYNC]
        after = [e for e in hooks_by_phase if e.phase.rank > SyncPhase.SYNC.rank]
        return (*before, *self._entries.values(), *during, *after)

    # ------------------------------------------------------------------------------------ preflight

    def _created_here(self) -> tuple[set[tuple[str, str]], set[str]]:
        keys = [k for _, wave in self._apply_waves for k in wave]
        hook_keys = [k for (phase, k) in self._hook_entries if phase is not SyncPhase.SYNC_FAIL]
        crd_kinds = {crd_kind(self.desired[k]) for k in [*keys, *hook_keys] if is_crd(k)}
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
        self._present_ns = namespaces - missing_ns
        for wave, keys in self._apply_waves:
            for key in keys:
                await self._prepare(key, wave, crd_kinds=crd_kinds, missing_ns=missing_ns)
        unserved_kind = next((e for e in self._entries.values()
                              if e.action is SyncAction.FAILED and NOT_SERVED_HERE in e.message), None)
        if unserved_kind is not None:  # the plan is blocked for it; this holds even if discovery lagged
            self._fail(f"{unserved_kind.key.short}: {unserved_kind.message}; nothing was changed")
            return Stage.RECORD
        unserved = await self._unserved_hooks(crd_kinds)
        if unserved:
            self._fail(f"{unserved}; nothing was changed")
            return Stage.RECORD
        errors = await self._gather([self._dry_run_one(t) for t in self._targets.values()
                                     if t.key not in self._deferred])
        failed = [e for e in errors if e is not None]
        if failed:
            self._fail(f"one or more objects failed to apply (dry run): {failed[0].key.short} "
                       f"{failed[0].message.removeprefix('dry run ')}; nothing was changed")
            return Stage.RECORD
        if self.plan.dry_run:
            self._predict()
            for (phase, key), entry in self._hook_entries.items():
                self._hook_entries[(phase, key)] = replace(entry, action=SyncAction.SKIPPED,
                                                           message="dry run: hooks are not run")
            return Stage.PRUNE if self._prune_waves else Stage.RECORD
        return Stage.NAMESPACE

    async def _unserved_hooks(self, crd_kinds: set[tuple[str, str]]) -> str:
        """The first hook whose kind the cluster does not serve and no CRD of this sync defines, as a failure."""
        for (phase, key), entry in self._hook_entries.items():
            if await self.resolver.resolve(key) is None and (key.group, key.kind) not in crd_kinds:
                why = f"kind {key.kind}.{key.group or 'core'} is not served by the cluster and no CRD in this " \
                      "sync defines it"
                self._hook_entries[(phase, key)] = replace(entry, action=SyncAction.FAILED, message=why)
                return f"{phase.value} hook {key.short}: {why}"
        return ""

    async def _prepare(self, key: ResourceKey, wave: int, *, crd_kinds: set[tuple[str, str]],
                       missing_ns: set[str]) -> None:
        obj: Mapping[str, Any] = add_tracking(self.desired[key], app=self.plan.app, key=key)
        before = self.live.get(key)
        note = ""
        if self.options.respect_ignore:
            obj, left_out = respect_ignore(obj, before, self.options.respect_ignore,
                                           manager=self.settings.field_manager)
            note = "; ".join(f"left out {display_path(p)} (owned by {owners}; ignored)" for p, owners in left_out)
        annotations = ((before or {}).get("metadata") or {}).get("annotations") or {}
        if annotations.get(RECONCILE_ANNOTATION) == "disabled":
            self._set(key, SyncAction.SKIPPED, f"{RECONCILE_ANNOTATION}: disabled on the live object")
            return
        resource = await self.resolver.resolve(key)
        if resource is None and (key.group, key.kind) not in crd_kinds:
            self._set(key, SyncAction.FAILED, f"kind {key.kind}.{key.group or 'core'} {NOT_SERVED_HERE}")
            return
        if resource is None or key.namespace in missing_ns:
            self._deferred.add(key)
        placeholder = resource or _placeholder(key)
        self._targets[key] = resources.Target(key, placeholder, obj, before, wave, note)

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
        self._writing = True
        name = self.options.create_namespace
        in_plan = any(is_namespace(k) and k.name == name for k in self._targets)
        if name and not in_plan and name not in self._present_ns \
                and await self._retry(lambda: self.api.get(NAMESPACES, name)) is None:
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
        return self._start_hooks(SyncPhase.PRE_SYNC) or self._next_wave_stage()

    def _next_wave_stage(self) -> Stage:
        if self._wave_index < len(self._apply_waves):
            return Stage.WAVE_INFRA
        return Stage.PRUNE if self._prune_waves else self._after_sync()

    def _after_sync(self) -> Stage:
        """After the Sync phase's waves and prunes: PostSync hooks, then the record."""
        return self._start_hooks(SyncPhase.POST_SYNC) or Stage.RECORD

    def _wave_targets(self, *, infra: bool) -> list[resources.Target]:
        _, keys = self._apply_waves[self._wave_index]
        return [self._targets[k] for k in keys if k in self._targets and self._entries[k].action is SyncAction.PENDING
                and (is_namespace(k) or is_crd(k)) == infra]

    async def _wave_infra(self) -> Stage:
        wave, _ = self._apply_waves[self._wave_index]
        await self._progress(wave=wave, stage="apply")
        why = self._stop_reason()
        if why:
            self._fail(f"{why}: stopped before wave {wave}{self._not_applied()}")
            return Stage.RECORD
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
        sync_hook_waves = [w for w, _ in self._hook_waves.get(SyncPhase.SYNC, [])]
        if wave in sync_hook_waves:  # the wave's Sync hooks run once its resources are applied
            return self._start_hooks(SyncPhase.SYNC, index=sync_hook_waves.index(wave)) or self._after_wave_apply()
        return self._after_wave_apply()

    def _after_wave_apply(self) -> Stage:
        last = self._wave_index + 1 >= len(self._apply_waves)
        wait_last = self.options.wait_for_health or SyncPhase.POST_SYNC in self._hook_waves
        if wait_last if last else self.options.wait_between_waves:
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
        if applied.result is not None and self.options.on_applied is not None:
            self.options.on_applied(target.key, target.obj, applied.result)
        settled = resources.health_on_apply(applied.result, self.options.health_checks) \
            if applied.result is not None else None
        if settled is not None:
            self._settled[target.key] = (settled[0].value, settled[1])
        else:
            self._settled.pop(target.key, None)
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
        settled = self._settled.get(key)
        if settled is not None:
            return settled
        status, message = await resources.health(self.api, key, self._targets[key].resource,
                                                 attempts=self.settings.request_retries,
                                                 scripts=self.options.health_checks)
        return status.value, message

    # ------------------------------------------------------------------------------------ hooks

    def _start_hooks(self, phase: SyncPhase, *, index: int = 0) -> Stage | None:
        """Stage.HOOKS at ``phase``'s wave ``index``, or None when the phase has no hooks."""
        if not self._hook_waves.get(phase):
            return None
        self._hook_phase, self._hook_index, self._hook_live = phase, index, {}
        return Stage.HOOKS

    def sync_fail_or(self, stage: Stage) -> Stage:
        """``stage``, or the SyncFail hooks first when the sync failed after it began writing."""
        if stage is not Stage.RECORD or not self._failed or self._sync_fail_started or self.plan.dry_run:
            return stage
        if not self._writing:
            return stage
        self._sync_fail_started = True
        return self._start_hooks(SyncPhase.SYNC_FAIL) or stage

    def _hook_entry(self, run: hooks.HookRun, action: SyncAction, message: str,
                    key: ResourceKey | None = None) -> None:
        self._hook_entries[(run.phase, run.key)] = SyncResultEntry(key or run.key, action, message, run.wave,
                                                                   run.phase, hook=True)

    async def _start_hook(self, run: hooks.HookRun) -> bool:
        attempts = self.settings.request_retries
        resource = await self.resolver.resolve(run.key, refresh_missing=True)
        if resource is None:
            self._hook_entry(run, SyncAction.FAILED, f"kind {run.key.kind} is not served by the cluster")
            return False
        try:
            if DeletePolicy.BEFORE_HOOK_CREATION in run.policies and not run.generated:
                await hooks.delete_previous(self.api, run, resource, attempts=attempts)
            async with self._limit:
                live_key = await hooks.create(self.api, run, resource, field_manager=self.settings.field_manager,
                                              attempts=attempts)
        except ClusterError as exc:
            self._hook_entry(run, SyncAction.FAILED, f"{run.phase.value} hook: {resources.describe_error(exc)}")
            return False
        self._hook_live[run.key] = (live_key, resource)
        self._hook_entry(run, SyncAction.PENDING, f"{run.phase.value} hook running", live_key)
        return True

    async def _finish_hook(self, run: hooks.HookRun, succeeded: bool, message: str) -> None:
        live_key, resource = self._hook_live[run.key]
        policy = DeletePolicy.HOOK_SUCCEEDED if succeeded else DeletePolicy.HOOK_FAILED
        note = f"{run.phase.value} hook {'succeeded' if succeeded else 'failed'}" + (f": {message}" if message else "")
        if policy in run.policies:
            error = await hooks.delete_by_policy(self.api, live_key, resource, attempts=self.settings.request_retries)
            note += f"; delete ({policy.value}) failed: {error}" if error else f"; deleted ({policy.value})"
        self._hook_entry(run, SyncAction.CREATED if succeeded else SyncAction.FAILED, note, live_key)

    async def _hooks(self) -> Stage:
        """One wave of the current phase's hooks: create them, then (one poll per step) wait until each
        succeeded or failed, applying its delete policy; a failed hook fails the sync."""
        phase = self._hook_phase
        wave, runs = self._hook_waves[phase][self._hook_index]
        if not self._hook_live:
            why = self._stop_reason() if phase is not SyncPhase.SYNC_FAIL else ""
            if why:
                self._fail(f"{why}: stopped before {phase.value} hooks wave {wave}{self._not_applied()}")
                return Stage.RECORD
            message = self._message
            await self._progress(wave=wave, stage=f"{phase.value} hooks")
            if phase is SyncPhase.SYNC_FAIL:
                self._message = message  # keep saying why the sync failed
            started = await self._gather([self._start_hook(run) for run in runs])
            self._hook_deadline = time.monotonic() + self.options.health_timeout
            if not all(started):
                return self._hooks_failed(phase, wave, runs)
        running = [run for run in runs if self._hook_entries[(run.phase, run.key)].action is SyncAction.PENDING]
        verdicts = await self._gather([hooks.outcome(self.api, *self._hook_live[run.key],
                                                     attempts=self.settings.request_retries) for run in running])
        still: list[tuple[hooks.HookRun, str]] = []
        for run, (done, message) in zip(running, verdicts, strict=True):
            if done is None:
                still.append((run, message))
            else:
                await self._finish_hook(run, done, message)
        if any(self._hook_entries[(r.phase, r.key)].action is SyncAction.FAILED for r in runs):
            return self._hooks_failed(phase, wave, runs)
        if still:
            run, status = still[0]
            if time.monotonic() >= (self._hook_deadline or 0):
                for late, late_status in still:
                    self._hook_entry(late, SyncAction.FAILED, f"{phase.value} hook still {late_status} after "
                                     f"{self.options.health_timeout:.0f}s", self._hook_live[late.key][0])
                return self._hooks_failed(phase, wave, runs)
            if phase is not SyncPhase.SYNC_FAIL:
                self._message = f"waiting for {phase.value} hook {self._hook_live[run.key][0].short}: {status}"
            await asyncio.sleep(self.options.poll_interval)
            return Stage.HOOKS
        crds = [run.key for run in runs if is_crd(run.key)]
        self._hook_live = {}
        if crds:  # a CRD created as a hook: its kind must be served before the next wave uses it
            await self._gather([self._wait_crd(key) for key in crds])
            await self.resolver.refresh()
        if phase is not SyncPhase.SYNC and self._hook_index + 1 < len(self._hook_waves[phase]):
            self._hook_index += 1
            return Stage.HOOKS
        if phase is SyncPhase.PRE_SYNC:
            return self._next_wave_stage()
        if phase is SyncPhase.SYNC:
            return self._after_wave_apply()
        return Stage.RECORD

    def _hooks_failed(self, phase: SyncPhase, wave: int, runs: list[hooks.HookRun]) -> Stage:
        self._hook_live = {}
        first = next(self._hook_entries[(r.phase, r.key)] for r in runs
                     if self._hook_entries[(r.phase, r.key)].action is SyncAction.FAILED)
        if phase is SyncPhase.SYNC_FAIL:
            self._message += f"; SyncFail hook {first.key.short} failed: {first.message}"
            return Stage.RECORD
        self._fail(f"stopped at {phase.value} hooks wave {wave}: {first.key.short} failed: {first.message}"
                   f"{self._not_applied()}")
        return Stage.RECORD

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
        return Stage.PRUNE if self._prune_index < len(self._prune_waves) else self._after_sync()

    async def _prune_one(self, key: ResourceKey, wave: int) -> SyncResultEntry:
        resource = await self.resolver.resolve(key, refresh_missing=True)
        async with self._limit:
            return await resources.prune(
                self.api, resources.PruneTarget(key, resource, wave), app=self.plan.app,
                inventory=self._app_state.inventory_keys, propagation=self.options.prune_propagation,
                attempts=self.settings.request_retries, dry_run=self.plan.dry_run,
                confirmed=self.options.confirmed_prunes,
            )

    def _settle_pending(self) -> None:
        for key, entry in list(self._entries.items()):
            if entry.action is SyncAction.PENDING:
                note = "not pruned: the operation failed" if key in self._prune_keys() else "not applied"
                self._entries[key] = replace(entry, action=SyncAction.SKIPPED, message=note)

    def _settle_hooks(self) -> None:
        for index, entry in list(self._hook_entries.items()):
            if entry.action is SyncAction.PENDING:
                note = "not run: the sync did not fail" if entry.phase is SyncPhase.SYNC_FAIL else "not run"
                self._hook_entries[index] = replace(entry, action=SyncAction.SKIPPED, message=note)

    def _prune_keys(self) -> set[ResourceKey]:
        return {k for _, keys in self._prune_waves for k in keys}

    # ------------------------------------------------------------------------------------ helpers

    async def _progress(self, *, wave: int, stage: str) -> None:
        """Note the wave being worked on (``SyncOperation`` also persists it)."""
        self._message = f"{stage} wave {wave}"
        self._wave, self._stage_name = wave, stage

    def _stop_reason(self) -> str:
        """Why the operation must stop at this wave boundary (empty: carry on)."""
        return ""

    def _set(self, key: ResourceKey, action: SyncAction, message: str) -> SyncResultEntry:
        entry = SyncResultEntry(key, action, message, self._entries[key].wave if key in self._entries else 0)
        self._entries[key] = entry
        return entry

    def _fail(self, message: str) -> None:
        self._failed = True
        self._message = message

    def _where(self) -> str:
        if self._stage is Stage.HOOKS:
            return f"{self._hook_phase.value} hooks wave {self._hook_waves[self._hook_phase][self._hook_index][0]}"
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
