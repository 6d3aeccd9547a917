"""Desired against live for one resource: the local structural diff and the dry-run comparison.

Role: produce the ``ResourceDiff`` the console shows: a verdict, the drifted fields (JSON pointer, op,
both values, who last wrote the live value and when) and the normalized, masked objects. Two strategies:

* ``compare`` (local, CORE_DESIGN 5.2): project live onto desired, zero values as absent (N11), lists by
  merge key (N13), plus pending removals from fleetdeck's own managedFields. ``approximate=True``.
* ``compare_predicted`` (5.1): the server-side apply dry-run result against live, both normalized.
  ``approximate=False``.

Constraint: pure and synchronous; the engine runs big batches in a thread. deepdiff is expensive (about
10 ms for two identical Deployments, PERFORMANCE.md finding 2), so it only runs after canonical byte
equality failed, and only to explain the difference; its objects never leave this module. Secrets are
masked before anything is compared, so deepdiff never sees a secret value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deepdiff import DeepDiff
from deepdiff.helper import notpresent

from core.model import FieldChange, ResourceDiff, ResourceState
from core.reconcile.canonical import (
    MERGE_KEYS,
    MergeKeys,
    Resolver,
    canonical,
    canonical_bytes,
    restore,
    to_field_path,
    to_pointer,
)
from core.reconcile.ignore import IgnoreRule, apply_ignore_rules
from core.reconcile.jsonpath import freeze
from core.reconcile.managed_fields import FIELD_MANAGER, FieldPath, ManagedFields
from core.reconcile.normalize import Side, normalize
from core.reconcile.projection import drop_nulls, project
from core.reconcile.secrets import mask_secrets

Obj = dict[str, Any]
Segments = tuple[str | int, ...]
LOCAL = "local"
SSA_DRY_RUN = "ssa-dry-run"

_OPS = {
    "values_changed": "replace",
    "type_changes": "replace",
    "dictionary_item_added": "add",
    "iterable_item_added": "add",
    "dictionary_item_removed": "remove",
    "iterable_item_removed": "remove",
}


@dataclass(frozen=True, slots=True)
class _Sides:
    """Both sides normalized, ignore rules applied and secrets masked, plus live's managedFields."""

    desired: Obj | None
    live: Obj | None
    managed: ManagedFields


@dataclass(frozen=True, slots=True)
class _Options:
    """How to normalize and compare one resource (everything but the two objects)."""

    ignore_rules: Sequence[IgnoreRule] = ()
    namespace_default: str | None = None
    cluster_scoped: bool | None = None
    known_types: Mapping[str, str] | None = None
    merge_keys: MergeKeys = field(default_factory=lambda: MERGE_KEYS)


def _prepare(
    desired: Mapping[str, Any] | None,
    live: Mapping[str, Any] | None,
    *,
    desired_side: Side,
    options: _Options,
) -> _Sides:
    """Parse managedFields, normalize both sides, apply ignore rules, then mask secrets."""
    managed = ManagedFields.of(live)
    nd = (
        None
        if desired is None
        else normalize(
            desired,
            side=desired_side,
            namespace_default=options.namespace_default,
            cluster_scoped=options.cluster_scoped,
            known_types=options.known_types,
        )
    )
    nl = None if live is None else normalize(live, side="live", known_types=options.known_types)
    nd, nl = apply_ignore_rules(nd, nl, rules=options.ignore_rules, managed_fields=managed)
    mask_secrets(nd, nl)
    return _Sides(nd, nl, managed)


