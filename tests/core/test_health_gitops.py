"""Built-in rules for GitOps and delivery CRDs, from each controller's documented status.

Sources: Argo Rollouts (status.phase Healthy/Progressing/Paused/Degraded, pauseConditions, abort,
currentStepIndex; "clients should only rely on phase if observedGeneration equals generation"), Argo
Rollouts AnalysisRun phases, Argo CD Application status.health/status.sync, Flux's kstatus conditions
(Ready/Reconciling/Stalled, ProgressingWithRetry, spec.suspend), cert-manager conditions (Ready, Issuing,
Denied, InvalidRequest), Sealed Secrets' Synced condition, Flagger's Canary phases.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.model import HealthStatus
from core.reconcile.health import health_of

H, P, D, S, U = (HealthStatus.HEALTHY, HealthStatus.PROGRESSING, HealthStatus.DEGRADED,
                 HealthStatus.SUSPENDED, HealthStatus.UNKNOWN)  # fmt: skip


def obj(api_version: str, kind: str, spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None,
        generation: int = 3) -> dict[str, Any]:  # fmt: skip
    """A live object of ``kind``."""
    out: dict[str, Any] = {"apiVersion": api_version, "kind": kind,
                           "metadata": {"name": "x", "namespace": "shop", "generation": generation},
                           "spec": spec or {}}  # fmt: skip
    if status is not None:
        out["status"] = status
    return out


def cond(kind: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    """One status condition."""
    return {"type": kind, "status": status, "reason": reason, "message": message}


# Argo Rollouts -----------------------------------------------------------------------------------------

STEPS = {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {"duration": "1m"}}]}}


def rollout(status: dict[str, Any] | None, paused: bool = False) -> dict[str, Any]:
    """A canary Rollout with four steps."""
    spec: dict[str, Any] = {"replicas": 3, "strategy": STEPS}
    if paused:
        spec["paused"] = True
    return obj("argoproj.io/v1alpha1", "Rollout", spec, status)


OBSERVED = {"observedGeneration": "3", "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}
ROLLOUT_CASES = [
    ("healthy", {**OBSERVED, "phase": "Healthy", "currentStepIndex": 4}, False, H, "step 4/4, setWeight 100"),
    ("progressing", {**OBSERVED, "phase": "Progressing", "message": "more replicas need to be updated",
                     "currentStepIndex": 0}, False, P, "more replicas need to be updated; step 0/4, setWeight 20"),
    ("paused-at-step", {**OBSERVED, "phase": "Paused", "currentStepIndex": 1,
                        "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-05-01T09:00:00Z"}]},
     False, S, "Paused: CanaryPauseStep; step 1/4, setWeight 20"),
    ("paused-by-user", {**OBSERVED, "phase": "Paused", "currentStepIndex": 3}, True, S,
     "Paused: PausedByUser; step 3/4, setWeight 60"),
    ("aborted", {**OBSERVED, "phase": "Degraded", "abort": True, "currentStepIndex": 2,
                 "message": "RolloutAborted: Rollout aborted update to revision 4"}, False, D,
     "RolloutAborted: Rollout aborted update to revision 4; step 2/4, setWeight 60"),
    ("progress-deadline", {**OBSERVED, "conditions": [cond("Progressing", "False", "ProgressDeadlineExceeded",
                                                           "ReplicaSet web-1 has timed out progressing.")]},
     False, D, "ReplicaSet web-1 has timed out progressing."),
    ("invalid-spec", {**OBSERVED, "conditions": [cond("InvalidSpec", "True", "InvalidSpec", "bad selector")]},
     False, D, "bad selector"),
    ("not-observed", {**OBSERVED, "observedGeneration": "2", "phase": "Healthy"}, False, P,
     "Waiting for the controller to observe generation 3"),
    ("no-status", None, False, P, "Waiting for the controller to observe generation 3"),
    ("legacy-no-phase-updating", {**OBSERVED, "updatedReplicas": 1}, False, P,
     "Waiting for rollout to finish: more replicas need to be updated"),
    ("unknown-phase", {**OBSERVED, "phase": "Exploding"}, False, U, "unrecognised Rollout phase Exploding"),
]  # fmt: skip


@pytest.mark.parametrize(("status", "paused", "expected", "message"),
                         [pytest.param(*c[1:], id=c[0]) for c in ROLLOUT_CASES])  # fmt: skip
def test_rollout(status: dict[str, Any] | None, paused: bool, expected: HealthStatus, message: str) -> None:
    """Rollout: aborted → Degraded, paused → Suspended with reasons, step and weight in the message."""
    result = health_of(rollout(status, paused))
    assert result is not None
    assert (result.status, result.message, result.source) == (expected, message, "built-in: Rollout (argoproj.io)")


@pytest.mark.parametrize(("phase", "expected"), [("Pending", P), ("Running", P), ("Successful", H), ("Failed", D),
                                                 ("Error", D), ("Inconclusive", U), (None, P)])  # fmt: skip
def test_analysis_run(phase: str | None, expected: HealthStatus) -> None:
    """AnalysisRun by phase; Inconclusive needs a human judgement, so it is not called Healthy."""
    result = health_of(obj("argoproj.io/v1alpha1", "AnalysisRun", status={"phase": phase} if phase else {}))
    assert result is not None and result.status is expected
    assert result.source == "built-in: AnalysisRun (argoproj.io)"


# Argo CD -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected", "message"),
    [
        ({"health": {"status": "Healthy"}, "sync": {"status": "Synced"}}, H, "sync Synced"),
        ({"health": {"status": "Progressing", "message": "rolling"}, "sync": {"status": "Synced"}}, P,
         "rolling; sync Synced"),
        ({"health": {"status": "Degraded"}, "sync": {"status": "OutOfSync"},
          "operationState": {"phase": "Failed"}}, D, "sync OutOfSync; last operation Failed"),
        ({"health": {"status": "Suspended"}, "sync": {"status": "Synced"}}, S, "sync Synced"),
        ({"health": {"status": "Missing"}, "sync": {"status": "OutOfSync"}}, P,
         "its resources are not created yet (Argo CD: Missing); sync OutOfSync"),
        ({"health": {"status": "Unknown"}}, U, ""),
        ({}, P, "Waiting for Argo CD to assess the application"),
    ],
)  # fmt: skip
def test_argocd_application(status: dict[str, Any], expected: HealthStatus, message: str) -> None:
    """Application: Argo CD's own health verdict, with the sync status and a failed last operation."""
    result = health_of(obj("argoproj.io/v1alpha1", "Application", status=status))
    assert result is not None
    assert (result.status, result.message, result.source) == (
        expected, message, "built-in: Application (argoproj.io)")  # fmt: skip


