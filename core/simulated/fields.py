"""Field sets, managed fields and the server-side apply merge of the simulated cluster.

Role: the part of structured-merge-diff that the engine relies on, over raw dicts. A field set is a set
of paths in the ``fieldsV1`` vocabulary (``("f:spec", "f:template", "f:spec", "f:containers",
'k:{"name":"web"}', "f:image")``); it converts to and from the real ``fieldsV1`` JSON. Maps merge
recursively, keyed lists (containers, env, ports, volumes…) merge by key, other lists and atomic
structs (label selectors) are replaced.

Constraint: pure functions over JSON values: no I/O, no asyncio, no clock (times are passed in). Only
the other ``core.simulated`` modules import it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.simulated.jsoncopy import json_copy

Path = tuple[str, ...]
"""A field path: ``f:<name>`` for a map entry, ``k:<json>`` for an item of a keyed list."""

MISSING: Any = object()
"""Returned by ``get_at`` for a path that is not in the object."""

_LIST_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "imagePullSecrets": ("name",),
    "ownerReferences": ("uid",),
}
_CONTAINER_PORT_KEY = ("containerPort", "protocol")
_SERVICE_PORT_KEY = ("port", "protocol")
_KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}
_ATOMIC_FIELDS = frozenset({"selector", "labelSelector", "namespaceSelector", "roleRef"})
_UNMANAGED_TOP = frozenset({"apiVersion", "kind", "status"})
UNMANAGED_META = frozenset(
    {
        "name", "namespace", "uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
        "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "generateName",
    }
)


# ---------------------------------------------------------------------------------------------- schema


def list_key(name: str, items: Any) -> tuple[str, ...] | None:
    """The key fields of the list called ``name``, or None when it is atomic (replaced as a whole).

    Args:
        name: the field name of the list (``containers``, ``ports``…).
        items: the list; a list whose items lack their key is treated as atomic.
    """
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        return None
    keys: tuple[str, ...]
    if name == "ports":
        keys = _CONTAINER_PORT_KEY if "containerPort" in items[0] else _SERVICE_PORT_KEY
    else:
        keys = _LIST_KEYS.get(name, ())
    if not keys or not all(keys[0] in item for item in items):
        return None
    return keys


def is_atomic(names: tuple[str, ...], kind: str) -> bool:
    """Whether the struct at ``names`` is replaced as a whole (label selectors, ``roleRef``).

    A Service's ``spec.selector`` is a plain map and merges per key; every other ``selector`` is a
    ``LabelSelector``, which is atomic.
    """
    if not names or names[-1] not in _ATOMIC_FIELDS:
        return False
    return not (kind == "Service" and names == ("spec", "selector"))


def key_element(item: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    """The ``k:{...}`` path element of a keyed-list item (key fields sorted, as the server writes them)."""
    values = {k: item.get(k, _KEY_DEFAULTS.get(k)) for k in keys}
    return "k:" + json.dumps(values, sort_keys=True, separators=(",", ":"))


def _item_matches(item: Any, element: str) -> bool:
    if not isinstance(item, dict):
        return False
    wanted: dict[str, Any] = json.loads(element[2:])
    return all(item.get(k, _KEY_DEFAULTS.get(k)) == v for k, v in wanted.items())


# ---------------------------------------------------------------------------------------------- field sets


def field_set(obj: Mapping[str, Any], *, kind: str, status: bool = False) -> set[Path]:
    """The managed paths of ``obj``: leaves, atomic values and keyed-list items.

    Args:
        obj: a whole object.
        kind: its kind (selects atomic structs).
        status: walk only ``status`` (a status-subresource write) instead of everything else.
    """
    paths: set[Path] = set()
    for name, value in obj.items():
        if status != (name == "status") or (not status and name in _UNMANAGED_TOP):
            continue
        if name == "metadata" and isinstance(value, dict):
            for meta_name, meta_value in value.items():
                if meta_name not in UNMANAGED_META:
                    _walk(meta_value, ("f:metadata", f"f:{meta_name}"), ("metadata", meta_name), kind, paths)
        else:
            _walk(value, (f"f:{name}",), (name,), kind, paths)
    return paths


def _walk(value: Any, path: Path, names: tuple[str, ...], kind: str, out: set[Path]) -> None:
    if isinstance(value, dict) and value and not is_atomic(names, kind):
        for name, child in value.items():
            _walk(child, (*path, f"f:{name}"), (*names, name), kind, out)
        return
    keys = list_key(names[-1], value)
    if keys is None:
        out.add(path)
        return
    for item in value:
        item_path = (*path, key_element(item, keys))
        out.add(item_path)
        for name, child in item.items():
            _walk(child, (*item_path, f"f:{name}"), (*names, name), kind, out)


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """The ``fieldsV1`` JSON of a field set (``.: {}`` marks a member that also has children)."""
    tree: dict[str, Any] = {}
    members: set[Path] = set(paths)
    for path in members:
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    return _mark_members(tree, (), members)


def _mark_members(node: dict[str, Any], path: Path, members: set[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if node and path in members:
        out["."] = {}
    for element in sorted(node):
        out[element] = _mark_members(node[element], (*path, element), members)
    return out


def from_fields_v1(tree: Mapping[str, Any], prefix: Path = ()) -> set[Path]:
    """The field set of a ``fieldsV1`` JSON value."""
    paths: set[Path] = set()
    for element, child in tree.items():
        if element == ".":
            paths.add(prefix)
            continue
        path = (*prefix, element)
        if isinstance(child, Mapping) and child:
            paths |= from_fields_v1(child, path)
        else:
            paths.add(path)
    return paths


def describe_path(path: Path) -> str:
    """A path as the server prints it: ``.spec.template.spec.containers[name="web"].image``."""
    text = ""
    for element in path:
        if element.startswith("f:"):
            text += "." + element[2:]
        else:
            keys = json.loads(element[2:])
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]"
    return text


# ---------------------------------------------------------------------------------------------- paths


def get_at(obj: Any, path: Path) -> Any:
    """The value at ``path`` in ``obj``, or ``MISSING``."""
    current = obj
    for element in path:
        if element.startswith("f:"):
            if not isinstance(current, dict) or element[2:] not in current:
                return MISSING
            current = current[element[2:]]
        else:
            if not isinstance(current, list):
                return MISSING
            current = next((item for item in current if _item_matches(item, element)), MISSING)
            if current is MISSING:
                return MISSING
    return current


def remove_at(obj: dict[str, Any], path: Path) -> None:
    """Remove the value at ``path`` (in place), then any map or list this left empty."""
    parents: list[tuple[Any, str]] = []
    current: Any = obj
    for element in path:
        parents.append((current, element))
        current = get_at(current, (element,))
        if current is MISSING:
            return
    while parents:
        container, element = parents.pop()
        if element.startswith("f:"):
            del container[element[2:]]
        else:
            container[:] = [item for item in container if not _item_matches(item, element)]
        if container or not parents:
            return


# ---------------------------------------------------------------------------------------------- merging


def merge(live: Any, applied: Any, *, kind: str, names: tuple[str, ...] = (), delete_nulls: bool = False) -> Any:
    """``applied`` merged into ``live`` (neither is modified).

    Args:
        live: the current value (``MISSING`` when absent).
        applied: the applied configuration or patch.
        kind: the object's kind (selects atomic structs).
        names: the field names leading here.
        delete_nulls: a ``None`` in ``applied`` removes the field (strategic-merge-patch semantics).
    """
    if isinstance(applied, dict) and isinstance(live, dict) and not is_atomic(names, kind):
        out = json_copy(live)
        for name, value in applied.items():
            if value is None and delete_nulls:
                out.pop(name, None)
            else:
                out[name] = merge(live.get(name, MISSING), value, kind=kind, names=(*names, name),
                                  delete_nulls=delete_nulls)
        return out
    keys = list_key(names[-1], applied) if names else None
    if keys is not None and list_key(names[-1], live) == keys:
        return _merge_keyed(live, applied, keys, kind=kind, names=names, delete_nulls=delete_nulls)
    if delete_nulls and isinstance(applied, dict):
        return {k: v for k, v in json_copy(applied).items() if v is not None}
    return json_copy(applied)


def _merge_keyed(
    live: list[Any], applied: list[Any], keys: tuple[str, ...], *, kind: str, names: tuple[str, ...],
    delete_nulls: bool,
) -> list[Any]:
    """Merge a list-map as server-side apply does (checked against kube-apiserver 1.36): the applied items in
    the applied order, so a reorder in the applied configuration reorders live; an item only live has is
    placed right before the live item that followed it (at the end when none did)."""
    applied_keys = {key_element(item, keys) for item in applied}
    live_by_key: dict[Any, Any] = {}
    preceding: dict[Any, list[Any]] = {}
    pending: list[Any] = []
    for item in live:
        element = key_element(item, keys)
        if element in applied_keys:
            live_by_key[element] = item
            preceding[element], pending = pending, []
        else:
            pending.append(json_copy(item))
    out: list[Any] = []
    for item in applied:
        element = key_element(item, keys)
        out.extend(preceding.get(element, ()))
        if element in live_by_key:
            out.append(merge(live_by_key[element], item, kind=kind, names=names, delete_nulls=delete_nulls))
        else:
            out.append(json_copy(item))
    return out + pending


def changed_paths(old: Mapping[str, Any] | None, new: Mapping[str, Any], *, kind: str, status: bool = False) -> set[Path]:
    """Paths of ``new`` whose value is absent from or different in ``old`` (what an Update owns)."""
    paths = field_set(new, kind=kind, status=status)
    if old is None:
        return paths
    return {p for p in paths if _differs(old, new, p)}


def _differs(old: Mapping[str, Any], new: Mapping[str, Any], path: Path) -> bool:
    if path[-1].startswith("k:"):
        return get_at(old, path) is MISSING
    return bool(get_at(old, path) != get_at(new, path))


# ---------------------------------------------------------------------------------------------- ownership


@dataclass(slots=True)
class ManagedEntry:
    """One ``metadata.managedFields`` entry: the fields a manager owns through one operation."""

    manager: str
    operation: str
    """``Apply`` or ``Update``."""
    api_version: str
    time: str
    fields: set[Path] = field(default_factory=set)
    subresource: str = ""

    @property
    def identity(self) -> tuple[str, str, str]:
        """Entries are told apart by manager, operation and subresource."""
        return (self.manager, self.operation, self.subresource)

    def to_json(self) -> dict[str, Any]:
        """The entry as the server returns it."""
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(self.fields),
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ManagedEntry:
        """Parse an entry of ``metadata.managedFields``."""
        return cls(
            manager=str(doc.get("manager", "")),
            operation=str(doc.get("operation", "")),
            api_version=str(doc.get("apiVersion", "")),
            time=str(doc.get("time", "")),
            fields=from_fields_v1(doc.get("fieldsV1") or {}),
            subresource=str(doc.get("subresource", "")),
        )


def entries_of(obj: Mapping[str, Any] | None) -> list[ManagedEntry]:
    """The parsed managed fields of ``obj`` (empty for None)."""
    if obj is None:
        return []
    return [ManagedEntry.from_json(e) for e in (obj.get("metadata") or {}).get("managedFields") or ()]


def owned_by_others(entries: Iterable[ManagedEntry], identity: tuple[str, str, str]) -> set[Path]:
    """Every path owned by an entry other than ``identity``."""
    paths: set[Path] = set()
    for entry in entries:
        if entry.identity != identity:
            paths |= entry.fields
    return paths


def conflicts(
    entries: Iterable[ManagedEntry], *, identity: tuple[str, str, str], applied: set[Path],
    live: Mapping[str, Any], config: Mapping[str, Any],
) -> dict[Path, str]:
    """Applied leaves owned by another manager with a different live value: ``{path: manager}``."""
    found: dict[Path, str] = {}
    for entry in entries:
        if entry.identity == identity:
            continue
        for path in applied & entry.fields:
            if not path[-1].startswith("k:") and get_at(live, path) != get_at(config, path):
                found.setdefault(path, entry.manager)
    return found


def dropped(old: set[Path], new: set[Path]) -> set[Path]:
    """Paths of ``old`` that ``new`` neither has nor has anything below (an empty map that gained keys stays)."""
    prefixes = {p[:i] for p in new for i in range(1, len(p))}
    return {p for p in old - new if p not in prefixes}


def removable(paths: Iterable[Path], others: set[Path]) -> list[Path]:
    """Paths no other manager owns (nor owns anything below), deepest first: safe to delete."""
    def shared(path: Path) -> bool:
        return any(other[: len(path)] == path for other in others)

    candidates = {p for p in paths if not shared(p)}
    # Removing a keyed-list item removes its fields with it; removing them first would unkey the item.
    outermost = {p for p in candidates if not any(p[:i] in candidates for i in range(1, len(p)))}
    return sorted(outermost, key=len, reverse=True)


def without(paths: set[Path], removed: set[Path]) -> set[Path]:
    """``paths`` minus ``removed`` and everything below a removed path."""
    if not removed:
        return set(paths)
    return {p for p in paths if not any(p[:i] in removed for i in range(1, len(p) + 1))}


def transfer(entries: list[ManagedEntry], taken: set[Path], *, keep: tuple[str, str, str]) -> list[ManagedEntry]:
    """``entries`` with ``taken`` (and what is below it) removed from every entry but ``keep``.

    Entries left without fields are dropped, as the server drops them.
    """
    out: list[ManagedEntry] = []
    for entry in entries:
        if entry.identity != keep:
            entry.fields = without(entry.fields, taken)
        if entry.fields:
            out.append(entry)
    return out


def owner_uids(obj: Mapping[str, Any]) -> Iterator[str]:
    """Owner UIDs referenced by ``obj.metadata.ownerReferences``."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("uid"):
            yield str(ref["uid"])
