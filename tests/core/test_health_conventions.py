"""Custom resources without a kind-specific rule: kstatus, Crossplane, Ready/Available/Synced, status.phase.

Cases follow the documented conventions: kstatus (sigs.k8s.io/cli-utils, "Kubernetes resource status"),
Crossplane's managed-resource conditions (Synced: ReconcileSuccess/ReconcileError/ReconcilePaused; Ready:
Available/Creating/Deleting/Unavailable), and the HPA conditions of the Kubernetes autoscaling API.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.model import HealthStatus
from core.reconcile.health import health_of
from core.reconcile.health_conventions import PHASES

H, P, D, S, U = (HealthStatus.HEALTHY, HealthStatus.PROGRESSING, HealthStatus.DEGRADED,
                 HealthStatus.SUSPENDED, HealthStatus.UNKNOWN)  # fmt: skip


def widget(status: dict[str, Any] | None = None, generation: int = 2, group: str = "example.com") -> dict[str, Any]:
    """A custom resource of a kind no rule knows."""
    obj: dict[str, Any] = {"apiVersion": f"{group}/v1", "kind": "Widget",
                           "metadata": {"name": "w", "namespace": "shop", "generation": generation}}  # fmt: skip
    if status is not None:
        obj["status"] = status
    return obj


def cond(kind: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    """One status condition."""
    return {"type": kind, "status": status, "reason": reason, "message": message}


CASES = [
    # (id, status, expected status, expected message, expected source)
    ("kstatus-ready", {"observedGeneration": 2, "conditions": [cond("Ready", "True", "Done", "all good")]},
     H, "all good", "kstatus conditions"),
    ("kstatus-reconciling", {"conditions": [cond("Reconciling", "True", "Progressing", "applying"),
                                            cond("Ready", "Unknown", "Progressing")]},
     P, "applying", "kstatus conditions"),
    ("kstatus-stalled", {"conditions": [cond("Stalled", "True", "BadSpec", "spec.size is invalid"),
                                        cond("Ready", "True")]},
     D, "spec.size is invalid", "kstatus conditions"),
    ("kstatus-ready-false-failed", {"conditions": [cond("Ready", "False", "InstallFailed", "chart failed")]},
     D, "chart failed", "kstatus conditions"),
    ("kstatus-ready-false-waiting", {"conditions": [cond("Ready", "False", "Waiting", "waiting for pods")]},
     P, "waiting for pods", "kstatus conditions"),
    ("not-observed", {"observedGeneration": 1, "conditions": [cond("Ready", "True")]},
     P, "Waiting for the controller to observe generation 2", "status.observedGeneration"),
    ("not-observed-string", {"observedGeneration": "1", "conditions": [cond("Ready", "True")]},
     P, "Waiting for the controller to observe generation 2", "status.observedGeneration"),
    ("crossplane-healthy", {"conditions": [cond("Synced", "True", "ReconcileSuccess"),
                                           cond("Ready", "True", "Available")]},
     H, "", "Crossplane conditions"),
    ("crossplane-creating", {"conditions": [cond("Synced", "True", "ReconcileSuccess"),
                                            cond("Ready", "False", "Creating")]},
     P, "Creating", "Crossplane conditions"),
    ("crossplane-reconcile-error", {"conditions": [cond("Synced", "False", "ReconcileError", "cannot create bucket"),
                                                   cond("Ready", "False", "Creating")]},
     D, "cannot create bucket", "Crossplane conditions"),
    ("crossplane-unavailable", {"conditions": [cond("Synced", "True", "ReconcileSuccess"),
                                               cond("Ready", "False", "Unavailable", "instance down")]},
     D, "instance down", "Crossplane conditions"),
    ("crossplane-paused", {"conditions": [cond("Synced", "False", "ReconcilePaused"), cond("Ready", "True")]},
     S, "ReconcilePaused", "Crossplane conditions"),
    ("available-true", {"conditions": [cond("Available", "True", "MinimumReplicasAvailable", "up")]},
     H, "up", "status conditions"),
    ("available-false", {"conditions": [cond("Available", "False", "MinimumReplicasUnavailable", "2 of 3")]},
     P, "2 of 3", "status conditions"),
    ("synced-only-true", {"conditions": [cond("Synced", "True")]}, H, "", "status conditions"),
    ("synced-only-error", {"conditions": [cond("Synced", "False", "SyncError", "boom")]},
     D, "boom", "status conditions"),
    ("phase-running", {"phase": "Running"}, H, "phase Running", "status.phase"),
    ("phase-bound-message", {"phase": "Bound", "message": "bound to pv-1"}, H, "bound to pv-1", "status.phase"),
    ("phase-pending", {"phase": "Pending"}, P, "phase Pending", "status.phase"),
    ("phase-provisioning", {"phase": "provisioning"}, P, "phase provisioning", "status.phase"),
    ("phase-failed", {"phase": "Failed", "message": "quota exceeded"}, D, "quota exceeded", "status.phase"),
    ("phase-paused", {"phase": "Paused"}, S, "phase Paused", "status.phase"),
    ("phase-unknown-word", {"phase": "Blooming"}, U, "unrecognised phase Blooming", "status.phase"),
]


@pytest.mark.parametrize(("status", "expected", "message", "source"),
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])  # fmt: skip
def test_conventions(status: dict[str, Any], expected: HealthStatus, message: str, source: str) -> None:
    """Each convention gives the documented verdict and names itself as the source."""
    result = health_of(widget(status))
    assert result is not None
    assert (result.status, result.message, result.source) == (expected, message, source)


@pytest.mark.parametrize("status", [None, {}, {"observedGeneration": 2}, {"conditions": [cond("Foo", "True")]}])
def test_nothing_to_judge_is_no_rule(status: dict[str, Any] | None) -> None:
    """No conditions we know and no phase: no verdict at all, never a guessed Healthy."""
    assert health_of(widget(status)) is None


def test_kubernetes_groups_are_not_judged_by_conventions() -> None:
    """A Kubernetes kind without a rule (a PodDisruptionBudget with conditions) has no health."""
    pdb = widget({"conditions": [cond("Ready", "True")]}, group="policy")
    assert health_of(pdb) is None


def test_phase_vocabulary_is_documented() -> None:
    """Every phase word in the vocabulary is listed in docs/health.md."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "health.md").read_text()
    assert [word for word in PHASES if f"`{word}`" not in doc] == []