# Flux --------------------------------------------------------------------------------------------------

FLUX_KINDS = [
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
    ("helm.toolkit.fluxcd.io/v2", "HelmRelease"),
    ("source.toolkit.fluxcd.io/v1", "GitRepository"),
    ("source.toolkit.fluxcd.io/v1", "HelmRepository"),
    ("source.toolkit.fluxcd.io/v1", "OCIRepository"),
    ("image.toolkit.fluxcd.io/v1", "ImagePolicy"),
    ("image.toolkit.fluxcd.io/v1", "ImageRepository"),
]
FLUX_STATES = [
    ("ready", {"observedGeneration": 3, "conditions": [cond("Ready", "True", "ReconciliationSucceeded", "done")]},
     False, H, "done"),
    ("reconciling", {"observedGeneration": 3, "conditions": [cond("Reconciling", "True", "Progressing", "working"),
                                                             cond("Ready", "Unknown", "Progressing")]},
     False, P, "working"),
    ("retrying", {"observedGeneration": 3, "conditions": [
        cond("Reconciling", "True", "ProgressingWithRetry", "retrying"),
        cond("Ready", "False", "BuildFailed", "kustomize build failed")]}, False, D, "kustomize build failed"),
    ("failed", {"observedGeneration": 3, "conditions": [cond("Ready", "False", "ArtifactFailed", "auth failed")]},
     False, D, "auth failed"),
    ("dependency-not-ready", {"observedGeneration": 3, "conditions": [
        cond("Ready", "False", "DependencyNotReady", "dependency 'flux-system/infra' is not ready")]},
     False, P, "dependency 'flux-system/infra' is not ready"),
    ("stalled", {"observedGeneration": 3, "conditions": [cond("Stalled", "True", "InvalidURL", "bad url"),
                                                         cond("Ready", "False", "InvalidURL", "bad url")]},
     False, D, "bad url"),
    ("not-observed", {"observedGeneration": 2, "conditions": [cond("Ready", "True")]}, False, P,
     "Waiting for the controller to observe generation 3"),
    ("no-status", None, False, P, "Waiting for the controller to report Ready"),
    ("suspended", {"observedGeneration": 3, "conditions": [cond("Ready", "True")]}, True, S, "{kind} is suspended"),
]  # fmt: skip


@pytest.mark.parametrize(("api_version", "kind"), FLUX_KINDS)
@pytest.mark.parametrize(("status", "suspend", "expected", "message"),
                         [pytest.param(*c[1:], id=c[0]) for c in FLUX_STATES])  # fmt: skip
