"""Flux objects' status and the merge patches behind sync/pause/resume/rollback on a Flux-owned app."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.model import ResourceKey
from core.reconcile import flux_objects as fx


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


def test_sync_annotates_the_source_first() -> None:
    patches = fx.sync_patches(kustomization(), git_repository(), "2026-12-07T21:00:00Z")
    assert [p.key.kind for p in patches] == ["GitRepository", "Kustomization"]
    for p in patches:
        assert p.patch == {"metadata": {"annotations": {fx.REQUESTED_AT: "2026-12-07T21:00:00Z"}}}
    assert fx.describe(patches)[0].startswith("GitRepository/flux-system/config: annotate")


def test_pause_then_resume_restores_suspend_and_drops_the_annotations() -> None:
    obj = kustomization()
    paused = obj
    for p in fx.pause_patches(obj, reason="incident 42", by="alice@host", at="t1", expires="t2"):
        paused = merge(paused, dict(p.patch))
    assert paused["spec"]["suspend"] is True
    assert paused["metadata"]["annotations"][fx.PAUSE_REASON] == "incident 42"
    assert paused["metadata"]["annotations"][fx.SUSPEND_BEFORE] == "false"
    assert fx.flux_state(paused).paused_by_fleetdeck
    again = merge(paused, dict(fx.pause_patches(paused, reason="still", by="bob", at="t3")[0].patch))
    assert again["metadata"]["annotations"][fx.SUSPEND_BEFORE] == "false"  # not the paused value
    resume = fx.resume_patches(again, None, "t4")
    resumed = merge(again, dict(resume[-1].patch))
    assert resumed["spec"]["suspend"] is False
    assert set(resumed["metadata"]["annotations"]) == {fx.REQUESTED_AT}


def test_a_kustomization_suspended_before_the_pause_stays_suspended_after_resume() -> None:
    obj = kustomization(suspend=True)
    paused = merge(obj, dict(fx.pause_patches(obj, reason="r", by="a", at="t")[0].patch))
    resumed = merge(paused, dict(fx.resume_patches(paused, None, "t")[-1].patch))
    assert resumed["spec"]["suspend"] is True


def test_rollback_pins_the_commit_and_resume_restores_the_branch() -> None:
    ks, src = kustomization(), git_repository(branch="main")
    patches = fx.rollback_patches(ks, src, "a" * 40, by="alice", at="t1")
    assert [p.key.kind for p in patches] == ["GitRepository", "Kustomization"]
    pinned_src = merge(src, dict(patches[0].patch))
    pinned_ks = merge(ks, dict(patches[1].patch))
    assert pinned_src["spec"]["ref"] == {"branch": "main", "commit": "a" * 40}
    assert json.loads(pinned_src["metadata"]["annotations"][fx.PINNED_FROM]) == {"branch": "main"}
    assert fx.flux_state(pinned_ks).pause_reason == f"rollback to {'a' * 12}"
    assert pinned_ks["spec"]["suspend"] is False
    # a second rollback keeps the original ref on record
    twice = merge(pinned_src, dict(fx.rollback_patches(pinned_ks, pinned_src, "b" * 40, by="a", at="t2")[0].patch))
    assert json.loads(twice["metadata"]["annotations"][fx.PINNED_FROM]) == {"branch": "main"}
    resume = fx.resume_patches(pinned_ks, twice, "t3")
    assert [p.key.kind for p in resume] == ["GitRepository", "Kustomization"]
    restored = merge(twice, dict(resume[0].patch))
    assert restored["spec"]["ref"] == {"branch": "main"}
    assert set(restored["metadata"]["annotations"]) == {fx.REQUESTED_AT}
    assert merge(pinned_ks, dict(resume[1].patch))["spec"]["suspend"] is False


def test_rollback_needs_a_git_repository() -> None:
    oci = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
           "metadata": {"name": "config", "namespace": "flux-system"}, "spec": {}}
    with pytest.raises(fx.RollbackRefused, match="only a GitRepository"):
        fx.rollback_patches(kustomization(), oci, "a" * 40, by="a", at="t")
    with pytest.raises(fx.RollbackRefused, match="no source"):
        fx.rollback_patches(kustomization(), None, "a" * 40, by="a", at="t")
