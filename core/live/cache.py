"""``ClusterCache``: the one mutable store of a cluster's live objects and connection state.

Role: hold every live object per kind exactly as the API server sent it (``managedFields`` included:
drift attribution needs them), stored compactly (see "Storage" below), apply watch events in arrival order, turn a relist into
synthetic deletes for objects that vanished meanwhile, remember which keys changed since the engine
last looked (``drain_dirty``), and derive the cluster's ``ConnectionState`` from per-kind failures.

Constraint: a single writer (the cluster's watcher tasks, all on one event loop) and no I/O, so no locks.
Data is never cleared because a connection failed: a failing kind keeps its last known objects, marked
stale, until a list replaces them or the kind is dropped (its CRD was deleted).

Storage (docs/performance.md, P1/P11): an object is kept as a ``core.live.compact.CompactObject``, its JSON
bytes plus a small projection in one tuple (resourceVersion, labels, owner uids, namespace, name), never as
a tree of dicts. Events from the real client's watch stream arrive already compact (the line's bytes, never
decoded); events carrying dicts (lists, the simulated cluster) are encoded once with ``orjson.dumps``.
A cached Pod costs ~3 KiB instead of ~11 KiB, and the cyclic collector sees two tracked objects per cached
object (its key and its entry tuple; the bytes, strings, labels dict and owners tuple are untracked)
instead of ~40 dicts and lists, so ingest needs no ``gc.freeze``. Readers (``get``,
``objects``, iteration) see freshly decoded dicts equal to what the API server sent; the last
``DECODED_KEPT`` decoded objects are kept (and dropped when their key changes), so an evaluation that
reads the same objects several times decodes them once. Indexes (app label, owner) read the projection
through ``entries`` without decoding anything.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from core.errors import ClusterError
from core.live.api import JSON, APIResource
from core.live.compact import CompactObject, compact
from core.live.watch_events import Deleted, Listed, Throttled, Upserted, WatchEvent
from core.model import ClusterName, ClusterStatus, ConnectionState, ResourceKey

GroupKind = tuple[str, str]

Entry = CompactObject

DECODED_KEPT = 256
"""Decoded objects kept for repeated reads (an LRU; a key's entry is dropped when the object changes). An
evaluation reads a target's few objects several times in a row, which 256 covers (sim-L decodes each object
once with 256 as with 4,096); more only keeps decoded dicts alive for the collector to walk (the resident set
per object at 10 clusters: 10.9 KB with 4,096, 7.3 KB with 256; docs/performance.md)."""


class KindView(Mapping[ResourceKey, "JSON"]):
    """Read-only view of one kind's objects, decoding each on access."""

    __slots__ = ("_cache", "_store")

    def __init__(self, cache: ClusterCache, store: Mapping[ResourceKey, Entry]) -> None:
        self._cache = cache
        self._store = store

    def __getitem__(self, key: ResourceKey) -> JSON:
        entry = self._store[key]
        return self._cache._decoded(key, entry)

    def __iter__(self) -> Iterator[ResourceKey]:
        return iter(self._store)

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, key: object) -> bool:
        return key in self._store


@dataclass(frozen=True, slots=True)
class KindFailure:
    """Why one kind cannot currently be listed or watched."""

    message: str
    since: float
    """Unix time of the first failure of this streak."""
    transient: bool
    """No answer, throttling or a server error (counts towards Unreachable); False for 403 and such."""
    throttled: bool = False
    """429 Too Many Requests: the server answered and asked to wait (the cluster is Throttled)."""


