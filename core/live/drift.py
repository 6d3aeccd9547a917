"""Server-side apply dry run for drift detection, with its errors classified.

Role: send the desired object as a dry-run SSA PATCH (``fieldValidation=Strict``, forced, fixed field
manager) and return the server's predicted live object, or a typed verdict the engine can act on:
requires-replace (immutable field), invalid, or a reason to fall back to the local structural diff
(kind or namespace missing, forbidden, read-only, webhook without dry-run support, cluster unavailable).

Constraint: this is the only place that interprets dry-run errors; it never sends a real write
(``dry_run=True`` always) and it goes through whatever ``KubeAPI`` it is handed (the guard in practice).
Comparison of predicted against live is pure and lives in ``core.reconcile``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.errors import ClusterError, ReadOnlyError
from core.live.api import JSON, APIResource, KubeAPI

_IMMUTABLE = re.compile(r"(?i)is immutable|immutable field|field is immutable")
_UNKNOWN_FIELD = re.compile(r"(?i)unknown field|field not declared in schema|strict decoding error")
_NO_DRY_RUN = re.compile(r"(?i)does not support dry run|sideEffects")


class DryRunVerdict(StrEnum):
    """What a dry run told us about one desired object."""

    PREDICTED = "predicted"
    """The server accepted it; ``predicted`` is what live would become."""
    REQUIRES_REPLACE = "requires-replace"
    """An immutable field differs: only delete + recreate can apply it."""
    INVALID = "invalid"
    """The server rejects the manifest (schema, unknown field, admission)."""
    KIND_MISSING = "kind-missing"
    """404: the kind (CRD) or the namespace does not exist yet; compare locally."""
    FORBIDDEN = "forbidden"
    """403: the credentials may not patch; compare locally (approximate)."""
    UNSUPPORTED = "unsupported"
    """A webhook cannot run in dry-run mode; compare locally."""
    REFUSED = "refused"
    """Read-only mode: no dry run is sent; compare locally."""
    UNAVAILABLE = "unavailable"
    """No answer, throttled or a server error; compare locally and retry later."""


_FALLBACK = frozenset({DryRunVerdict.KIND_MISSING, DryRunVerdict.FORBIDDEN, DryRunVerdict.UNSUPPORTED,
                       DryRunVerdict.REFUSED, DryRunVerdict.UNAVAILABLE})


@dataclass(frozen=True, slots=True)
class DryRunResult:
    """The outcome of one dry-run apply."""

    verdict: DryRunVerdict
    predicted: JSON | None = None
    message: str = ""
    error: ClusterError | ReadOnlyError | None = None

    @property
    def local_fallback(self) -> bool:
        """Whether the engine should use the local structural diff (flagged approximate) instead."""
        return self.verdict in _FALLBACK

    @property
    def condition(self) -> str:
        """A condition type for the app (``DryRunForbidden``...), ``""`` when there is nothing to say."""
        return {
            DryRunVerdict.FORBIDDEN: "DryRunForbidden", DryRunVerdict.KIND_MISSING: "DryRunKindMissing",
            DryRunVerdict.UNSUPPORTED: "DryRunUnsupported", DryRunVerdict.UNAVAILABLE: "DryRunUnavailable",
        }.get(self.verdict, "")


def dry_run_body(desired: Mapping[str, Any]) -> JSON:
    """The body to send: the desired object without ``managedFields`` and ``resourceVersion`` (a
    resourceVersion in an apply body is a precondition, which a drift check must not impose)."""
    meta = {k: v for k, v in (desired.get("metadata") or {}).items()
            if k not in ("managedFields", "resourceVersion")}
    return {**desired, "metadata": meta}


def classify(error: ClusterError) -> DryRunVerdict:
    """Map a dry-run failure to a verdict."""
    text = error.message
    if error.status in (400, 422) and _IMMUTABLE.search(text):
        return DryRunVerdict.REQUIRES_REPLACE
    if error.status == 404:
        return DryRunVerdict.KIND_MISSING
    if error.status == 403:
        return DryRunVerdict.FORBIDDEN
    if _NO_DRY_RUN.search(text) and error.status in (400, 500):
        return DryRunVerdict.UNSUPPORTED
    if error.status in (400, 409, 422) or _UNKNOWN_FIELD.search(text):
        return DryRunVerdict.INVALID
    return DryRunVerdict.UNAVAILABLE


async def dry_run_apply(api: KubeAPI, resource: APIResource, desired: Mapping[str, Any], *,
                        field_manager: str) -> DryRunResult:
    """Predict what applying ``desired`` would make live, without changing anything.

    Args:
        api: the cluster (through the guard: in read-only mode this returns ``REFUSED`` unsent).
        resource: the served kind of ``desired``.
        desired: the rendered object.
        field_manager: fleetdeck's field manager (ownership as a real apply would take it).

    Returns:
        ``PREDICTED`` with the predicted object, or a verdict with the server's message.
    """
    try:
        predicted = await api.apply(resource, dry_run_body(desired), field_manager=field_manager,
                                    dry_run=True, force=True)
    except ReadOnlyError as exc:
        return DryRunResult(DryRunVerdict.REFUSED, message=exc.message, error=exc)
    except ClusterError as exc:
        return DryRunResult(classify(exc), message=exc.message, error=exc)
    return DryRunResult(DryRunVerdict.PREDICTED, predicted=predicted)
