"""Flux's own objects as fleetdeck reads them: the status of Kustomizations, HelmReleases, their sources and
ResourceSets (Ready/Stalled/Reconciling, last applied and attempted revision, inventory, suspended,
``dependsOn``), and the source an applier reads.

Role: pure functions over the objects the cluster cache holds; the row, the app screen and ``status -o json``
show :class:`FluxObjectStatus`. The writes behind fleetdeck's actions on a Flux-owned app are built in
``core.sync.owners.flux``.

Constraint: no I/O; strings from the cluster are returned as they are (the UI cleans them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from core.model import Condition, ControllerRef, FluxObjectStatus, ResourceKey, Severity

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

REQUESTED_AT_KEY = "reconcile.fluxcd.io/requestedAt"
"""What ``flux reconcile`` writes: a new value makes the controller reconcile the object now."""
PINNED_FROM = "fleetdeck.io/pinned-from"
"""On a GitRepository fleetdeck pinned for a rollback: its original ``spec.ref`` as canonical JSON; on a
HelmRelease whose chart version fleetdeck pinned: ``{"version": <spec.chart.spec.version before>}``."""
PAUSED = "fleetdeck.io/paused"
PAUSE_REASON = "fleetdeck.io/pause-reason"
"""The owner model's control annotations (``core.sync.owners.base``), read here for the status."""


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


def flux_state(obj: Mapping[str, Any]) -> FluxObjectStatus:
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
    return FluxObjectStatus(
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
        paused_by_fleetdeck=annotations.get(PAUSED) == "true",
        pause_reason=str(annotations.get(PAUSE_REASON) or ""),
        pinned_commit=str(ref.get("commit") or ""),
        pinned_from=str(annotations.get(PINNED_FROM) or ""),
    )


def commit_of(revision: str) -> str:
    """The Git commit of a Flux revision (``main@sha1:<sha>`` → ``<sha>``; a bare SHA stays)."""
    return revision.rpartition(":")[2] if ":" in revision else revision


def history_revisions(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """The commits a Kustomization's ``status.history`` records (newest reconciliation first, unique), then its
    last applied revision's commit."""
    entries = [h for h in (obj.get("status") or {}).get("history") or () if isinstance(h, Mapping)]
    entries.sort(key=lambda h: str(h.get("lastReconciled") or ""), reverse=True)
    out: list[str] = []
    for entry in entries:
        revision = str((entry.get("metadata") or {}).get("revision") or "")
        if revision and commit_of(revision) not in out:
            out.append(commit_of(revision))
    applied = str((obj.get("status") or {}).get("lastAppliedRevision") or "")
    if applied and commit_of(applied) not in out:
        out.append(commit_of(applied))
    return tuple(out)


def release_history(obj: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """A HelmRelease's ``status.history`` (helm-controller's release snapshots: ``version`` = the Helm release
    number, ``chartName``, ``chartVersion``, ``status``…), newest release first."""
    entries = [h for h in (obj.get("status") or {}).get("history") or () if isinstance(h, Mapping)]

    def number(entry: Mapping[str, Any]) -> int:
        try:
            return int(entry.get("version") or 0)
        except (TypeError, ValueError):
            return 0

    return tuple(sorted(entries, key=number, reverse=True))


def chart_versions(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """The chart versions a HelmRelease's ``status.history`` records, newest release first, unique."""
    out: list[str] = []
    for entry in release_history(obj):
        version = str(entry.get("chartVersion") or "")
        if version and version not in out:
            out.append(version)
    return tuple(out)


def flux_statuses(controller: ControllerRef | None,
                  get: Callable[[ResourceKey], Mapping[str, Any] | None]) -> tuple[FluxObjectStatus, ...]:
    """The owning Flux object's status, then its source's (when the cache holds them)."""
    if controller is None:
        return ()
    obj = get(controller.key)
    if obj is None:
        return ()
    out = [flux_state(obj)]
    source_key = source_of(obj)
    source = get(source_key) if source_key is not None else None
    if source is not None:
        out.append(flux_state(source))
    return tuple(out)


def flux_conditions(states: tuple[FluxObjectStatus, ...]) -> list[Condition]:
    """Row conditions from Flux's own status: ``FluxStalled`` (error) and ``FluxNotReady`` (warning), each
    naming the object and Flux's message."""
    out: list[Condition] = []
    for state in states:
        if state.suspended:
            continue
        if state.stalled:
            out.append(Condition("FluxStalled", f"{state.key.short}: {state.reason}: {state.message}",
                                 Severity.ERROR))
        elif state.ready == "False":
            out.append(Condition("FluxNotReady", f"{state.key.short}: {state.reason}: {state.message}",
                                 Severity.WARNING))
    return out
