"""The Flux owner: actions as writes to the ``Kustomization``/``HelmRelease`` and its source, as the Flux CLI
makes them (docs/flux.md, "Controller mode").

* sync (and refresh): ``reconcile.fluxcd.io/requestedAt`` on the source first, then on the applier, like
  ``flux reconcile kustomization --with-source``: the controllers reconcile an object whose annotation changed
  at once, without waiting for ``spec.interval``.
* pause: ``spec.suspend: true`` with fleetdeck's control annotations (``core.sync.owners.base``); what it
  replaced (``{"suspend": <before>}``) is kept in ``fleetdeck.io/paused-policy``. resume: ``spec.suspend``
  back to that value, the annotations removed, a reconcile requested (source first).
* rollback: the GitRepository pinned to the commit (``spec.ref.commit``: Flux checks it out instead of the
  branch head; the branch stays, so the commit must be reachable from it), its original ``spec.ref``
  recorded as JSON in ``fleetdeck.io/pinned-from`` on the source; the applier marked paused by fleetdeck
  (``fleetdeck.io/pinned``, reason ``rollback to <sha>``, so fleetdeck's automation leaves it alone) with
  ``spec.suspend: false`` so the pinned commit is applied now; both get ``requestedAt``. The pin is
  Flux's auto-reconcile paused: new commits on the branch are not fetched. resume restores the original
  ``spec.ref`` (fields the pin added nulled) and requests a reconcile. A source shared by several
  Kustomizations moves them all: the plan says so. A HelmRelease whose chart comes from a HelmRepository
  is pinned instead by ``spec.chart.spec.version`` (a ``chartVersion`` of its ``status.history``), the
  constraint it replaced kept in ``fleetdeck.io/pinned-from`` on the HelmRelease and put back by resume; a
  ``spec.chartRef`` (OCI) or Bucket chart is refused.

Constraint: pure (no I/O): each method returns the patches; ``core.sync.owners.base`` writes them.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

from core.model import ControllerPatch, ControllerRef, Owner, ResourceKey
from core.reconcile.flux_objects import (
    GIT_REPOSITORY,
    HELM_REPOSITORY,
    PINNED_FROM,
    REQUESTED_AT_KEY,
    chart_versions,
    history_revisions,
    release_history,
    source_of,
)
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

_SHA = re.compile(r"^[0-9a-f]{40}$")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _stamp(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _now() -> str:
    """``requestedAt`` value: any new string triggers a reconcile; the Flux CLI writes RFC 3339 with nanos."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _suspended(obj: Mapping[str, Any]) -> bool:
    return (obj.get("spec") or {}).get("suspend") is True


def _kept_policy(obj: Mapping[str, Any]) -> str:
    """What fleetdeck's pause replaced: the recorded value while it is paused, else the current ``suspend``."""
    annotations = _annotations(obj)
    if annotations.get(PAUSED) == "true" and annotations.get(PAUSED_POLICY):
        return str(annotations[PAUSED_POLICY])
    return _canonical({"suspend": _suspended(obj)})


