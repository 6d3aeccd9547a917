"""Parse ``metadata.managedFields`` (fieldsV1) and answer ownership questions about field paths.

Role: tells the diff who last wrote a drifted field (``FieldChange.manager``/``time``) and which fields
fleetdeck applied before (its ``Apply`` entry), so a field deleted from Git but still owned by fleetdeck is
reported as a pending removal. Constraint: pure; it reads the raw live object
only, before normalization strips ``managedFields``.

A field path is a tuple of elements in fieldsV1 vocabulary: ``("f", "spec")`` for a map key,
``("k", '{"name":"web"}')`` for an associative-list item, ``("v", '"x"')`` for a set item and ``("i", 0)``
for a list index. Key and value JSON is re-serialized canonically (sorted keys, no spaces) so it compares
by value.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

PathElement = tuple[str, str | int]
FieldPath = tuple[PathElement, ...]

FIELD_MANAGER = "fleetdeck"
"""The field manager fleetdeck applies with (server-side apply, ``force=true``)."""


def key_json(value: Any) -> str:
    """Canonical JSON for associative-list keys and set values: sorted keys, no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@functools.lru_cache(maxsize=65536)
def parse_element(raw: str) -> PathElement:
    """One fieldsV1 key (``f:name``, ``k:{...}``, ``v:...``, ``i:3``) as a path element.

    Memoized: the same keys recur in every object of a kind, and a ``k:`` key costs a JSON parse and
    a canonical re-serialization.

    Raises:
        ValueError: when the key has an unknown prefix or malformed JSON.
    """
    prefix, sep, rest = raw.partition(":")
    if not sep:
        raise ValueError(f"malformed fieldsV1 key {raw!r}")
    if prefix == "f":
        return ("f", rest)
    if prefix in ("k", "v"):
        return (prefix, key_json(json.loads(rest)))
    if prefix == "i":
        return ("i", int(rest))
    raise ValueError(f"unknown fieldsV1 key prefix {raw!r}")


def _members(tree: Mapping[str, Any], prefix: FieldPath) -> Iterator[tuple[FieldPath, bool]]:
    """The member paths of a fieldsV1 tree, each with whether it is a leaf (owned atomically)."""
    for raw, child in tree.items():
        if raw == ".":
            yield prefix, False
            continue
        try:
            path = (*prefix, parse_element(raw))
        except ValueError:
            continue
        if isinstance(child, Mapping) and child:
            yield from _members(child, path)
        else:
            yield path, True


_SETS_CACHE = 4096
_sets: dict[bytes, tuple[frozenset[FieldPath], frozenset[FieldPath]]] = {}


def _field_sets(fields: Mapping[str, Any]) -> tuple[frozenset[FieldPath], frozenset[FieldPath]]:
    """The owned paths and leaves of one fieldsV1 tree; memoized by its JSON, because the same field sets
    recur in every object of a shape (one per manager), and parsing one walks every member."""
    try:
        key = orjson.dumps(fields)
    except TypeError:
        key = None
    found = _sets.get(key) if key is not None else None
    if found is None:
        members = list(_members(fields, ()))
        found = (frozenset(path for path, _ in members), frozenset(path for path, leaf in members if leaf))
        if key is not None:
            if len(_sets) >= _SETS_CACHE:
                _sets.clear()
            _sets[key] = found
    return found


@dataclass(frozen=True, slots=True)
class ManagerEntry:
    """One ``managedFields`` entry: a manager, how it wrote, when, and the field paths it owns."""

    manager: str
    operation: str
    """``Apply`` or ``Update``."""
    time: str | None
    """RFC 3339 time of the manager's last write."""
    subresource: str
    owned: frozenset[FieldPath]
    """Every member of the entry's field set (leaves and ``.``-marked nodes)."""
    leaves: frozenset[FieldPath]
    """The members without children: the manager owns everything below them too."""

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ManagerEntry:
        """Build an entry from one raw ``managedFields`` item (unknown ``fieldsType`` owns nothing)."""
        fields = raw.get("fieldsV1") if raw.get("fieldsType", "FieldsV1") == "FieldsV1" else None
        owned, leaves = _field_sets(fields) if isinstance(fields, Mapping) else (frozenset(), frozenset())
        return cls(
            manager=str(raw.get("manager") or ""),
            operation=str(raw.get("operation") or ""),
            time=str(raw["time"]) if raw.get("time") else None,
            subresource=str(raw.get("subresource") or ""),
            owned=owned,
            leaves=leaves,
        )

    def direct_rank(self, path: FieldPath) -> int | None:
        """``rank`` when it is 0 (owned exactly) or 1 (by an atomic ancestor), else None; without the scan
        of every owned path that ranks 2 and 3 need."""
        if path in self.owned:
            return 0
        leaves = self.leaves
        for depth in range(len(path) - 1, -1, -1):
            if path[:depth] in leaves:
                return 1
        return None

    def rank(self, path: FieldPath) -> int | None:
        """How directly this entry owns ``path``: 0 exactly, 1 by an atomic ancestor, 2 by a descendant,
        3 by any ancestor; None when it owns nothing on that path."""
        direct = self.direct_rank(path)
        if direct is not None:
            return direct
        ancestors = [path[:depth] for depth in range(len(path) - 1, -1, -1)]
        if any(member[: len(path)] == path for member in self.owned):
            return 2
        return 3 if any(ancestor in self.owned for ancestor in ancestors) else None


