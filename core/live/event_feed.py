"""``EventFeed``: one cluster's Kubernetes Events, listed then watched, kept in a bounded store.

Role: events are many and noisy, so they are not part of the ``ClusterCache`` (which holds every object of
every watched kind, and whose complete list gates a cluster's readiness). One task per cluster lists core/v1
``Event`` page by page, parsing each item into a compact ``ParsedEvent`` as the page arrives (a list is
never held whole), then watches from the list's resourceVersion: a 410 or the periodic resync relists, a
403 leaves the feed ``forbidden`` ("events not readable: forbidden") and retries slowly; the last known
events stay. Only namespaces the ``keep`` predicate accepts are stored (the namespaces the fleet's apps
live in), at most ``cap`` events per namespace: beyond that the oldest (last seen) are dropped.

In list-only mode (``WatchSettings.list_only``, one-shot verbs) the feed lists once and opens no watch.
Constraint: reads only, through ``KubeAPI``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from core.aio import create_guarded_task, stop_tasks
from core.errors import ClusterError
from core.live.api import APIResource, KubeAPI
from core.live.compact import as_dict
from core.live.watching import Backoff, watch_stream
from core.reconcile.event_summary import ParsedEvent, parse_event
from core.settings import WatchSettings

log = logging.getLogger(__name__)

EVENT_RESOURCE = APIResource(group="", version="v1", kind="Event", plural="events", namespaced=True,
                             verbs=frozenset({"get", "list", "watch"}))
"""core/v1 Event: served by every cluster (events.k8s.io/v1 is another view of the same objects)."""

MAX_NAMESPACE_EVENTS = 1000
"""Events kept per namespace and cluster; beyond that the oldest (by last seen) are dropped."""

FORBIDDEN = "events not readable: forbidden"


class EventStore:
    """Parsed events by namespace and UID, at most ``cap`` per namespace (oldest dropped first).

    Args:
        cap: events kept per namespace.
        keep: which namespaces to store (every namespace when None).
    """

    def __init__(self, *, cap: int = MAX_NAMESPACE_EVENTS, keep: Callable[[str], bool] | None = None) -> None:
        self.cap = max(1, cap)
        self.keep = keep
        self._by_namespace: dict[str, dict[str, ParsedEvent]] = {}
        self.version = 0
        """Bumped on every change (readers may skip work when it did not move)."""
        self.dropped = 0
        """Events dropped by the cap since the start (for tests and metrics)."""

    def __len__(self) -> int:
        return sum(len(events) for events in self._by_namespace.values())

    def upsert(self, obj: Mapping[str, Any]) -> str | None:
        """Store (or replace) an event; its UID, or None when it is not kept."""
        event = parse_event(obj)
        if event is None or (self.keep is not None and not self.keep(event.namespace)):
            return None
        bucket = self._by_namespace.setdefault(event.namespace, {})
        bucket[event.uid] = event
        self.version += 1
        if len(bucket) > self.cap:
            self._evict(bucket)
        return event.uid

    def delete(self, obj: Mapping[str, Any]) -> None:
        """Forget an event (deleted by the cluster, usually after its TTL)."""
        event = parse_event(obj)
        if event is None:
            return
        bucket = self._by_namespace.get(event.namespace)
        if bucket is not None and bucket.pop(event.uid, None) is not None:
            self.version += 1

    def retain(self, uids: set[str]) -> None:
        """After a relist: forget every event the list did not return."""
        for namespace in list(self._by_namespace):
            bucket = self._by_namespace[namespace]
            gone = [uid for uid in bucket if uid not in uids]
            for uid in gone:
                del bucket[uid]
            if not bucket:
                del self._by_namespace[namespace]
            if gone:
                self.version += 1

    def _evict(self, bucket: dict[str, ParsedEvent]) -> None:
        """Drop the oldest events down to 90 % of the cap (a burst costs one sort, not one per event)."""
        keep = max(1, self.cap * 9 // 10)
        newest = sorted(bucket.values(), key=lambda e: e.last_seen or 0.0, reverse=True)
        for event in newest[keep:]:
            del bucket[event.uid]
            self.dropped += 1

    def events(self, namespaces: Iterable[str] | None = None) -> Iterator[ParsedEvent]:
        """The stored events (of ``namespaces`` only, when given)."""
        names = list(self._by_namespace) if namespaces is None else list(namespaces)
        for namespace in names:
            yield from self._by_namespace.get(namespace, {}).values()


class EventFeed:
    """Lists then watches one cluster's events into an ``EventStore``.

    Args:
        api: the cluster (the guarded client: reads only).
        settings: page size, timeouts, backoff, resync, list-only.
        keep: which namespaces to store (every namespace when None).
        cap: events kept per namespace.
        clock: monotonic time (resync), injected in tests.
    """

    def __init__(self, api: KubeAPI, *, settings: WatchSettings, keep: Callable[[str], bool] | None = None,
                 cap: int = MAX_NAMESPACE_EVENTS, clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.settings = settings
        self.store = EventStore(cap=cap, keep=keep)
        self.clock = clock
        self.listed = False
        """A complete list has been stored at least once."""
        self.error = ""
        """Why events cannot be read now (``events not readable: forbidden``); empty when they can."""
        self.lists = 0
        self.watches = 0
        self._listed_at = 0.0
        self._task: asyncio.Task[Any] | None = None
        self._changed = asyncio.Event()

    @property
    def running(self) -> bool:
        """The feed's task runs."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start listing and watching (idempotent)."""
        if self._task is None:
            self._task = create_guarded_task(self._run(), name=f"events:{self.api.cluster}")

    async def stop(self) -> None:
        """Stop the task; the store keeps what it holds."""
        if self._task is not None:
            await stop_tasks([self._task])

    async def wait_answered(self, timeout: float) -> None:
        """Wait until the first list completed or failed (at most ``timeout`` seconds)."""
        try:
            async with asyncio.timeout(timeout):
                while not (self.listed or self.error):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            log.info("cluster %s: events not listed after %.0fs", self.api.cluster, timeout)

    def _notify(self) -> None:
        self._changed.set()

    async def _run(self) -> None:
        backoff = Backoff(self.settings.backoff_initial, self.settings.backoff_max)
        version = ""
        while True:
            try:
                if not version:
                    version = await self._list()
                    backoff.reset()
                    if self.settings.list_only:
                        return
                    if not version:  # nothing to watch from (not a real API server): list again later
                        await asyncio.sleep(self.settings.backoff_max)
                        continue
                version = await self._watch(version)
            except ClusterError as exc:
                version = ""
                if exc.gone:
                    continue  # the watch's resourceVersion is too old: relist at once
                if exc.forbidden:
                    self.error = FORBIDDEN
                    log.warning("cluster %s: %s: %s", self.api.cluster, FORBIDDEN, exc.message)
                    delay = self.settings.backoff_max
                else:
                    self.error = f"events not readable: {exc.message}"
                    log.info("cluster %s: %s", self.api.cluster, self.error)
                    delay = backoff.next()
                self._notify()
                if self.settings.list_only:
                    return
                await asyncio.sleep(delay)

    async def _list(self) -> str:
        """List every event page by page into the store; the list's resourceVersion."""
        seen: set[str] = set()
        token = ""
        for attempt in (1, 2):
            seen.clear()
            token = ""
            try:
                while True:
                    page = await self.api.list(EVENT_RESOURCE, limit=self.settings.page_size, continue_token=token)
                    for item in page.get("items") or ():
                        item.setdefault("apiVersion", "v1")
                        uid = self.store.upsert(item)
                        if uid is not None:
                            seen.add(uid)
                    meta = page.get("metadata") or {}
                    token = str(meta.get("continue") or "")
                    if not token:
                        self.store.retain(seen)
                        self.listed, self.error = True, ""
                        self.lists += 1
                        self._listed_at = self.clock()
                        self._notify()
                        return str(meta.get("resourceVersion") or "")
            except ClusterError as exc:
                if not (exc.gone and token and attempt == 1):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _watch(self, version: str) -> str:
        """Watch from ``version`` until the server closes (the newest version) or a relist is due ("")."""
        remaining = self.settings.resync_interval - (self.clock() - self._listed_at)
        if remaining <= 0:
            return ""
        timeout = max(1, min(self.settings.watch_timeout[0], int(remaining)))
        self.watches += 1
        async for raw in watch_stream(self.api, EVENT_RESOURCE, resource_version=version, timeout_seconds=timeout,
                                      inactivity_timeout=self.settings.read_timeout):
            raw = as_dict(raw)
            kind = str(raw.get("type") or "")
            obj = raw.get("object") or {}
            if kind == "ERROR":
                code = obj.get("code")
                if code == 410:
                    return ""
                raise ClusterError(f"watch events: {obj.get('message') or 'error event'}", cluster=self.api.cluster,
                                   status=code if isinstance(code, int) else None, reason=str(obj.get("reason") or ""))
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind in ("ADDED", "MODIFIED"):
                obj.setdefault("apiVersion", "v1")
                if self.store.upsert(obj) is not None:
                    self._notify()
            elif kind == "DELETED":
                obj.setdefault("apiVersion", "v1")
                self.store.delete(obj)
                self._notify()
            if self.error:
                self.error = ""
                self._notify()
        return version