def test_flux(api_version: str, kind: str, status: dict[str, Any] | None, suspend: bool,
              expected: HealthStatus, message: str) -> None:  # fmt: skip
    """Every Flux kind: suspended, progressing, retrying, failed, stalled and ready objects."""
    result = health_of(obj(api_version, kind, {"suspend": True} if suspend else {"interval": "5m"}, status))
    group = api_version.split("/")[0]
    assert result is not None
    assert (result.status, result.message, result.source) == (
        expected, message.format(kind=kind), f"built-in: {kind} ({group})")  # fmt: skip


@pytest.mark.parametrize(
    ("api_version", "kind", "status", "message"),
    [
        ("kustomize.toolkit.fluxcd.io/v1", "Kustomization",
         {"lastAppliedRevision": "main@sha1:aaa", "lastAttemptedRevision": "main@sha1:bbb",
          "conditions": [cond("Ready", "False", "BuildFailed", "build failed")]},
         "build failed; applied main@sha1:aaa, attempted main@sha1:bbb"),
        ("helm.toolkit.fluxcd.io/v2", "HelmRelease",
         {"history": [{"chartVersion": "1.2.3"}], "lastAttemptedRevision": "1.2.4",
          "conditions": [cond("Ready", "True", "UpgradeSucceeded", "Helm upgrade succeeded")]},
         "Helm upgrade succeeded; chart 1.2.3, attempted 1.2.4"),
        ("source.toolkit.fluxcd.io/v1", "GitRepository",
         {"artifact": {"revision": "main@sha1:ccc"}, "conditions": [cond("Ready", "True", "Succeeded", "stored")]},
         "stored; artifact main@sha1:ccc"),
        ("image.toolkit.fluxcd.io/v1", "ImagePolicy",
         {"latestRef": {"name": "ghcr.io/shop/web", "tag": "1.4.0"}, "conditions": [cond("Ready", "True")]},
         "latest 1.4.0"),
        ("image.toolkit.fluxcd.io/v1", "ImageRepository",
         {"lastScanResult": {"tagCount": 12}, "conditions": [cond("Ready", "True", "Succeeded", "scanned")]},
         "scanned; 12 tags"),
    ],
)  # fmt: skip
def test_flux_message_names_revisions(api_version: str, kind: str, status: dict[str, Any], message: str) -> None:
    """The message carries lastAppliedRevision/lastAttemptedRevision, the artifact or the latest image."""
    result = health_of(obj(api_version, kind, status=status))
    assert result is not None and result.message == message


# cert-manager, Sealed Secrets, Flagger -----------------------------------------------------------------

CERT_CASES = [
    ("Certificate", [cond("Ready", "True", "Ready", "Certificate is up to date")], H, "Certificate is up to date"),
    ("Certificate", [cond("Issuing", "True", "Renewing", "Renewing certificate"), cond("Ready", "True")], P,
     "Renewing certificate"),
    ("Certificate", [cond("Ready", "False", "Failed", "issuer not ready")], D, "issuer not ready"),
    ("Certificate", [], P, "Waiting for the certificate to be issued"),
    ("Issuer", [cond("Ready", "True", "ACMEAccountRegistered", "registered")], H, "registered"),
    ("Issuer", [cond("Ready", "False", "ErrRegisterACMEAccount", "no account")], D, "no account"),
    ("Issuer", [], P, "Initializing issuer"),
    ("ClusterIssuer", [cond("Ready", "True", "KeyPairVerified", "Signing CA verified")], H, "Signing CA verified"),
    ("ClusterIssuer", [cond("Ready", "False", "ErrGetKeyPair", "secret not found")], D, "secret not found"),
    ("CertificateRequest", [cond("Approved", "True"), cond("Ready", "True", "Issued", "issued")], H, "issued"),
    ("CertificateRequest", [cond("Approved", "True"), cond("Ready", "False", "Pending", "waiting on order")], P,
     "waiting on order"),
    ("CertificateRequest", [cond("Ready", "False", "Failed", "order failed")], D, "order failed"),
    ("CertificateRequest", [cond("Denied", "True", "policy", "denied by policy")], D, "denied by policy"),
    ("CertificateRequest", [cond("InvalidRequest", "True", "BadCSR", "bad CSR")], D, "bad CSR"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "conditions", "expected", "message"), CERT_CASES)
