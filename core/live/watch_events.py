"""Typed live-state events and watch errors shared by the watchers, the cache and the cluster watcher.

Role: the vocabulary between ``core.live.watching`` (producer) and ``core.live.cache`` (consumer).
Constraint: plain values only; no I/O, no asyncio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import ClusterError
from core.live.api import JSON, APIResource
from core.live.compact import CompactObject

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


class _ObjectEvent:
    """An event about one object, carried as a dict or in compact form (``core.live.compact``).

    ``obj`` is the dict either way: a compact event decodes it on first access (the cache never does).
    """

    __slots__ = ("_obj", "compact", "resource")

    def __init__(self, resource: APIResource, obj: JSON | None = None, *, compact: CompactObject | None = None) -> None:
        if obj is None and compact is None:
            raise TypeError("an object event needs obj or compact")
        self.resource = resource
        self._obj = obj
        self.compact = compact
        """The compact form, when the event came straight from a watch line."""

    @property
    def obj(self) -> JSON:
        """The object as the API server sent it."""
        if self._obj is None:
            assert self.compact is not None
            self._obj = self.compact.decode()
        return self._obj

    def _fields(self) -> tuple[Any, ...]:
        return (self.resource, self.obj)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _ObjectEvent)
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(f) for f in self._fields())})"


class Upserted(_ObjectEvent):
    """An object was added or modified."""

    __slots__ = ()


class Deleted(_ObjectEvent):
    """An object was deleted (or, from the cache, is missing from a relist: a synthetic delete)."""

    __slots__ = ("synthetic",)

    def __init__(self, resource: APIResource, obj: JSON | None = None, *, compact: CompactObject | None = None,
                 synthetic: bool = False) -> None:
        super().__init__(resource, obj, compact=compact)
        self.synthetic = synthetic
        """True when the cache inferred the delete from a relist rather than a watch event."""

    def _fields(self) -> tuple[Any, ...]:
        return (self.resource, self.obj, self.synthetic)


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
