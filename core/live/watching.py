"""Reflector-style watching of one kind, in three levels (as kopf's ``watching``).

* ``watch_stream``: one watch request, with an inactivity timeout on top of the socket read timeout.
* ``continuous_watch``: paginated list → ``Listed`` → watch from the list's resourceVersion, tracking the
  resourceVersion of every event including bookmarks. A clean server close re-watches from that version
  without relisting; a 410 (in-band ``ERROR`` or HTTP), a malformed event or the periodic resync
  *returns* so the caller relists; 404 raises ``KindNotServed``, 403 raises ``WatchForbidden``, anything
  else raises ``ClusterError``.
* ``infinite_watch``: reconnects forever with full-jitter exponential backoff, resuming from the last
  resourceVersion after a probe (a ``limit=1`` list, not a relist), and reports connection state through
  ``on_error``/``on_healthy``.

Constraint: these generators only read through ``KubeAPI`` and yield values; they hold no cache and never
mutate a cluster. Time and randomness are parameters so tests run on fake time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from core.aio import raise_if_cancelling
from core.errors import ClusterError
from core.live.api import JSON, APIResource, KubeAPI
from core.live.compact import WatchLine
from core.live.watch_events import (
    MALFORMED_EVENT,
    Deleted,
    KindNotServed,
    Listed,
    Throttled,
    Upserted,
    WatchEvent,
    WatchForbidden,
    kind_label,
)
from core.settings import WatchSettings

log = logging.getLogger(__name__)

HEALTHY_RESET = 60.0
"""Seconds of health after which the reconnect backoff starts again from ``backoff_initial``."""

Clock = Callable[[], float]
Sleep = Callable[[float], Any]


@dataclass(slots=True)
class WatchState:
    """Where one kind's watch stands; shared across reconnects so a reconnect can resume."""

    resource_version: str = ""
    """The newest resourceVersion seen; ``""`` means the next round must list first."""
    listed_at: float | None = None
    """Clock time of the last complete list."""
    newest_listed: str = ""
    """The highest list resourceVersion seen, to notice a cluster whose state went back in time."""
    lists: int = 0
    """Complete lists done (for tests and metrics)."""
    watches: int = 0
    """Watch requests started."""
    heard_at: float | None = None
    """Clock time of the last list or watch event (bookmarks included): when the server last spoke."""


