"""Flux's own objects, read and written as the Flux CLI does: status of Kustomizations, HelmReleases and their
sources, and the merge patches behind fleetdeck's actions on a Flux-owned app.

Role: pure functions over the objects the cluster cache holds. The engine sends the patches through the
cluster's guarded client (so read-only mode, the journal and the operation Lease apply) and shows the same
list in the preview first: the preview is the effect.

* **sync**: ``reconcile.fluxcd.io/requestedAt`` on the source first, then on the Kustomization/HelmRelease
  (``flux reconcile kustomization --with-source``). The controllers reconcile an object whose annotation
  changed at once, without waiting for ``spec.interval``.
* **pause**: ``spec.suspend: true`` with fleetdeck's reason/owner/expiry annotations and the value
  ``spec.suspend`` had before (``fleetdeck.io/suspend-before``); **resume** restores that value and drops
  the annotations (and undoes a rollback pin, below).
* **rollback**: pin the GitRepository to a commit (``spec.ref.commit``, which Flux checks out instead of the
  branch head; the branch stays, so the commit must be reachable from it) and record the original ``spec.ref``
  as JSON in ``fleetdeck.io/pinned-from`` on the source; the Kustomization is marked paused by fleetdeck
  (reason ``rollback to <sha>``), so fleetdeck's automation leaves it alone. Both objects get
  ``requestedAt`` so the old commit is applied now. ``resume`` puts the original ``spec.ref`` back
  (``spec.ref`` is replaced whole: the patch sets every original field and nulls ``commit``).

Constraint: no I/O; strings from the cluster are returned as they are (the UI cleans them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.model import ResourceKey

KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
HELM_GROUP = "helm.toolkit.fluxcd.io"
SOURCE_GROUP = "source.toolkit.fluxcd.io"
FLUXCD_GROUP = "fluxcd.controlplane.io"
KUSTOMIZATION = (KUSTOMIZE_GROUP, "Kustomization")
HELM_RELEASE = (HELM_GROUP, "HelmRelease")
GIT_REPOSITORY = (SOURCE_GROUP, "GitRepository")
OCI_REPOSITORY = (SOURCE_GROUP, "OCIRepository")
HELM_REPOSITORY = (SOURCE_GROUP, "HelmRepository")
BUCKET = (SOURCE_GROUP, "Bucket")
HELM_CHART = (SOURCE_GROUP, "HelmChart")
RESOURCE_SET = (FLUXCD_GROUP, "ResourceSet")
APPLIERS = (KUSTOMIZATION, HELM_RELEASE)
SOURCES = (GIT_REPOSITORY, OCI_REPOSITORY, HELM_REPOSITORY, BUCKET, HELM_CHART)
WATCHED = (*APPLIERS, GIT_REPOSITORY, OCI_REPOSITORY, HELM_REPOSITORY, RESOURCE_SET)
"""The Flux kinds fleetdeck watches in every cluster that serves them."""

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
PAUSE_REASON = "fleetdeck.io/pause-reason"
PAUSE_BY = "fleetdeck.io/paused-by"
PAUSE_AT = "fleetdeck.io/paused-at"
PAUSE_EXPIRES = "fleetdeck.io/pause-expires"
SUSPEND_BEFORE = "fleetdeck.io/suspend-before"
PINNED_FROM = "fleetdeck.io/pinned-from"
PINNED_BY = "fleetdeck.io/pinned-by"
PAUSE_ANNOTATIONS = (PAUSE_REASON, PAUSE_BY, PAUSE_AT, PAUSE_EXPIRES, SUSPEND_BEFORE)


@dataclass(frozen=True, slots=True)
class FluxPatch:
    """One JSON merge patch (RFC 7386) to one Flux object, exactly as it is sent."""

    key: ResourceKey
    version: str
    """The object's API version (``kustomize.toolkit.fluxcd.io/v1``), for the request path."""
    patch: Mapping[str, Any]
    summary: str

    @property
    def text(self) -> str:
        """The body as sent (canonical JSON)."""
        return json.dumps(self.patch, sort_keys=True, separators=(",", ":"))

    def __str__(self) -> str:
        return f"{self.key.short}: {self.summary}"


