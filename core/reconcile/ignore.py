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
from core.reconcile.jsonpath import WILDCARD, copy_json, get_in, parse_pointer, remove_path
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
