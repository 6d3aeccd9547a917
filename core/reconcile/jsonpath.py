"""Small path tools over JSON-like objects: RFC 6901 pointers, dotted globs, copies and freezing.

Role: the shared plumbing of the normalizers, the ignore rules and the diff. Constraint: pure functions
over plain ``dict``/``list`` values; no I/O and nothing Kubernetes-specific.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

Json = Any
"""A value made of dicts, lists, strings, numbers, booleans and None."""

WILDCARD = "*"
SCALARS = (str, int, float, bool, type(None))
"""JSON leaf types, checked first in the recursive helpers (ABC checks against ``Mapping`` are slow)."""


def copy_json(value: Json) -> Json:
    """A deep, mutable copy of ``value``: every mapping becomes a dict, every sequence a list."""
    if isinstance(value, SCALARS):
        return value
    if isinstance(value, dict | Mapping):
        return {str(key): copy_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [copy_json(item) for item in value]
    return value


def freeze(value: Json) -> Json:
    """A deep read-only view of ``value``: dicts become ``MappingProxyType``, lists become tuples."""
    if isinstance(value, SCALARS):
        return value
    if isinstance(value, dict | Mapping):
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    return value


class LazyMapping(Mapping[str, Any]):
    """A read-only mapping computed on first read, once: ``compute(argument)``, which must be pure and
    return a frozen mapping (e.g. a normalized object for display that most readers never look at)."""

    __slots__ = ("_argument", "_compute", "_value")
    _lock = threading.Lock()

    def __init__(self, compute: Callable[[Any], Mapping[str, Any]], argument: Any) -> None:
        self._compute: Callable[[Any], Mapping[str, Any]] | None = compute
        self._argument = argument
        self._value: Mapping[str, Any] | None = None

    def _get(self) -> Mapping[str, Any]:
        value = self._value
        if value is None:
            with LazyMapping._lock:
                if self._value is None:
                    assert self._compute is not None
                    self._value = self._compute(self._argument)
                    self._compute = self._argument = None
                value = self._value
        return value

    def rebind(self, expected: Callable[[Any], Mapping[str, Any]], argument: Any,
               compute: Callable[[Any], Mapping[str, Any]], source: Any) -> bool:
        """Compute ``compute(source)`` instead, when not computed yet and still set to ``expected(argument)``
        (the caller guarantees both give the same value: ``source`` is ``argument`` in a more compact form).
        Returns whether it was rebound."""
        with LazyMapping._lock:
            if self._value is not None or self._compute is not expected or self._argument is not argument:
                return False
            self._compute, self._argument = compute, source
        return True

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __eq__(self, other: object) -> bool:
        return self._get() == other

    def __repr__(self) -> str:
        return repr(self._get())


def thaw(value: Json) -> Json:
    """The inverse of ``freeze``: plain dicts and lists, ready for ``json.dumps`` or YAML."""
    return copy_json(value)


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """Split an RFC 6901 JSON pointer into unescaped tokens.

    Raises:
        ValueError: when the pointer is neither empty nor starts with ``/``.
    """
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer must start with '/': {pointer!r}")
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/"))


def format_pointer(tokens: Sequence[str | int]) -> str:
    """Join tokens into an RFC 6901 JSON pointer (``~`` and ``/`` escaped)."""
    return "".join("/" + str(token).replace("~", "~0").replace("/", "~1") for token in tokens)


def _child_slots(node: Json, token: str) -> Iterator[tuple[Json, Any]]:
    """The (container, key) slots of ``node`` that ``token`` selects (``*`` selects every child)."""
    if isinstance(node, dict):
        keys = list(node) if token == WILDCARD else [token] if token in node else []
        yield from ((node, key) for key in keys)
    elif isinstance(node, list):
        if token == WILDCARD:
            yield from ((node, index) for index in range(len(node)))
        elif token.isdigit() and int(token) < len(node):
            yield node, int(token)


def iter_slots(obj: Json, tokens: Sequence[str]) -> Iterator[tuple[Json, Any]]:
    """Every existing (container, key) slot reached by ``tokens``, where ``*`` matches any child.

    Args:
        obj: the object to walk.
        tokens: path tokens; list indices are decimal strings.

    Returns:
        An iterator of ``(container, key)`` pairs such that ``container[key]`` exists.
    """
    if not tokens:
        return
    parents: list[Json] = [obj]
    for token in tokens[:-1]:
        parents = [container[key] for parent in parents for container, key in _child_slots(parent, token)]
    for parent in parents:
        yield from _child_slots(parent, tokens[-1])


@functools.lru_cache(maxsize=1024)
def dotted(path: str) -> tuple[str, ...]:
    """Split a dotted glob path (``spec.template.spec``, ``spec.limits.*.max``) into tokens (memoized:
    the normalizers use a few fixed paths on every object)."""
    return tuple(part for part in path.split(".") if part)


def remove_path(obj: Json, tokens: Sequence[str]) -> bool:
    """Remove every slot ``tokens`` reaches; missing paths are tolerated.

    Returns:
        Whether anything was removed.
    """
    slots = list(iter_slots(obj, tokens))
    for container, key in reversed(slots):
        del container[key]
    return bool(slots)


def get_in(obj: Json, *tokens: str | int, default: Json = None) -> Json:
    """The value at ``tokens`` in nested dicts and lists, or ``default`` when any step is missing."""
    node = obj
    for token in tokens:
        in_map = isinstance(node, Mapping) and token in node
        in_list = (
            isinstance(node, list | tuple) and isinstance(token, int) and -len(node) <= token < len(node)
        )
        if not (in_map or in_list):
            return default
        node = node[token]
    return node


def as_dict(value: Json) -> dict[str, Any]:
    """``value`` if it is a dict, else an empty dict (for tolerant reads of malformed objects)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Json) -> list[Any]:
    """``value`` if it is a list, else an empty list (for tolerant reads of malformed objects)."""
    return value if isinstance(value, list) else []