@dataclass(frozen=True, slots=True)
class ManagedFields:
    """The parsed ``managedFields`` of one live object."""

    entries: tuple[ManagerEntry, ...] = ()

    @classmethod
    def of(cls, obj: Mapping[str, Any] | None) -> ManagedFields:
        """Parse ``obj.metadata.managedFields``; a missing or malformed list gives no entries."""
        meta = obj.get("metadata") if isinstance(obj, Mapping) else None
        raw = meta.get("managedFields") if isinstance(meta, Mapping) else None
        items = raw if isinstance(raw, list | tuple) else []
        return cls(tuple(ManagerEntry.parse(item) for item in items if isinstance(item, Mapping)))

    def owned_by(self, manager: str = FIELD_MANAGER, operation: str = "Apply") -> frozenset[FieldPath]:
        """Every path ``manager`` owns through entries with ``operation`` (main resource only)."""
        entries = self._entries(manager, operation)
        return frozenset().union(*(entry.owned for entry in entries))

    def paths_of(self, managers: Iterable[str], *, leaves: bool = False) -> frozenset[FieldPath]:
        """Every path owned by any of ``managers``, whatever the operation (only leaves if asked)."""
        wanted = set(managers)
        chosen = [e.leaves if leaves else e.owned for e in self.entries if e.manager in wanted]
        return frozenset().union(*chosen)

    def owners(self, path: FieldPath) -> tuple[ManagerEntry, ...]:
        """The entries that own ``path`` exactly or through an atomic ancestor."""
        return tuple(entry for entry in self.entries if entry.direct_rank(path) is not None)

    def last_writer(self, path: FieldPath) -> tuple[str, str | None] | None:
        """The manager that most plausibly wrote ``path`` last, and when.

        Exact owners win over atomic ancestors, then descendants, then any ancestor; ties go to the latest
        write.

        Returns:
            ``(manager, time)``, or None when no entry touches the path.
        """
        # A direct owner (rank 0 or 1) beats ranks 2 and 3, whose scan over every owned path is then skipped.
        ranked = [(rank, entry) for entry in self.entries if (rank := entry.direct_rank(path)) is not None]
        if not ranked:
            ranked = [(rank, entry) for entry in self.entries if (rank := entry.rank(path)) is not None]
        if not ranked:
            return None
        best = min(rank for rank, _ in ranked)
        entry = max((e for rank, e in ranked if rank == best), key=lambda e: e.time or "")
        return entry.manager, entry.time

    def _entries(self, manager: str, operation: str) -> list[ManagerEntry]:
        """Main-resource entries of ``manager`` with ``operation``."""
        return [
            e for e in self.entries if e.manager == manager and e.operation == operation and not e.subresource
        ]


def _list_item(items: list[Any], element: PathElement) -> int | None:
    """The index of the list item a ``k``/``v``/``i`` element selects, if present."""
    kind, value = element
    if kind == "i":
        return value if isinstance(value, int) and 0 <= value < len(items) else None
    if kind == "v":
        return next((i for i, item in enumerate(items) if key_json(item) == value), None)
    if kind == "k":
        wanted = json.loads(str(value))
        for index, item in enumerate(items):
            if isinstance(item, Mapping) and all(item.get(k) == v for k, v in wanted.items()):
                return index
    return None


def field_slot(obj: Any, path: FieldPath) -> tuple[Any, str | int] | None:
    """The ``(container, key)`` slot of ``path`` in a plain (dict and list) object, if it exists."""
    if not path:
        return None
    node = obj
    for depth, element in enumerate(path):
        if isinstance(node, dict) and element[0] == "f" and element[1] in node:
            slot: tuple[Any, str | int] = (node, str(element[1]))
        elif isinstance(node, list) and (index := _list_item(node, element)) is not None:
            slot = (node, index)
        else:
            return None
        if depth == len(path) - 1:
            return slot
        node = slot[0][slot[1]]
    return None
