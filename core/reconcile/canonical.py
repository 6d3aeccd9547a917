"""Canonical form of normalized objects: associative lists keyed by their merge keys (rule N13).

Role: lets equality, projection and deepdiff compare ``containers``, ``env``, ``ports``… per key instead
of per index, so a list reordered by name is not drift while ``args`` (atomic) still is. A keyed list
becomes a dict whose keys are tokens ``"\\x00k:" + key JSON`` (the NUL byte cannot occur in Kubernetes
field names), which also maps one-to-one onto fieldsV1 ``k:`` elements. Constraint: pure; the canonical
form never leaves ``core.reconcile`` (``restore`` turns it back into lists).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from core.reconcile.jsonpath import SCALARS, Json, format_pointer, parse_pointer
from core.reconcile.managed_fields import FieldPath, PathElement, key_json

KEY_PREFIX = "\x00k:"
_SCALAR_TYPES = frozenset(SCALARS)

MergeKeys = Mapping[str, tuple[tuple[str, ...], ...]]

MERGE_KEYS: MergeKeys = {
    "containers": (("name",),),
    "initContainers": (("name",),),
    "ephemeralContainers": (("name",),),
    "env": (("name",),),
    "volumes": (("name",),),
    "volumeMounts": (("mountPath",),),
    "volumeDevices": (("devicePath",),),
    "ports": (("containerPort", "protocol"), ("port", "protocol")),
    "imagePullSecrets": (("name",),),
    "hostAliases": (("ip",),),
    "topologySpreadConstraints": (("topologyKey", "whenUnsatisfiable"),),
    "resourceClaims": (("name",),),
    "readinessGates": (("conditionType",),),
    "schedulingGates": (("name",),),
    "ownerReferences": (("uid",),),
    "webhooks": (("name",),),
}
"""Field name → candidate key field sets; the first set every item carries (uniquely) is used.

This is the built-in fallback for the cluster's OpenAPI ``x-kubernetes-list-map-keys`` (N13). A list whose
items lack the key fields, or repeat a key, is compared atomically, in order."""


def item_token(item: Mapping[str, Any], fields: Sequence[str]) -> str:
    """The canonical dict key of an associative-list item."""
    return KEY_PREFIX + key_json({name: item[name] for name in fields})


def keyed(items: list[Any], specs: tuple[tuple[str, ...], ...]) -> dict[str, Any] | None:
    """``items`` as a token-keyed dict under the first usable key spec, or None when none fits."""
    for fields in specs:
        if all(isinstance(item, Mapping) and all(f in item for f in fields) for item in items):
            tokens = [item_token(item, fields) for item in items]
            if len(set(tokens)) == len(tokens):
                return dict(zip(tokens, items, strict=True))
    return None


def canonical(value: Json, merge_keys: MergeKeys = MERGE_KEYS, field: str = "") -> Json:
    """A copy of ``value`` with every associative list turned into a token-keyed dict.

    Args:
        value: a normalized object (or part of one): plain dicts and lists.
        merge_keys: the list-key table.
        field: the field name ``value`` sits under (decides whether a list is associative).
    """
    if isinstance(value, SCALARS):
        return value
    if isinstance(value, dict):  # leaves inline: canonical returns them as they are
        return {key: item if type(item) in _SCALAR_TYPES else canonical(item, merge_keys, key)
                for key, item in value.items()}
    if isinstance(value, list):
        items = list(value)
        by_token = keyed(items, merge_keys[field]) if items and field in merge_keys else None
        if by_token is not None:
            return {token: canonical(item, merge_keys) for token, item in by_token.items()}
        return [item if type(item) in _SCALAR_TYPES else canonical(item, merge_keys) for item in items]
    return value


def is_token(key: Any) -> bool:
    """Whether ``key`` is an associative-list item token."""
    return isinstance(key, str) and key.startswith(KEY_PREFIX)


def restore(value: Json) -> Json:
    """The inverse of ``canonical``: token-keyed dicts become lists again (for display)."""
    if isinstance(value, SCALARS):
        return value
    if isinstance(value, dict):
        if value and all(is_token(key) for key in value):
            return [restore(item) for item in value.values()]
        return {key: restore(item) for key, item in value.items()}
    if isinstance(value, list):
        return [restore(item) for item in value]
    return value


def canonical_bytes(value: Json) -> bytes:
    """Deterministic JSON bytes (sorted keys) for fast equality and digests."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def to_field_path(segments: Sequence[str | int]) -> FieldPath:
    """A canonical-object path as fieldsV1 path elements."""
    elements: list[PathElement] = []
    for segment in segments:
        if isinstance(segment, int):
            elements.append(("i", segment))
        elif is_token(segment):
            elements.append(("k", segment[len(KEY_PREFIX) :]))
        else:
            elements.append(("f", segment))
    return tuple(elements)


