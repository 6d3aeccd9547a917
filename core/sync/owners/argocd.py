"""The Argo CD owner: actions as writes to the ``Application`` object, as Argo CD's own API makes them.

* sync: ``operation`` set as ``argocd app sync`` sets it (Argo CD's ``SetAppOperation``): ``initiatedBy``
  and ``sync`` with ``revision``, ``prune``, ``resources`` (selective), ``syncOptions`` (checked against
  ``core.controller_options``) and ``dryRun`` (Argo CD's own dry run, when asked); refused while
  another operation is in progress (``operation`` set, or ``status.operationState.phase`` Running).
* refresh: the annotation ``argocd.argoproj.io/refresh: normal`` (``hard`` for a hard refresh).
* rollback: first ``spec.syncPolicy.automated`` removed (Argo CD refuses a rollback while auto-sync is on),
  recorded with fleetdeck's annotations (what was removed, the revision, who), then ``operation`` set to
  sync the revision of a ``status.history`` entry with that entry's source, as ``argocd app rollback`` does.
* pause: ``spec.syncPolicy.automated`` removed; the block kept in ``fleetdeck.io/paused-policy`` with
  reason, operator and expiry annotations. resume: the block restored exactly and the annotations removed.

Constraint: pure (no I/O): each function returns the patches; ``core.sync.owners.base`` writes them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from core.controller_options import check_sync_options
from core.model import ControllerPatch, ControllerRef, Owner
from core.reconcile.owners import application_set_of, application_set_reverts
from core.sync.owners.base import (
    CONTROL_ANNOTATIONS,
    PAUSE_EXPIRES_AT,
    PAUSE_REASON,
    PAUSED,
    PAUSED_AT,
    PAUSED_BY,
    PAUSED_POLICY,
    PINNED,
    Lookup,
    PauseRequest,
    Refused,
    SyncRequest,
    patch_of,
)

REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _stamp(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def automated_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The Application's ``spec.syncPolicy.automated`` block, if any."""
    policy = (obj.get("spec") or {}).get("syncPolicy") or {}
    automated = policy.get("automated")
    return automated if isinstance(automated, Mapping) else None


def in_progress(obj: Mapping[str, Any]) -> str:
    """Why a new operation cannot start now (Argo CD's own refusal), or ""."""
    if obj.get("operation"):
        return "another operation is already in progress (the Application's operation is set)"
    phase = ((obj.get("status") or {}).get("operationState") or {}).get("phase")
    if phase in ("Running", "Terminating"):
        return f"another operation is already in progress (operationState {phase})"
    return ""


