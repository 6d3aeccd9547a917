"""Pure helpers over stored objects for the simulated cluster: times, bookkeeping, change detection.

Role: what the store needs to compare and stamp objects: RFC 3339 times, stripping server-set
metadata from an applied body, whether a write bumps ``generation`` or is a no-op, replacing a
manager's ``managedFields`` entry, list continue tokens, and the strict-validation message.

Constraint: pure; no I/O, no clock reads. Only ``core.simulated`` imports it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from core.live.api import JSON, APIResource
from core.simulated.fields import ManagedEntry, Path
from core.simulated.jsoncopy import json_copy

_BOOKKEEPING = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")


def rfc3339(timestamp: float) -> str:
    """``2026-01-05T09:00:00Z`` (second precision, as the apiserver writes times)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def position(obj: Mapping[str, Any]) -> tuple[str, str]:
    """``(namespace, name)``: the order lists return objects in."""
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def encode_continue(version: int, after: tuple[str, str]) -> str:
    """A list ``continue`` token: the list's resourceVersion and the last position returned."""
    return base64.urlsafe_b64encode(json.dumps({"rv": version, "start": list(after)}).encode()).decode()


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    """The resourceVersion and position of a ``continue`` token.

    Raises:
        ValueError: the token is malformed.
    """
    try:
        doc = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(doc["rv"]), (str(doc["start"][0]), str(doc["start"][1]))
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"invalid continue token: {exc}") from None


def strict_message(resource: APIResource, meta: JSON, fields: list[str], *, apply: bool) -> str:
    """The 422 message for undeclared fields, as server-side apply or a create words it."""
    if apply:
        where = f"{meta.get('namespace', '')}/{meta['name']}".lstrip("/")
        return (f"failed to create typed patch object ({where}; {resource.api_version}, Kind={resource.kind}): "
                + "; ".join(f"{f}: field not declared in schema" for f in fields))
    return "strict decoding error: " + ", ".join(f'unknown field "{f.lstrip(".")}"' for f in fields)


def without_bookkeeping(obj: Mapping[str, Any], *, status: bool = True) -> JSON:
    """A copy without the fields only the server sets (and without ``status`` unless kept)."""
    out: JSON = json_copy(dict(obj))
    if status:
        out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for name in _BOOKKEEPING:
            meta.pop(name, None)
    return out


def with_entry(entries: list[ManagedEntry], identity: tuple[str, str, str], fields: set[Path], *,
                api_version: str, time: str) -> list[ManagedEntry]:
    """``entries`` with ``identity``'s entry replaced (kept in place, appended when new, dropped when empty)."""
    manager, operation, subresource = identity
    entry = ManagedEntry(manager, operation, api_version, time, set(fields), subresource)
    out = [entry if e.identity == identity else e for e in entries]
    if not any(e.identity == identity for e in entries):
        out.append(entry)
    return [e for e in out if e.fields]


def spec_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether anything but metadata and status changed (what bumps ``metadata.generation``)."""
    def body(obj: Mapping[str, Any]) -> JSON:
        return {k: v for k, v in obj.items() if k not in ("metadata", "status")}

    return body(old) != body(new)


def same_object(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Equal apart from managed-fields times (a no-op write keeps its resourceVersion)."""
    if {k: v for k, v in old.items() if k != "metadata"} != {k: v for k, v in new.items() if k != "metadata"}:
        return False
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    skipped = ("managedFields", "resourceVersion")
    if {k: v for k, v in old_meta.items() if k not in skipped} != {
            k: v for k, v in new_meta.items() if k not in skipped}:
        return False

    def timeless(meta: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in entry.items() if k != "time"} for entry in meta.get("managedFields") or ()]

    return timeless(old_meta) == timeless(new_meta)