def _key(resource: APIResource, obj: Mapping[str, Any]) -> ResourceKey:
    meta = obj.get("metadata") or {}
    return ResourceKey(group=resource.group, kind=resource.kind, namespace=str(meta.get("namespace") or ""),
                       name=str(meta.get("name") or ""))


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class ClusterCache:
    """Live objects and connection state of one cluster.

    Args:
        cluster: the cluster's name.
        unreachable_after: seconds every kind must have been failing (without answers) before the
            cluster is Unreachable rather than Degraded; a cluster never reached is Unreachable at once.
        clock: Unix time; injected in tests.
    """

    def __init__(self, cluster: str, *, unreachable_after: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        self.cluster = cluster
        self.version = 0
        """Incremented whenever objects or the connection state change."""
        self._clock = clock
        self._unreachable_after = unreachable_after
        self._kinds: dict[GroupKind, dict[ResourceKey, Entry]] = {}
        self._decoded_kept: OrderedDict[ResourceKey, JSON] = OrderedDict()
        self._decoded_limit = DECODED_KEPT
        self.decodes = 0
        """Objects decoded from their compact form (for tests and metrics)."""
        self._list_versions: dict[GroupKind, str] = {}
        self._dirty: set[ResourceKey] = set()
        self._tracked: set[GroupKind] = set()
        self._failing: dict[GroupKind, KindFailure] = {}
        self._unresponsive: KindFailure | None = None
        """Set while the heartbeat gets no answer (a hung or unreachable API server)."""
        self._connected_once = False
        self.state = ConnectionState.CONNECTING
        self.since = clock()
        """Unix time the cluster entered ``state``."""
        self.message = ""
        self._listing: dict[GroupKind, int] = {}
        """Objects listed so far of each kind whose (paged) list is under way (K3 progress)."""
        self.rewound: tuple[float, str] | None = None
        """When and how the cluster's state last went back in time (a list older than one seen before)."""

    # ----- objects ----------------------------------------------------------------------------

    def apply(self, event: WatchEvent) -> tuple[Upserted | Deleted, ...]:
        """Apply one event; returns the effective changes (with synthetic deletes after a relist)."""
        gk = event.resource.group_kind
        if isinstance(event, Listed):
            if event.rewound:
                kind = f"{event.resource.group}/{event.resource.kind}" if event.resource.group else event.resource.kind
                self.rewound = (self._clock(), f"cluster state rewound: {kind} was listed at resourceVersion "
                                f"{event.resource_version}, older than before (etcd restored from a backup?); "
                                f"relisted, objects may have reverted")
            changes = self._replace(event)
            self._list_versions[gk] = event.resource_version
            self._listing.pop(gk, None)
            self.version += 1
        else:
            changes = self._upsert(event) if isinstance(event, Upserted) else self._delete(event)
            if changes:
                self.version += 1
        if gk in self._failing:
            self._clear_failure(gk)
        elif isinstance(event, Listed):
            self.refresh_state()  # the first list of the last kind makes the cluster Connected
        return changes

    def _replace(self, event: Listed) -> tuple[Upserted | Deleted, ...]:
        old = self._kinds.get(event.resource.group_kind, {})
        new: dict[ResourceKey, Entry] = {}
        changes: list[Upserted | Deleted] = []
        for obj in event.items:
            key = _key(event.resource, obj)
            previous = old.get(key)
            if previous is None or previous.resource_version != _version(obj):
                new[key] = compact(obj)
                self._decoded_kept.pop(key, None)
                self._dirty.add(key)
                changes.append(Upserted(resource=event.resource, obj=obj))
            else:
                new[key] = previous
        gone = [key for key in old if key not in new]
        self._dirty.update(gone)
        changes += [self._gone(event.resource, key, old[key]) for key in gone]
        self._kinds[event.resource.group_kind] = new
        return tuple(changes)

    def _upsert(self, event: Upserted) -> tuple[Upserted | Deleted, ...]:
        store = self._kinds.setdefault(event.resource.group_kind, {})
        entry = event.compact
        if entry is not None:
            key = ResourceKey(event.resource.group, event.resource.kind, entry.namespace, entry.name)
            previous = store.get(key)
            if previous is not None and previous.resource_version == entry.resource_version:
                return ()
        else:
            key = _key(event.resource, event.obj)
            previous = store.get(key)
            if previous is not None and previous.resource_version == _version(event.obj):
                return ()
            entry = compact(event.obj)
        store[key] = entry
        if self._decoded_kept:
            self._decoded_kept.pop(key, None)
        self._dirty.add(key)
        return (event,)

    def _delete(self, event: Deleted) -> tuple[Upserted | Deleted, ...]:
        store = self._kinds.get(event.resource.group_kind, {})
        entry = event.compact
        key = (ResourceKey(event.resource.group, event.resource.kind, entry.namespace, entry.name)
               if entry is not None else _key(event.resource, event.obj))
        self._decoded_kept.pop(key, None)
        if store.pop(key, None) is None:
            return ()
        self._dirty.add(key)
        return (event,)

    def _gone(self, resource: APIResource, key: ResourceKey, entry: Entry) -> Deleted:
        """The synthetic delete of an entry leaving the cache (decoded only if someone reads it)."""
        obj = self._decoded_kept.pop(key, None)
        return Deleted(resource, obj, compact=entry, synthetic=True)

    def _decoded(self, key: ResourceKey, entry: Entry) -> JSON:
        kept = self._decoded_kept
        obj = kept.get(key)
        if obj is not None:
            kept.move_to_end(key)
            return obj
        self.decodes += 1
        obj = entry.decode()
        kept[key] = obj
        if len(kept) > self._decoded_limit:
            kept.popitem(last=False)
        return obj

    def keep_decoded(self, count: int) -> None:
        """Keep at most ``count`` decoded objects from now on, dropping the oldest beyond it (0 under memory
        pressure, ``core.memory``: every read decodes the compact form again; the compact forms themselves
        are the only copy of live state and are never dropped)."""
        self._decoded_limit = count
        while len(self._decoded_kept) > count:
            self._decoded_kept.popitem(last=False)

    @property
    def decoded_kept(self) -> int:
        """Decoded objects kept now."""
        return len(self._decoded_kept)

    def drop_kind(self, resource: APIResource) -> tuple[Deleted, ...]:
        """Forget a kind that is no longer served; returns synthetic deletes for its objects."""
        gk = resource.group_kind
        store = self._kinds.pop(gk, {})
        self._list_versions.pop(gk, None)
        self.untrack(gk)
        changes = tuple(self._gone(resource, key, entry) for key, entry in store.items())
        self._dirty.update(store)
        self.version += 1
        return changes

    def get(self, key: ResourceKey) -> JSON | None:
        """The live object at ``key``, if known (decoded; the same dict until the object changes or ages
        out of the ``DECODED_KEPT`` most recently read)."""
        entry = self._kinds.get((key.group, key.kind), {}).get(key)
        return None if entry is None else self._decoded(key, entry)

    def compact(self, key: ResourceKey) -> CompactObject | None:
        """The compact form the cache keeps of the object at ``key`` (``get`` decodes it)."""
        return self._kinds.get((key.group, key.kind), {}).get(key)

    def version_of(self, key: ResourceKey) -> str | None:
        """The resourceVersion of the object at ``key`` (None if unknown), without decoding it."""
        entry = self._kinds.get((key.group, key.kind), {}).get(key)
        return None if entry is None else entry.resource_version

    def objects(self, group: str, kind: str) -> Mapping[ResourceKey, JSON]:
        """Read-only view of one kind's objects (decoded on access)."""
        return KindView(self, self._kinds.get((group, kind), {}))

    def entries(self) -> Iterator[tuple[ResourceKey, Mapping[str, str], tuple[str, ...]]]:
        """``(key, labels, owner uids)`` of every object, without decoding any (for indexes)."""
        for store in self._kinds.values():
            for key, entry in store.items():
                yield key, entry.labels, entry.owners

    def __iter__(self) -> Iterator[JSON]:
        for store in self._kinds.values():
            for key, entry in list(store.items()):
                kept = self._decoded_kept.get(key)
                if kept is None:
                    self.decodes += 1
                yield kept if kept is not None else entry.decode()

    def __len__(self) -> int:
        return sum(len(store) for store in self._kinds.values())

    def listed(self, group: str, kind: str) -> bool:
        """Whether a complete list of the kind has been applied."""
        return (group, kind) in self._list_versions

    @property
    def all_listed(self) -> bool:
        """Whether every tracked kind has been listed at least once."""
        return all(gk in self._list_versions for gk in self._tracked)

    @property
    def first_lists_pending(self) -> tuple[GroupKind, ...]:
        """Tracked kinds never listed and not failing: their first list is under way."""
        return tuple(sorted(gk for gk in self._tracked if gk not in self._list_versions and self.failure(*gk) is None))

    def list_version(self, group: str, kind: str) -> str:
        """The resourceVersion of the kind's last list, ``""`` if never listed."""
        return self._list_versions.get((group, kind), "")

    def list_progress(self, gk: GroupKind, listed: int) -> bool:
        """A list of the kind is under way with ``listed`` objects so far; returns whether that is news."""
        if self._listing.get(gk) == listed:
            return False
        self._listing[gk] = listed
        self.version += 1
        return True

    @property
    def listing(self) -> str:
        """Lists under way, for the cluster's status line: ``listing ConfigMap: 1,500 objects so far``."""
        parts = [f"{f'{g}/{k}' if g else k}: {n:,} objects so far"
                 for (g, k), n in sorted(self._listing.items()) if (g, k) in self._tracked]
        return f"listing {'; '.join(parts)}" if parts else ""

    def drain_dirty(self) -> frozenset[ResourceKey]:
        """Keys changed since the previous call (the engine recomputes only those)."""
        dirty, self._dirty = frozenset(self._dirty), set()
        return dirty

    # ----- connection state -------------------------------------------------------------------

    def track(self, gk: GroupKind) -> None:
        """A watch for this kind is running: its failures count towards the connection state."""
        self._tracked.add(gk)
        self.refresh_state()

    def untrack(self, gk: GroupKind) -> None:
        """The kind is no longer watched."""
        self._tracked.discard(gk)
        self._failing.pop(gk, None)
        self._listing.pop(gk, None)
        self.refresh_state()

    def kind_failed(self, gk: GroupKind, error: ClusterError) -> bool:
        """Record a failure of one kind's list or watch; returns whether the connection state changed."""
        previous = self._failing.get(gk)
        since = previous.since if previous is not None else self._clock()
        transient = error.transient or error.unauthorized
        message = error.message
        if isinstance(error, Throttled):
            message = (f"{message.removeprefix(f'cluster {error.cluster}: ')} "
                       f"(the server asks to retry after {error.retry_after:g}s)")
        self._failing[gk] = KindFailure(message=message, since=since, transient=transient,
                                        throttled=isinstance(error, Throttled))
        self._listing.pop(gk, None)  # the list starts again from its first page
        return self.refresh_state()

    def kind_healthy(self, gk: GroupKind) -> bool:
        """Record that one kind answers again; returns whether the connection state changed."""
        if gk not in self._failing:
            return False
        return self._clear_failure(gk)

    def _clear_failure(self, gk: GroupKind) -> bool:
        self._failing.pop(gk, None)
        return self.refresh_state()

    def failure(self, group: str, kind: str) -> KindFailure | None:
        """Why the kind is failing, or None: its objects are current.

        While the API server does not answer the heartbeat, every tracked kind is failing with that reason.
        """
        failure = self._failing.get((group, kind))
        if failure is None and self._unresponsive is not None and (group, kind) in self._tracked:
            return self._unresponsive
        return failure

    def heartbeat_failed(self, error: ClusterError) -> bool:
        """The API server did not answer the heartbeat; returns whether the connection state changed.

        Every tracked kind counts as failing (the watches may be open but nothing arrives through them).
        """
        since = self._unresponsive.since if self._unresponsive is not None else self._clock()
        detail = error.message.removeprefix(f"cluster {error.cluster}: ")
        self._unresponsive = KindFailure(message=f"API server of cluster {error.cluster} not responding: {detail}",
                                         since=since, transient=True)
        return self.refresh_state()

    def heartbeat_ok(self) -> bool:
        """The API server answered the heartbeat; returns whether the connection state changed."""
        if self._unresponsive is None:
            return False
        self._unresponsive = None
        return self.refresh_state()

    @property
    def responsive(self) -> bool:
        """False while the API server does not answer the heartbeat."""
        return self._unresponsive is None

    @property
    def stale(self) -> bool:
        """Whether the objects shown may be out of date (some tracked kind is failing, or the server is hung)."""
        return self._unresponsive is not None or any(gk in self._tracked for gk in self._failing)

    def refresh_state(self) -> bool:
        """Recompute the connection state (also call it periodically: Degraded ages into Unreachable).

        Returns:
            Whether the state changed.
        """
        state, message = self._compute()
        if state is ConnectionState.CONNECTED:
            self._connected_once = True
        if state is self.state and message == self.message:
            return False
        if state is not self.state:
            self.since = self._clock()
        self.state, self.message = state, message
        self.version += 1
        return True

    def _compute(self) -> tuple[ConnectionState, str]:
        hung = self._unresponsive
        if hung is not None:
            if not self._connected_once or self._clock() - hung.since >= self._unreachable_after:
                return ConnectionState.UNREACHABLE, hung.message
            return ConnectionState.DEGRADED, hung.message
        failing = {gk: f for gk, f in self._failing.items() if gk in self._tracked}
        if not failing:
            if self._connected_once or (self._tracked and self.all_listed):
                return ConnectionState.CONNECTED, ""
            return ConnectionState.CONNECTING, ""
        first = min(failing.values(), key=lambda f: f.since)
        names = ", ".join(sorted(f"{g}/{k}" if g else k for g, k in failing))
        if all(f.throttled for f in failing.values()):
            # The server answers, it only asks to wait: neither Degraded (nothing is broken) nor
            # Unreachable (it answered), however long it lasts (K8).
            return (ConnectionState.THROTTLED,
                    f"throttled by the API server: {len(failing)} of {len(self._tracked)} kinds waiting "
                    f"({names}): {first.message}")
        if len(failing) == len(self._tracked) and all(f.transient for f in failing.values()):
            streak = max(f.since for f in failing.values())
            if not self._connected_once or self._clock() - streak >= self._unreachable_after:
                return ConnectionState.UNREACHABLE, first.message
        return ConnectionState.DEGRADED, f"{len(failing)} of {len(self._tracked)} kinds failing ({names}): {first.message}"

    def status(self, *, server: str = "", labels: Mapping[str, str] | None = None,
               read_only: bool = False, impersonating: str = "") -> ClusterStatus:
        """The cluster's row for a snapshot."""
        return ClusterStatus(
            name=ClusterName(self.cluster), connection=self.state, server=server,
            labels=MappingProxyType(dict(labels or {})), since=self.since, message=self.message,
            read_only=read_only, objects=len(self), impersonating=impersonating, listing=self.listing,
        )
