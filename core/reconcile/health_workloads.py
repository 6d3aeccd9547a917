"""Health rules for workload kinds: Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod, Job, CronJob.

Role: an exact port of gitops-engine's built-in checks (``pkg/health/health_<kind>.go``) and of Argo CD's
CronJob Lua rule, including their messages, over raw live objects. Constraint: pure; each function reads
one object and returns a ``Health``; dispatch, deletion and versions are handled in ``health.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.model import Health, HealthStatus
from core.reconcile.jsonpath import as_dict, as_list, get_in

Obj = Mapping[str, Any]
_HOOK_ANNOTATIONS = ("argocd.argoproj.io/hook", "helm.sh/hook", "fleetdeck.io/hook")
_IGNORE_RESTART_POLICY = ("argocd.argoproj.io/ignore-restart-policy", "fleetdeck.io/ignore-restart-policy")


def _int(value: Any) -> int:
    """An integer field, 0 when absent or malformed (Go's zero value)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _condition(obj: Obj, kind: str) -> Mapping[str, Any] | None:
    """The first ``status.conditions`` entry of ``kind``."""
    return next(
        (c for c in as_list(get_in(obj, "status", "conditions")) if as_dict(c).get("type") == kind), None
    )


def _generations(obj: Obj) -> tuple[int, int]:
    """``(metadata.generation, status.observedGeneration)``."""
    return _int(get_in(obj, "metadata", "generation")), _int(get_in(obj, "status", "observedGeneration"))


def deployment_health(obj: Obj) -> Health:
    """Deployment: paused → Suspended; rollout progress as ``kubectl rollout status`` reads it."""
    if get_in(obj, "spec", "paused") is True:
        return Health(HealthStatus.SUSPENDED, "Deployment is paused")
    generation, observed = _generations(obj)
    if generation > observed:
        return Health(
            HealthStatus.PROGRESSING,
            "Waiting for rollout to finish: observed deployment generation less then desired generation",
        )
    status = as_dict(obj.get("status"))
    replicas, updated = get_in(obj, "spec", "replicas"), _int(status.get("updatedReplicas"))
    progressing = _condition(obj, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        name = get_in(obj, "metadata", "name", default="")
        return Health(HealthStatus.DEGRADED, f'Deployment "{name}" exceeded its progress deadline')
    if isinstance(replicas, int) and updated < replicas:
        return Health(
            HealthStatus.PROGRESSING,
            f"Waiting for rollout to finish: {updated} out of {replicas} new replicas have been updated...",
        )
    if _int(status.get("replicas")) > updated:
        old = _int(status.get("replicas")) - updated
        return Health(
            HealthStatus.PROGRESSING,
            f"Waiting for rollout to finish: {old} old replicas are pending termination...",
        )
    available = _int(status.get("availableReplicas"))
    if available < updated:
        return Health(
            HealthStatus.PROGRESSING,
            f"Waiting for rollout to finish: {available} of {updated} updated replicas are available...",
        )
    return Health(HealthStatus.HEALTHY)


def statefulset_health(obj: Obj) -> Health:
    """StatefulSet: observed generation, ready replicas, then the update strategy's progress."""
    generation, observed = _generations(obj)
    if observed == 0 or generation > observed:
        return Health(HealthStatus.PROGRESSING, "Waiting for statefulset spec update to be observed...")
    status, replicas = as_dict(obj.get("status")), get_in(obj, "spec", "replicas")
    ready, updated = _int(status.get("readyReplicas")), _int(status.get("updatedReplicas"))
    if isinstance(replicas, int) and ready < replicas:
        return Health(HealthStatus.PROGRESSING, f"Waiting for {replicas - ready} pods to be ready...")
    strategy = as_dict(get_in(obj, "spec", "updateStrategy"))
    if strategy.get("type") == "RollingUpdate" and isinstance(strategy.get("rollingUpdate"), Mapping):
        partition = get_in(strategy, "rollingUpdate", "partition")
        if isinstance(replicas, int) and isinstance(partition, int) and updated < replicas - partition:
            return Health(
                HealthStatus.PROGRESSING,
                "Waiting for partitioned roll out to finish: "
                f"{updated} out of {replicas - partition} new pods have been updated...",
            )
        return Health(
            HealthStatus.HEALTHY, f"partitioned roll out complete: {updated} new pods have been updated..."
        )
    if strategy.get("type") == "OnDelete":
        return Health(HealthStatus.HEALTHY, f"statefulset has {ready} ready pods")
    update_revision, current_revision = status.get("updateRevision", ""), status.get("currentRevision", "")
    if update_revision != current_revision:
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}...",
        )
    current = _int(status.get("currentReplicas"))
    return Health(
        HealthStatus.HEALTHY,
        f"statefulset rolling update complete {current} pods at revision {current_revision}...",
    )


