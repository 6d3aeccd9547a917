"""Watch streams of the simulated cluster: replay from a resourceVersion, live events, bookmarks.

Role: turn the store's event log and a live queue into the raw events a real watch sends: the backlog
after a resourceVersion (or synthetic ADDED events for ``""``/``"0"``), filtered by a label selector
with objects entering or leaving it reported as ADDED/DELETED, BOOKMARK events when the stream is
quiet, and the in-band 410 ``ERROR`` event for a compacted version.

Constraint: reads the store only; the queue is fed by ``SimulatedCluster`` (``None`` ends a stream).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from core.errors import ClusterError
from core.live.api import JSON, APIResource
from core.simulated.jsoncopy import json_copy
from core.simulated.selectors import Selector
from core.simulated.store import ObjectStore, StoredEvent

WatchQueue = asyncio.Queue[StoredEvent | None]
"""Events for one open watch, in order; ``None`` ends it."""


def backlog(store: ObjectStore, resource: APIResource, resource_version: str, selector: Selector) -> list[JSON]:
    """What a watch from ``resource_version`` starts with: synthetic ADDED for ``""``/``"0"``, else the log.

    Raises:
        ClusterError: 410 when the version was compacted, 400 when it is not a number.
    """
    if resource_version in ("", "0"):
        objects = [o for o in store.objects(resource.group_kind)
                   if selector.matches((o.get("metadata") or {}).get("labels"))]
        return [{"type": "ADDED", "object": json_copy(o)} for o in objects]
    try:
        since = int(resource_version)
    except ValueError:
        raise store.error(400, "BadRequest", f"invalid resourceVersion {resource_version!r}") from None
    events = store.events_after(resource.group_kind, since)
    return [e for e in (as_watch_event(event, selector) for event in events) if e is not None]


async def stream(queue: WatchQueue, store: ObjectStore, resource: APIResource, selector: Selector, *,
                 timeout_seconds: int, bookmark_interval: float) -> AsyncIterator[JSON]:
    """Live events from ``queue`` (``None`` ends the stream), with bookmarks when quiet, until the timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds
    interval = max(bookmark_interval, 0.001)
    next_bookmark = loop.time() + interval
    while loop.time() < deadline:
        try:
            async with asyncio.timeout_at(min(deadline, next_bookmark)):
                item = await queue.get()
        except TimeoutError:
            if loop.time() >= next_bookmark:
                # The queue is empty here, so every event up to the store's version has been sent.
                yield bookmark(resource, store.resource_version)
                next_bookmark = loop.time() + interval
            continue
        if item is None:
            return
        if item.group_kind == resource.group_kind and (event := as_watch_event(item, selector)) is not None:
            yield event


def _labels(obj: Mapping[str, Any] | None) -> Mapping[str, str] | None:
    return ((obj or {}).get("metadata") or {}).get("labels")


def as_watch_event(event: StoredEvent, selector: Selector) -> JSON | None:
    """The event a watch filtered by ``selector`` sees: objects entering or leaving it become ADDED/DELETED."""
    now_in = event.type != "DELETED" and selector.matches(_labels(event.obj))
    was_in = event.old is not None and selector.matches(_labels(event.old))
    if event.type == "DELETED":
        kind = "DELETED" if was_in else None
    elif now_in:
        kind = "MODIFIED" if was_in else "ADDED"
    else:
        kind = "DELETED" if was_in else None
    return {"type": kind, "object": json_copy(event.obj)} if kind else None


def bookmark(resource: APIResource, version: int) -> JSON:
    """A BOOKMARK event carrying ``version``."""
    return {"type": "BOOKMARK", "object": {"apiVersion": resource.api_version, "kind": resource.kind,
                                           "metadata": {"resourceVersion": str(version)}}}


def status_object(exc: ClusterError) -> JSON:
    """The ``Status`` object of an in-band ``ERROR`` event for ``exc``."""
    message = exc.message.removeprefix(f"cluster {exc.cluster}: ")
    return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "message": message,
            "reason": exc.reason, "code": exc.status}
