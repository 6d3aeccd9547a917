"""The compact form of a live object: its JSON bytes plus the few fields the cache and its indexes read.

Role: ``CompactObject`` is what ``core.live.cache`` stores for every object (docs/performance.md, P1/P11).
It is built either from a decoded dict (``compact``: lists, tests, the simulated cluster) or straight from
a watch line (``decode_watch_line``: the real client's watch stream), in which case the object is never
decoded into dicts at all: msgspec reads only the projection (name, namespace, resourceVersion, labels,
owner uids) in one pass and the line itself is kept (``in_line``), the object decoded from it on read.

Constraint: plain values, no I/O. A line the projection cannot read (an unexpected type anywhere in it,
an ``ERROR`` event, an object without ``apiVersion``/``kind``) falls back to ``orjson.loads`` and the dict
path, so the values readers see never depend on which path an object took.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import msgspec
import orjson

JSON = dict[str, Any]
"""The same alias as ``core.live.api.JSON`` (which imports this module)."""

NO_LABELS: Mapping[str, str] = MappingProxyType({})


class CompactObject(NamedTuple):
    """A live object as the cache keeps it (a tuple of bytes and strings: nothing for the collector to scan)."""

    json: bytes
    """The object exactly as the API server sent it (``managedFields`` included), or the whole watch line
    carrying it (``in_line``): cutting the object out would cost a second parse, keeping the line ~30 bytes."""
    resource_version: str
    labels: Mapping[str, str]
    owners: tuple[str, ...]
    """The ``uid`` of each ``ownerReference``."""
    namespace: str
    name: str
    in_line: bool = False
    """``json`` is a watch event ``{"type": ..., "object": {...}}``."""

    def decode(self) -> JSON:
        """A fresh dict of the object."""
        doc = orjson.loads(self.json)
        obj: JSON = doc["object"] if self.in_line else doc
        return obj


class WatchLine(NamedTuple):
    """One ``ADDED``/``MODIFIED``/``DELETED``/``BOOKMARK`` watch event, its object kept compact."""

    type: str
    object: CompactObject


def compact(obj: Mapping[str, Any]) -> CompactObject:
    """The compact form of a decoded object."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels")
    refs = meta.get("ownerReferences")
    return CompactObject(
        bytes(memoryview(orjson.dumps(obj))),  # a copy: orjson leaves its result in a buffer twice its size
        str(meta.get("resourceVersion") or ""),
        {str(k): str(v) for k, v in labels.items()} if labels and isinstance(labels, Mapping) else NO_LABELS,
        tuple(str(r.get("uid", "")) for r in refs if isinstance(r, Mapping)) if isinstance(refs, list) else (),
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
    )


class _Ref(msgspec.Struct, gc=False):
    uid: str = ""


class _Meta(msgspec.Struct, gc=False):
    name: str = ""
    namespace: str = ""
    resourceVersion: str = ""
    labels: dict[str, str] | None = None
    ownerReferences: list[_Ref] | None = None


class _Object(msgspec.Struct, gc=False):
    apiVersion: str = ""
    kind: str = ""
    metadata: _Meta | None = None


class _Line(msgspec.Struct, gc=False):
    type: str
    object: _Object


_LINE = msgspec.json.Decoder(_Line)
_COMPACT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK"})


def decode_watch_line(line: bytes) -> WatchLine | Any:
    """A watch line as a ``WatchLine`` or, when the projection cannot read it, as ``orjson.loads`` decodes it.

    One msgspec pass reads the event's type and its object's projection and skips the rest; the line
    itself is kept as the object's bytes (``aiohttp``'s ``readline`` returns it at its exact size).

    Raises:
        orjson.JSONDecodeError: the line is not JSON.
    """
    try:
        event = _LINE.decode(line)
    except msgspec.MsgspecError:
        return orjson.loads(line)
    obj = event.object
    meta = obj.metadata
    if event.type not in _COMPACT_TYPES or meta is None or not (obj.apiVersion and obj.kind):
        return orjson.loads(line)
    labels = meta.labels
    refs = meta.ownerReferences
    return WatchLine(event.type, CompactObject(
        line, meta.resourceVersion, labels if labels else NO_LABELS, tuple(r.uid for r in refs) if refs else (),
        meta.namespace, meta.name, True))


def as_dict(event: JSON | WatchLine) -> JSON:
    """A watch event as a dict (for readers of the stream that do not keep objects compact)."""
    if isinstance(event, WatchLine):
        return {"type": event.type, "object": event.object.decode()}
    return event