class FluxDriver:
    """``ControllerDriver`` for Flux Kustomizations and HelmReleases."""

    owner = Owner.FLUX

    def _source(self, ref: ControllerRef, obj: Mapping[str, Any],
                lookup: Lookup) -> tuple[ResourceKey | None, Mapping[str, Any] | None]:
        key = source_of(obj)
        return key, (lookup(ref.cluster, key) if key is not None else None)

    def _request(self, ref: ControllerRef, obj: Mapping[str, Any], lookup: Lookup,
                 now: str) -> tuple[ControllerPatch, ...]:
        """``requestedAt`` on the source (when it is in the cluster) and then on the applier."""
        key, source = self._source(ref, obj, lookup)
        notes = {"metadata": {"annotations": {REQUESTED_AT_KEY: now}}}
        summary = f"annotate {REQUESTED_AT_KEY}={now}"
        first = (patch_of(ref, notes, summary, key=key),) if key is not None and source is not None else ()
        return (*first, patch_of(ref, notes, summary))

    def sync(self, ref: ControllerRef, obj: Mapping[str, Any], request: SyncRequest,
             lookup: Lookup) -> tuple[ControllerPatch, ...]:
        if _suspended(obj):
            why = "paused by fleetdeck" if _annotations(obj).get(PAUSED) == "true" else "spec.suspend is true"
            raise Refused(f"the {ref.key.kind} is suspended ({why}): a reconcile request would be ignored; "
                          "resume it first")
        if request.resources:
            raise Refused("Flux applies a Kustomization whole: a selective sync is not possible")
        if request.sync_options:
            raise Refused(f"sync options ({', '.join(request.sync_options)}) are Argo CD's "
                          "(operation.sync.syncOptions): a Flux reconcile request takes none; set such behaviour "
                          f"in the {ref.key.kind}'s spec in Git")
        if request.dry_run:
            raise Refused("--controller-dry-run asks Argo CD for its own dry run: a Flux reconcile request has "
                          "none; fleetdeck's --dry-run sends these patches through the API server's dry run, and "
                          "`fleetdeck diff` shows the server-side dry run of the rendered objects")
        return self._request(ref, obj, lookup, _now())

    def refresh(self, ref: ControllerRef, obj: Mapping[str, Any], lookup: Lookup) -> tuple[ControllerPatch, ...]:
        return self._request(ref, obj, lookup, _now())

    def pause(self, ref: ControllerRef, obj: Mapping[str, Any], request: PauseRequest,
              lookup: Lookup) -> tuple[ControllerPatch, ...]:
        values: dict[str, Any] = {
            PAUSED: "true", PAUSE_REASON: request.reason, PAUSED_BY: request.by, PAUSED_AT: _stamp(time.time()),
            PAUSED_POLICY: _kept_policy(obj),
            PAUSE_EXPIRES_AT: _stamp(request.expires_at) if request.expires_at else None}
        summary = f"set spec.suspend=true (before: {_kept_policy(obj)}, kept in {PAUSED_POLICY}); annotate paused"
        if request.reason:
            summary += f" (reason: {request.reason})"
        return (patch_of(ref, {"metadata": {"annotations": values}, "spec": {"suspend": True}}, summary),)

    def resume(self, ref: ControllerRef, obj: Mapping[str, Any], lookup: Lookup) -> tuple[ControllerPatch, ...]:
        annotations = _annotations(obj)
        key, source = self._source(ref, obj, lookup)
        pinned = source is not None and PINNED_FROM in _annotations(source)
        own_pin = PINNED_FROM in annotations  # a HelmRelease's chart version pinned by a rollback
        if annotations.get(PAUSED) != "true" and not pinned and not own_pin:
            raise Refused(f"the {ref.key.kind} was not paused by fleetdeck (no {PAUSED} annotation)")
        try:
            kept = json.loads(str(annotations.get(PAUSED_POLICY) or "{}"))
        except ValueError as exc:
            raise Refused(f"{PAUSED_POLICY} is not JSON: {exc}") from None
        suspend = bool(kept.get("suspend")) if isinstance(kept, dict) else False
        now = _now()
        out: list[ControllerPatch] = []
        if pinned and key is not None and source is not None:
            out.append(self._unpin(ref, key, source, now))
        elif key is not None and source is not None:
            out.append(patch_of(ref, {"metadata": {"annotations": {REQUESTED_AT_KEY: now}}},
                                f"annotate {REQUESTED_AT_KEY}={now}", key=key))
        values: dict[str, Any] = dict.fromkeys(k for k in CONTROL_ANNOTATIONS if k in annotations)
        values[REQUESTED_AT_KEY] = now
        spec: dict[str, Any] = {"suspend": suspend}
        restored = ""
        if own_pin:
            version = self._pinned_version(ref, annotations)
            values[PINNED_FROM] = None
            spec["chart"] = {"spec": {"version": version}}
            restored = f"restore spec.chart.spec.version={_canonical(version)} (from {PINNED_FROM}); "
        out.append(patch_of(ref, {"metadata": {"annotations": values}, "spec": spec},
                            f"{restored}set spec.suspend={str(suspend).lower()} (as before the pause); remove "
                            f"fleetdeck's pause annotations; annotate {REQUESTED_AT_KEY}={now}"))
        return tuple(out)

    def _pinned_version(self, ref: ControllerRef, annotations: Mapping[str, Any]) -> Any:
        """The chart version a rollback replaced (None: there was none, the field is removed again)."""
        try:
            original = json.loads(str(annotations.get(PINNED_FROM)))
        except ValueError as exc:
            raise Refused(f"{PINNED_FROM} on {ref.key.short} is not JSON: {exc}") from None
        if not isinstance(original, dict) or "version" not in original:
            raise Refused(f"{PINNED_FROM} on {ref.key.short} is not a chart version record")
        return original["version"]

    def _unpin(self, ref: ControllerRef, key: ResourceKey, source: Mapping[str, Any], now: str) -> ControllerPatch:
        try:
            original = json.loads(str(_annotations(source).get(PINNED_FROM)))
        except ValueError as exc:
            raise Refused(f"{PINNED_FROM} on {key.short} is not JSON: {exc}") from None
        if not isinstance(original, dict):
            raise Refused(f"{PINNED_FROM} on {key.short} is not a spec.ref object")
        current = (source.get("spec") or {}).get("ref") or {}
        restored: dict[str, Any] = {k: None for k in current if k not in original}
        restored.update(original)
        patch = {"metadata": {"annotations": {PINNED_FROM: None, REQUESTED_AT_KEY: now}},
                 "spec": {"ref": restored}}
        shown = ", ".join(f"{k}={v}" for k, v in sorted(original.items())) or "none"
        return patch_of(ref, patch, f"restore spec.ref ({shown}, from {PINNED_FROM}); annotate "
                                    f"{REQUESTED_AT_KEY}={now}", key=key)

    def rollback(self, ref: ControllerRef, obj: Mapping[str, Any], revision: str, by: str,
                 lookup: Lookup) -> tuple[ControllerPatch, ...]:
        key, source = self._source(ref, obj, lookup)
        if ref.key.kind == "HelmRelease":
            chart_ref = (obj.get("spec") or {}).get("chartRef")
            if isinstance(chart_ref, Mapping) and chart_ref:
                raise Refused(f"the HelmRelease takes its chart from spec.chartRef ({chart_ref.get('kind')} "
                              f"{chart_ref.get('name')}): fleetdeck can pin a chart only by its version "
                              "(spec.chart.spec.version, from a HelmRepository) or by the commit of its "
                              "GitRepository; pin the artifact in Git instead")
            if key is not None and (key.group, key.kind) == HELM_REPOSITORY:
                return self._pin_chart_version(ref, obj, revision, by)
            if key is None:
                raise Refused("the HelmRelease names no chart source (spec.chart.spec.sourceRef): nothing to pin")
            if (key.group, key.kind) != GIT_REPOSITORY:
                raise Refused(f"{key.short}: a {key.kind} chart source cannot be pinned (fleetdeck pins a "
                              "GitRepository to a commit or a HelmRepository chart to a version)")
        if key is None or source is None:
            raise Refused(f"the {ref.key.kind}'s source is not in the cluster: nothing to pin")
        if (key.group, key.kind) != GIT_REPOSITORY:
            raise Refused(f"{key.short}: only a GitRepository can be pinned to a commit (rollback by pin)")
        commit = self._commit(obj, revision)
        now = _now()
        ref_now = dict((source.get("spec") or {}).get("ref") or {})
        notes: dict[str, Any] = {REQUESTED_AT_KEY: now}
        if PINNED_FROM not in _annotations(source):
            notes[PINNED_FROM] = _canonical(ref_now)
        pin = patch_of(ref, {"metadata": {"annotations": notes}, "spec": {"ref": {"commit": commit}}},
                       f"pin spec.ref.commit={commit[:12]} (was {_canonical(ref_now)}, kept in {PINNED_FROM}); "
                       f"annotate {REQUESTED_AT_KEY}={now}", key=key)
        values = {PAUSED: "true", PAUSE_REASON: f"rollback to {commit}", PAUSED_BY: by,
                  PAUSED_AT: _stamp(time.time()), PINNED: commit, PAUSED_POLICY: _kept_policy(obj),
                  REQUESTED_AT_KEY: now}
        applier = patch_of(ref, {"metadata": {"annotations": values}, "spec": {"suspend": False}},
                           f"annotate paused, {PINNED}={commit[:12]}; set spec.suspend=false (applies the pinned "
                           f"commit); annotate {REQUESTED_AT_KEY}={now}")
        return (pin, applier)

    def _pin_chart_version(self, ref: ControllerRef, obj: Mapping[str, Any], revision: str,
                           by: str) -> tuple[ControllerPatch, ...]:
        """A HelmRelease whose chart comes from a HelmRepository: ``spec.chart.spec.version`` pinned to the
        chart version of a ``status.history`` release (what it was kept in ``fleetdeck.io/pinned-from`` on the
        HelmRelease; resume puts it back), marked paused by fleetdeck, a reconcile requested."""
        wanted = revision.strip()
        entry = next((h for h in release_history(obj) if str(h.get("chartVersion") or "") == wanted), None)
        if entry is None:
            known = ", ".join(f"{v}" for v in chart_versions(obj)) or "none"
            raise Refused(f"{wanted[:64] or 'no revision'} is not a chart version of the HelmRelease's "
                          f"status.history (known: {known}); give one of them")
        chart_spec = ((obj.get("spec") or {}).get("chart") or {}).get("spec") or {}
        before = chart_spec.get("version")
        now = _now()
        values: dict[str, Any] = {
            PAUSED: "true", PAUSE_REASON: f"rollback to chart {entry.get('chartName')} {wanted} (release "
                                          f"{entry.get('version')})",
            PAUSED_BY: by, PAUSED_AT: _stamp(time.time()), PINNED: wanted, PAUSED_POLICY: _kept_policy(obj),
            REQUESTED_AT_KEY: now}
        if PINNED_FROM not in _annotations(obj):
            values[PINNED_FROM] = _canonical({"version": before})
        patch = {"metadata": {"annotations": values},
                 "spec": {"suspend": False, "chart": {"spec": {"version": wanted}}}}
        return (patch_of(ref, patch, f"pin spec.chart.spec.version={wanted} (was {_canonical(before)}, kept in "
                                     f"{PINNED_FROM}); annotate paused, {PINNED}={wanted}; set spec.suspend=false; "
                                     f"annotate {REQUESTED_AT_KEY}={now}"),)

    def _commit(self, obj: Mapping[str, Any], revision: str) -> str:
        wanted = revision.strip().lower()
        if _SHA.match(wanted):
            return wanted
        known = [r for r in history_revisions(obj) if wanted and r.startswith(wanted)]
        if len(known) == 1:
            return known[0]
        raise Refused(f"{revision[:40] or 'no revision'}: give the full 40-character commit to pin "
                      f"(spec.ref.commit takes a full SHA)")

    def rollback_revisions(self, obj: Mapping[str, Any]) -> tuple[str, ...]:
        if (obj.get("kind") == "HelmRelease" and (key := source_of(obj)) is not None
                and (key.group, key.kind) == HELM_REPOSITORY):
            return chart_versions(obj)
        return history_revisions(obj)
