"""Who owns an app on a cluster: fleetdeck, an Argo CD ``Application`` or a Flux ``Kustomization``/``HelmRelease``.

Role: detection from the live controller objects (pure: the engine hands in what its caches hold) and the
resolution of the fleet file's override against it. See docs/owners.md.

An object of one of ``OWNER_KINDS`` claims an app when, in this order:

1. it tracks some of the app's objects: an Application's ``status.resources`` or a Kustomization's
   ``status.inventory.entries`` (``<namespace>_<name>_<group>_<kind>``) names one of them (most shared
   objects wins);
2. its name is the app's name (a HelmRelease keeps no inventory in its status: it is matched by name, or
   by live objects labelled ``helm.toolkit.fluxcd.io/name``).

An object without ``status`` claims nothing: no controller has ever reconciled it (e.g. fleetdeck itself
applied a Flux Kustomization to a cluster where Flux does not run).

Constraint: pure functions over mappings; no I/O.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.model import (
    AppControl,
    ClusterName,
    Condition,
    ControllerRef,
    ControllerResource,
    ControllerStatus,
    HistoryEntry,
    Owner,
    ResourceKey,
    Severity,
    SyncTrigger,
)

ARGO_GROUP = "argoproj.io"
APPLICATION = (ARGO_GROUP, "Application")
APPLICATION_SET = (ARGO_GROUP, "ApplicationSet")
KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io", "Kustomization")
HELM_RELEASE = ("helm.toolkit.fluxcd.io", "HelmRelease")
OWNER_KINDS = (APPLICATION, APPLICATION_SET, KUSTOMIZATION, HELM_RELEASE)
"""Watched in every cluster that serves them (a kind not served is simply not watched)."""
CLAIMING_KINDS = {APPLICATION: Owner.ARGOCD, KUSTOMIZATION: Owner.FLUX, HELM_RELEASE: Owner.FLUX}
"""Kinds whose objects can own an app, and the owner they stand for."""

FLUX_LABELS = {
    "kustomize.toolkit.fluxcd.io/name": ("kustomize.toolkit.fluxcd.io/namespace", KUSTOMIZATION),
    "helm.toolkit.fluxcd.io/name": ("helm.toolkit.fluxcd.io/namespace", HELM_RELEASE),
}
"""Labels Flux's controllers put on the objects they apply (name label → namespace label, owner kind)."""

IN_CLUSTER_SERVER = "https://kubernetes.default.svc"

