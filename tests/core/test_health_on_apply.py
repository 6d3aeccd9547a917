"""Which kinds' health a sync takes from the apply's answer (``core.sync.resources.health_on_apply``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from core.model import Health, HealthStatus
from core.sync.resources import health_on_apply


def obj(api_version: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": "n"}, **fields}


@pytest.mark.parametrize("answer", [
    obj("v1", "ConfigMap", data={"a": "1"}),
    obj("v1", "Secret"),
    obj("v1", "ServiceAccount"),
    obj("v1", "Namespace", status={"phase": "Active"}),
    obj("rbac.authorization.k8s.io/v1", "Role"),
    obj("rbac.authorization.k8s.io/v1", "RoleBinding"),
    obj("rbac.authorization.k8s.io/v1", "ClusterRole"),
    obj("networking.k8s.io/v1", "NetworkPolicy"),
    obj("policy/v1", "PodDisruptionBudget", status={"currentHealthy": 0}),
    obj("v1", "Service", spec={"type": "ClusterIP"}),
    obj("v1", "Service", spec={}),
])
def test_final_on_apply(answer: dict[str, Any]) -> None:
    assert health_on_apply(answer) == (HealthStatus.HEALTHY, "")


@pytest.mark.parametrize("answer", [
    obj("apps/v1", "Deployment", spec={"replicas": 1}),
    obj("apps/v1", "StatefulSet"),
    obj("apps/v1", "DaemonSet"),
    obj("batch/v1", "Job"),
    obj("batch/v1", "CronJob"),
    obj("v1", "Pod"),
    obj("v1", "PersistentVolumeClaim"),
    obj("v1", "Service", spec={"type": "LoadBalancer"}),
    obj("networking.k8s.io/v1", "Ingress"),
    obj("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    obj("autoscaling/v2", "HorizontalPodAutoscaler"),
    obj("widgets.example.com/v1", "Widget", status={"conditions": [{"type": "Ready", "status": "True"}]}),
    obj("argoproj.io/v1alpha1", "Rollout"),
])
def test_read_after_the_wave_when_a_controller_decides(answer: dict[str, Any]) -> None:
    assert health_on_apply(answer) is None


def test_an_object_being_deleted_is_read() -> None:
    answer = obj("v1", "ConfigMap")
    answer["metadata"]["deletionTimestamp"] = "2026-12-08T00:00:00Z"
    assert health_on_apply(answer) is None


class ConfigMapScript:
    """A health script for ConfigMaps only."""

    def check(self, obj: Mapping[str, Any]) -> Health | None:
        return Health(HealthStatus.PROGRESSING, "waiting") if obj.get("kind") == "ConfigMap" else None


def test_a_kind_a_health_script_covers_is_read() -> None:
    assert health_on_apply(obj("v1", "ConfigMap"), ConfigMapScript()) is None
    assert health_on_apply(obj("v1", "Secret"), ConfigMapScript()) == (HealthStatus.HEALTHY, "")