def daemonset_health(obj: Obj) -> Health:
    """DaemonSet: observed generation, then updated and available pods against desired."""
    generation, observed = _generations(obj)
    if generation > observed:
        return Health(
            HealthStatus.PROGRESSING,
            "Waiting for rollout to finish: observed daemon set generation less then desired generation",
        )
    status, name = as_dict(obj.get("status")), get_in(obj, "metadata", "name", default="")
    desired, updated = _int(status.get("desiredNumberScheduled")), _int(status.get("updatedNumberScheduled"))
    if get_in(obj, "spec", "updateStrategy", "type") == "OnDelete":
        return Health(
            HealthStatus.HEALTHY, f"daemon set {updated} out of {desired} new pods have been updated"
        )
    if updated < desired:
        return Health(
            HealthStatus.PROGRESSING,
            f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} new pods have been updated...',
        )
    available = _int(status.get("numberAvailable"))
    if available < desired:
        return Health(
            HealthStatus.PROGRESSING,
            f'Waiting for daemon set "{name}" rollout to finish: {available} of {desired} updated pods are available...',
        )
    return Health(HealthStatus.HEALTHY)


def replicaset_health(obj: Obj) -> Health:
    """ReplicaSet: a true ReplicaFailure condition → Degraded; fewer available than wanted → Progressing."""
    generation, observed = _generations(obj)
    if generation > observed:
        return Health(
            HealthStatus.PROGRESSING,
            "Waiting for rollout to finish: observed replica set generation less then desired generation",
        )
    failure = _condition(obj, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return Health(HealthStatus.DEGRADED, str(failure.get("message") or ""))
    replicas, available = get_in(obj, "spec", "replicas"), _int(get_in(obj, "status", "availableReplicas"))
    if isinstance(replicas, int) and available < replicas:
        return Health(
            HealthStatus.PROGRESSING,
            f"Waiting for rollout to finish: {available} out of {replicas} new replicas are available...",
        )
    return Health(HealthStatus.HEALTHY)


def _waiting_errors(obj: Obj) -> list[str]:
    """Messages of containers waiting for an error reason (``Err*``, ``*Error``, ``*BackOff``)."""
    messages = []
    for status in as_list(get_in(obj, "status", "containerStatuses")):
        waiting = as_dict(get_in(status, "state", "waiting"))
        reason = str(waiting.get("reason") or "")
        if waiting and (reason.startswith("Err") or reason.endswith(("Error", "BackOff"))):
            messages.append(str(waiting.get("message") or ""))
    return messages


def _fail_message(status: Any) -> str:
    """Why a terminated container failed: its message, ``OOMKilled`` or its exit code."""
    terminated = as_dict(get_in(status, "state", "terminated"))
    if terminated.get("message"):
        return str(terminated["message"])
    if terminated.get("reason") == "OOMKilled":
        return "OOMKilled"
    code = _int(terminated.get("exitCode"))
    return f'container "{as_dict(status).get("name", "")}" failed with exit code {code}' if code else ""


def _honours_restart_errors(obj: Obj, restart_policy: str) -> bool:
    """Whether container errors count: restartPolicy Always, or the ignore annotation on a non-hook pod."""
    annotations = as_dict(get_in(obj, "metadata", "annotations"))
    ignored = any(annotations.get(name) == "true" for name in _IGNORE_RESTART_POLICY)
    hook = any(name in annotations for name in _HOOK_ANNOTATIONS)
    return restart_policy == "Always" or (ignored and not hook)


def pod_health(obj: Obj) -> Health:
    """Pod: container errors (for restarting pods), then the phase; finite running pods are Progressing."""
    restart_policy = str(get_in(obj, "spec", "restartPolicy") or "Always")
    errors = _waiting_errors(obj) if _honours_restart_errors(obj, restart_policy) else []
    if errors:
        return Health(HealthStatus.DEGRADED, ", ".join(errors))
    status = as_dict(obj.get("status"))
    phase, message = status.get("phase"), str(status.get("message") or "")
    if phase == "Pending":
        return Health(HealthStatus.PROGRESSING, message)
    if phase == "Succeeded":
        return Health(HealthStatus.HEALTHY, message)
    if phase == "Failed":
        containers = [
            *as_list(status.get("initContainerStatuses")),
            *as_list(status.get("containerStatuses")),
        ]
        reason = message or next((m for c in containers if (m := _fail_message(c))), "")
        return Health(HealthStatus.DEGRADED, reason)
    if phase == "Running":
        return _running_pod_health(obj, restart_policy, message)
    return Health(HealthStatus.UNKNOWN, message)


def _running_pod_health(obj: Obj, restart_policy: str, message: str) -> Health:
    """A running pod: ready → Healthy; restarted and not ready → Degraded; else Progressing."""
    if restart_policy in ("OnFailure", "Never"):
        return Health(HealthStatus.PROGRESSING, message)
    if restart_policy != "Always":
        return Health(HealthStatus.UNKNOWN, message)
    ready = _condition(obj, "Ready")
    if ready is not None and ready.get("status") == "True":
        return Health(HealthStatus.HEALTHY, message)
    statuses = as_list(get_in(obj, "status", "containerStatuses"))
    if any(get_in(s, "lastState", "terminated") is not None for s in statuses):
        return Health(HealthStatus.DEGRADED, message)
    return Health(HealthStatus.PROGRESSING, message)


def job_health(obj: Obj) -> Health:
    """Job: conditions walked by type (Failed, Complete, Suspended); not complete → Progressing."""
    failed = complete = suspended = False
    message = fail_message = ""
    for condition in as_list(get_in(obj, "status", "conditions")):
        kind, text = as_dict(condition).get("type"), str(as_dict(condition).get("message") or "")
        if kind == "Failed":
            failed = complete = True
            fail_message = text
        elif kind in ("Complete", "Suspended"):
            complete, message = True, text
            suspended = suspended or (kind == "Suspended" and condition.get("status") == "True")
    if not complete:
        return Health(HealthStatus.PROGRESSING, message)
    if failed:
        return Health(HealthStatus.DEGRADED, fail_message)
    return Health(
        HealthStatus.SUSPENDED if suspended else HealthStatus.HEALTHY, fail_message if suspended else message
    )


def cronjob_health(obj: Obj) -> Health:
    """CronJob (Argo Lua rule): suspended is Healthy; a last run newer than the last success is Degraded."""
    if get_in(obj, "spec", "suspend") is True:
        return Health(HealthStatus.HEALTHY, "CronJob is Suspended")
    status = obj.get("status")
    if not isinstance(status, Mapping):
        return Health(HealthStatus.PROGRESSING, "Waiting for CronJob")
    scheduled, succeeded = status.get("lastScheduleTime"), status.get("lastSuccessfulTime")
    if scheduled is None:
        return Health(HealthStatus.HEALTHY, "CronJob has not been scheduled yet")
    if succeeded is None:
        return Health(HealthStatus.HEALTHY, "The Cronjob never completed succesfully. It may not be healthy")
    if as_list(status.get("active")):
        return Health(
            HealthStatus.HEALTHY, "The job is running. Its last execution may not have been successful"
        )
    if str(succeeded) < str(scheduled):
        return Health(HealthStatus.DEGRADED, "CronJob has not completed its last execution successfully")
    return Health(HealthStatus.HEALTHY, "CronJob has completed its last execution successfully")