def compare(
    desired: Mapping[str, Any] | None,
    live: Mapping[str, Any] | None,
    *,
    extraneous_ok: bool = False,
    ignore_rules: Sequence[IgnoreRule] = (),
    namespace_default: str | None = None,
    cluster_scoped: bool | None = None,
    known_types: Mapping[str, str] | None = None,
    manager: str = FIELD_MANAGER,
) -> ResourceDiff:
    """Compare a desired manifest with the live object by the local structural strategy.

    Args:
        desired: the rendered manifest (tracking applied), or None when Git no longer has it.
        live: the live object as the API returns it (managedFields kept), or None when absent.
        extraneous_ok: a live-only object counts as Synced (Argo's ``IgnoreExtraneous``).
        ignore_rules: the app's ignore rules (the N19 defaults always apply).
        namespace_default: the destination namespace for namespaced manifests without one.
        cluster_scoped: the kind's scope from discovery, if known.
        known_types: app-declared embedded types (N7).
        manager: the field manager whose ``Apply`` entry marks fields fleetdeck applied before.

    Returns:
        Missing, Extraneous, Synced or OutOfSync, with ``approximate=True`` and ``strategy="local"``.

    Raises:
        ValueError: when both sides are None.
    """
    options = _Options(
        ignore_rules,
        namespace_default=namespace_default,
        cluster_scoped=cluster_scoped,
        known_types=known_types,
    )
    sides = _prepare(desired, live, desired_side="desired", options=options)
    early = _one_sided(sides, strategy=LOCAL, extraneous_ok=extraneous_ok)
    if early is not None:
        return early
    assert sides.desired is not None and sides.live is not None
    wanted = drop_nulls(canonical(sides.desired, options.merge_keys))
    actual = canonical(sides.live, options.merge_keys)
    projected = project(actual, wanted)
    changes = (
        [] if canonical_bytes(wanted) == canonical_bytes(projected) else _explain(projected, wanted, sides)
    )
    removals, warnings = _pending_removals(wanted, actual, sides, manager=manager)
    return _verdict(sides, [*changes, *removals], strategy=LOCAL, warnings=warnings)


def compare_predicted(
    predicted: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    *,
    ignore_rules: Sequence[IgnoreRule] = (),
    known_types: Mapping[str, str] | None = None,
) -> ResourceDiff:
    """Compare a server-side apply dry-run result ("predicted live") with the live object.

    Both sides are normalized as live objects (server noise stripped: managedFields, resourceVersion,
    generation, uid, creationTimestamp, last-applied, status), then compared whole.

    Args:
        predicted: the object the dry-run PATCH returned.
        live: the live object (managedFields kept); None means the object does not exist yet.
        ignore_rules: the app's ignore rules (the N19 defaults always apply).
        known_types: app-declared embedded types (N7).

    Returns:
        Synced, OutOfSync or Missing, with ``approximate=False`` and ``strategy="ssa-dry-run"``.
    """
    options = _Options(ignore_rules, known_types=known_types)
    sides = _prepare(predicted, live, desired_side="live", options=options)
    early = _one_sided(sides, strategy=SSA_DRY_RUN, extraneous_ok=False)
    if early is not None:
        return early
    wanted = canonical(sides.desired, options.merge_keys)
    actual = canonical(sides.live, options.merge_keys)
    changes = [] if canonical_bytes(wanted) == canonical_bytes(actual) else _explain(actual, wanted, sides)
    return _verdict(sides, changes, strategy=SSA_DRY_RUN, warnings=[])


def _one_sided(sides: _Sides, *, strategy: str, extraneous_ok: bool) -> ResourceDiff | None:
    """The verdict when one side is absent, else None."""
    approximate = strategy == LOCAL
    if sides.live is None and sides.desired is not None:
        return ResourceDiff(
            state=ResourceState.MISSING,
            approximate=approximate,
            strategy=strategy,
            message="not in the cluster",
            desired=freeze(sides.desired),
        )
    if sides.desired is None and sides.live is not None:
        state = ResourceState.SYNCED if extraneous_ok else ResourceState.EXTRANEOUS
        message = "not in Git (extraneous resources allowed)" if extraneous_ok else "not in Git"
        return ResourceDiff(
            state=state, approximate=approximate, strategy=strategy, message=message, live=freeze(sides.live)
        )
    if sides.desired is None:
        raise ValueError("compare needs a desired or a live object")
    return None


def _verdict(
    sides: _Sides, changes: list[FieldChange], *, strategy: str, warnings: list[str]
) -> ResourceDiff:
    """Synced or OutOfSync from the changes found, with the masked objects for display."""
    ordered = tuple(sorted(changes, key=lambda change: (change.path, change.op)))
    message = (
        "" if not ordered else "1 field differs" if len(ordered) == 1 else f"{len(ordered)} fields differ"
    )
    return ResourceDiff(
        state=ResourceState.OUT_OF_SYNC if ordered else ResourceState.SYNCED,
        changes=ordered,
        approximate=strategy == LOCAL,
        strategy=strategy,
        message=message,
        warnings=tuple(warnings),
        desired=freeze(sides.desired),
        live=freeze(sides.live),
    )


