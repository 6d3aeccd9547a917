"""Simulated kubelet: the status a Pod reports at a given age, and the names controllers give objects.

Role: pure functions that decide a pod's phase, conditions and container statuses from its spec and
how long it has existed. An image whose reference contains ``crashloop`` restarts forever
(``CrashLoopBackOff``); one containing ``imagepull`` never starts (``ImagePullBackOff``); anything
else becomes Ready after ``ready_delay`` seconds (and, for Job pods, Succeeded).

Constraint: pure; time comes in as numbers. Only ``core.simulated`` imports it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.live.api import JSON
from core.simulated.objects import rfc3339

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
FAILING_REASONS = frozenset({"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull"})


@dataclass(frozen=True, slots=True)
class SimulationTiming:
    """How fast the simulated cluster moves; ``instant()`` for tests."""

    ready_delay: float = 1.5
    """Seconds from a pod's creation until it is Ready (or a Job pod has Succeeded)."""
    progress_deadline: float = 6.0
    """Seconds a failing rollout takes to report ``ProgressDeadlineExceeded`` (a Job: ``Failed``)."""
    restart_interval: float = 10.0
    """Seconds between restarts of a crash-looping container (its ``restartCount`` grows)."""
    tick: float = 0.5
    """The controller loop's period, for time-driven transitions; changes wake it at once. Passes that write
    nothing stretch it, up to ``simulated_cluster.IDLE_TICKS`` ticks."""
    bookmark_interval: float = 5.0
    """Seconds between BOOKMARK events on an open watch."""
    latency: float = 0.0
    """Seconds every API call waits before answering."""

    @classmethod
    def instant(cls) -> SimulationTiming:
        """No delays: every transition happens on the next controller pass (for tests)."""
        return cls(ready_delay=0.0, progress_deadline=0.0, restart_interval=0.0, tick=0.02, bookmark_interval=0.02)


def safe_hash(value: Any, length: int = 10) -> str:
    """A stable hash of a JSON value in the alphabet Kubernetes uses for generated names."""
    number = int(hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest(), 16)
    chars = []
    for _ in range(length):
        number, digit = divmod(number, len(_SAFE_ALPHABET))
        chars.append(_SAFE_ALPHABET[digit])
    return "".join(chars)


def failure_of(image: str) -> str:
    """The waiting reason a container running ``image`` ends up in; ``""`` for a good image."""
    lowered = image.lower()
    if "crashloop" in lowered:
        return "CrashLoopBackOff"
    if "imagepull" in lowered:
        return "ImagePullBackOff"
    return ""


def is_failing(pod: Mapping[str, Any]) -> bool:
    """Whether a container of ``pod`` waits for an error reason (crash loop, image pull)."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return any(((s.get("state") or {}).get("waiting") or {}).get("reason") in FAILING_REASONS for s in statuses)


def is_ready(pod: Mapping[str, Any]) -> bool:
    """Whether the pod's Ready condition is True."""
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_status(pod: Mapping[str, Any], *, born: float, now: float, timing: SimulationTiming, restarts: int,
               pod_ip: str) -> JSON:
    """The status the kubelet reports for ``pod`` at ``now``.

    Args:
        pod: the pod.
        born: when the simulation first saw it.
        now: the current time.
        timing: the simulation's delays.
        restarts: extra restarts injected by the fault knobs.
        pod_ip: the pod's IP address.
    """
    spec = pod.get("spec") or {}
    containers = [c for c in spec.get("containers") or () if isinstance(c, Mapping)]
    age = now - born
    finite = spec.get("restartPolicy") in ("Never", "OnFailure")
    failure = next((f for c in containers if (f := failure_of(str(c.get("image", ""))))), "")
    started = rfc3339(born)
    state: JSON
    if age < timing.ready_delay:
        phase, state = "Pending", {"waiting": {"reason": "ContainerCreating"}}
    elif failure == "ImagePullBackOff":
        phase, state = "Pending", {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}
    elif finite:
        code = 1 if failure else 0
        phase = "Failed" if failure else "Succeeded"
        state = {"terminated": {"exitCode": code, "reason": "Error" if failure else "Completed",
                                "startedAt": started, "finishedAt": rfc3339(born + timing.ready_delay)}}
    elif failure:
        phase, state = "Running", {"waiting": {"reason": "CrashLoopBackOff",
                                               "message": "back-off 5m0s restarting failed container"}}
    else:
        phase, state = "Running", {"running": {"startedAt": started}}
    crash_restarts = _crash_restarts(age, timing) if failure == "CrashLoopBackOff" and not finite else 0
    ready = "running" in state
    statuses = [_container_status(c, state, ready=ready, restarts=restarts + crash_restarts, started=started)
                for c in containers]
    status: JSON = {
        "phase": phase,
        "conditions": _pod_conditions(ready=ready, started=started, pending=age < timing.ready_delay,
                                      finished=phase in ("Succeeded", "Failed")),
        "hostIP": "10.0.0.10",
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": started,
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
    }
    return status


def _crash_restarts(age: float, timing: SimulationTiming) -> int:
    if timing.restart_interval <= 0:
        return 1
    return 1 + int((age - timing.ready_delay) / timing.restart_interval)


def _container_status(container: Mapping[str, Any], state: JSON, *, ready: bool, restarts: int,
                      started: str) -> JSON:
    status: JSON = {
        "name": container.get("name", ""),
        "image": container.get("image", ""),
        "imageID": "",
        "ready": ready,
        "started": ready,
        "restartCount": restarts,
        "state": state,
    }
    if restarts:
        status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started,
                                              "finishedAt": started}}
    return status


def _pod_conditions(*, ready: bool, started: str, pending: bool, finished: bool) -> list[JSON]:
    value = "True" if ready else "False"
    reason = {} if ready else {"reason": "PodCompleted" if finished else "ContainersNotReady"}

    def condition(kind: str, status: str, extra: Mapping[str, str]) -> JSON:
        return {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": started, **extra}

    return [
        condition("PodReadyToStartContainers", "False" if pending else "True", {}),
        condition("Initialized", "True", {}),
        condition("Ready", value, reason),
        condition("ContainersReady", value, reason),
        condition("PodScheduled", "True", {}),
    ]
