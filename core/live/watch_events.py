"""Typed live-state events and watch errors shared by the watchers, the cache and the cluster watcher.

Role: the vocabulary between ``core.live.watching`` (producer) and ``core.live.cache`` (consumer).
Constraint: plain values only; no I/O, no asyncio.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ClusterError
from core.live.api import JSON, APIResource

MALFORMED_EVENT = "MalformedEvent"
"""``ClusterError.reason`` of a watch line that is not a JSON event (fault K11 in docs/reliability.md): relist the kind."""


@dataclass(frozen=True, slots=True)
class Listed:
    """A complete list of one kind: replaces everything the cache holds for it."""

    resource: APIResource
    items: tuple[JSON, ...]
    resource_version: str
    rewound: bool = False
    """The list's resourceVersion is older than one seen before (etcd restore, fault K14 in docs/reliability.md)."""


@dataclass(frozen=True, slots=True)
class Upserted:
    """An object was added or modified."""

    resource: APIResource
    obj: JSON


@dataclass(frozen=True, slots=True)
class Deleted:
    """An object was deleted (or, from the cache, is missing from a relist: a synthetic delete)."""

    resource: APIResource
    obj: JSON
    synthetic: bool = False
    """True when the cache inferred the delete from a relist rather than a watch event."""


WatchEvent = Listed | Upserted | Deleted


class WatchForbidden(ClusterError):
    """The credentials may not list or watch this kind (403): retried slowly, data kept."""


class KindNotServed(ClusterError):
    """The kind is no longer served (404 on list or watch, e.g. its CRD was deleted): stop watching."""


class Throttled(ClusterError):
    """429 Too Many Requests: wait at least ``retry_after`` seconds (the server's Retry-After)."""

    def __init__(self, message: str, *, cluster: str = "", retry_after: float = 1.0, reason: str = "") -> None:
        super().__init__(message, cluster=cluster, status=429, reason=reason or "TooManyRequests",
                         hint=f"the API server asks to retry after {retry_after:g}s")
        self.retry_after = retry_after


def kind_label(resource: APIResource) -> str:
    """``group/Kind`` (``/ConfigMap`` for the core group), as used in task names and messages."""
    return f"{resource.group}/{resource.kind}"