def _differing_roots(actual: Any, wanted: Any, prefix: Segments = ()) -> Iterator[tuple[Segments, Any, Any]]:
    """The smallest subtrees where two canonical objects differ.

    Maps present on both sides are descended (equal children skipped by byte comparison); a key on one
    side only, a list, a scalar or a type change is a root. ``notpresent`` marks the missing side.
    """
    if not (isinstance(actual, dict) and isinstance(wanted, dict)):
        yield prefix, actual, wanted
        return
    for key in {**actual, **wanted}:
        left, right = actual.get(key, notpresent), wanted.get(key, notpresent)
        if left is notpresent or right is notpresent:
            yield (*prefix, key), left, right
        elif canonical_bytes(left) != canonical_bytes(right):
            yield from _differing_roots(left, right, (*prefix, key))


def _explain(actual: Any, wanted: Any, sides: _Sides) -> list[FieldChange]:
    """Field changes between two canonical objects that are known to differ (deepdiff, tree view).

    deepdiff only sees the differing subtrees (one call, each subtree under its index), not the equal
    bulk of the objects: walking identical subtrees is where its cost goes.
    """
    roots = list(_differing_roots(actual, wanted))
    left = {index: value for index, (_, value, _) in enumerate(roots) if value is not notpresent}
    right = {index: value for index, (_, _, value) in enumerate(roots) if value is not notpresent}
    tree = DeepDiff(left, right, view="tree", threshold_to_diff_deeper=0, verbose_level=2)
    changes = [
        _change(level, op, sides, roots)
        for report, levels in tree.items()
        if (op := _OPS.get(report)) is not None
        for level in levels
    ]
    if not changes:
        changes.append(
            FieldChange(path="", op="replace", desired=freeze(restore(wanted)), live=freeze(restore(actual)))
        )
    return changes


def _change(level: Any, op: str, sides: _Sides, roots: list[tuple[Segments, Any, Any]]) -> FieldChange:
    """One deepdiff tree node as a ``FieldChange`` (pointer into live, or into desired for adds)."""
    index, *rest = level.path(output_format="list", use_t2=op == "add")
    segments: list[str | int] = [*roots[index][0], *rest]
    plain = sides.desired if op == "add" else sides.live
    writer = None if op == "add" else sides.managed.last_writer(to_field_path(segments))
    return FieldChange(
        path=to_pointer(segments, plain),
        op=op,
        desired=_display(level.t2),
        live=_display(level.t1),
        manager=writer[0] if writer else None,
        time=writer[1] if writer else None,
    )


def _display(value: Any) -> Any:
    """A deepdiff side value as a frozen plain value (None when not present)."""
    return None if value is notpresent else freeze(restore(value))


def _pending_removals(
    wanted: Any, actual: Any, sides: _Sides, *, manager: str
) -> tuple[list[FieldChange], list[str]]:
    """Fields fleetdeck applied before that Git no longer has but live still holds (5.2 step 2).

    Only the topmost such field is reported (a removed container, not each of its fields). A field that
    another manager also owns is reported with a ``StuckField`` warning: apply will not remove it.
    """
    changes: list[FieldChange] = []
    warnings: list[str] = []
    reported: list[FieldPath] = []
    in_live, in_git = Resolver(actual), Resolver(wanted)
    for path in sorted(sides.managed.owned_by(manager), key=lambda p: (len(p), p)):
        if not path or any(path[: len(done)] == done for done in reported):
            continue
        found = in_live(path)
        if found is None or in_git(path) is not None:
            continue
        reported.append(path)
        change = _removal(path, found, sides)
        changes.append(change)
        others = sorted({e.manager for e in sides.managed.owners(path) if e.manager != manager})
        if others:
            warnings.append(
                f"StuckField: {change.path} is also owned by {', '.join(others)}; applying will not remove it"
            )
    return changes, warnings


def _removal(path: FieldPath, found: tuple[list[str | int], Any], sides: _Sides) -> FieldChange:
    """A pending removal as a ``FieldChange`` (op ``remove``, desired None)."""
    segments, value = found
    writer = sides.managed.last_writer(path)
    return FieldChange(
        path=to_pointer(segments, sides.live),
        op="remove",
        desired=None,
        live=freeze(restore(value)),
        manager=writer[0] if writer else None,
        time=writer[1] if writer else None,
    )