def history(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``status.history``, newest first (by ``id``)."""
    entries = [h for h in (obj.get("status") or {}).get("history") or () if isinstance(h, Mapping)]
    return sorted(entries, key=lambda h: int(h.get("id") or 0), reverse=True)


class ArgoCDDriver:
    """``ControllerDriver`` for Argo CD Applications."""

    owner = Owner.ARGOCD

    def sync(self, ref: ControllerRef, obj: Mapping[str, Any], request: SyncRequest,
             lookup: Lookup) -> tuple[ControllerPatch, ...]:
        busy = in_progress(obj)
        if busy:
            raise Refused(busy)
        sync: dict[str, Any] = {"revision": request.revision} if request.revision else {}
        if request.prune:
            sync["prune"] = True
        if request.resources:
            sync["resources"] = [{"group": k.group, "kind": k.kind, "namespace": k.namespace, "name": k.name}
                                 for k in request.resources]
        if request.sync_options:
            try:
                sync["syncOptions"] = list(check_sync_options(request.sync_options))
            except ValueError as exc:
                raise Refused(str(exc)) from None
        if request.dry_run:
            sync["dryRun"] = True
        operation = {"initiatedBy": {"username": request.by}, "sync": sync}
        shown = ", ".join(f"{k}: {_short(v)}" for k, v in sync.items())
        return (patch_of(ref, {"operation": operation}, f"set operation.sync{{{shown}}}"),)

    def rollback(self, ref: ControllerRef, obj: Mapping[str, Any], revision: str, by: str,
                 lookup: Lookup) -> tuple[ControllerPatch, ...]:
        busy = in_progress(obj)
        if busy:
            raise Refused(busy)
        _check_application_set(ref, obj, lookup, "rollback")
        entry = next((h for h in history(obj) if str(h.get("revision") or "").startswith(revision)), None)
        if not revision or entry is None:
            known = ", ".join(str(h.get("revision") or "")[:8] for h in history(obj)) or "none"
            raise Refused(f"{revision[:12] or 'no revision'} is not in the Application's status.history "
                          f"(known: {known})")
        patches: list[ControllerPatch] = []
        automated = automated_of(obj)
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        kept = annotations.get(PAUSED_POLICY, "") if annotations.get(PAUSED) == "true" else \
            (_canonical(automated) if automated is not None else "")
        first: dict[str, Any] = {"metadata": {"annotations": {
            PAUSED: "true", PAUSE_REASON: f"rollback to {entry['revision']}", PAUSED_BY: by,
            PAUSED_AT: _stamp(time.time()), PINNED: str(entry["revision"]), PAUSED_POLICY: kept}}}
        removed = ""
        if automated is not None:
            first["spec"] = {"syncPolicy": {"automated": None}}
            removed = f"remove spec.syncPolicy.automated (auto-sync off for the rollback, kept in {PAUSED_POLICY}); "
        patches.append(patch_of(ref, first, f"{removed}annotate paused, {PINNED}={str(entry['revision'])[:12]}"))
        sync: dict[str, Any] = {"revision": str(entry["revision"])}
        if entry.get("source"):
            sync["source"] = entry["source"]
        operation = {"initiatedBy": {"username": by}, "sync": sync}
        patches.append(patch_of(ref, {"operation": operation},
                                f"set operation.sync{{revision: {str(entry['revision'])[:12]}, source: "
                                f"history #{entry.get('id')}}}"))
        return tuple(patches)

    def pause(self, ref: ControllerRef, obj: Mapping[str, Any], request: PauseRequest,
              lookup: Lookup) -> tuple[ControllerPatch, ...]:
        _check_application_set(ref, obj, lookup, "pause")
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        automated = automated_of(obj)
        if annotations.get(PAUSED) == "true":
            kept = annotations.get(PAUSED_POLICY, "")  # already paused: keep what the first pause removed
        else:
            kept = _canonical(automated) if automated is not None else ""
        values = {PAUSED: "true", PAUSE_REASON: request.reason, PAUSED_BY: request.by,
                  PAUSED_AT: _stamp(time.time()), PAUSED_POLICY: kept,
                  PAUSE_EXPIRES_AT: _stamp(request.expires_at) if request.expires_at else None}
        patch: dict[str, Any] = {"metadata": {"annotations": values}}
        summary = "annotate paused"
        if automated is not None:
            patch["spec"] = {"syncPolicy": {"automated": None}}
            summary = f"remove spec.syncPolicy.automated (kept in {PAUSED_POLICY}); annotate paused"
        return (patch_of(ref, patch, summary + (f" (reason: {request.reason})" if request.reason else "")),)

    def resume(self, ref: ControllerRef, obj: Mapping[str, Any], lookup: Lookup) -> tuple[ControllerPatch, ...]:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if annotations.get(PAUSED) != "true":
            raise Refused("the Application was not paused by fleetdeck (no fleetdeck.io/paused annotation)")
        kept = annotations.get(PAUSED_POLICY, "")
        patch: dict[str, Any] = {"metadata": {"annotations": dict.fromkeys(
            [k for k in CONTROL_ANNOTATIONS if k in annotations])}}
        summary = "remove fleetdeck's pause annotations"
        if kept:
            try:
                restored = json.loads(kept)
            except ValueError as exc:
                raise Refused(f"{PAUSED_POLICY} is not JSON: {exc}") from None
            patch["spec"] = {"syncPolicy": {"automated": restored}}
            summary = f"restore spec.syncPolicy.automated={kept}; " + summary
        return (patch_of(ref, patch, summary),)

    def refresh(self, ref: ControllerRef, obj: Mapping[str, Any], lookup: Lookup) -> tuple[ControllerPatch, ...]:
        return (patch_of(ref, {"metadata": {"annotations": {REFRESH_ANNOTATION: "normal"}}},
                         f"annotate {REFRESH_ANNOTATION}=normal"),)

    def rollback_revisions(self, obj: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(str(h.get("revision") or "") for h in history(obj))


def _check_application_set(ref: ControllerRef, obj: Mapping[str, Any], lookup: Lookup, action: str) -> None:
    """Refuse a pause or rollback the Application's ApplicationSet would undo (when fleetdeck sees it: the
    ApplicationSet kind is watched where its CRD is served; unseen, the row says ``generated_by``)."""
    key = application_set_of(obj)
    appset = lookup(ref.cluster, key) if key is not None else None
    if appset is not None and (why := application_set_reverts(obj, appset)):
        raise Refused(f"{action} would not hold: {why}")


def _short(value: Any) -> str:
    if isinstance(value, str):
        return value[:12] if len(value) == 40 else value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) if not isinstance(v, Mapping) else
                               "/".join(str(v.get(k) or "") for k in ("kind", "namespace", "name"))
                               for v in value) + "]"
    return _canonical(value)
