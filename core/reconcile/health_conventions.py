"""Health of custom resources from the conventions CRD authors follow, when no rule knows the kind.

Role: the generic rule behind ``health_of`` for resources of non-Kubernetes API groups, and the shared
readers (conditions, observed generation) the kind-specific rules build on. It reads, in order:

1. ``status.observedGeneration`` against ``metadata.generation`` (kstatus): a controller that has not seen
   the latest spec yet says nothing current, so the object is Progressing whatever its conditions say.
2. kstatus conditions (sigs.k8s.io/cli-utils ``kstatus``, also what Flux reports): ``Stalled`` True →
   Degraded, ``Reconciling`` True → Progressing, ``Ready`` True → Healthy.
3. Crossplane managed-resource conditions ``Synced`` and ``Ready`` (reasons ReconcileError,
   ReconcilePaused, Creating, Deleting, Unavailable, Available).
4. The common ``Ready`` / ``Available`` / ``Synced`` condition pattern: True → Healthy; False with a
   ``*Failed*`` / ``*Error*`` reason → Degraded; False otherwise → Progressing.
5. ``status.phase`` words (``PHASES``).

Anything else is not guessed: no conditions and no known phase give None (no rule), and a phase outside the
vocabulary gives Unknown. Constraint: pure; reads one raw live object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.model import Health, HealthStatus
from core.reconcile.jsonpath import as_list, get_in

Obj = Mapping[str, Any]
Cond = Mapping[str, Any]

KSTATUS = "kstatus conditions"
CROSSPLANE = "Crossplane conditions"
CONDITIONS = "status conditions"
PHASE = "status.phase"
GENERATION = "status.observedGeneration"

PHASES: Mapping[str, HealthStatus] = {
    **dict.fromkeys(
        ("Running", "Succeeded", "Successful", "Active", "Bound", "Available", "Ready", "Healthy",
         "Complete", "Completed", "Deployed", "Established", "Online"),
        HealthStatus.HEALTHY,
    ),
    **dict.fromkeys(
        ("Pending", "Progressing", "Provisioning", "Creating", "Initializing", "Installing", "Updating",
         "Upgrading", "Deploying", "Reconciling", "Scaling", "Terminating", "Deleting", "InProgress"),
        HealthStatus.PROGRESSING,
    ),
    **dict.fromkeys(
        ("Failed", "Failure", "Error", "Degraded", "Unhealthy", "Lost", "CrashLoopBackOff", "Unavailable"),
        HealthStatus.DEGRADED,
    ),
    **dict.fromkeys(("Suspended", "Paused", "Stopped"), HealthStatus.SUSPENDED),
}
"""``status.phase`` words and what they mean; matched case-insensitively. Others are Unknown."""

_PHASES_FOLDED = {word.lower(): status for word, status in PHASES.items()}


def conditions(obj: Obj) -> list[Cond]:
    """``status.conditions`` as a list of mappings (malformed entries dropped)."""
    return [c for c in as_list(get_in(obj, "status", "conditions")) if isinstance(c, Mapping)]


def condition(obj: Obj, kind: str) -> Cond | None:
    """The first condition of type ``kind``."""
    return next((c for c in conditions(obj) if c.get("type") == kind), None)


def is_true(cond: Cond | None) -> bool:
    """Whether a condition is present with status True."""
    return cond is not None and cond.get("status") == "True"


def is_false(cond: Cond | None) -> bool:
    """Whether a condition is present with status False."""
    return cond is not None and cond.get("status") == "False"


def text(cond: Cond | None, default: str = "") -> str:
    """A condition's message, else its reason, else ``default``."""
    if cond is None:
        return default
    return str(cond.get("message") or cond.get("reason") or default)


def failed_reason(cond: Cond | None) -> bool:
    """Whether a condition's reason names a failure (contains ``Fail`` or ``Error``)."""
    reason = str((cond or {}).get("reason") or "")
    return "Fail" in reason or "Error" in reason


