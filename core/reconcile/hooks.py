"""Argo CD resource hooks and sync phases (and Helm hooks the way Argo CD maps them).

Role: read an object's hook annotations (``argocd.argoproj.io/hook``, ``argocd.argoproj.io/hook-delete-policy``;
``helm.sh/hook``, ``helm.sh/hook-weight``, ``helm.sh/hook-delete-policy`` when no Argo CD hook annotation is
set) and turn a desired state's hooks into plan steps, phase by phase. Constraint: pure.

Argo CD's rules kept here (docs "Resource Hooks", "Sync Phases and Waves", "Helm"):

- ``argocd.argoproj.io/hook`` is a comma list of ``PreSync``, ``Sync``, ``PostSync``, ``SyncFail``, ``Skip``
  (``PreDelete``/``PostDelete`` run only when an app is deleted: never by a sync). ``Skip`` anywhere in the
  list: the object is never applied.
- ``argocd.argoproj.io/hook-delete-policy`` is a comma list of ``HookSucceeded``, ``HookFailed``,
  ``BeforeHookCreation``; none given means ``BeforeHookCreation``.
- Helm: ``pre-install``/``pre-upgrade`` → PreSync, ``post-install``/``post-upgrade`` → PostSync,
  ``crd-install`` → an ordinary resource; other Helm hooks (``test``, ``pre-delete``, ``pre-rollback``…) are
  not run by a sync. ``helm.sh/hook-weight`` is the wave when no sync-wave annotation is set;
  ``before-hook-creation``/``hook-succeeded``/``hook-failed`` map to the three policies.
- Hooks are not resources of the app: they never count as drift, are never pruned, never enter the inventory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.model import PlanStep, ResourceKey, SyncAction, SyncPhase
from core.reconcile.jsonpath import as_dict, get_in
from core.reconcile.plan import WAVE_ANNOTATIONS, kind_rank

__all__ = [
    "HELM_HOOK",
    "HOOK_ANNOTATION",
    "HOOK_DELETE_POLICY",
    "DeletePolicy",
    "Hook",
    "hook_of",
    "hook_steps",
    "hook_wave",
    "is_hook",
]

HOOK_ANNOTATION = "argocd.argoproj.io/hook"
HOOK_DELETE_POLICY = "argocd.argoproj.io/hook-delete-policy"
HELM_HOOK = "helm.sh/hook"
HELM_HOOK_WEIGHT = "helm.sh/hook-weight"
HELM_DELETE_POLICY = "helm.sh/hook-delete-policy"


class DeletePolicy(StrEnum):
    """When a hook object is deleted."""

    BEFORE_HOOK_CREATION = "BeforeHookCreation"
    """The previous object of the hook is deleted (and gone) before the hook is created again."""
    HOOK_SUCCEEDED = "HookSucceeded"
    """Deleted once the hook succeeded."""
    HOOK_FAILED = "HookFailed"
    """Deleted once the hook failed."""


_ARGO_PHASES = {p.value: p for p in SyncPhase}
_NOT_BY_SYNC = ("PreDelete", "PostDelete")
_HELM_PHASES = {"pre-install": SyncPhase.PRE_SYNC, "pre-upgrade": SyncPhase.PRE_SYNC,
                "post-install": SyncPhase.POST_SYNC, "post-upgrade": SyncPhase.POST_SYNC}
_HELM_POLICIES = {"before-hook-creation": DeletePolicy.BEFORE_HOOK_CREATION,
                  "hook-succeeded": DeletePolicy.HOOK_SUCCEEDED, "hook-failed": DeletePolicy.HOOK_FAILED}
_ARGO_POLICIES = {p.value: p for p in DeletePolicy}


@dataclass(frozen=True, slots=True)
class Hook:
    """What an object's hook annotations say."""

    phases: tuple[SyncPhase, ...]
    """The phases it runs in, in run order; empty: never applied by a sync (``Skip``, unsupported Helm hook)."""
    delete_policies: frozenset[DeletePolicy]
    source: str
    """``argocd`` or ``helm``: which annotations made it a hook."""
    why_skipped: str = ""
    """Why it is never applied (when ``phases`` is empty)."""
    warnings: tuple[str, ...] = ()
    """Values that were not understood (ignored)."""

    @property
    def skipped(self) -> bool:
        """Whether a sync never applies it."""
        return not self.phases

    @property
    def policy_text(self) -> str:
        """``HookSucceeded, BeforeHookCreation`` (stable order)."""
        return ", ".join(p.value for p in DeletePolicy if p in self.delete_policies)


def _split(value: Any) -> list[str]:
    return [part.strip() for part in str(value or "").split(",") if part.strip()]


def _annotations(obj: Mapping[str, Any]) -> dict[str, Any]:
    return as_dict(get_in(obj, "metadata", "annotations"))


def hook_of(obj: Mapping[str, Any]) -> Hook | None:
    """The object's hook, or None for an ordinary resource (also for Helm's ``crd-install``)."""
    annotations = _annotations(obj)
    if HOOK_ANNOTATION in annotations:
        return _argo_hook(annotations)
    if HELM_HOOK in annotations:
        return _helm_hook(annotations)
    return None


