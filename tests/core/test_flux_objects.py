"""Flux objects' status and the merge patches behind sync/pause/resume/rollback on a Flux-owned app."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.model import ClusterName, ControllerRef, Owner, ResourceKey
from core.reconcile import flux_objects as fx
from core.sync.owners import PauseRequest, Refused, SyncRequest
from core.sync.owners.base import PAUSE_REASON, PAUSED, PAUSED_POLICY, PINNED
from core.sync.owners.flux import FluxDriver


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the apiserver applies ``application/merge-patch+json``."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def kustomization(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "web", "namespace": "apps"},
            "spec": {"interval": "10m", "path": "./apps/web", "prune": True,
                     "sourceRef": {"kind": "GitRepository", "name": "config", "namespace": "flux-system"},
                     "dependsOn": [{"name": "infra"}, {"name": "crds", "namespace": "flux-system"}], **spec},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                                       "message": "Applied revision: main@sha1:0123456789abcdef"}],
                       "lastAppliedRevision": "main@sha1:0123456789abcdef",
                       "lastAttemptedRevision": "main@sha1:fedcba9876543210",
                       "inventory": {"entries": [{"id": "apps_web__ConfigMap", "v": "v1"},
                                                 {"id": "apps_web__Service", "v": "v1"}]}}}


def git_repository(**ref: Any) -> dict[str, Any]:
    return {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "config", "namespace": "flux-system"},
            "spec": {"url": "http://127.0.0.1:1/config.git", "interval": "1m", "ref": ref or {"branch": "main"}},
            "status": {"artifact": {"revision": "main@sha1:0123456789abcdef"}}}


def test_state_of_a_kustomization() -> None:
    state = fx.flux_state(kustomization())
    assert state.key == ResourceKey("kustomize.toolkit.fluxcd.io", "Kustomization", "apps", "web")
    assert (state.ready, state.stalled, state.reconciling, state.suspended) == ("True", False, False, False)
    assert state.last_applied_revision == "main@sha1:0123456789abcdef"
    assert state.last_attempted_revision == "main@sha1:fedcba9876543210"
    assert state.inventory == 2
    assert state.depends_on == ("infra", "flux-system/crds")
    assert state.source == ResourceKey("source.toolkit.fluxcd.io", "GitRepository", "flux-system", "config")
    assert state.summary == "Ready main@sha1:0123456"
    assert json.loads(json.dumps(state.as_dict()))["source"] == "GitRepository.source.toolkit.fluxcd.io/flux-system/config"


def test_state_of_a_stalled_suspended_and_a_source() -> None:
    obj = kustomization(suspend=True)
    obj["status"]["conditions"] = [{"type": "Ready", "status": "False", "reason": "BuildFailed"},
                                   {"type": "Stalled", "status": "True", "reason": "BuildFailed"}]
    state = fx.flux_state(obj)
    assert state.suspended and state.stalled and state.ready == "False"
    assert state.summary.startswith("Suspended")
    assert fx.flux_state(git_repository()).last_applied_revision == "main@sha1:0123456789abcdef"
    release = {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
               "metadata": {"name": "podinfo", "namespace": "apps"},
               "spec": {"chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository",
                                                                              "name": "charts"}}}}}
    assert fx.source_of(release) == ResourceKey("source.toolkit.fluxcd.io", "HelmRepository", "apps", "charts")


REF = ControllerRef(Owner.FLUX, ClusterName("c1"), ResourceKey("kustomize.toolkit.fluxcd.io", "Kustomization",
                                                                  "apps", "web"))
SRC = ResourceKey("source.toolkit.fluxcd.io", "GitRepository", "flux-system", "config")
DRIVER = FluxDriver()


def lookup_of(*objs: dict[str, Any]) -> Any:
    by_key = {fx.key_of(o): o for o in objs}
    return lambda cluster, key: by_key.get(key) if cluster == "c1" else None


def apply(obj: dict[str, Any], patches: Any, key: ResourceKey | None = None) -> dict[str, Any]:
    """``obj`` after the patches of ``patches`` that target it (``key``: its key)."""
    own = key or fx.key_of(obj)
    for p in patches:
        if p.key == own:
            obj = merge(obj, json.loads(p.text))
    return obj


def test_sync_annotates_the_source_first() -> None:
    patches = DRIVER.sync(REF, kustomization(), SyncRequest(revision=""), lookup_of(git_repository()))
    assert [p.key for p in patches] == [SRC, REF.key]
    stamps = {json.loads(p.text)["metadata"]["annotations"][fx.REQUESTED_AT_KEY] for p in patches}
    assert len(stamps) == 1
    assert all(set(json.loads(p.text)) == {"metadata"} for p in patches)
    # no source in the cache: the Kustomization alone
    assert [p.key for p in DRIVER.sync(REF, kustomization(), SyncRequest(revision=""), lookup_of())] == [REF.key]


def test_sync_of_a_suspended_kustomization_is_refused() -> None:
    with pytest.raises(Refused, match="suspended"):
        DRIVER.sync(REF, kustomization(suspend=True), SyncRequest(revision=""), lookup_of())


def test_pause_then_resume_restores_suspend_and_drops_the_annotations() -> None:
    obj = kustomization()
    paused = apply(obj, DRIVER.pause(REF, obj, PauseRequest(reason="incident 42", by="alice@host",
                                                              expires_at=2e9), lookup_of()))
    notes = paused["metadata"]["annotations"]
    assert paused["spec"]["suspend"] is True
    assert (notes[PAUSED], notes[PAUSE_REASON], notes[PAUSED_POLICY]) == ("true", "incident 42", '{"suspend":false}')
    assert fx.flux_state(paused).paused_by_fleetdeck
    again = apply(paused, DRIVER.pause(REF, paused, PauseRequest(reason="still", by="bob"), lookup_of()))
    assert again["metadata"]["annotations"][PAUSED_POLICY] == '{"suspend":false}'  # not the paused value
    src = git_repository()
    resume = DRIVER.resume(REF, again, lookup_of(src))
    assert [p.key for p in resume] == [SRC, REF.key]
    resumed = apply(again, resume)
    assert resumed["spec"]["suspend"] is False
    assert set(resumed["metadata"]["annotations"]) == {fx.REQUESTED_AT_KEY}
    with pytest.raises(Refused, match="not paused by fleetdeck"):
        DRIVER.resume(REF, resumed, lookup_of(src))


def test_a_kustomization_suspended_before_the_pause_stays_suspended_after_resume() -> None:
    obj = kustomization(suspend=True)
    paused = apply(obj, DRIVER.pause(REF, obj, PauseRequest(reason="r", by="a"), lookup_of()))
    assert apply(paused, DRIVER.resume(REF, paused, lookup_of()))["spec"]["suspend"] is True


def test_rollback_pins_the_commit_and_resume_restores_the_branch() -> None:
    ks, src = kustomization(), git_repository(branch="main")
    patches = DRIVER.rollback(REF, ks, "a" * 40, "alice", lookup_of(src))
    assert [p.key for p in patches] == [SRC, REF.key]
    pinned_src, pinned_ks = apply(src, patches), apply(ks, patches)
    assert pinned_src["spec"]["ref"] == {"branch": "main", "commit": "a" * 40}
    assert json.loads(pinned_src["metadata"]["annotations"][fx.PINNED_FROM]) == {"branch": "main"}
    assert pinned_ks["metadata"]["annotations"][PINNED] == "a" * 40
    assert pinned_ks["spec"]["suspend"] is False
    # a second rollback keeps the original ref on record
    twice = apply(pinned_src, DRIVER.rollback(REF, pinned_ks, "b" * 40, "a", lookup_of(pinned_src)))
    assert twice["spec"]["ref"]["commit"] == "b" * 40
    assert json.loads(twice["metadata"]["annotations"][fx.PINNED_FROM]) == {"branch": "main"}
    resume = DRIVER.resume(REF, pinned_ks, lookup_of(twice))
    assert [p.key for p in resume] == [SRC, REF.key]
    restored = apply(twice, resume)
    assert restored["spec"]["ref"] == {"branch": "main"}
    assert set(restored["metadata"]["annotations"]) == {fx.REQUESTED_AT_KEY}
    unpaused = apply(pinned_ks, resume)
    assert unpaused["spec"]["suspend"] is False and set(unpaused["metadata"]["annotations"]) == {fx.REQUESTED_AT_KEY}


def test_rollback_needs_a_git_repository_and_a_full_commit() -> None:
    oci = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
           "metadata": {"name": "config", "namespace": "flux-system"}, "spec": {}}
    ks = kustomization()
    ks["spec"]["sourceRef"]["kind"] = "OCIRepository"
    with pytest.raises(Refused, match="only a GitRepository"):
        DRIVER.rollback(REF, ks, "a" * 40, "a", lookup_of(oci))
    with pytest.raises(Refused, match="not in the cluster"):
        DRIVER.rollback(REF, kustomization(), "a" * 40, "a", lookup_of())
    with pytest.raises(Refused, match="full 40-character"):
        DRIVER.rollback(REF, kustomization(), "abc", "a", lookup_of(git_repository()))
    # a prefix of a revision the Kustomization applied is resolved
    ks = kustomization()
    patches = DRIVER.rollback(REF, ks, "0123456789ab", "a", lookup_of(git_repository()))
    assert json.loads(patches[0].text)["spec"]["ref"]["commit"] == "0123456789abcdef"
    assert DRIVER.rollback_revisions(ks) == ("0123456789abcdef",)


def test_fleetdecks_own_tracking_is_not_drift_of_a_controller_owned_object() -> None:
    from core.model import FieldChange, ResourceDiff, ResourceState
    from core.reconcile.tracking import without_own_tracking

    own = (FieldChange("/metadata/labels/fleetdeck.io~1app", "add", "web", None),
           FieldChange("/metadata/annotations", "add", {"fleetdeck.io/tracking-id": "web:/ConfigMap:a/b"}, None))
    desired = {"metadata": {"name": "b", "labels": {"fleetdeck.io/app": "web", "team": "x"},
                            "annotations": {"fleetdeck.io/tracking-id": "web:/ConfigMap:a/b"}}}
    only_own = without_own_tracking(ResourceDiff(ResourceState.OUT_OF_SYNC, own, message="2 fields differ",
                                                 desired=desired))
    assert (only_own.state, only_own.changes, only_own.message) == (ResourceState.SYNCED, (), "")
    assert only_own.desired == {"metadata": {"name": "b", "labels": {"team": "x"}}}
    edit = FieldChange("/data/colour", "replace", "blue", "red")
    mixed = without_own_tracking(ResourceDiff(ResourceState.OUT_OF_SYNC, (*own, edit), message="3 fields differ"))
    assert (mixed.state, mixed.changes, mixed.message) == (ResourceState.OUT_OF_SYNC, (edit,), "1 field differs")
    untouched = ResourceDiff(ResourceState.OUT_OF_SYNC, (edit,), message="1 field differs")
    assert without_own_tracking(untouched) is untouched
