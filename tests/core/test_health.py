"""Health rules against golden fixtures, and app-level aggregation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core.model import Health, HealthStatus, ResourceKey
from core.reconcile.health import app_health, health_of

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "health"


def _fixture_params() -> list[Any]:
    """One param per golden file: (object, expected status or None, expected message, expected source)."""
    params = []
    for path in sorted(FIXTURES.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        expected = doc["expected"]
        params.append(
            pytest.param(doc["object"], expected["status"], expected["message"], expected["source"], id=path.stem)
        )
    return params


@pytest.mark.parametrize(("obj", "status", "message", "source"), _fixture_params())
def test_health_matches_golden_fixture(
    obj: dict[str, Any], status: str | None, message: str | None, source: str | None
) -> None:
    """Every fixture's object gets exactly the status, message and source recorded next to it."""
    result = health_of(obj)
    if status is None:
        assert result is None and source is None
    else:
        assert result == Health(HealthStatus(status), message or "", source or "")


def test_fixture_names_follow_kind_state_convention() -> None:
    """Fixture files are named <kind>-<state>.yaml and cover every built-in kind."""
    kinds = {path.stem.split("-")[0] for path in FIXTURES.glob("*.yaml")}
    assert {
        "deployment", "statefulset", "daemonset", "replicaset", "pod", "service", "ingress", "pvc", "job",
        "hpa", "apiservice", "crd", "cronjob", "customresource",
    } <= kinds  # fmt: skip


def test_hook_finalizer_keeps_builtin_rule_while_deleting() -> None:
    """A deleting object held by the hook finalizer is judged by its rule, not as pending deletion."""
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "data",
            "deletionTimestamp": "2026-05-02T10:00:00Z",
            "finalizers": ["argocd.argoproj.io/hook-finalizer"],
        },
        "status": {"phase": "Bound"},
    }
    assert health_of(pvc) == Health(HealthStatus.HEALTHY, source="built-in: PersistentVolumeClaim")


def test_hpa_v1_bad_annotation_is_unknown() -> None:
    """A v1 HPA whose conditions annotation is not JSON is Unknown, with the parse error."""
    hpa = {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": "web",
            "annotations": {"autoscaling.alpha.kubernetes.io/conditions": "{not json"},
        },
    }
    result = health_of(hpa)
    assert result is not None and result.status is HealthStatus.UNKNOWN
    assert result.message.startswith("failed to convert conditions annotation to typed")


def _key(kind: str, name: str) -> ResourceKey:
    return ResourceKey(group="apps" if kind == "Deployment" else "", kind=kind, namespace="ns", name=name)


HEALTHY = Health(HealthStatus.HEALTHY)
MISSING = Health(HealthStatus.MISSING)
DEGRADED = Health(HealthStatus.DEGRADED, "boom")
PROGRESSING = Health(HealthStatus.PROGRESSING)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        pytest.param([], Health(HealthStatus.HEALTHY), id="no-resources-healthy"),
        pytest.param([(_key("Deployment", "web"), HEALTHY)], HEALTHY, id="all-healthy"),
        pytest.param(
            [(_key("Deployment", "web"), HEALTHY), (_key("ConfigMap", "cfg"), None)],
            HEALTHY,
            id="no-rule-skipped",
        ),
        pytest.param(
            [(_key("Deployment", "web"), HEALTHY), (_key("Service", "svc"), MISSING)],
            HEALTHY,
            id="missing-does-not-lower",
        ),
        pytest.param(
            [(_key("Deployment", "web"), MISSING), (_key("Service", "svc"), MISSING)],
            Health(HealthStatus.MISSING, "No resources are live"),
            id="nothing-live-is-missing",
        ),
        pytest.param(
            [(_key("Deployment", "web"), PROGRESSING), (_key("Service", "svc"), HEALTHY)],
            Health(HealthStatus.PROGRESSING, "Caused by Deployment/ns/web"),
            id="single-cause",
        ),
        pytest.param(
            [
                (_key("Deployment", "web"), DEGRADED),
                (_key("Deployment", "api"), DEGRADED),
                (_key("Pod", "p"), DEGRADED),
                (_key("Service", "svc"), PROGRESSING),
            ],
            Health(HealthStatus.DEGRADED, "Caused by Deployment/ns/web and 2 more"),
            id="worst-with-more-causes",
        ),
        pytest.param(
            [(_key("Deployment", "web"), Health(HealthStatus.UNKNOWN)), (_key("Pod", "p"), DEGRADED)],
            Health(HealthStatus.UNKNOWN, "Caused by Deployment/ns/web"),
            id="unknown-is-worst",
        ),
    ],
)
def test_app_health_aggregation(entries: list[tuple[ResourceKey, Health | None]], expected: Health) -> None:
    """App health is the worst resource health; Missing only counts when nothing is live."""
    assert app_health(entries) == expected
