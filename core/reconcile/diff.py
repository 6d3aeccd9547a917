"""Desired against live for one resource: the local structural diff and the dry-run comparison.

Role: produce the ``ResourceDiff`` the console shows: a verdict, the drifted fields (JSON pointer, op,
both values, who last wrote the live value and when) and the normalized, masked objects. Two strategies:

* ``compare`` (local): project live onto desired, zero values as absent (N11), lists by
  merge key (N13), plus pending removals from fleetdeck's own managedFields. ``approximate=True``.
* ``compare_predicted`` (dry run): the server-side apply dry-run result against live, both normalized.
  ``approximate=False``.

Both also report a list-map whose shared items the apply would put in another order (``order differs``:
server-side apply orders a list-map as the applied configuration does), and note each change's cause
(``FieldChange.note``: changed in Git, not set live, removed from Git). For the local strategy the live
object kept for display is projected onto the manifest, so a text diff never shows server defaults.

Constraint: pure and synchronous; the engine runs big batches in a thread. deepdiff is expensive (about
10 ms for two identical Deployments; docs/performance.md), so it only runs after canonical byte
equality failed, and only to explain the difference; its objects never leave this module. Secrets are
masked before anything is compared, so deepdiff never sees a secret value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deepdiff import DeepDiff
from deepdiff.helper import notpresent

from core.model import FieldChange, ResourceDiff, ResourceState
from core.reconcile.canonical import (
    KEY_PREFIX,
    MERGE_KEYS,
    MergeKeys,
    Resolver,
    canonical,
    canonical_bytes,
    field_path_of,
    keyed,
    restore,
    to_field_path,
    to_pointer,
)
from core.reconcile.fastpath import in_sync_positional, plan_for, removal_free
from core.reconcile.ignore import IgnoreRule, apply_ignore_rules
from core.reconcile.jsonpath import SCALARS, LazyMapping, copy_json, format_pointer, freeze
from core.reconcile.managed_fields import FIELD_MANAGER, FieldPath, ManagedFields
from core.reconcile.normalize import Side, normalize
from core.reconcile.projection import drop_nulls, project, project_plain
from core.reconcile.secrets import holds_secret_values, mask_secrets

Obj = dict[str, Any]
Segments = tuple[str | int, ...]
LOCAL = "local"
SSA_DRY_RUN = "ssa-dry-run"

ORDER_DIFFERS = "order differs"
CHANGED_IN_GIT = "changed in Git"
NOT_SET_LIVE = "not set live"
REMOVED_FROM_GIT = "removed from Git"

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
    manager: str = FIELD_MANAGER
    """fleetdeck's field manager (a field only it owns live holds what fleetdeck applied)."""


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
    manager: str = FIELD_MANAGER,
    normalized: dict[str, Any] | None = None,
) -> _Sides:
    """Parse managedFields, normalize both sides, apply ignore rules, then mask secrets.

    ``normalized`` is the desired side already normalized with these options (the in-sync kernel's
    cache); it is never modified (ignore rules copy a side before changing it, and it is never a Secret).
    """
    managed = ManagedFields.of(live)
    nd = (
        None
        if desired is None
        else normalized
        if normalized is not None
        else normalize(
            desired,
            side=desired_side,
            namespace_default=options.namespace_default,
            cluster_scoped=options.cluster_scoped,
            known_types=options.known_types,
        )
    )
    if nd is not None and nd is normalized and holds_secret_values(nd):
        nd = copy_json(nd)  # the kernel's shared manifest is never masked in place
    nl = None if live is None else normalize(live, side="live", known_types=options.known_types)
    nd, nl = apply_ignore_rules(nd, nl, rules=options.ignore_rules, managed_fields=managed)
    # The kernel's shared manifest, still itself here, holds nothing to mask (checked above): masking it
    # would only walk it again; the masks handed to live's values are the same without it.
    mask_secrets(None if nd is not None and nd is normalized else nd, nl)
    return _Sides(nd, nl, managed, manager)


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
    fast: bool = True,
    desired_digest: str | None = None,
) -> ResourceDiff:
    """Compare a desired manifest with the live object by the local structural strategy.

    The in-sync kernel (``fastpath.in_sync``) answers first when it can prove the objects in sync; the
    full comparison below runs otherwise (and alone reports differences).

    Args:
        desired: the rendered manifest (tracking applied), or None when Git no longer has it.
        live: the live object as the API returns it (managedFields kept), or None when absent.
        extraneous_ok: a live-only object counts as Synced (Argo's ``IgnoreExtraneous``).
        ignore_rules: the app's ignore rules (the N19 defaults always apply).
        namespace_default: the destination namespace for namespaced manifests without one.
        cluster_scoped: the kind's scope from discovery, if known.
        known_types: app-declared embedded types (N7).
        manager: the field manager whose ``Apply`` entry marks fields fleetdeck applied before.
        fast: try the in-sync kernel first (False: always the full comparison, for differential tests).
        desired_digest: the manifest's digest, when the caller has one (``core.engine.targets.digest``
            of ``desired``): the kernel's cache key. It must be the digest of this very manifest.

    Returns:
        Missing, Extraneous, Synced or OutOfSync, with ``approximate=True`` and ``strategy="local"``.

    Raises:
        ValueError: when both sides are None.
    """
    plan = None
    if fast and desired is not None and live is not None and not known_types:
        quick = in_sync_positional(desired, live, ignore_rules, namespace_default, cluster_scoped, manager,
                                   desired_digest)
        if quick is not None:
            return quick
        plan = plan_for(desired, desired_digest=desired_digest, manager=manager,
                        namespace_default=namespace_default, cluster_scoped=cluster_scoped)
    options = _Options(
        ignore_rules,
        namespace_default=namespace_default,
        cluster_scoped=cluster_scoped,
        known_types=known_types,
    )
    sides = _prepare(desired, live, desired_side="desired", options=options, manager=manager,
                     normalized=plan.normalized if plan is not None else None)
    early = _one_sided(sides, strategy=LOCAL, extraneous_ok=extraneous_ok)
    if early is not None:
        return early
    assert sides.desired is not None and sides.live is not None
    # The kernel's plan holds this very normalized manifest when no ignore rule changed a side (a rule
    # copies both sides before its first change): its canonical form and frozen copy are reused.
    untouched = plan is not None and sides.desired is plan.normalized
    wanted = plan.wanted if plan is not None and untouched else drop_nulls(canonical(sides.desired, options.merge_keys))
    actual = canonical(sides.live, options.merge_keys)
    projected = project(actual, wanted)
    changes = (
        [] if canonical_bytes(wanted) == canonical_bytes(projected) else _explain(projected, wanted, sides)
    )
    removals: list[FieldChange] = []
    warnings: list[str] = []
    if not (plan is not None and untouched and live is not None and removal_free(plan, live, manager)):
        removals, warnings = _pending_removals(wanted, actual, sides, manager=manager)
    order = _order_changes(sides, options.merge_keys)
    found = [*changes, *removals, *order]
    keep = frozenset(c.path for c in removals)
    shown = (
        LazyMapping(_projected_view, (sides.live, sides.desired, options.merge_keys, keep))
        if found
        else LazyMapping(freeze, sides.live)
    )
    return _verdict(sides, found, strategy=LOCAL, warnings=warnings, live_view=shown,
                    desired_view=plan.desired if plan is not None and untouched else None)


