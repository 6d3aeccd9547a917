"""Kubernetes Events of an app: parse, fold duplicates, order and cap (pure functions, no I/O).

An Event is read from either API: core/v1 ``Event`` (``involvedObject``, ``message``, ``count``,
``firstTimestamp``/``lastTimestamp``) or events.k8s.io/v1 (``regarding``, ``note``, ``series``,
``deprecated*``); both views describe the same stored objects, so a watcher reads one of them.
``parse_event`` turns either into a compact ``ParsedEvent`` (a store keeps these, never the raw JSON),
and ``summarize`` keeps the events of an app's objects, folds those with the same type, reason, message
and object into one line with the counts summed, and orders Warnings first, then newest first.
Every string is the cluster's (untrusted): callers escape before display.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.model import EventRecord, ResourceKey

MAX_MESSAGE = 1024
"""Characters of an event's message kept (a longer one is cut with ``…``)."""

MAX_APP_EVENTS = 50
"""Lines shown per app and cluster, after folding duplicates (Warnings first, then newest)."""


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """The fields of one Event that fleetdeck shows, with its identity in the cluster."""

    uid: str
    namespace: str
    type: str
    reason: str
    message: str
    object: ResourceKey
    object_uid: str
    count: int
    first_seen: float | None
    last_seen: float | None
    source: str


def parse_time(value: Any) -> float | None:
    """An RFC 3339 timestamp (``2026-12-07T15:00:00Z``, micro-time too) as Unix time; None when absent."""
    if not value or not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _text(value: Any, limit: int = 256) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _count(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 0
    return max(0, number)


def parse_event(obj: Mapping[str, Any]) -> ParsedEvent | None:
    """The shown fields of a core/v1 or events.k8s.io/v1 Event; None when it names no object."""
    meta = obj.get("metadata") or {}
    new_api = str(obj.get("apiVersion") or "").startswith("events.k8s.io/")
    ref = obj.get("regarding") if new_api else obj.get("involvedObject")
    if not isinstance(ref, Mapping) or not ref.get("kind") or not ref.get("name"):
        return None
    api_version = str(ref.get("apiVersion") or "")
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    key = ResourceKey(group, _text(ref.get("kind")), _text(ref.get("namespace")), _text(ref.get("name")))
    raw_series = obj.get("series")
    series: Mapping[str, Any] = raw_series if isinstance(raw_series, Mapping) else {}
    if new_api:
        message = obj.get("note")
        count = _count(series.get("count")) or _count(obj.get("deprecatedCount")) or 1
        first = parse_time(obj.get("deprecatedFirstTimestamp")) or parse_time(obj.get("eventTime"))
        last = (parse_time(series.get("lastObservedTime")) or parse_time(obj.get("deprecatedLastTimestamp"))
                or parse_time(obj.get("eventTime")))
        source = obj.get("reportingController") or (obj.get("deprecatedSource") or {}).get("component")
    else:
        message = obj.get("message")
        count = _count(obj.get("count")) or _count(series.get("count")) or 1
        first = parse_time(obj.get("firstTimestamp")) or parse_time(obj.get("eventTime"))
        last = (parse_time(series.get("lastObservedTime")) or parse_time(obj.get("lastTimestamp"))
                or parse_time(obj.get("eventTime")))
        source = obj.get("reportingComponent") or (obj.get("source") or {}).get("component")
    last = last or first or parse_time(meta.get("creationTimestamp"))
    return ParsedEvent(
        uid=str(meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}"),
        namespace=_text(meta.get("namespace")), type=_text(obj.get("type") or "Normal", 32),
        reason=_text(obj.get("reason")), message=_text(message, MAX_MESSAGE), object=key,
        object_uid=str(ref.get("uid") or ""), count=count, first_seen=first or last, last_seen=last,
        source=_text(source),
    )


def _identity(key: ResourceKey) -> tuple[str, str, str]:
    """Objects match on kind, namespace and name (an event's ``apiVersion`` may be absent or older)."""
    return (key.kind, key.namespace, key.name)


def fold(events: Iterable[ParsedEvent], objects: Collection[ResourceKey] | None = None) -> list[EventRecord]:
    """The events of ``objects`` (every event when None), identical ones folded into one line.

    Lines are identical when type, reason, message and object agree; the line's count is the sum of
    theirs, its first seen the earliest and its last seen the latest.
    """
    wanted = None if objects is None else {_identity(k) for k in objects}
    lines: dict[tuple[str, str, str, tuple[str, str, str]], EventRecord] = {}
    for event in events:
        ident = _identity(event.object)
        if wanted is not None and ident not in wanted:
            continue
        key = (event.type, event.reason, event.message, ident)
        seen = lines.get(key)
        if seen is None:
            lines[key] = EventRecord(type=event.type, reason=event.reason, message=event.message,
                                     object=event.object, count=event.count, first_seen=event.first_seen,
                                     last_seen=event.last_seen, source=event.source)
            continue
        lines[key] = EventRecord(
            type=seen.type, reason=seen.reason, message=seen.message, object=seen.object,
            count=seen.count + event.count, first_seen=_earliest(seen.first_seen, event.first_seen),
            last_seen=_latest(seen.last_seen, event.last_seen), source=seen.source or event.source,
        )
    return list(lines.values())


def _earliest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def order(lines: Iterable[EventRecord]) -> list[EventRecord]:
    """Warnings first, then newest first (last seen), then by object and reason for a stable order."""
    return sorted(lines, key=lambda e: (not e.warning, -(e.last_seen or 0.0), str(e.object), e.reason))


def summarize(events: Iterable[ParsedEvent], objects: Collection[ResourceKey] | None = None, *,
              cap: int = MAX_APP_EVENTS) -> tuple[tuple[EventRecord, ...], int]:
    """The lines to show for ``objects``: folded, ordered, at most ``cap``; and how many were left out."""
    lines = order(fold(events, objects))
    return tuple(lines[:cap]), max(0, len(lines) - cap)