def hpa(*conditions: dict[str, str]) -> dict[str, Any]:
    """An autoscaling/v2 HPA with the given conditions, in order."""
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
            "status": {"conditions": list(conditions)}}  # fmt: skip


ABLE = cond("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")


@pytest.mark.parametrize(
    ("conditions", "expected", "message"),
    [
        pytest.param([ABLE, cond("ScalingActive", "True", "ValidMetricFound")], H,
                     "recommended size matches current size", id="healthy"),
        pytest.param([ABLE, cond("ScalingActive", "False", "FailedGetResourceMetric", "no cpu metrics")], D,
                     "no cpu metrics", id="failed-resource-metric-after-able-to-scale"),
        pytest.param([ABLE, cond("ScalingActive", "False", "FailedGetExternalMetric", "no queue length")], D,
                     "no queue length", id="failed-external-metric"),
        pytest.param([ABLE, cond("ScalingActive", "False", "InvalidMetricSourceType", "bad type")], D,
                     "bad type", id="invalid-metric-source"),
        pytest.param([cond("AbleToScale", "False", "FailedGetScale", "no scale subresource")], D,
                     "no scale subresource", id="able-to-scale-failed"),
        pytest.param([cond("AbleToScale", "False", "BackoffBoth", "within the forbidden window")], P,
                     "Waiting to Autoscale", id="able-to-scale-backoff-is-normal"),
        pytest.param([ABLE, cond("ScalingActive", "False", "ScalingDisabled", "scaling is disabled")], H,
                     "recommended size matches current size", id="scaling-disabled-is-not-a-failure"),
    ],
)  # fmt: skip
def test_hpa_failed_metric_is_degraded(conditions: list[dict[str, str]], expected: HealthStatus, message: str) -> None:
    """Argo CD: an HPA that cannot read its metrics is Degraded, even when AbleToScale True comes first."""
    result = health_of(hpa(*conditions))
    assert result is not None
    assert (result.status, result.message, result.source) == (expected, message, "built-in: HorizontalPodAutoscaler")