@dataclass(slots=True)
class Backoff:
    """Full-jitter exponential backoff: delay ``n`` is uniform in ``[0, min(maximum, initial * 2**n)]``."""

    initial: float
    maximum: float
    rng: Callable[[], float] = random.random
    attempt: int = 0

    def next(self) -> float:
        """The next delay, in seconds."""
        cap = min(self.maximum, self.initial * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return float(self.rng() * cap)

    def reset(self) -> None:
        """Start again from ``initial``."""
        self.attempt = 0


# ---------------------------------------------------------------------------------------------- level 1


async def watch_stream(
    api: KubeAPI,
    resource: APIResource,
    *,
    resource_version: str,
    timeout_seconds: int,
    inactivity_timeout: float,
    label_selector: str = "",
) -> AsyncIterator[JSON | WatchLine]:
    """One watch request's raw events; raises when nothing arrives for ``inactivity_timeout`` seconds.

    Raises:
        ClusterError: status None, reason ``Timeout``, when the stream goes silent (a half-open
            connection the server hint ``timeoutSeconds`` can never end).
    """
    events = api.watch(resource, resource_version=resource_version, timeout_seconds=timeout_seconds,
                       label_selector=label_selector)
    try:
        while True:
            try:
                event = await asyncio.wait_for(anext(events), timeout=inactivity_timeout)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise ClusterError(f"watch {kind_label(resource)}: no data for {inactivity_timeout:g}s",
                                   cluster=api.cluster, status=None, reason="Timeout") from None
            raise_if_cancelling()  # wait_for may have swallowed a cancel (Python 3.11)
            yield event
    finally:
        closer = getattr(events, "aclose", None)
        if closer is not None:
            await closer()


# ---------------------------------------------------------------------------------------------- level 2


async def paged_list(
    api: KubeAPI,
    resource: APIResource,
    *,
    page_size: int,
    label_selector: str = "",
    on_page: Callable[[int], None] | None = None,
) -> tuple[list[JSON], str]:
    """All objects of a kind, page by page, and the list's resourceVersion.

    An expired ``continue`` token (410 mid-list) restarts the list from the beginning once (K4).
    ``on_page`` is called after each page but the last with the objects listed so far (progress, K3).
    """
    for attempt in (1, 2):
        items: list[JSON] = []
        token = ""
        try:
            while True:
                page = await api.list(resource, label_selector=label_selector, limit=page_size,
                                      continue_token=token)
                items.extend(_typed_items(resource, page.get("items") or ()))
                meta = page.get("metadata") or {}
                token = str(meta.get("continue") or "")
                if not token:
                    return items, str(meta.get("resourceVersion") or "")
                if on_page is not None:
                    on_page(len(items))
        except ClusterError as exc:
            if not (exc.gone and token and attempt == 1):
                raise
            log.info("cluster %s: list %s: continue token expired, listing again", api.cluster,
                     kind_label(resource))
    raise AssertionError("unreachable")  # pragma: no cover


def _typed_items(resource: APIResource, items: Any) -> list[JSON]:
    for item in items:
        item.setdefault("apiVersion", resource.api_version)
        item.setdefault("kind", resource.kind)
    return list(items)


async def continuous_watch(
    api: KubeAPI,
    resource: APIResource,
    *,
    settings: WatchSettings,
    state: WatchState | None = None,
    label_selector: str = "",
    list_gate: AbstractAsyncContextManager[Any] | None = None,
    clock: Clock = time.monotonic,
    rng: random.Random | None = None,
    on_list_progress: Callable[[int], None] | None = None,
) -> AsyncIterator[WatchEvent]:
    """List (unless ``state`` holds a resourceVersion) then watch, until a relist is needed.

    Args:
        api: the cluster.
        resource: the kind.
        settings: page size, watch and read timeouts, resync interval.
        state: resume point; updated in place (a fresh one lists first).
        label_selector: server-side filter.
        list_gate: caps concurrent lists per cluster and fleet-wide (relist storms, K7; ``core.live.list_gate``).
        clock: monotonic time; injected in tests.
        rng: picks the server-side watch timeout; injected in tests.
        on_list_progress: called with the objects listed so far after each page of a list but the last.

    Raises:
        KindNotServed: 404 (the kind is gone).
        WatchForbidden: 403.
        ClusterError: any other failure (connection, timeout, 5xx, 401).
    """
    state = state if state is not None else WatchState()
    pick = rng or random.Random()
    try:
        if not state.resource_version:
            yield await _list(api, resource, settings=settings, state=state, label_selector=label_selector,
                              gate=list_gate, clock=clock, on_page=on_list_progress)
        while True:
            remaining = _until_resync(state, settings, clock)
            if remaining <= 0:
                state.resource_version = ""
                return
            timeout = min(pick.randint(*settings.watch_timeout), max(1, int(remaining)))
            state.watches += 1
            async for raw in watch_stream(api, resource, resource_version=state.resource_version,
                                          timeout_seconds=timeout, inactivity_timeout=settings.read_timeout,
                                          label_selector=label_selector):
                state.heard_at = clock()
                event = _event(api, resource, raw, state)
                if event is not None:
                    yield event
    except ClusterError as exc:
        if exc.gone or exc.reason == MALFORMED_EVENT:
            log.info("cluster %s: %s: %s; relisting", api.cluster, kind_label(resource), exc.message)
            state.resource_version = ""
            return
        raise _typed_error(exc) from exc


async def _list(
    api: KubeAPI,
    resource: APIResource,
    *,
    settings: WatchSettings,
    state: WatchState,
    label_selector: str,
    gate: AbstractAsyncContextManager[Any] | None,
    clock: Clock,
    on_page: Callable[[int], None] | None = None,
) -> Listed:
    if gate is None:
        items, version = await paged_list(api, resource, page_size=settings.page_size,
                                          label_selector=label_selector, on_page=on_page)
    else:
        async with gate:
            items, version = await paged_list(api, resource, page_size=settings.page_size,
                                              label_selector=label_selector, on_page=on_page)
    rewound = _older(version, state.newest_listed)
    if rewound:
        log.warning("cluster %s: %s: cluster state rewound (resourceVersion %s after %s)", api.cluster,
                    kind_label(resource), version, state.newest_listed)
    state.newest_listed = version
    state.resource_version, state.listed_at = version, clock()
    state.heard_at = state.listed_at
    state.lists += 1
    return Listed(resource=resource, items=tuple(items), resource_version=version, rewound=rewound)


def _older(version: str, than: str) -> bool:
    """Whether resourceVersion ``version`` is older than ``than`` (both etcd revisions in practice)."""
    if not (version.isdigit() and than.isdigit()):
        return False
    return int(version) < int(than)


def _until_resync(state: WatchState, settings: WatchSettings, clock: Clock) -> float:
    if state.listed_at is None:
        return settings.resync_interval
    return settings.resync_interval - (clock() - state.listed_at)


def _event(api: KubeAPI, resource: APIResource, raw: Mapping[str, Any] | WatchLine,
           state: WatchState) -> WatchEvent | None:
    """Turn a raw event into a typed one (None for bookmarks), tracking its resourceVersion.

    Raises:
        ClusterError: for an in-band ``ERROR`` event, with the Status's code (410: relist).
    """
    if isinstance(raw, WatchLine):  # already typed (never ERROR; apiVersion and kind present)
        line = raw.object
        if line.resource_version:
            state.resource_version = line.resource_version
        if raw.type == "DELETED":
            return Deleted(resource, compact=line)
        if raw.type in ("ADDED", "MODIFIED"):
            return Upserted(resource, compact=line)
        return None  # BOOKMARK
    kind = str(raw.get("type") or "")
    obj: JSON = raw.get("object") or {}
    if kind == "ERROR":
        code = obj.get("code")
        raise ClusterError(f"watch {kind_label(resource)}: {obj.get('message') or 'error event'}",
                           cluster=api.cluster, status=code if isinstance(code, int) else None,
                           reason=str(obj.get("reason") or ""))
    version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    if version:
        state.resource_version = version
    if kind == "BOOKMARK":
        return None
    obj.setdefault("apiVersion", resource.api_version)
    obj.setdefault("kind", resource.kind)
    if kind == "DELETED":
        return Deleted(resource=resource, obj=obj)
    if kind in ("ADDED", "MODIFIED"):
        return Upserted(resource=resource, obj=obj)
    log.warning("cluster %s: %s: ignoring watch event of type %r", api.cluster, kind_label(resource), kind)
    return None


def _typed_error(exc: ClusterError) -> ClusterError:
    message = exc.message.removeprefix(f"cluster {exc.cluster}: ")
    if exc.forbidden:
        return WatchForbidden(message, cluster=exc.cluster, status=403, reason=exc.reason, hint=exc.hint)
    if exc.not_found:
        return KindNotServed(message, cluster=exc.cluster, status=404, reason=exc.reason, hint=exc.hint)
    return exc


# ---------------------------------------------------------------------------------------------- level 3


async def infinite_watch(
    api: KubeAPI,
    resource: APIResource,
    *,
    settings: WatchSettings,
    state: WatchState | None = None,
    label_selector: str = "",
    list_gate: AbstractAsyncContextManager[Any] | None = None,
    on_error: Callable[[ClusterError], None] | None = None,
    on_healthy: Callable[[], None] | None = None,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
    rng: random.Random | None = None,
    on_list_progress: Callable[[int], None] | None = None,
) -> AsyncIterator[WatchEvent]:
    """Watch one kind forever; ends only when the kind is no longer served (404).

    Args:
        api: the cluster.
        resource: the kind.
        settings: timeouts, backoff bounds, resync interval.
        state: resume point (kept by the caller to resume after a restart of the watcher).
        label_selector: server-side filter.
        list_gate: caps concurrent lists per cluster.
        on_error: called with every failure (the cache marks the kind failing; data is kept).
        on_healthy: called after a list, or after a probe succeeded on reconnect.
        sleep: awaits a delay; injected in tests.
        clock: monotonic time; injected in tests.
        rng: jitter source; injected in tests.
        on_list_progress: called with the objects listed so far after each page of a list but the last.
    """
    state = state if state is not None else WatchState()
    pick = rng or random.Random()
    backoff = Backoff(settings.backoff_initial, settings.backoff_max, rng=pick.random)
    healthy_since: float | None = None
    probe = bool(state.resource_version)
    while True:
        try:
            if probe and state.resource_version:
                current = await _probe(api, resource, label_selector=label_selector, gate=list_gate)
                if _older(current, state.resource_version):
                    # The server is now older than what we watched (etcd restored from a backup): a watch
                    # from our resourceVersion would wait for a future that never comes. Relist instead;
                    # the list is then older than the last one and flagged ``rewound`` (K14).
                    log.warning("cluster %s: %s: the server is at resourceVersion %s, older than %s; relisting",
                                api.cluster, kind_label(resource), current, state.resource_version)
                    if not _older(state.resource_version, state.newest_listed):
                        state.newest_listed = state.resource_version  # so the relist is flagged rewound
                    state.resource_version = ""
                healthy_since = _healthy(on_healthy, clock)
            probe = False
            async for event in continuous_watch(api, resource, settings=settings, state=state,
                                                label_selector=label_selector, list_gate=list_gate,
                                                clock=clock, rng=pick, on_list_progress=on_list_progress):
                if isinstance(event, Listed):
                    healthy_since = _healthy(on_healthy, clock)
                    yield event
                    del event  # the list's items are not kept while the watch waits (the cache has them)
                    if settings.list_only:
                        await asyncio.Event().wait()  # a one-shot reader needs the listed state only: no watch
                    continue
                yield event
            continue  # a relist is due: no delay
        except KindNotServed as exc:
            _report(on_error, exc)
            return
        except ClusterError as exc:
            _report(on_error, exc)
            if healthy_since is not None and clock() - healthy_since >= HEALTHY_RESET:
                backoff.reset()
            healthy_since = None
            delay = settings.backoff_max if isinstance(exc, WatchForbidden) else backoff.next()
            if isinstance(exc, Throttled):
                delay = max(delay, exc.retry_after)  # honour Retry-After (K8)
            probe = True
        log.info("cluster %s: %s: reconnecting in %.1fs", api.cluster, kind_label(resource), delay)
        await sleep(delay)


async def _probe(api: KubeAPI, resource: APIResource, *, label_selector: str,
                 gate: AbstractAsyncContextManager[Any] | None) -> str:
    """A one-object list: proves the API answers before a watch resumes from an old resourceVersion.

    Returns:
        The list's resourceVersion: the server's current one (a list without one reads etcd).

    Raises:
        KindNotServed | WatchForbidden | ClusterError: as ``continuous_watch``.
    """
    try:
        if gate is None:
            page = await api.list(resource, label_selector=label_selector, limit=1)
        else:
            async with gate:
                page = await api.list(resource, label_selector=label_selector, limit=1)
    except ClusterError as exc:
        raise _typed_error(exc) from exc
    return str((page.get("metadata") or {}).get("resourceVersion") or "")


def _healthy(callback: Callable[[], None] | None, clock: Clock) -> float:
    if callback is not None:
        callback()
    return clock()


def _report(callback: Callable[[ClusterError], None] | None, exc: ClusterError) -> None:
    log.info("cluster %s: watch failed: %s", exc.cluster, exc.message)
    if callback is not None:
        callback(exc)
