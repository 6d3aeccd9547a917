"""Read a cluster's kube-apiserver audit log (JSON lines, audit.k8s.io/v1 Events at Metadata level).

The policy omits the RequestReceived stage, so each request appears once (ResponseComplete, or
ResponseStarted and then ResponseComplete for watches). Useful fields: ``user.username``, ``verb``,
``objectRef`` (resource, namespace, name, apiGroup), ``requestURI`` (query string included, e.g.
``dryRun=All``), ``responseStatus.code`` and ``requestReceivedTimestamp``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

MUTATING_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
REVIEW_RESOURCES = frozenset(
    {
        "selfsubjectaccessreviews",
        "selfsubjectrulesreviews",
        "selfsubjectreviews",
        "subjectaccessreviews",
        "localsubjectaccessreviews",
        "tokenreviews",
    }
)
"""Resources whose ``create`` is a question to the apiserver (nothing is stored), e.g. ``kubectl auth can-i``."""

AuditEvent = dict[str, Any]


class HasAuditLog(Protocol):
    """Anything with an ``audit_log`` path (a :class:`devcluster.ClusterInfo`)."""

    @property
    def audit_log(self) -> Path: ...


def _timestamp(event: AuditEvent) -> dt.datetime:
    raw = event.get("requestReceivedTimestamp") or event.get("stageTimestamp") or ""
    return dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))


def _read_lines(path: Path) -> Iterable[AuditEvent]:
    rotated = sorted(path.parent.glob(f"{path.stem}-*{path.suffix}"))
    for file in [*rotated, path]:
        if not file.exists():
            continue
        with file.open() as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)


def audit_events(cluster: HasAuditLog | Path, since: dt.datetime | None = None) -> list[AuditEvent]:
    """All audit events of ``cluster`` received at or after ``since``, oldest first.

    Args:
        cluster: a :class:`devcluster.ClusterInfo` (or the audit log path itself).
        since: timezone-aware lower bound on ``requestReceivedTimestamp`` (default: everything).

    Returns:
        The events as dicts, only the final stage of each request.
    """
    path = cluster if isinstance(cluster, Path) else cluster.audit_log
    events = [e for e in _read_lines(path) if e.get("stage") == "ResponseComplete"]
    if since is not None:
        events = [e for e in events if _timestamp(e) >= since]
    return events


def username(event: AuditEvent) -> str:
    """The authenticated user name of an event."""
    return str(event.get("user", {}).get("username", ""))


def is_review(event: AuditEvent) -> bool:
    """Whether the event is a non-persisted review request (SelfSubjectAccessReview, TokenReview, ...)."""
    return (event.get("objectRef") or {}).get("resource") in REVIEW_RESOURCES


def mutating_events(
    events: Iterable[AuditEvent], *, user: str | None = None, include_reviews: bool = False
) -> list[AuditEvent]:
    """Events whose verb mutates (create/update/patch/delete/deletecollection), optionally by ``user``.

    Denied attempts (``responseStatus.code`` 403) and dry runs (``dryRun=All`` in ``requestURI``)
    are included; filter on those fields to tell them apart. Review requests such as
    SelfSubjectAccessReview are ``create`` calls that store nothing, so they are left out unless
    ``include_reviews`` is set.
    """
    return [
        e
        for e in events
        if e.get("verb") in MUTATING_VERBS
        and (user is None or username(e) == user)
        and (include_reviews or not is_review(e))
    ]


def wait_for_audit_event(
    cluster: HasAuditLog | Path,
    predicate: Callable[[AuditEvent], bool],
    *,
    since: dt.datetime | None = None,
    timeout: float = 10.0,
) -> AuditEvent:
    """Poll the audit log until an event matches ``predicate`` (the log trails the response slightly).

    Raises:
        TimeoutError: nothing matched within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        for event in audit_events(cluster, since=since):
            if predicate(event):
                return event
        if time.monotonic() > deadline:
            raise TimeoutError(f"no matching audit event within {timeout}s")
        time.sleep(0.2)