@dataclass(frozen=True, slots=True)
class FluxState:
    """What a Flux object's status says, as shown on the row, the app screen and ``status -o json``."""

    key: ResourceKey
    ready: str
    """``True``, ``False`` or ``Unknown`` (the Ready condition's status; Unknown when there is none)."""
    reason: str
    message: str
    stalled: bool
    reconciling: bool
    suspended: bool
    last_applied_revision: str
    last_attempted_revision: str
    """For a source: its artifact's revision (``main@sha1:…``)."""
    inventory: int
    """How many objects a Kustomization's ``status.inventory`` lists (0 for other kinds)."""
    depends_on: tuple[str, ...]
    source: ResourceKey | None
    paused_by_fleetdeck: bool
    pause_reason: str
    pinned_commit: str
    """``spec.ref.commit`` of a GitRepository (a rollback pin when ``pinned_from`` is set)."""
    pinned_from: str
    """The original ``spec.ref`` fleetdeck recorded when it pinned the source (JSON), else ""."""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (``status -o json``)."""
        return {
            "kind": self.key.kind, "namespace": self.key.namespace, "name": self.key.name, "ready": self.ready,
            "reason": self.reason, "message": self.message, "stalled": self.stalled,
            "reconciling": self.reconciling, "suspended": self.suspended,
            "last_applied_revision": self.last_applied_revision,
            "last_attempted_revision": self.last_attempted_revision, "inventory": self.inventory,
            "depends_on": list(self.depends_on), "source": None if self.source is None else str(self.source),
            "paused_by_fleetdeck": self.paused_by_fleetdeck, "pause_reason": self.pause_reason,
            "pinned_commit": self.pinned_commit, "pinned_from": self.pinned_from,
        }

    @property
    def summary(self) -> str:
        """One line: ``Ready main@sha1:abc1234``, ``Suspended``, ``Stalled: <reason>``…"""
        if self.suspended:
            head = "Suspended"
        elif self.stalled:
            head = f"Stalled: {self.reason}" if self.reason else "Stalled"
        elif self.reconciling:
            head = "Reconciling"
        elif self.ready == "True":
            head = "Ready"
        elif self.ready == "False":
            head = f"Not ready: {self.reason}" if self.reason else "Not ready"
        else:
            head = "Unknown"
        revision = short_revision(self.last_applied_revision or self.last_attempted_revision)
        return f"{head} {revision}".strip()


def short_revision(revision: str) -> str:
    """``main@sha1:0123456789ab…`` → ``main@sha1:0123456``."""
    ref, sep, digest = revision.rpartition(":")
    return f"{ref}{sep}{digest[:7]}" if sep and len(digest) > 7 else revision


def group_kind(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(group, kind) of an object."""
    api = str(obj.get("apiVersion") or "")
    return (api.split("/")[0] if "/" in api else ""), str(obj.get("kind") or "")


