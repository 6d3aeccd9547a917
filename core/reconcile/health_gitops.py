"""Health rules for GitOps and delivery CRDs: Argo Rollouts, Argo CD, Flux, Flagger, cert-manager, Sealed Secrets.

Role: one rule per kind, written from each controller's documented status (see ``docs/health.md`` for the
fields each reads and the documentation it follows). They return a ``Health`` without a source;
``health.py`` names the rule (``built-in: Rollout (argoproj.io)``). Constraint: pure; each reads one raw
live object, and an object whose status says nothing yet is Progressing, never Healthy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.model import Health, HealthStatus
from core.reconcile.health_conventions import (
    condition,
    failed_reason,
    generation_lag,
    is_false,
    is_true,
    text,
)
from core.reconcile.jsonpath import as_dict, as_list, get_in

Obj = Mapping[str, Any]
H, P, D, S, U = (HealthStatus.HEALTHY, HealthStatus.PROGRESSING, HealthStatus.DEGRADED,
                 HealthStatus.SUSPENDED, HealthStatus.UNKNOWN)  # fmt: skip


def _status(obj: Obj) -> Mapping[str, Any]:
    """``status`` as a mapping (empty when absent)."""
    return as_dict(obj.get("status"))


def _count(value: Any) -> int:
    """A replica count; 0 when absent or malformed."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _join(*parts: str) -> str:
    """Non-empty parts joined with ``; ``."""
    return "; ".join(part for part in parts if part)


# Argo Rollouts ---------------------------------------------------------------------------------------


def _canary_step(obj: Obj) -> str:
    """``step 2/5, setWeight 20`` for a canary Rollout with steps; empty otherwise."""
    steps = as_list(get_in(obj, "spec", "strategy", "canary", "steps"))
    index = get_in(obj, "status", "currentStepIndex")
    if not steps or not isinstance(index, int) or isinstance(index, bool):
        return ""
    done = steps[: min(index, len(steps) - 1) + 1]
    weights = [w for step in done if isinstance(w := as_dict(step).get("setWeight"), int)]
    weight = 100 if index >= len(steps) else (weights[-1] if weights else 0)
    return f"step {min(index, len(steps))}/{len(steps)}, setWeight {weight}"


def _rollout_pause(obj: Obj) -> str | None:
    """Why a Rollout is paused (its pause reasons), or None when it is not."""
    reasons = [str(as_dict(c).get("reason") or "") for c in as_list(_status(obj).get("pauseConditions"))]
    if get_in(obj, "spec", "paused") is True:
        reasons.insert(0, "PausedByUser")
    if not reasons and _status(obj).get("phase") != "Paused":
        return None
    return "Paused: " + (", ".join(r for r in reasons if r) or "paused")


def _rollout_failure(obj: Obj) -> str | None:
    """Why a Rollout is Degraded (aborted, invalid spec, past its progress deadline), or None."""
    status = _status(obj)
    if status.get("abort") is True:
        return str(status.get("message") or "Rollout is aborted")
    invalid = condition(obj, "InvalidSpec")
    if is_true(invalid):
        return text(invalid, "InvalidSpec")
    progressing = condition(obj, "Progressing")
    if (progressing or {}).get("reason") in ("ProgressDeadlineExceeded", "RolloutAborted"):
        return text(progressing)
    if status.get("phase") == "Degraded":
        return str(status.get("message") or "Degraded")
    return None


def _rollout_replicas(obj: Obj) -> Health:
    """Rollouts without ``status.phase`` (before v1.0): updated and available replicas against desired."""
    status, desired = _status(obj), get_in(obj, "spec", "replicas", default=1)
    updated, available = _count(status.get("updatedReplicas")), _count(status.get("availableReplicas"))
    if isinstance(desired, int) and updated < desired:
        return Health(P, "Waiting for rollout to finish: more replicas need to be updated")
    if available < updated:
        return Health(P, "Waiting for rollout to finish: updated replicas are still becoming available")
    return Health(H)