def _canonical_child(node: Any, element: PathElement) -> tuple[str | int, Any] | None:
    """Step from a canonical node along one fieldsV1 element: the segment taken and the child."""
    kind, value = element
    if isinstance(node, Mapping):
        key = str(value) if kind == "f" else KEY_PREFIX + str(value) if kind == "k" else None
        return (key, node[key]) if key is not None and key in node else None
    if isinstance(node, list) and kind == "i" and isinstance(value, int) and 0 <= value < len(node):
        return value, node[value]
    if isinstance(node, list) and kind == "v":
        return next(((i, item) for i, item in enumerate(node) if key_json(item) == value), None)
    return None


Found = tuple[list[str | int], Any]
"""The canonical segments of a path and the value there."""


class Resolver:
    """Resolves fieldsV1 paths in one canonical object, remembering every prefix it walked.

    Owned paths share long prefixes (``spec.template.spec.containers[web]…``), so checking a manager's
    whole field set costs one step per distinct node instead of one walk per path.
    """

    def __init__(self, root: Json) -> None:
        self._memo: dict[FieldPath, Found | None] = {(): ([], root)}

    def __call__(self, path: FieldPath) -> Found | None:
        """The segments and value of ``path``, or None when it does not exist."""
        if path in self._memo:
            return self._memo[path]
        parent = self(path[:-1])
        step = _canonical_child(parent[1], path[-1]) if parent is not None else None
        found = None if parent is None or step is None else ([*parent[0], step[0]], step[1])
        self._memo[path] = found
        return found


def _token_index(items: list[Any], token: str) -> int | None:
    """The index of the plain-list item a token names."""
    wanted = json.loads(token[len(KEY_PREFIX) :])
    return next(
        (
            i
            for i, item in enumerate(items)
            if isinstance(item, Mapping) and all(item.get(k) == v for k, v in wanted.items())
        ),
        None,
    )


def _readable(token: str) -> str:
    """A token shown as ``name=web`` (or ``containerPort=80,protocol=TCP``) when no index is known."""
    wanted = json.loads(token[len(KEY_PREFIX) :])
    return ",".join(f"{key}={value}" for key, value in wanted.items())


def to_pointer(segments: Sequence[str | int], plain: Json) -> str:
    """A JSON pointer into ``plain`` (the normalized, non-canonical object) for a canonical path."""
    tokens: list[str | int] = []
    node = plain
    for segment in segments:
        if isinstance(node, list) and is_token(segment):
            index = _token_index(node, str(segment))
            tokens.append(index if index is not None else _readable(str(segment)))
            node = node[index] if index is not None else None
        else:
            tokens.append(segment)
            found = isinstance(node, Mapping | list) and _has(node, segment)
            node = node[segment] if found else None
    return format_pointer(tokens)


def _has(node: Any, segment: str | int) -> bool:
    """Whether a plain dict or list has ``segment``."""
    if isinstance(node, Mapping):
        return segment in node
    return isinstance(segment, int) and 0 <= segment < len(node)


def field_path_of(plain: Json, pointer: str, merge_keys: MergeKeys = MERGE_KEYS) -> FieldPath | None:
    """The fieldsV1 path of a JSON pointer into a plain object (list indices become ``k:`` keys).

    With ``ManagedFields.last_writer`` this answers "who last wrote ``/spec/template/spec/containers/0/
    image``, and when". Items of lists without a usable merge key keep their index (``i:``).

    Returns:
        None when the pointer does not exist in ``plain``.
    """
    elements: list[PathElement] = []
    node, field = plain, ""
    for token in parse_pointer(pointer):
        if isinstance(node, Mapping) and token in node:
            elements.append(("f", token))
            node, field = node[token], token
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            index = int(token)
            by_token = keyed(node, merge_keys[field]) if field in merge_keys else None
            item = list(by_token)[index][len(KEY_PREFIX) :] if by_token is not None else None
            elements.append(("k", item) if item is not None else ("i", index))
            node, field = node[index], ""
        else:
            return None
    return tuple(elements)