def key_of(obj: Mapping[str, Any]) -> ResourceKey:
    """The object's :class:`ResourceKey`."""
    meta = obj.get("metadata") or {}
    group, kind = group_kind(obj)
    return ResourceKey(group, kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((obj.get("metadata") or {}).get("annotations") or {})


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in status.get("conditions") or ():
        if isinstance(cond, Mapping) and cond.get("type") == kind:
            return cond
    return None


def source_of(obj: Mapping[str, Any]) -> ResourceKey | None:
    """The source a Kustomization (``spec.sourceRef``) or HelmRelease (``spec.chartRef``, else the HelmChart
    that helm-controller makes from ``spec.chart.spec``) reads; namespaces default to the object's own."""
    spec = obj.get("spec") or {}
    own = key_of(obj)
    ref: Mapping[str, Any] | None = None
    if own.kind == "Kustomization":
        ref = spec.get("sourceRef")
    elif own.kind == "HelmRelease":
        ref = spec.get("chartRef") or ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef")
    if not isinstance(ref, Mapping) or not ref.get("kind") or not ref.get("name"):
        return None
    group = str(ref.get("apiVersion") or SOURCE_GROUP).split("/")[0]
    return ResourceKey(group, str(ref["kind"]), str(ref.get("namespace") or own.namespace), str(ref["name"]))


def depends_on(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """``spec.dependsOn`` as ``name`` (same namespace) or ``namespace/name``."""
    own = key_of(obj).namespace
    out: list[str] = []
    for dep in (obj.get("spec") or {}).get("dependsOn") or ():
        if isinstance(dep, Mapping) and dep.get("name"):
            ns = str(dep.get("namespace") or own)
            out.append(str(dep["name"]) if ns == own else f"{ns}/{dep['name']}")
    return tuple(out)


def flux_state(obj: Mapping[str, Any]) -> FluxState:
    """Read a Flux object's status (any of :data:`WATCHED`)."""
    status = obj.get("status") or {}
    spec = obj.get("spec") or {}
    ready = _condition(status, "Ready") or {}
    stalled = _condition(status, "Stalled") or {}
    reconciling = _condition(status, "Reconciling") or {}
    artifact = status.get("artifact") or {}
    inventory = status.get("inventory") or {}
    entries = inventory.get("entries") if isinstance(inventory, Mapping) else None
    annotations = _annotations(obj)
    raw_ref = spec.get("ref")
    ref: Mapping[str, Any] = raw_ref if isinstance(raw_ref, Mapping) else {}
    return FluxState(
        key=key_of(obj),
        ready=str(ready.get("status") or "Unknown"),
        reason=str(ready.get("reason") or ""),
        message=str(ready.get("message") or ""),
        stalled=stalled.get("status") == "True",
        reconciling=reconciling.get("status") == "True",
        suspended=spec.get("suspend") is True,
        last_applied_revision=str(status.get("lastAppliedRevision") or artifact.get("revision") or ""),
        last_attempted_revision=str(status.get("lastAttemptedRevision") or artifact.get("revision") or ""),
        inventory=len(entries) if isinstance(entries, list) else 0,
        depends_on=depends_on(obj),
        source=source_of(obj),
        paused_by_fleetdeck=PAUSE_BY in annotations,
        pause_reason=str(annotations.get(PAUSE_REASON) or ""),
        pinned_commit=str(ref.get("commit") or ""),
        pinned_from=str(annotations.get(PINNED_FROM) or ""),
    )


# ----- the patches behind the actions --------------------------------------------------------------------


def _patch(obj: Mapping[str, Any], patch: Mapping[str, Any], summary: str) -> FluxPatch:
    return FluxPatch(key_of(obj), str(obj.get("apiVersion") or ""), patch, summary)


def request_reconcile(obj: Mapping[str, Any], now: str) -> FluxPatch:
    """``reconcile.fluxcd.io/requestedAt: <now>`` (what ``flux reconcile`` writes)."""
    return _patch(obj, {"metadata": {"annotations": {REQUESTED_AT: now}}}, f"annotate {REQUESTED_AT}={now}")


def sync_patches(applier: Mapping[str, Any], source: Mapping[str, Any] | None, now: str) -> list[FluxPatch]:
    """The source first, then the Kustomization/HelmRelease (``flux reconcile … --with-source``)."""
    out = [] if source is None else [request_reconcile(source, now)]
    return [*out, request_reconcile(applier, now)]


def pause_patches(applier: Mapping[str, Any], *, reason: str, by: str, at: str,
                  expires: str | None = None) -> list[FluxPatch]:
    """``spec.suspend: true`` with fleetdeck's annotations; the previous ``spec.suspend`` is kept to restore.

    Pausing an object fleetdeck already paused only refreshes the annotations (the recorded previous value
    stays the one from before the first pause)."""
    notes: dict[str, Any] = {PAUSE_REASON: reason, PAUSE_BY: by, PAUSE_AT: at, PAUSE_EXPIRES: expires,
                             SUSPEND_BEFORE: _suspend_before(applier)}
    summary = f"set spec.suspend=true ({reason})" if reason else "set spec.suspend=true"
    return [_patch(applier, {"metadata": {"annotations": notes}, "spec": {"suspend": True}}, summary)]


def _suspend_before(applier: Mapping[str, Any]) -> str:
    """``spec.suspend`` before fleetdeck's first pause: the recorded value while fleetdeck's pause is on."""
    annotations = _annotations(applier)
    if PAUSE_BY in annotations and annotations.get(SUSPEND_BEFORE) in ("true", "false"):
        return str(annotations[SUSPEND_BEFORE])
    return "true" if (applier.get("spec") or {}).get("suspend") is True else "false"


def resume_patches(applier: Mapping[str, Any], source: Mapping[str, Any] | None, now: str) -> list[FluxPatch]:
    """Undo fleetdeck's pause and rollback pin: the source's original ``spec.ref`` back (when fleetdeck
    pinned it), ``spec.suspend`` as it was before the pause, the annotations gone, and a reconcile requested
    (source first) so the branch head is applied now."""
    out: list[FluxPatch] = []
    if source is not None and PINNED_FROM in _annotations(source):
        out.append(unpin_patch(source, now))
    elif source is not None:
        out.append(request_reconcile(source, now))
    annotations = _annotations(applier)
    suspend = annotations.get(SUSPEND_BEFORE) == "true" if PAUSE_BY in annotations else False
    notes: dict[str, Any] = dict.fromkeys(PAUSE_ANNOTATIONS)
    notes[REQUESTED_AT] = now
    out.append(_patch(applier, {"metadata": {"annotations": notes}, "spec": {"suspend": suspend}},
                      f"set spec.suspend={str(suspend).lower()}, drop fleetdeck's pause, annotate "
                      f"{REQUESTED_AT}={now}"))
    return out


def unpin_patch(source: Mapping[str, Any], now: str) -> FluxPatch:
    """Restore the ``spec.ref`` recorded in ``fleetdeck.io/pinned-from`` (every field of the pinned ref that
    the original lacks is nulled), drop the record, request a reconcile."""
    original = _original_ref(source)
    current = (source.get("spec") or {}).get("ref") or {}
    ref: dict[str, Any] = {k: None for k in current if k not in original}
    ref.update(original)
    patch = {"metadata": {"annotations": {PINNED_FROM: None, PINNED_BY: None, REQUESTED_AT: now}},
             "spec": {"ref": ref}}
    shown = ", ".join(f"{k}={v}" for k, v in sorted(original.items())) or "none"
    return _patch(source, patch, f"restore spec.ref ({shown}), annotate {REQUESTED_AT}={now}")


def _original_ref(source: Mapping[str, Any]) -> dict[str, Any]:
    raw = _annotations(source).get(PINNED_FROM)
    try:
        value = json.loads(str(raw))
    except ValueError:
        return {}
    return dict(value) if isinstance(value, dict) else {}


class RollbackRefused(ValueError):
    """A rollback by pin is not possible for this object (the message says why)."""


def rollback_patches(applier: Mapping[str, Any], source: Mapping[str, Any] | None, commit: str, *, by: str,
                     at: str) -> list[FluxPatch]:
    """Pin the GitRepository to ``commit`` (original ``spec.ref`` recorded unless fleetdeck pinned it already),
    mark the applier paused by fleetdeck (reason ``rollback to <sha>``), and request a reconcile of both.

    Raises:
        RollbackRefused: no source, or a source that is not a GitRepository.
    """
    if source is None:
        raise RollbackRefused(f"{key_of(applier).short} has no source in the cluster to pin")
    if group_kind(source) != GIT_REPOSITORY:
        raise RollbackRefused(f"{key_of(source).short}: only a GitRepository can be pinned to a commit")
    annotations = _annotations(source)
    ref = dict((source.get("spec") or {}).get("ref") or {})
    notes: dict[str, Any] = {REQUESTED_AT: at, PINNED_BY: by}
    if PINNED_FROM not in annotations:
        notes[PINNED_FROM] = json.dumps(ref, sort_keys=True, separators=(",", ":"))
    pin = _patch(source, {"metadata": {"annotations": notes}, "spec": {"ref": {"commit": commit}}},
                 f"pin spec.ref.commit={commit}, annotate {REQUESTED_AT}={at}")
    reason = f"rollback to {commit[:12]}"
    marks: dict[str, Any] = {PAUSE_REASON: reason, PAUSE_BY: by, PAUSE_AT: at, PAUSE_EXPIRES: None,
                             SUSPEND_BEFORE: _suspend_before(applier), REQUESTED_AT: at}
    # The applier must reconcile to apply the pinned commit (spec.suspend false); fleetdeck's pause marks keep
    # fleetdeck's own automation off, and resume undoes both.
    applied = _patch(applier, {"metadata": {"annotations": marks}, "spec": {"suspend": False}},
                     f"mark paused by fleetdeck ({reason}), set spec.suspend=false, annotate {REQUESTED_AT}={at}")
    return [pin, applied]


def describe(patches: Sequence[FluxPatch]) -> list[str]:
    """The preview lines: one per patch, in the order they are sent."""
    return [str(p) for p in patches]