def is_hook(obj: Mapping[str, Any]) -> bool:
    """Whether the object is a hook (including ``Skip``): not a resource of the app."""
    return hook_of(obj) is not None


def _policies(values: list[str], table: Mapping[str, DeletePolicy], name: str,
              warnings: list[str]) -> frozenset[DeletePolicy]:
    policies = set()
    for value in values:
        if value in table:
            policies.add(table[value])
        else:
            warnings.append(f"ignoring unknown {name} {value!r}")
    return frozenset(policies) or frozenset({DeletePolicy.BEFORE_HOOK_CREATION})


def _argo_hook(annotations: Mapping[str, Any]) -> Hook:
    warnings: list[str] = []
    values = _split(annotations.get(HOOK_ANNOTATION))
    policies = _policies(_split(annotations.get(HOOK_DELETE_POLICY)), _ARGO_POLICIES, HOOK_DELETE_POLICY, warnings)
    if "Skip" in values:
        return Hook((), policies, "argocd", f"{HOOK_ANNOTATION}: Skip", tuple(warnings))
    phases: set[SyncPhase] = set()
    for value in values:
        if value in _ARGO_PHASES:
            phases.add(_ARGO_PHASES[value])
        elif value in _NOT_BY_SYNC:
            warnings.append(f"{HOOK_ANNOTATION} {value} runs only when an app is deleted; fleetdeck never runs it")
        else:
            warnings.append(f"ignoring unknown {HOOK_ANNOTATION} {value!r}")
    ordered = tuple(sorted(phases, key=lambda p: p.rank))
    why = "" if ordered else f"{HOOK_ANNOTATION} names no phase a sync runs"
    return Hook(ordered, policies, "argocd", why, tuple(warnings))


def _helm_hook(annotations: Mapping[str, Any]) -> Hook | None:
    values = _split(annotations.get(HELM_HOOK))
    if values and all(v == "crd-install" for v in values):
        return None  # Argo CD applies crd-install objects as ordinary resources
    warnings: list[str] = []
    policies = _policies(_split(annotations.get(HELM_DELETE_POLICY)), _HELM_POLICIES, HELM_DELETE_POLICY, warnings)
    phases = {_HELM_PHASES[v] for v in values if v in _HELM_PHASES}
    ordered = tuple(sorted(phases, key=lambda p: p.rank))
    unmapped = [v for v in values if v not in _HELM_PHASES and v != "crd-install"]
    why = "" if ordered else f"{HELM_HOOK} {', '.join(unmapped) or '(empty)'}: not run by a sync"
    return Hook(ordered, policies, "helm", why, tuple(warnings))


def hook_wave(obj: Mapping[str, Any]) -> int:
    """The hook's wave inside its phase: the sync-wave annotation, else ``helm.sh/hook-weight``, else 0."""
    annotations = _annotations(obj)
    for name in (*WAVE_ANNOTATIONS, HELM_HOOK_WEIGHT):
        if name in annotations:
            try:
                return int(str(annotations[name]).strip())
            except ValueError:
                return 0
    return 0


def display_name(key: ResourceKey, obj: Mapping[str, Any]) -> ResourceKey:
    """The key to show for a hook: a ``generateName`` hook shows its prefix followed by ``*``."""
    if key.name:
        return key
    prefix = str(get_in(obj, "metadata", "generateName", default="") or "")
    return ResourceKey(key.group, key.kind, key.namespace, f"{prefix}*")


def hook_steps(objects: Mapping[ResourceKey, Mapping[str, Any]]) -> tuple[PlanStep, ...]:
    """One plan step per (hook, phase) of ``objects``; a skipped hook is one ``skipped`` step saying why.

    Steps come in run order: phase, wave, kind order, name. SyncFail steps say they run only on failure.
    """
    steps: list[PlanStep] = []
    for key, obj in objects.items():
        hook = hook_of(obj)
        if hook is None:
            continue
        shown = display_name(key, obj)
        wave = hook_wave(obj)
        if hook.skipped:
            steps.append(PlanStep(shown, SyncAction.SKIPPED, wave, f"hook not applied: {hook.why_skipped}",
                                  SyncPhase.SYNC, hook=True))
            continue
        for phase in hook.phases:
            when = "only if the sync fails; " if phase is SyncPhase.SYNC_FAIL else ""
            reason = f"{phase.value} hook ({hook.source}); {when}delete policy {hook.policy_text}"
            steps.append(PlanStep(shown, SyncAction.CREATED, wave, reason, phase, hook=True))
    return tuple(sorted(steps, key=step_order))


def step_order(step: PlanStep) -> tuple[int, int, int, str, str]:
    """Run order of plan steps: phase, wave, kind order, namespace, name."""
    return step.phase.rank, step.wave, kind_rank(step.key.kind), step.key.namespace, step.key.name