PAUSED = "fleetdeck.io/paused"
"""``"true"`` on a controller object fleetdeck paused. The keys mirror the control state fleetdeck keeps for
its own apps (``core.sync.state``: paused, reason, by, at, expires_at, pinned), under the ``fleetdeck.io/``
prefix its Lease annotations use."""
PAUSE_REASON = "fleetdeck.io/pause-reason"
PAUSED_BY = "fleetdeck.io/paused-by"
PAUSED_AT = "fleetdeck.io/paused-at"
PAUSE_EXPIRES_AT = "fleetdeck.io/pause-expires-at"
PINNED = "fleetdeck.io/pinned"
"""Set by a rollback: the revision it went back to (recorded on the object, cleared by resume)."""
PAUSED_POLICY = "fleetdeck.io/paused-policy"
"""What the pause replaced, as canonical JSON (Argo CD: the ``spec.syncPolicy.automated`` block; ``""``:
there was none), so resume restores exactly it."""
CONTROL_ANNOTATIONS = (PAUSED, PAUSE_REASON, PAUSED_BY, PAUSED_AT, PAUSE_EXPIRES_AT, PINNED, PAUSED_POLICY)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A controller object that may own apps on a cluster: where it lives and the object as last seen."""

    cluster: str
    obj: Mapping[str, Any]

    @property
    def key(self) -> ResourceKey:
        return ResourceKey.of(self.obj)


@dataclass(frozen=True, slots=True)
class Detected:
    """What the cluster says: the owner, its object (None for fleetdeck) and why."""

    owner: Owner
    ref: ControllerRef | None = None
    reason: str = ""


FLEETDECK = Detected(Owner.FLEETDECK, None, "no Argo CD Application or Flux object manages the app")


def tracked_keys(obj: Mapping[str, Any]) -> frozenset[ResourceKey]:
    """The objects a controller object says it manages (Application ``status.resources``, Kustomization
    ``status.inventory``)."""
    status = obj.get("status") or {}
    keys: set[ResourceKey] = set()
    for res in status.get("resources") or ():
        if isinstance(res, Mapping):
            keys.add(ResourceKey(str(res.get("group") or ""), str(res.get("kind") or ""),
                                 str(res.get("namespace") or ""), str(res.get("name") or "")))
    inventory = status.get("inventory") or {}
    for entry in inventory.get("entries") or () if isinstance(inventory, Mapping) else ():
        parts = str((entry or {}).get("id") or "").split("_") if isinstance(entry, Mapping) else []
        if len(parts) >= 4:
            namespace, kind, group = parts[0], parts[-1], parts[-2]
            name = "_".join(parts[1:-2])
            keys.add(ResourceKey(group, kind, namespace, name))
    return frozenset(keys)


def detect(app: str, keys: Collection[ResourceKey], candidates: Iterable[Candidate], *,
           live: Callable[[ResourceKey], Mapping[str, Any] | None] = lambda key: None) -> Detected:
    """The owner of ``app`` from the controller objects that deploy to its cluster.

    Args:
        app: the app's name.
        keys: the app's objects on the cluster (desired keys).
        candidates: controller objects deploying to this cluster (of ``CLAIMING_KINDS``; an Application of
            a hub is a candidate of the clusters its destination maps to).
        live: the live object at a key (for the Flux labels on applied objects).
    """
    wanted = set(keys)
    candidates = list(candidates)
    best: tuple[int, int, str, Candidate] | None = None
    for cand in candidates:
        gk = (cand.key.group, cand.key.kind)
        owner = CLAIMING_KINDS.get(gk)
        if owner is None or not reported_on(cand.obj):
            continue  # no controller has ever reported on it (no status): it manages nothing yet
        shared = len(tracked_keys(cand.obj) & wanted)
        named = cand.key.name == app
        if not shared and not named:
            continue
        rank = (shared, 1 if named else 0, str(cand.key))
        if best is None or rank[:2] > best[:2] or (rank[:2] == best[:2] and rank[2] < best[2]):
            best = (*rank, cand)
    if best is not None:
        count, _, _, cand = best
        found = CLAIMING_KINDS[(cand.key.group, cand.key.kind)]
        ref = ControllerRef(found, ClusterName(cand.cluster), cand.key)
        why = f"{ref} tracks {count} of the app's objects" if count else f"{ref} has the app's name"
        return Detected(found, ref, why)
    reported = {(c.key.group, c.key.kind, c.key.namespace, c.key.name) for c in candidates if c.obj.get("status")}
    if not reported:
        return FLEETDECK  # no label can count (``_by_labels``): the app's live objects need not be read
    return _by_labels(wanted, live, reported)


def reported_on(obj: Mapping[str, Any]) -> bool:
    """Whether a controller has ever reported on ``obj``: a ``status`` with something in it beyond the
    ``observedGeneration: -1`` that Flux's CRDs default (an object fleetdeck itself applied where no controller
    runs has that status and nothing else)."""
    status = obj.get("status")
    if not isinstance(status, Mapping) or not status:
        return False
    generation = status.get("observedGeneration")
    return any(key != "observedGeneration" for key in status) or (isinstance(generation, int) and generation >= 0)


def _by_labels(keys: Iterable[ResourceKey], live: Callable[[ResourceKey], Mapping[str, Any] | None],
               reported: Collection[tuple[str, str, str, str]]) -> Detected:
    """Flux's labels on the app's live objects name the Kustomization/HelmRelease that applied them. They
    count only when that object is live with a ``status`` (``reported``): fleetdeck's own build of a Flux
    Kustomization puts the same labels on what it applies, as kustomize-controller does."""
    for key in sorted(keys):
        obj = live(key)
        labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
        for name_label, (ns_label, gk) in FLUX_LABELS.items():
            name = labels.get(name_label)
            if name:
                ref_key = ResourceKey(gk[0], gk[1], str(labels.get(ns_label) or ""), str(name))
                if not any(r[:2] == gk and r[3] == ref_key.name and (not ref_key.namespace or r[2] == ref_key.namespace)
                           for r in reported):
                    continue  # no controller reported on the object the label names: fleetdeck may have applied it
                return Detected(Owner.FLUX, None, f"{key.short} is labelled as applied by {gk[1]} {name}"
                                if not ref_key.namespace else
                                f"{key.short} is labelled as applied by {gk[1]} {ref_key.namespace}/{name}")
    return FLEETDECK


def resolve(detected: Detected, override: Owner | None, where: str) -> tuple[Owner, ControllerRef | None, str]:
    """The owner in force, its object and a warning when the fleet file's override contradicts the cluster.

    An override wins (the operator said so) but is never silent when it disagrees with what was found:
    ``argocd`` over a cluster where no Application manages the app, ``fleetdeck`` over one where an
    Application does (two appliers for the same objects)…"""
    if override is None or override is detected.owner:
        return detected.owner, detected.ref, ""
    found = detected.reason if detected.owner is not Owner.FLEETDECK else "nothing in the cluster manages it"
    warning = f"{where} says {override.value}, but {found}"
    if override is Owner.FLEETDECK:
        warning += ": fleetdeck and the controller would both apply the app's objects"
        return override, None, warning
    if detected.ref is not None and detected.ref.owner is override:
        return override, detected.ref, warning
    warning += f"; {override.value} actions need its object in the cluster"
    return override, None, warning


def destination_of(app_obj: Mapping[str, Any]) -> tuple[str, str]:
    """An Application's ``spec.destination`` as (server, name); ("", "") when missing."""
    dest = (app_obj.get("spec") or {}).get("destination") or {}
    return str(dest.get("server") or ""), str(dest.get("name") or "")


