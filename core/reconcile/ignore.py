"""Ignore rules (N18) and their built-in defaults (N19), applied to both sides after normalization.

Role: drop fields another controller legitimately owns (injected ``caBundle``s, HPA-managed replicas…)
before comparing, by JSON pointer, by a small jq path subset, or by trusted field manager. Constraint:
pure; rules never touch the caller's objects (a changed side is copied first).

Supported jq subset: ``.field``, ``."quoted field"``, ``.["quoted field"]``, ``[N]`` and ``[]``/``[]?``
(every item), e.g. ``.webhooks[]?.clientConfig.caBundle``. Anything else is refused when the rule is
built, rather than silently ignoring nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from core.model import ResourceKey
from core.reconcile.canonical import field_path_of
from core.reconcile.jsonpath import WILDCARD, copy_json, format_pointer, get_in, parse_pointer, remove_path
from core.reconcile.managed_fields import FieldPath, ManagedFields, field_slot
from core.reconcile.normalize import valid_ca_bundle

_JQ_TOKEN = re.compile(
    r'\.([A-Za-z_][\w-]*)|\."((?:[^"\\]|\\.)*)"|\.?\["((?:[^"\\]|\\.)*)"\]|\[(\d+)\]|\[\]\??'
)

Obj = dict[str, Any]


def parse_jq_path(expression: str) -> tuple[str, ...]:
    """Tokens of a jq path in the supported subset (``[]`` becomes ``*``).

    Raises:
        ValueError: for any expression outside the subset.
    """
    tokens: list[str] = []
    position = 0
    while position < len(expression):
        match = _JQ_TOKEN.match(expression, position)
        if match is None:
            raise ValueError(f"unsupported jq path {expression!r} at offset {position}")
        name, quoted, bracketed, index = match.groups()
        tokens.append(next((t for t in (name, quoted, bracketed, index) if t is not None), WILDCARD))
        position = match.end()
    if not tokens:
        raise ValueError(f"empty jq path {expression!r}")
    return tuple(tokens)


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    """Differences to ignore on matching resources (union of Argo ``ignoreDifferences`` and Flux ``ignore``).

    ``group``, ``kind``, ``name`` and ``namespace`` are globs (``fnmatch``); None matches anything.
    """

    group: str = "*"
    kind: str = "*"
    name: str | None = None
    namespace: str | None = None
    json_pointers: tuple[str, ...] = ()
    """RFC 6901 pointers (``~1`` escapes ``/``), removed from both sides; missing paths are fine."""
    jq_paths: tuple[str, ...] = ()
    """Paths in the jq subset described in the module docstring."""
    managed_fields_managers: tuple[str, ...] = ()
    """Trusted managers: fields they own that differ between the sides are removed from both."""

    def __post_init__(self) -> None:
        for pointer in self.json_pointers:
            parse_pointer(pointer)
        for expression in self.jq_paths:
            parse_jq_path(expression)

    def matches(self, key: ResourceKey) -> bool:
        """Whether this rule applies to the resource ``key``."""
        return (
            fnmatchcase(key.group, self.group)
            and fnmatchcase(key.kind, self.kind)
            and (self.name is None or fnmatchcase(key.name, self.name))
            and (self.namespace is None or fnmatchcase(key.namespace, self.namespace))
        )

    def paths(self) -> tuple[tuple[str, ...], ...]:
        """Every pointer and jq path of the rule as path tokens."""
        return tuple(parse_pointer(p) for p in self.json_pointers) + tuple(
            parse_jq_path(e) for e in self.jq_paths
        )


DEFAULT_IGNORE_RULES: tuple[IgnoreRule, ...] = (
    IgnoreRule(
        group="admissionregistration.k8s.io",
        kind="*WebhookConfiguration",
        jq_paths=(".webhooks[]?.clientConfig.caBundle",),
    ),
    IgnoreRule(group="apiregistration.k8s.io", kind="APIService", json_pointers=("/spec/caBundle",)),
)
"""N19 built-ins; the CRD conversion ``caBundle`` rule depends on desired and lives in code."""

_CRD_CA_BUNDLE = ("spec", "conversion", "webhook", "clientConfig", "caBundle")


def apply_ignore_rules(
    desired: Obj | None,
    live: Obj | None,
    *,
    rules: Sequence[IgnoreRule] = (),
    managed_fields: ManagedFields | None = None,
    defaults: bool = True,
) -> tuple[Obj | None, Obj | None]:
    """Remove ignored fields from both (normalized) sides.

    Args:
        desired: the normalized desired object (or predicted live for the dry-run strategy).
        live: the normalized live object.
        rules: the app's rules; only those matching the resource apply.
        managed_fields: the live object's parsed managedFields, for ``managed_fields_managers``.
        defaults: also apply the N19 built-ins.

    Returns:
        ``(desired, live)``, new objects when anything was removed, the inputs otherwise.
    """
    reference = desired if desired is not None else live
    if reference is None:
        return desired, live
    key = ResourceKey.of(reference)
    matching = [rule for rule in (*(DEFAULT_IGNORE_RULES if defaults else ()), *rules) if rule.matches(key)]
    sides = _Sides(desired, live)
    for rule in matching:
        for tokens in rule.paths():
            sides.remove(tokens)
        if rule.managed_fields_managers and managed_fields is not None:
            _ignore_managers(sides, managed_fields, rule.managed_fields_managers)
    is_crd = (key.group, key.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition")
    if defaults and is_crd and not valid_ca_bundle(get_in(desired, *_CRD_CA_BUNDLE)):
        sides.remove(_CRD_CA_BUNDLE)
    return sides.desired, sides.live


class _Sides:
    """Both objects, copied lazily the first time a rule changes them."""

    def __init__(self, desired: Obj | None, live: Obj | None) -> None:
        self.desired, self.live = desired, live
        self._copied = False

    def own(self) -> None:
        """Make private copies before the first change."""
        if not self._copied:
            self.desired, self.live = copy_json(self.desired), copy_json(self.live)
            self._copied = True

    def remove(self, tokens: Sequence[str]) -> None:
        """Remove ``tokens`` from both sides."""
        probe = [obj for obj in (self.desired, self.live) if obj is not None]
        if any(get_in(obj, *tokens[:1]) is not None for obj in probe):
            self.own()
            for obj in (self.desired, self.live):
                if obj is not None:
                    remove_path(obj, tokens)


def _value(obj: Obj | None, path: FieldPath) -> tuple[bool, Any]:
    """Whether ``path`` exists in ``obj``, and its value."""
    slot = field_slot(obj, path) if obj is not None else None
    return (True, slot[0][slot[1]]) if slot else (False, None)


def _ignore_managers(sides: _Sides, managed_fields: ManagedFields, managers: Sequence[str]) -> None:
    """Remove from both sides the trusted managers' fields that differ between them.

    A leaf is removed when its values differ; a ``.``-marked item (a whole list item or map the manager
    created, such as an injected sidecar) only when desired does not have it at all.
    """
    leaves = managed_fields.paths_of(managers, leaves=True)
    for path in sorted(managed_fields.paths_of(managers), key=lambda p: (len(p), p)):
        desired_value = _value(sides.desired, path)
        differs = desired_value != _value(sides.live, path)
        if path and differs and (path in leaves or not desired_value[0]):
            sides.own()
            for obj in (sides.desired, sides.live):
                slot = field_slot(obj, path) if obj is not None else None
                if slot:
                    del slot[0][slot[1]]


def rules_from_mapping(items: Sequence[Mapping[str, Any]]) -> tuple[IgnoreRule, ...]:
    """Build rules from config dicts (``group``, ``kind``, ``name``, ``namespace``, ``jsonPointers``,
    ``jqPathExpressions``, ``managedFieldsManagers``), the spelling Argo's ``ignoreDifferences`` uses."""
    return tuple(
        IgnoreRule(
            group=str(item.get("group", "*")),
            kind=str(item.get("kind", "*")),
            name=item.get("name"),
            namespace=item.get("namespace"),
            json_pointers=tuple(item.get("jsonPointers", ())),
            jq_paths=tuple(item.get("jqPathExpressions", ())),
            managed_fields_managers=tuple(item.get("managedFieldsManagers", ())),
        )
        for item in items
    )