def rollout_health(obj: Obj) -> Health:
    """Argo Rollouts ``Rollout``: generation, aborted/invalid → Degraded, paused → Suspended, then phase."""
    if not _status(obj) or generation_lag(obj) is not None:
        generation = get_in(obj, "metadata", "generation", default="")
        return Health(P, f"Waiting for the controller to observe generation {generation}".rstrip())
    step = _canary_step(obj)
    if (failure := _rollout_failure(obj)) is not None:
        return Health(D, _join(failure, step))
    if (pause := _rollout_pause(obj)) is not None:
        return Health(S, _join(pause, step))
    phase, message = _status(obj).get("phase"), str(_status(obj).get("message") or "")
    if phase in ("Healthy", "Progressing"):
        return Health(HealthStatus(phase), _join(message, step))
    if phase is None:
        legacy = _rollout_replicas(obj)
        return Health(legacy.status, _join(legacy.message, step))
    return Health(U, f"unrecognised Rollout phase {phase}")


_ANALYSIS_PHASES = {"Pending": P, "Running": P, "Successful": H, "Failed": D, "Error": D, "Inconclusive": U}


def analysisrun_health(obj: Obj) -> Health:
    """Argo Rollouts ``AnalysisRun``: by ``status.phase``; Inconclusive waits for a human, so Unknown."""
    phase = _status(obj).get("phase")
    if not phase:
        return Health(P, "Waiting for the analysis run to start")
    message = str(_status(obj).get("message") or f"Analysis run is {str(phase).lower()}")
    return Health(_ANALYSIS_PHASES.get(str(phase), U), message)


# Argo CD -----------------------------------------------------------------------------------------------


_APP_HEALTH = {"Healthy": H, "Progressing": P, "Degraded": D, "Suspended": S, "Unknown": U, "Missing": P}


def application_health(obj: Obj) -> Health:
    """Argo CD ``Application``: ``status.health.status`` as Argo CD reports it, with the sync status.

    Argo's Missing (its resources not created yet) is Progressing here: the Application itself is live.
    """
    health, sync = as_dict(_status(obj).get("health")), as_dict(_status(obj).get("sync"))
    reported = health.get("status")
    sync_text = f"sync {sync['status']}" if sync.get("status") else ""
    if not reported:
        return Health(P, _join("Waiting for Argo CD to assess the application", sync_text))
    phase = get_in(obj, "status", "operationState", "phase")
    failed = f"last operation {phase}" if phase in ("Failed", "Error") else ""
    message = str(health.get("message") or "")
    if reported == "Missing":
        message = message or "its resources are not created yet (Argo CD: Missing)"
    return Health(_APP_HEALTH.get(str(reported), U), _join(message, sync_text, failed))


# Flux --------------------------------------------------------------------------------------------------


def _flux_revision(obj: Obj) -> str:
    """The revision facts Flux records: applied and attempted revisions, artifact, image tag."""
    status = _status(obj)
    applied, attempted = status.get("lastAppliedRevision"), status.get("lastAttemptedRevision")
    history = as_list(status.get("history"))
    chart = as_dict(history[0]).get("chartVersion") if history else None
    artifact = get_in(obj, "status", "artifact", "revision")
    image = get_in(obj, "status", "latestRef", "tag") or status.get("latestImage")
    tags = get_in(obj, "status", "lastScanResult", "tagCount")
    parts = [
        f"applied {applied}" if applied else "",
        f"chart {chart}" if chart and not applied else "",
        f"attempted {attempted}" if attempted and attempted != applied else "",
        f"artifact {artifact}" if artifact else "",
        f"latest {image}" if image else "",
        f"{tags} tags" if isinstance(tags, int) else "",
    ]
    return ", ".join(part for part in parts if part)


_FLUX_WAITING = frozenset({"DependencyNotReady", "Progressing"})
"""Ready False reasons that mean waiting (on a dependency, or a reconciliation under way), not failure."""