def _projected_view(arguments: tuple[Obj, Obj, MergeKeys, frozenset[str]]) -> Mapping[str, Any]:
    """What a local comparison that found changes shows of live: live projected onto the manifest, plus
    fleetdeck's pending removals (computed on first read; the objects are the comparison's own copies)."""
    live, desired, merge_keys, keep = arguments
    frozen: Mapping[str, Any] = freeze(project_plain(live, drop_nulls(desired), merge_keys, keep=keep))
    return frozen


def compare_predicted(
    predicted: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    *,
    ignore_rules: Sequence[IgnoreRule] = (),
    known_types: Mapping[str, str] | None = None,
    manager: str = FIELD_MANAGER,
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
    sides = _prepare(predicted, live, desired_side="live", options=options, manager=manager)
    early = _one_sided(sides, strategy=SSA_DRY_RUN, extraneous_ok=False)
    if early is not None:
        return early
    wanted = canonical(sides.desired, options.merge_keys)
    actual = canonical(sides.live, options.merge_keys)
    changes = [] if canonical_bytes(wanted) == canonical_bytes(actual) else _explain(actual, wanted, sides)
    order = _order_changes(sides, options.merge_keys)
    return _verdict(sides, [*changes, *order], strategy=SSA_DRY_RUN, warnings=[])


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
    sides: _Sides, changes: list[FieldChange], *, strategy: str, warnings: list[str],
    live_view: Mapping[str, Any] | None = None, desired_view: Mapping[str, Any] | None = None,
) -> ResourceDiff:
    """Synced or OutOfSync from the changes found, with the masked objects for display.

    ``live_view`` is what to show of the live object, already frozen (or computed on first read), when
    not the whole normalized live object frozen now; ``desired_view`` likewise for desired.
    """
    ordered = tuple(sorted(changes, key=lambda change: (change.path, change.op)))
    fields = [c for c in ordered if c.note != ORDER_DIFFERS]
    reordered = [c.display_path for c in ordered if c.note == ORDER_DIFFERS]
    parts = [] if not fields else ["1 field differs" if len(fields) == 1 else f"{len(fields)} fields differ"]
    if reordered:
        parts.append(f"{ORDER_DIFFERS}: {', '.join(reordered)}")
    message = "; ".join(parts)
    return ResourceDiff(
        state=ResourceState.OUT_OF_SYNC if ordered else ResourceState.SYNCED,
        changes=ordered,
        approximate=strategy == LOCAL,
        strategy=strategy,
        message=message,
        warnings=tuple(warnings),
        desired=freeze(sides.desired) if desired_view is None else desired_view,
        live=freeze(sides.live) if live_view is None else live_view,
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
    bulk of the objects: walking identical subtrees is where its cost goes. A subtree whose report
    deepdiff's rules fix without a walk (``_plain_op``: present on one side only, another type, or two
    different strings, ints or booleans) becomes its change directly; deepdiff reports each index of the
    two dicts on its own, so the rest is what it would have said of them in the same call.
    """
    roots = list(_differing_roots(actual, wanted))
    changes: list[FieldChange] = []
    left: dict[int, Any] = {}
    right: dict[int, Any] = {}
    for index, (segments, live_value, desired_value) in enumerate(roots):
        op = _plain_op(live_value, desired_value)
        if op is not None:
            changes.append(_change(segments, op, live_value, desired_value, sides))
            continue
        if live_value is not notpresent:
            left[index] = live_value
        if desired_value is not notpresent:
            right[index] = desired_value
    if left or right:
        tree = DeepDiff(left, right, view="tree", threshold_to_diff_deeper=0, verbose_level=2)
        for report, levels in tree.items():
            if (op := _OPS.get(report)) is None:
                continue
            for level in levels:
                index, *rest = level.path(output_format="list", use_t2=op == "add")
                changes.append(_change([*roots[index][0], *rest], op, level.t1, level.t2, sides))
    if not changes:
        changes.append(
            FieldChange(path="", op="replace", desired=freeze(restore(wanted)), live=freeze(restore(actual)))
        )
    return changes


_PLAIN = (str, int, bool)


def _plain_op(live: Any, desired: Any) -> str | None:
    """The op deepdiff (as ``_explain`` calls it) reports for one differing root without walking it:
    ``add``/``remove`` for a value on one side only, ``replace`` for another type (``type_changes``) or
    for two different strings, ints or booleans (``values_changed``); None when deepdiff must look
    (two lists, floats: ``0.0`` and ``-0.0`` differ in bytes but not for deepdiff)."""
    if live is notpresent:
        return None if desired is notpresent else "add"
    if desired is notpresent:
        return "remove"
    kind = type(live)
    if kind is not type(desired):
        return "replace"
    if kind in _PLAIN and live != desired:
        return "replace"
    return None


def _change(segments: Sequence[str | int], op: str, t1: Any, t2: Any, sides: _Sides) -> FieldChange:
    """One reported difference as a ``FieldChange`` (pointer into live, or into desired for adds);
    ``t1``/``t2`` are the live and desired values, ``notpresent`` when absent."""
    plain = sides.desired if op == "add" else sides.live
    field = to_field_path(segments)
    writer = None if op == "add" else sides.managed.last_writer(field)
    return FieldChange(
        path=to_pointer(segments, plain),
        op=op,
        desired=_display(t2),
        live=_display(t1),
        manager=writer[0] if writer else None,
        time=writer[1] if writer else None,
        note=_note(op, sides, field),
    )


def _note(op: str, sides: _Sides, field: FieldPath) -> str:
    """The cause of one change: not set live (an add), or Git's doing when fleetdeck alone owns the live
    value (it is what fleetdeck applied; nobody edited it since), else empty (the manager tells)."""
    if op == "add":
        return NOT_SET_LIVE
    if _only_fleetdeck(sides, field):
        return REMOVED_FROM_GIT if op == "remove" else CHANGED_IN_GIT
    return ""


def _only_fleetdeck(sides: _Sides, path: FieldPath) -> bool:
    """Whether fleetdeck's manager alone owns ``path`` live: the live value is what fleetdeck applied, so
    the difference comes from Git, not from someone editing the object."""
    owners = {entry.manager for entry in sides.managed.owners(path)}
    return owners == {sides.manager}


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
        note=REMOVED_FROM_GIT,
    )


def _key_label(token: str) -> str:
    """An associative-list item as an operator names it: ``MODE`` (one key field) or ``port=80,protocol=TCP``."""
    wanted = json.loads(token[len(KEY_PREFIX) :])
    if len(wanted) == 1:
        return str(next(iter(wanted.values())))
    return ",".join(f"{name}={value}" for name, value in wanted.items())


def _order_changes(sides: _Sides, merge_keys: MergeKeys) -> list[FieldChange]:
    """Associative lists whose items the apply would put in another order than live's.

    Server-side apply orders a list-map's items as the applied configuration lists them, so when the items
    both sides share appear in another order live (``kubectl edit`` swapping two env entries), a sync
    rewrites the object (a new generation, a rollout) although every item compares equal by key. Each such
    list is one ``replace`` change noted ``order differs``; its values are the item keys in each order.
    """
    found: list[FieldChange] = []
    if _may_reorder(sides.desired, sides.live, "", merge_keys):
        _walk_order(sides.desired, sides.live, "", [], sides, merge_keys, found)
    return found


_UNSURE = object()
_SCALAR_TYPES = frozenset(SCALARS)


def _tagged(items: list[Any], specs: tuple[tuple[str, ...], ...]) -> Any:
    """``keyed``'s choice for ``items`` as item keys in order (tuples of key-field values), None when no
    spec fits, or ``_UNSURE`` when a key value is not a string or an int (then ``keyed`` decides)."""
    for fields in specs:
        if not all(isinstance(item, Mapping) and all(f in item for f in fields) for item in items):
            continue
        keys = [tuple(item[f] for f in fields) for item in items]
        if any(type(value) is not str and type(value) is not int for key in keys for value in key):
            return _UNSURE
        if len(set(keys)) == len(keys):
            return keys
    return None


def _may_reorder(desired: Any, live: Any, field: str, merge_keys: MergeKeys) -> bool:
    """False when ``_walk_order`` would find nothing: the same walk, with item keys compared as values
    (strings and ints, which their JSON tokens tell apart exactly) instead of JSON tokens; True when it
    finds a reordered list-map or cannot tell."""
    if isinstance(desired, dict) and isinstance(live, dict):
        for name, value in desired.items():
            if type(value) in _SCALAR_TYPES:
                continue  # a leaf holds no list (the call would say False)
            if name in live and _may_reorder(value, live[name], name, merge_keys):
                return True
        return False
    if not (isinstance(desired, list) and isinstance(live, list)):
        return False
    specs = merge_keys.get(field)
    wanted = _tagged(desired, specs) if desired and specs else None
    actual = _tagged(live, specs) if live and specs else None
    if wanted is _UNSURE or actual is _UNSURE:
        return True
    if wanted is None or actual is None:
        return any(_may_reorder(w, a, "", merge_keys) for w, a in zip(desired, live, strict=False))
    in_live = dict(zip(actual, live, strict=True))
    in_desired = set(wanted)
    shared = [key for key in wanted if key in in_live]
    if shared != [key for key in actual if key in in_desired]:
        return True
    by_key = dict(zip(wanted, desired, strict=True))
    return any(_may_reorder(by_key[key], in_live[key], "", merge_keys) for key in shared)


def _walk_order(
    desired: Any, live: Any, field: str, at: list[str | int], sides: _Sides, merge_keys: MergeKeys,
    found: list[FieldChange],
) -> None:
    if isinstance(desired, dict) and isinstance(live, dict):
        for name, value in desired.items():
            if name in live:
                _walk_order(value, live[name], name, [*at, name], sides, merge_keys, found)
        return
    if not (isinstance(desired, list) and isinstance(live, list)):
        return
    keyed_desired = keyed(desired, merge_keys[field]) if desired and field in merge_keys else None
    keyed_live = keyed(live, merge_keys[field]) if live and field in merge_keys else None
    if keyed_desired is None or keyed_live is None:
        for index, (wanted, actual) in enumerate(zip(desired, live, strict=False)):
            _walk_order(wanted, actual, "", [*at, index], sides, merge_keys, found)
        return
    shared_desired = [token for token in keyed_desired if token in keyed_live]
    shared_live = [token for token in keyed_live if token in keyed_desired]
    if shared_desired != shared_live:
        pointer = format_pointer(at)
        path = field_path_of(sides.live, pointer, merge_keys)
        writer = sides.managed.last_writer(path) if path is not None else None
        found.append(FieldChange(
            path=pointer, op="replace", desired=tuple(_key_label(t) for t in shared_desired),
            live=tuple(_key_label(t) for t in shared_live), manager=writer[0] if writer else None,
            time=writer[1] if writer else None, note=ORDER_DIFFERS,
        ))
    live_index = {token: index for index, token in enumerate(keyed_live)}
    for token in shared_desired:
        _walk_order(keyed_desired[token], keyed_live[token], "", [*at, live_index[token]], sides, merge_keys, found)