def _concrete(obj: Any, tokens: Sequence[str], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every existing concrete token path ``tokens`` reaches in ``obj`` (``*`` expanded, indices as digits)."""
    if not tokens:
        return [prefix]
    head, rest = tokens[0], tokens[1:]
    found: list[tuple[str, ...]] = []
    if isinstance(obj, dict):
        keys = list(obj) if head == WILDCARD else [head] if head in obj else []
        for name in keys:
            found += _concrete(obj[name], rest, (*prefix, str(name)))
    elif isinstance(obj, list):
        wanted = [int(head)] if head.isdigit() and int(head) < len(obj) else []
        indices = range(len(obj)) if head == WILDCARD else wanted
        for index in indices:
            found += _concrete(obj[index], rest, (*prefix, str(index)))
    return found


def _plain_pointer(obj: Any, path: FieldPath) -> tuple[str, ...] | None:
    """The token path (list indices as digits) of a fieldsV1 path in a plain object, if it exists."""
    tokens: list[str] = []
    for depth in range(1, len(path) + 1):
        slot = field_slot(obj, path[:depth])
        if slot is None:
            return None
        tokens.append(str(slot[1]))
    return tuple(tokens)


def _trusted_fields(
    plain: Obj, managed: ManagedFields, managers: Sequence[str], *, manager: str
) -> list[tuple[tuple[str, ...], str]]:
    """Leaf fields the manifest sets that a trusted manager owns live and fleetdeck does not."""
    found: list[tuple[tuple[str, ...], str]] = []
    mine = managed.paths_of([manager])
    for path in sorted(managed.paths_of(managers, leaves=True)):
        if not path or path in mine:
            continue
        tokens = _plain_pointer(plain, path)
        if tokens is not None:
            owners = sorted({e.manager for e in managed.entries if e.manager in managers and path in e.owned})
            found.append((tokens, ", ".join(owners)))
    return found


def respect_ignore(
    obj: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    rules: Sequence[IgnoreRule],
    *,
    manager: str,
) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
    """The apply body without the ignored fields that another field manager owns live.

    A field an app's ignore rule covers (JSON pointer or jq path, evaluated on the manifest, or a leaf a
    trusted ``managed_fields_managers`` manager owns) is left out of
    the server-side apply when the live object exists, some other manager owns the field there and
    ``manager`` (fleetdeck) does not: a sync then never takes the field back (an HPA's replicas stay the
    HPA's), like Argo CD's ``RespectIgnoreDifferences``. When fleetdeck owns the field, or the object does
    not exist yet, the field is sent as Git says.

    Args:
        obj: the manifest about to be applied (not modified).
        live: the live object with ``metadata.managedFields``, or None when it does not exist.
        rules: the app's ignore rules (only those matching the object apply; the built-ins never do).
        manager: fleetdeck's field manager.

    Returns:
        The body to apply (a copy when anything was left out) and, per field left out, its JSON pointer
        and the other managers owning it (comma-separated).
    """
    if live is None:
        return dict(obj), ()
    key = ResourceKey.of(obj)
    matching = [rule for rule in rules if rule.matches(key)]
    if not matching:
        return dict(obj), ()
    managed = ManagedFields.of(live)
    plain: dict[str, Any] = copy_json(dict(obj))
    left_out: list[tuple[tuple[str, ...], str]] = []
    for rule in matching:
        for tokens in rule.paths():
            for path in _concrete(plain, tokens):
                field = field_path_of(plain, format_pointer(path))
                if field is None:
                    continue
                owners = {e.manager for e in managed.entries if e.rank(field) in (0, 1, 2)}
                if owners and manager not in owners:
                    left_out.append((path, ", ".join(sorted(owners))))
        if rule.managed_fields_managers:
            left_out += _trusted_fields(plain, managed, rule.managed_fields_managers, manager=manager)
    if not left_out:
        return plain, ()
    unique = {path: owners for path, owners in left_out}
    for path in sorted(unique, key=lambda p: [int(t) if t.isdigit() else -1 for t in p], reverse=True):
        remove_path(plain, path)
    return plain, tuple((format_pointer(path), owners) for path, owners in unique.items())