def flux_health(obj: Obj) -> Health:
    """Flux kinds (Kustomization, HelmRelease, sources, image policy/repository): kstatus conditions.

    ``spec.suspend`` → Suspended; not yet observed → Progressing; Stalled → Degraded; Reconciling →
    Progressing (a retry after a failure, ProgressingWithRetry, is Degraded); Ready True → Healthy,
    False → Degraded unless it waits on a dependency (DependencyNotReady); no Ready yet → Progressing.
    """
    kind, revision = str(obj.get("kind") or ""), _flux_revision(obj)
    if get_in(obj, "spec", "suspend") is True:
        return Health(S, _join(f"{kind} is suspended", revision))
    if (lag := generation_lag(obj)) is not None:
        return Health(P, _join(lag.message, revision))
    stalled, ready, reconciling = condition(obj, "Stalled"), condition(obj, "Ready"), condition(obj, "Reconciling")
    if is_true(stalled):
        return Health(D, _join(text(stalled, "Stalled"), revision))
    if is_true(reconciling) and (reconciling or {}).get("reason") == "ProgressingWithRetry":
        return Health(D, _join(text(ready if is_false(ready) else reconciling), revision))
    if is_true(reconciling):
        return Health(P, _join(text(reconciling, "Reconciling"), revision))
    if is_true(ready):
        return Health(H, _join(str((ready or {}).get("message") or ""), revision))
    waiting = (ready or {}).get("reason") in _FLUX_WAITING
    if is_false(ready) and not waiting:
        return Health(D, _join(text(ready, "Ready is False"), revision))
    return Health(P, _join(text(ready, "Waiting for the controller to report Ready"), revision))


# cert-manager ------------------------------------------------------------------------------------------


def certificate_health(obj: Obj) -> Health:
    """cert-manager ``Certificate``: Issuing True → Progressing first, then Ready True/False."""
    issuing, ready = condition(obj, "Issuing"), condition(obj, "Ready")
    if is_true(issuing):
        return Health(P, text(issuing, "Issuing certificate"))
    if is_true(ready):
        return Health(H, text(ready))
    if is_false(ready):
        return Health(D, text(ready, "Certificate is not ready"))
    return Health(P, "Waiting for the certificate to be issued")


def issuer_health(obj: Obj) -> Health:
    """cert-manager ``Issuer`` / ``ClusterIssuer``: the Ready condition."""
    ready = condition(obj, "Ready")
    if is_true(ready):
        return Health(H, text(ready))
    if is_false(ready):
        return Health(D, text(ready, "Issuer is not ready"))
    return Health(P, "Initializing issuer")


def certificaterequest_health(obj: Obj) -> Health:
    """cert-manager ``CertificateRequest``: Denied/InvalidRequest → Degraded; Ready, reason Pending waits."""
    for kind in ("Denied", "InvalidRequest"):
        if is_true(cond := condition(obj, kind)):
            return Health(D, text(cond, kind))
    ready = condition(obj, "Ready")
    if is_true(ready):
        return Health(H, text(ready))
    if is_false(ready) and ((ready or {}).get("reason") in ("Failed", "Denied") or failed_reason(ready)):
        return Health(D, text(ready, "Request failed"))
    return Health(P, text(ready, "Waiting for the request to be signed"))


# Bitnami Sealed Secrets, Flagger ----------------------------------------------------------------------


def sealedsecret_health(obj: Obj) -> Health:
    """Bitnami ``SealedSecret``: the Synced condition (True once the Secret is unsealed)."""
    if (lag := generation_lag(obj)) is not None:
        return Health(P, lag.message)
    synced = condition(obj, "Synced")
    if is_true(synced):
        return Health(H, text(synced, "Secret is unsealed"))
    if is_false(synced):
        return Health(D, text(synced, "Secret could not be unsealed"))
    return Health(P, "Waiting for the controller to unseal the secret")


_CANARY_PHASES = {
    "Initializing": P, "Progressing": P, "Promoting": P, "Finalising": P, "Terminating": P,
    "Initialized": H, "Succeeded": H, "Waiting": S, "WaitingPromotion": S, "Failed": D,
}  # fmt: skip


def canary_health(obj: Obj) -> Health:
    """Flagger ``Canary``: by ``status.phase``; the gates (Waiting, WaitingPromotion) are Suspended."""
    phase = str(_status(obj).get("phase") or "")
    if not phase:
        return Health(P, "Waiting for Flagger to initialise the canary")
    weight = _status(obj).get("canaryWeight")
    promoted = condition(obj, "Promoted")
    parts = [f"phase {phase}", f"canary weight {weight}" if isinstance(weight, int) and weight else "",
             str((promoted or {}).get("message") or "")]  # fmt: skip
    return Health(_CANARY_PHASES.get(phase, U), _join(*parts))
