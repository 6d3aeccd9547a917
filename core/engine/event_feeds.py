"""The Kubernetes Events of an app: one ``EventFeed`` per cluster, started the first time someone asks.

``EventFeeds`` owns the feeds (``core.live.event_feed``: a bounded store, listed then watched, or listed
once for a one-shot verb) and answers ``app_events``: the events whose object is one of the app's
resources or a child the engine tracks under them (Deployment → ReplicaSet → Pod, from the row's
``ResourceStatus`` list), folded, Warnings first, capped (``core.reconcile.event_summary``), as a frozen
``AppEvents``. Events of namespaces no app of the fleet lives in are never stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from core.engine.targets import Desired, Target
from core.live.api import KubeAPI
from core.live.event_feed import MAX_NAMESPACE_EVENTS, EventFeed
from core.model import AppEvents, AppName, AppStatus, ClusterName
from core.reconcile.event_summary import MAX_APP_EVENTS, summarize
from core.settings import WatchSettings


def fleet_namespaces(cluster: str, targets: Iterable[Target], desired: Mapping[tuple[str, str], Desired],
                     rows: Mapping[tuple[str, str], AppStatus]) -> set[str]:
    """The namespaces the fleet's apps live in on ``cluster``: each app's namespace and those of its
    desired and live objects."""
    names: set[str] = set()
    for target in targets:
        if target.cluster.name != cluster:
            continue
        names.add(target.app.namespace)
        found = desired.get(target.id)
        if found is not None:
            names.update(key.namespace for key in found.objects)
        row = rows.get(target.id)
        if row is not None:
            names.update(r.key.namespace for r in row.resources)
    names.discard("")
    return names


def _cached(namespaces: Callable[[], set[str]], ttl: float = 1.0) -> Callable[[str], bool]:
    """``namespace in namespaces()``, the set recomputed at most once per ``ttl`` seconds (a list page of
    500 events asks 500 times)."""
    memo: list[tuple[float, set[str]]] = []

    def keep(namespace: str) -> bool:
        now = time.monotonic()
        if not memo or now - memo[0][0] > ttl:
            memo[:] = [(now, namespaces())]
        return namespace in memo[0][1]

    return keep


class EventFeeds:
    """The event feeds of the fleet's clusters.

    Args:
        settings: how to list and watch (``list_only`` for a one-shot verb).
        cap: events kept per namespace and cluster.
        clock: wall clock, for ``AppEvents.taken_at``.
    """

    def __init__(self, settings: WatchSettings, *, cap: int = MAX_NAMESPACE_EVENTS,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.cap = cap
        self.clock = clock
        self.feeds: dict[str, EventFeed] = {}
        self._memo: dict[tuple[str, str], tuple[tuple[object, ...], AppEvents]] = {}
        """Per target, the last answer and what it was computed from (store version, row, listed, error):
        the console asks every 2 seconds, and mostly nothing changed."""

    def feed(self, api: KubeAPI, namespaces: Callable[[], set[str]]) -> EventFeed:
        """The cluster's feed, started on first use."""
        feed = self.feeds.get(api.cluster)
        if feed is None:
            feed = EventFeed(api, settings=self.settings, cap=self.cap, keep=_cached(namespaces))
            self.feeds[api.cluster] = feed
            feed.start()
        return feed

    def shed(self) -> list[EventFeed]:
        """Forget every feed and memo (memory pressure, ``core.memory``); the caller stops the feeds returned.
        The next ask starts a feed again and lists the events anew."""
        feeds = list(self.feeds.values())
        self.feeds = {}
        self._memo.clear()
        return feeds

    async def stop(self) -> None:
        """Stop every feed."""
        for feed in self.feeds.values():
            await feed.stop()

    async def app_events(self, target: Target, api: KubeAPI, row: AppStatus | None, *,
                         namespaces: Callable[[], set[str]], wait: float = 0.0,
                         cap: int = MAX_APP_EVENTS) -> AppEvents:
        """The events of the app's objects (and their children) on the target's cluster.

        ``wait``: seconds to wait for the first list (a one-shot verb); 0 answers with what is known.
        """
        feed = self.feed(api, namespaces)
        if wait > 0:
            await feed.wait_answered(wait)
        resources = row.resources if row is not None else ()
        inputs: tuple[object, ...] = (feed.store.version, feed.listed, feed.error, resources)
        known = self._memo.get(target.id)
        if known is not None and known[0][:3] == inputs[:3] and known[0][3] is resources:
            return known[1]
        keys = [r.key for r in resources]
        spaces = {k.namespace for k in keys} | {target.app.namespace}
        lines, omitted = summarize(feed.store.events(spaces), keys, cap=cap)
        found = AppEvents(app=AppName(target.app.name), cluster=ClusterName(target.cluster.name), events=lines,
                          listed=feed.listed, error=feed.error, omitted=omitted, taken_at=self.clock())
        self._memo[target.id] = (inputs, found)
        return found