def test_cert_manager(kind: str, conditions: list[dict[str, str]], expected: HealthStatus, message: str) -> None:
    """cert-manager: Ready decides; Issuing (a renewal under way) is Progressing even while Ready is True."""
    result = health_of(obj("cert-manager.io/v1", kind, status={"conditions": conditions}))
    assert result is not None
    assert (result.status, result.message, result.source) == (
        expected, message, f"built-in: {kind} (cert-manager.io)")  # fmt: skip


@pytest.mark.parametrize(
    ("status", "expected", "message"),
    [
        ({"observedGeneration": 3, "conditions": [cond("Synced", "True", "", "")]}, H, "Secret is unsealed"),
        ({"observedGeneration": 3, "conditions": [cond("Synced", "False", "ErrUnsealFailed", "no key could decrypt")]},
         D, "no key could decrypt"),
        ({"observedGeneration": 2, "conditions": [cond("Synced", "True")]}, P,
         "Waiting for the controller to observe generation 3"),
        (None, P, "Waiting for the controller to unseal the secret"),
    ],
)  # fmt: skip
def test_sealed_secret(status: dict[str, Any] | None, expected: HealthStatus, message: str) -> None:
    """SealedSecret: Synced True once the Secret is unsealed, False when it cannot be."""
    result = health_of(obj("bitnami.com/v1alpha1", "SealedSecret", status=status))
    assert result is not None
    assert (result.status, result.message, result.source) == (expected, message, "built-in: SealedSecret (bitnami.com)")


@pytest.mark.parametrize(
    ("phase", "weight", "expected", "message"),
    [
        ("Initialized", 0, H, "phase Initialized"),
        ("Succeeded", 0, H, "phase Succeeded"),
        ("Progressing", 30, P, "phase Progressing; canary weight 30"),
        ("Promoting", 0, P, "phase Promoting"),
        ("Finalising", 0, P, "phase Finalising"),
        ("Waiting", 0, S, "phase Waiting"),
        ("WaitingPromotion", 50, S, "phase WaitingPromotion; canary weight 50"),
        ("Failed", 0, D, "phase Failed"),
        ("", 0, P, "Waiting for Flagger to initialise the canary"),
        ("Exploded", 0, U, "phase Exploded"),
    ],
)  # fmt: skip
def test_flagger_canary(phase: str, weight: int, expected: HealthStatus, message: str) -> None:
    """Flagger Canary by phase; the confirm-rollout/confirm-promotion gates are Suspended."""
    result = health_of(obj("flagger.app/v1beta1", "Canary", status={"phase": phase, "canaryWeight": weight}))
    assert result is not None
    assert (result.status, result.message, result.source) == (expected, message, "built-in: Canary (flagger.app)")


def test_unsupported_crd_version_is_unknown() -> None:
    """A version the rule was not written for is Unknown, never judged by a rule that may misread it."""
    result = health_of(obj("kustomize.toolkit.fluxcd.io/v9", "Kustomization", status={}))
    assert result is not None and result.status is U and result.source == "built-in: Kustomization (kustomize.toolkit.fluxcd.io)"


def test_every_rule_is_documented() -> None:
    """docs/health.md names every kind RULES dispatches on."""
    from pathlib import Path

    from core.reconcile.health import RULES

    doc = (Path(__file__).resolve().parents[2] / "docs" / "health.md").read_text()
    assert [kind for _, kind in RULES if f"`{kind}`" not in doc] == []


GARBAGE: list[Any] = [
    "a string", 7, [1, 2], {"phase": 3, "conditions": "Ready"}, {"conditions": [None, 5, {"type": 3}]},
    {"observedGeneration": "x", "currentStepIndex": "1", "replicas": "3", "updatedReplicas": "1",
     "availableReplicas": [], "pauseConditions": "CanaryPauseStep", "abort": "yes", "health": "Healthy",
     "sync": [], "history": "1.0", "artifact": "rev", "latestRef": 3, "lastScanResult": {"tagCount": "9"},
     "canaryWeight": "50"},
]  # fmt: skip


@pytest.mark.parametrize("status", GARBAGE)
def test_malformed_status_never_raises(status: Any) -> None:
    """Every built-in rule and the conventions take malformed status values without raising."""
    from core.reconcile.health import RULES

    for (group, kind), (_, versions) in RULES.items():
        api_version = f"{group}/{sorted(versions)[0]}" if group else sorted(versions)[0]
        spec = {"replicas": "2", "paused": "no", "suspend": "true", "strategy": {"canary": {"steps": "x"}}}
        result = health_of({"apiVersion": api_version, "kind": kind, "metadata": {"generation": "2"},
                            "spec": spec, "status": status})  # fmt: skip
        assert result is None or result.source, (kind, result)
    health_of({"apiVersion": "example.com/v1", "kind": "Widget", "status": status})