def _number(value: Any) -> int | None:
    """An integer generation; numeric strings count (Argo Rollouts stores one), others are None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def generation_lag(obj: Obj) -> Health | None:
    """Progressing while ``status.observedGeneration`` is behind ``metadata.generation``, else None."""
    generation = _number(get_in(obj, "metadata", "generation"))
    observed = _number(get_in(obj, "status", "observedGeneration"))
    if generation is not None and observed is not None and observed < generation:
        message = f"Waiting for the controller to observe generation {generation}"
        return Health(HealthStatus.PROGRESSING, message, GENERATION)
    return None


def kstatus_conditions(obj: Obj) -> Health | None:
    """Stalled, Reconciling and Ready as kstatus reads them; a failed Ready/Available is Degraded."""
    stalled = condition(obj, "Stalled")
    if is_true(stalled):
        return Health(HealthStatus.DEGRADED, text(stalled, "Stalled"), KSTATUS)
    for kind in ("Ready", "Available"):
        cond = condition(obj, kind)
        if is_false(cond) and failed_reason(cond):
            return Health(HealthStatus.DEGRADED, text(cond), KSTATUS)
    reconciling = condition(obj, "Reconciling")
    if is_true(reconciling):
        return Health(HealthStatus.PROGRESSING, text(reconciling, "Reconciling"), KSTATUS)
    return None


def crossplane_conditions(obj: Obj) -> Health | None:
    """Crossplane's pair: ``Synced`` (reconcile outcome) and ``Ready`` (the external resource's state)."""
    synced, ready = condition(obj, "Synced"), condition(obj, "Ready")
    if synced is None or ready is None:
        return None
    if synced.get("reason") == "ReconcilePaused":
        return Health(HealthStatus.SUSPENDED, text(synced, "Reconciliation is paused"), CROSSPLANE)
    if is_false(synced):
        return Health(HealthStatus.DEGRADED, text(synced, "Synced is False"), CROSSPLANE)
    if is_true(ready) and is_true(synced):
        return Health(HealthStatus.HEALTHY, str(ready.get("message") or ""), CROSSPLANE)
    if ready.get("reason") == "Unavailable" or failed_reason(ready):
        return Health(HealthStatus.DEGRADED, text(ready, "Unavailable"), CROSSPLANE)
    return Health(HealthStatus.PROGRESSING, text(ready, "Waiting for the resource to become ready"), CROSSPLANE)


def common_conditions(obj: Obj) -> Health | None:
    """The first of Ready, Available, Synced present: True → Healthy, failed → Degraded, else Progressing."""
    for kind in ("Ready", "Available", "Synced"):
        cond = condition(obj, kind)
        if cond is None or cond.get("status") not in ("True", "False", "Unknown"):
            continue
        source = KSTATUS if kind == "Ready" else CONDITIONS
        if is_true(cond):
            return Health(HealthStatus.HEALTHY, str(cond.get("message") or ""), source)
        if is_false(cond) and failed_reason(cond):
            return Health(HealthStatus.DEGRADED, text(cond), source)
        return Health(HealthStatus.PROGRESSING, str(cond.get("message") or ""), source)
    return None


def phase_health(obj: Obj) -> Health | None:
    """``status.phase`` by the ``PHASES`` vocabulary; an unlisted phase is Unknown; no phase is None."""
    phase = get_in(obj, "status", "phase")
    if not isinstance(phase, str) or not phase:
        return None
    message = str(get_in(obj, "status", "message") or get_in(obj, "status", "reason") or "")
    status = _PHASES_FOLDED.get(phase.lower())
    if status is None:
        return Health(HealthStatus.UNKNOWN, f"unrecognised phase {phase}", PHASE)
    return Health(status, message or f"phase {phase}", PHASE)


def convention_health(obj: Obj) -> Health | None:
    """A custom resource's health from the conventions above, or None when it reports nothing to judge."""
    for reader in (generation_lag, kstatus_conditions, crossplane_conditions, common_conditions, phase_health):
        if (verdict := reader(obj)) is not None:
            return verdict
    return None