def deploys_in_cluster(app_obj: Mapping[str, Any]) -> bool:
    """Whether an Application deploys to the cluster it lives in (``in-cluster`` / kubernetes.default.svc)."""
    server, name = destination_of(app_obj)
    return server.rstrip("/") == IN_CLUSTER_SERVER or name == "in-cluster" or (not server and not name)


# ---------------------------------------------------------------------------------------------- what it says


def parse_time(text: object) -> float | None:
    """An RFC 3339 UTC timestamp (``2026-12-07T10:00:00Z``, as Kubernetes writes them) as Unix time."""
    try:
        return float(calendar.timegm(time.strptime(str(text)[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


def control_of(obj: Mapping[str, Any], *, now: float) -> AppControl:
    """The pause and pin fleetdeck recorded on a controller object (its annotations); an expired pause
    reads as not paused, as for fleetdeck's own apps."""
    notes = (obj.get("metadata") or {}).get("annotations") or {}
    if notes.get(PAUSED) != "true":
        return AppControl()
    expires = parse_time(notes.get(PAUSE_EXPIRES_AT)) if notes.get(PAUSE_EXPIRES_AT) else None
    pinned = str(notes.get(PINNED) or "") or None
    paused = expires is None or expires > now
    return AppControl(paused=paused, reason=str(notes.get(PAUSE_REASON) or ""), by=str(notes.get(PAUSED_BY) or ""),
                      at=parse_time(notes.get(PAUSED_AT)), expires_at=expires, pinned=pinned)


def pause_expired(obj: Mapping[str, Any], *, now: float) -> bool:
    """Whether fleetdeck's pause on a controller object has an expiry that has passed (still annotated)."""
    notes = (obj.get("metadata") or {}).get("annotations") or {}
    expires = parse_time(notes.get(PAUSE_EXPIRES_AT)) if notes.get(PAUSE_EXPIRES_AT) else None
    return notes.get(PAUSED) == "true" and expires is not None and expires <= now


def argocd_history(obj: Mapping[str, Any]) -> tuple[HistoryEntry, ...]:
    """``status.history`` as history entries, oldest first, with who initiated each sync
    (``initiatedBy.username``, or ``automated``)."""
    out = []
    for entry in (obj.get("status") or {}).get("history") or ():
        if not isinstance(entry, Mapping):
            continue
        who = entry.get("initiatedBy") or {}
        automated = bool(who.get("automated")) if isinstance(who, Mapping) else False
        by = "automated" if automated else str((who or {}).get("username") or "") if isinstance(who, Mapping) else ""
        try:
            number = int(entry.get("id") or 0)
        except (TypeError, ValueError):
            number = 0
        out.append(HistoryEntry(id=number, revision=str(entry.get("revision") or ""), kind="sync",
                                by=by or "unknown", at=parse_time(entry.get("deployedAt")) or 0.0,
                                result="Succeeded", summary="deployed by Argo CD",
                                trigger=SyncTrigger.AUTOMATED if automated else SyncTrigger.MANUAL))
    return tuple(sorted(out, key=lambda h: (h.id, h.at)))


def application_set_of(obj: Mapping[str, Any]) -> ResourceKey | None:
    """The ApplicationSet that generated an Application (its ownerReference; same namespace), or None."""
    meta = obj.get("metadata") or {}
    for owner in meta.get("ownerReferences") or ():
        if isinstance(owner, Mapping) and owner.get("kind") == "ApplicationSet" and owner.get("name"):
            return ResourceKey(ARGO_GROUP, "ApplicationSet", str(meta.get("namespace") or ""), str(owner["name"]))
    return None


def _jq_as_pointer(expression: str) -> str:
    """A plain jq path (``.spec.syncPolicy``) as a JSON pointer; "" for anything more elaborate."""
    parts = expression.strip().split(".")
    if len(parts) < 2 or parts[0] or not all(p.isidentifier() for p in parts[1:]):
        return ""
    return "/" + "/".join(parts[1:])


def application_set_reverts(app: Mapping[str, Any], appset: Mapping[str, Any]) -> str:
    """What the ApplicationSet controller would undo of fleetdeck's pause or rollback on ``app``, "" if nothing.

    Argo CD's ApplicationSet controller rewrites each generated Application from its template (policy
    ``sync`` or ``create-update``) unless ``spec.ignoreApplicationDifferences`` lets the field differ, and it
    drops annotations that are not in the template or ``spec.preservedFields.annotations``. fleetdeck's pause
    removes ``spec.syncPolicy.automated`` and records it in ``fleetdeck.io/*`` annotations; both must survive.
    """
    spec = appset.get("spec") or {}
    policy = str((spec.get("syncPolicy") or {}).get("applicationsSync") or "sync")
    if policy in ("create-only", "create-delete"):
        return ""
    name = str((app.get("metadata") or {}).get("name") or "")
    pointers: list[str] = []
    for rule in spec.get("ignoreApplicationDifferences") or ():
        if isinstance(rule, Mapping) and rule.get("name") in (None, "", name):
            pointers += [str(p) for p in rule.get("jsonPointers") or ()]
            pointers += [q for e in rule.get("jqPathExpressions") or () if (q := _jq_as_pointer(str(e)))]

    def kept(path: str) -> bool:
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in pointers if p)

    preserved = {str(a) for a in ((spec.get("preservedFields") or {}).get("annotations") or ())}
    lost = []
    if not kept("/spec/syncPolicy/automated"):
        lost.append("put spec.syncPolicy.automated back")
    if not kept("/metadata/annotations") and not set(CONTROL_ANNOTATIONS) <= preserved:
        lost.append("remove fleetdeck's fleetdeck.io/* annotations (the record resume restores from)")
    if not lost:
        return ""
    return (f"the Application is generated by ApplicationSet {appset_label(appset)} (applicationsSync: {policy}), "
            f"whose controller rewrites it from its template: it would {' and '.join(lost)}. Let the Application "
            "differ first: in the ApplicationSet, spec.ignoreApplicationDifferences with jsonPointers "
            "[/spec/syncPolicy] and spec.preservedFields.annotations listing "
            f"{', '.join(CONTROL_ANNOTATIONS)} (or applicationsSync: create-only)")


def appset_label(appset: Mapping[str, Any]) -> str:
    meta = appset.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def argocd_status(obj: Mapping[str, Any]) -> ControllerStatus:
    """What an Argo CD Application's ``status`` says (Argo CD's API reference: ``sync``, ``health``,
    ``conditions``, ``operationState``, ``resources``)."""
    status = obj.get("status") or {}
    sync = status.get("sync") or {}
    health = status.get("health") or {}
    op = status.get("operationState") or {}
    op_sync = ((op.get("operation") or {}).get("sync") or {}) if isinstance(op, Mapping) else {}
    resources = []
    for res in status.get("resources") or ():
        if isinstance(res, Mapping):
            key = ResourceKey(str(res.get("group") or ""), str(res.get("kind") or ""),
                              str(res.get("namespace") or ""), str(res.get("name") or ""))
            rhealth = res.get("health") or {}
            resources.append(ControllerResource(key, sync=str(res.get("status") or ""),
                                                health=str(rhealth.get("status") or ""),
                                                message=str(rhealth.get("message") or "")))
    conditions = tuple(
        Condition(f"ArgoCD{c.get('type') or 'Condition'}", str(c.get("message") or ""),
                  Severity.ERROR if str(c.get("type") or "").endswith("Error") else Severity.WARNING)
        for c in status.get("conditions") or () if isinstance(c, Mapping))
    automated = ((obj.get("spec") or {}).get("syncPolicy") or {}).get("automated")
    meta = obj.get("metadata") or {}
    generator = next((f"ApplicationSet {meta.get('namespace') or ''}/{o.get('name')}".replace(" /", " ")
                      for o in meta.get("ownerReferences") or ()
                      if isinstance(o, Mapping) and o.get("kind") == "ApplicationSet"), "")
    return ControllerStatus(
        generated_by=generator,
        sync=str(sync.get("status") or ""), revision=str(sync.get("revision") or ""),
        health=str(health.get("status") or ""), health_message=str(health.get("message") or ""),
        conditions=conditions, operation_phase=str(op.get("phase") or ""),
        operation_message=str(op.get("message") or ""),
        operation_revision=str(op_sync.get("revision") or ""), operation_pending=bool(obj.get("operation")),
        automated=isinstance(automated, Mapping) and automated.get("enabled") is not False,
        resources=tuple(resources), reconciled_at=str(status.get("reconciledAt") or ""))
