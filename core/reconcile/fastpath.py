"""The in-sync kernel of the local drift comparison: prove "nothing differs" without normalizing live.

Role: most objects are in sync most of the time, and the full local comparison (``diff.compare``:
normalize both sides, ignore rules, secret masking, canonical forms, projection, pending removals, order
check) costs about 0.7 ms per Deployment. This kernel answers only one question, cheaply: would that
comparison say Synced with no change, no warning? When it cannot prove it, it answers None and the caller
runs the full comparison, which alone ever reports a difference (and runs deepdiff to explain it).

How (``docs/architecture.md``, "The local comparison's in-sync kernel"):

* The desired side is normalized once per desired content, not per call: a bounded cache keyed by the
  manifest's digest (the engine's, passed in) or else its canonical JSON bytes (plus the options that
  change its normalization) holds a compiled *plan*: the normalized desired object (frozen on first read,
  for the verdict), its canonical form (for the removal check) and a tree of checks shaped like the
  manifest, whose maps run as generated Python (one code object per manifest shape).
* Live is read raw, only where the manifest sets fields: each check compares the raw live value with
  the normalized desired value, type-strictly (``true`` is not ``1``); a subtree live holds exactly as
  desired matches at once (``==``, plus canonical JSON bytes when it holds numbers or booleans); maps may
  hold more keys live (projection, N11: a zero value desired
  stands in for a key live omits); atomic lists must match item for item with nothing extra; merge-keyed
  lists (N13) match by key, in the same order for the items both sides share (no ``order differs``).
* Pending removals: fleetdeck's own ``Apply`` field set must lie inside the manifest (checked once per
  distinct field set and cached on the plan).
* The verdict is the one the full comparison returns; its ``live`` (the whole normalized live object,
  for display) is computed lazily, on first read.

Why a raw live value equal to the normalized desired value proves the normalized live value equal: live
normalization only drops fields the manifest never holds (server metadata, status, last-applied, empty
label/annotation maps), turns integral floats into ints (a float never passes the type-strict check against
an int), defaults port protocols (a port without one never matches a keyed desired port) and rewrites
quantities to canonical form, which is idempotent (a value equal to a canonical quantity stays itself).
Kinds whose normalization reorders or drops list items by content (Endpoints, HPA metrics, Roles), Secrets
(masking), CRDs (desired-only rules), objects with a matching ignore rule and app-declared known types are
never decided here. Anything unexpected (a Mapping that is not a dict, a tuple, a key value that is not a
string or an int) also falls back: the kernel may only say "in sync" when the full comparison would.

Constraint: pure apart from its bounded cache (thread-safe); never mutates its inputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from types import CodeType, FunctionType
from typing import Any, Protocol

import orjson

from core.model import ResourceDiff, ResourceKey, ResourceState
from core.reconcile.canonical import MERGE_KEYS, MergeKeys, Resolver, canonical, keyed
from core.reconcile.ignore import DEFAULT_IGNORE_RULES, IgnoreRule
from core.reconcile.jsonpath import LazyMapping, copy_json, freeze
from core.reconcile.known_types import object_group_kind
from core.reconcile.managed_fields import FieldPath, ManagerEntry
from core.reconcile.normalize import normalize
from core.reconcile.projection import drop_nulls, is_zero
from core.reconcile.secrets import masked_copy

CACHE_SIZE = 2048
"""Plans kept (least recently used dropped first): about 15 KiB each for a Deployment whose shape other
plans share (``bench``: 1,000 Deployments differing in name), up to 90 KiB for a shape seen first."""

UNDECIDED_KINDS = frozenset(
    {
        ("", "Secret"),
        ("", "Endpoints"),
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
    }
)
"""Kinds whose normalization is not positional (sorting, dropping by content), masked, or desired-only."""

_MISSING: Any = object()
_SEQUENCES = (list, tuple)

# A check is a tuple whose first item is the function that runs it, ``check[0](check, live)``; maps and
# lists carry ``exact``: the normalized desired value and, when it holds numbers or booleans, its canonical
# JSON bytes. Live equal to it (``==``, then the bytes when given, so ``1`` and ``true`` differ) matches
# without a walk: it is the desired value itself, which normalizes to itself.
#   (_leaf, value)         a scalar, compared type-strictly
#   (_map, exact, getter, values, types, zero_leaves, children)
#                          a map: ``getter`` fetches the non-zero scalar children at once (C), compared
#                          with ``values`` (and their ``types`` when any is a number or a bool);
#                          ``zero_leaves`` may be absent live (N11); ``children`` are (key, check, zero)
#                          for nested maps and lists
#   (_list, exact, checks, specs)
#                          an atomic list; ``specs`` when its field is merge-keyed (live must then not be
#                          keyable, or the full comparison would compare it by key)
#   (_keyed, exact, spec_index, specs, {key: (check, zero)}, order)
#                          a merge-keyed list; a key is the key field's value (a tuple for several
#                          fields), only strings and ints, so ``1`` and ``True`` never meet
Check = tuple[Any, ...]


class _Ineligible(Exception):
    """The manifest holds something the kernel does not decide (the plan is then a refusal)."""


@dataclass(slots=True)
class Plan:
    """What the kernel keeps per desired content and options."""

    check: Check | None
    """None: never decided here (kind, default ignore rule, unusual content)."""
    key: ResourceKey | None = None
    desired: Any = None
    """The frozen normalized desired object (frozen on first read), shared by every verdict of this plan."""
    normalized: dict[str, Any] | None = None
    """The normalized desired object itself (never a Secret: nothing masks it in place), which the full
    comparison reuses when the kernel cannot decide; nobody may modify it."""
    wanted: Any = None
    """The canonical desired object without nulls (pending removals resolve in it)."""
    removals: list[tuple[list[Any], bool]] = field(default_factory=list)
    """fleetdeck's ``Apply`` entries seen live (``[fieldsType, fieldsV1]`` per entry, a private JSON copy) and
    whether the fields they own all lie inside the manifest."""
    rules: dict[int, tuple[object, bool]] = field(default_factory=dict)
    """id of an app's rule sequence → (the sequence, whether none of its rules matches)."""


_lock = threading.Lock()
_plans: OrderedDict[tuple[Any, ...], Plan] = OrderedDict()
_signatures: dict[bytes, Any] = {}
"""fleetdeck's ``Apply`` field sets seen live, one JSON copy per content (``_no_removals``)."""
_shared: dict[tuple[str, bytes], Any] = {}
"""Compiled checks by content: plans of manifests that differ only here and there
(the same app on several clusters, names and labels aside) share the rest, which keeps it in the CPU
cache across a pass. Cleared when it reaches ``SHARED_SIZE`` entries."""
SHARED_SIZE = 65536
STATS = {"plans": 0, "hits": 0, "decided": 0, "undecided": 0}
"""Counters for the benchmark and tests (not synchronized: approximate under threads)."""


def clear_cache() -> None:
    """Forget every plan (tests)."""
    with _lock:
        _plans.clear()
        _shared.clear()
        _signatures.clear()


def _share(kind: str, content: Any, value: Any) -> Any:
    """The value already kept for equal ``content`` (canonical JSON plus ``kind``), else ``value``."""
    try:
        key = (kind, hashlib.blake2b(orjson.dumps(content, option=orjson.OPT_SORT_KEYS), digest_size=20).digest())
    except TypeError:
        return value
    with _lock:
        found = _shared.get(key)
        if found is None:
            if len(_shared) >= SHARED_SIZE:
                _shared.clear()
            _shared[key] = found = value
    return found


def in_sync(
    desired: Mapping[str, Any],
    live: Mapping[str, Any],
    *,
    ignore_rules: Sequence[IgnoreRule] = (),
    namespace_default: str | None = None,
    cluster_scoped: bool | None = None,
    manager: str,
    desired_digest: str | None = None,
    merge_keys: MergeKeys = MERGE_KEYS,
) -> ResourceDiff | None:
    """The full local comparison's verdict when it is Synced with nothing to report, else None.

    Args:
        desired: the manifest, as ``diff.compare`` takes it.
        live: the raw live object (managedFields kept).
        ignore_rules: the app's rules; any rule that matches the object means None.
        namespace_default: as for ``compare``.
        cluster_scoped: as for ``compare``.
        manager: fleetdeck's field manager (pending removals).
        desired_digest: the manifest's digest when the caller has one (the engine computes it once per
            render, ``core.engine.targets.digest``); else the manifest's canonical JSON is the cache key.
        merge_keys: the list-key table.

    Returns:
        The Synced ``ResourceDiff`` ``compare`` would return (its ``live`` computed on first read), or
        None when the kernel cannot prove the objects in sync: the caller then runs the full comparison.
    """
    return in_sync_positional(desired, live, ignore_rules, namespace_default, cluster_scoped, manager,
                              desired_digest, merge_keys)


def in_sync_positional(
    desired: Mapping[str, Any], live: Mapping[str, Any], ignore_rules: Sequence[IgnoreRule],
    namespace_default: str | None, cluster_scoped: bool | None, manager: str, desired_digest: str | None,
    merge_keys: MergeKeys = MERGE_KEYS,
) -> ResourceDiff | None:
    """``in_sync`` with its arguments by position (``diff.compare`` calls it for every object: keyword
    arguments cost a little on each call)."""
    if not isinstance(desired, dict) or not isinstance(live, dict):
        return None
    try:
        # The common case inline (the engine passes digests): a cached plan, as ``_plan`` finds it.
        key = (desired_digest, namespace_default, cluster_scoped, manager)
        plan = _plans.get(key) if desired_digest is not None and merge_keys is MERGE_KEYS else None
        if plan is not None:
            try:  # noqa: SIM105 (as in ``_plan``)
                _plans.move_to_end(key)
            except KeyError:
                pass
            STATS["hits"] += 1
        else:
            plan = _plan(desired, desired_digest, namespace_default=namespace_default,
                         cluster_scoped=cluster_scoped, manager=manager, merge_keys=merge_keys)
        sure = (
            plan is not None
            and (check := plan.check) is not None
            and not (ignore_rules and not _no_rule_matches(plan, ignore_rules))
            and check[0](check, live)  # _matches, inline
            and _no_removals(plan, live, manager)
        )
    except Exception:  # whatever it is, the full comparison meets it and decides
        sure = False
    if not sure:
        STATS["undecided"] += 1
        return None
    assert plan is not None
    STATS["decided"] += 1
    return _synced(plan.desired, LazyMapping(_live_view, live))


def _synced_verdict(desired: Any, live: Mapping[str, Any]) -> ResourceDiff:
    """The kernel's verdict: Synced, local, approximate, no change or warning (the reference form)."""
    return ResourceDiff(state=ResourceState.SYNCED, approximate=True, strategy="local", desired=desired, live=live)


def _synced_builder() -> Callable[[Any, Mapping[str, Any]], ResourceDiff]:
    """``_synced_verdict`` without the frozen dataclass's ``__init__`` (eight ``object.__setattr__`` calls
    by name, ~1.2 µs, a tenth of an in-sync object's cost): the slots are set through their descriptors, to
    the same values. Falls back to the constructor if ``ResourceDiff``'s fields are not the ones known here
    (a field added later gets its default only through ``__init__``)."""
    names = ("state", "changes", "approximate", "strategy", "message", "warnings", "desired", "live")
    fields = dataclasses.fields(ResourceDiff)
    if tuple(f.name for f in fields) != names or not all(
        f.default is not dataclasses.MISSING for f in fields[1:]
    ):
        return _synced_verdict
    slots = vars(ResourceDiff)
    set_state, set_changes, set_approximate, set_strategy, set_message, set_warnings, set_desired, set_live = (
        slots[name].__set__ for name in names
    )
    changes, message, warnings = fields[1].default, fields[4].default, fields[5].default
    synced, new = ResourceState.SYNCED, object.__new__

    def build(desired: Any, live: Mapping[str, Any]) -> ResourceDiff:
        verdict: ResourceDiff = new(ResourceDiff)
        set_state(verdict, synced)
        set_changes(verdict, changes)
        set_approximate(verdict, True)
        set_strategy(verdict, "local")
        set_message(verdict, message)
        set_warnings(verdict, warnings)
        set_desired(verdict, desired)
        set_live(verdict, live)
        return verdict

    return build


_synced = _synced_builder()


def plan_for(
    desired: Mapping[str, Any], *, desired_digest: str | None = None, namespace_default: str | None = None,
    cluster_scoped: bool | None = None, manager: str, merge_keys: MergeKeys = MERGE_KEYS,
) -> Plan | None:
    """The cached plan of a manifest the kernel decides (its normalized and canonical forms, read-only:
    the full comparison reuses them when the kernel could not decide), else None."""
    if not isinstance(desired, dict):
        return None
    plan = _plan(desired, desired_digest, namespace_default=namespace_default, cluster_scoped=cluster_scoped,
                 manager=manager, merge_keys=merge_keys)
    return plan if plan is not None and plan.check is not None else None


def removal_free(plan: Plan, live: Mapping[str, Any], manager: str) -> bool:
    """Whether no field fleetdeck applied before can be pending removal: every field its ``Apply``
    entries own live lies inside the manifest (the full comparison then finds none)."""
    return isinstance(live, dict) and _no_removals(plan, live, manager)


def _live_view(live: Mapping[str, Any]) -> Mapping[str, Any]:
    """What the full comparison shows of live when in sync: the whole normalized object, frozen."""
    frozen: Mapping[str, Any] = freeze(masked_copy(normalize(live, side="live")))
    return frozen


class Decodable(Protocol):
    """A compact live object (``core.live.compact.CompactObject``): ``decode()`` gives the object as a dict."""

    def decode(self) -> dict[str, Any]: ...


def keep_compact(diff: ResourceDiff, live: Mapping[str, Any], source: Decodable) -> None:
    """Let an in-sync verdict of the kernel keep ``source`` (the live object in compact form, e.g. the cache's
    entry it was decoded from) instead of the decoded ``live`` for its displayed live object, computed on
    first read: a memoized verdict then holds no decoded dicts (the collector's work and memory)."""
    view = diff.live
    if type(view) is LazyMapping:
        view.rebind(_live_view, live, _live_view_decoded, source)


def _live_view_decoded(source: Decodable) -> Mapping[str, Any]:
    return _live_view(source.decode())


def _desired_view(normalized: Mapping[str, Any]) -> Mapping[str, Any]:
    """What the full comparison shows of the manifest: normalized, secret-looking values masked, frozen."""
    frozen: Mapping[str, Any] = freeze(masked_copy(normalized))
    return frozen


# ----- plans ---------------------------------------------------------------------------------------


def _plan(
    desired: dict[str, Any], desired_digest: str | None, *, namespace_default: str | None, cluster_scoped: bool | None, manager: str,
    merge_keys: MergeKeys,
) -> Plan | None:
    """The cached plan for this desired content and options (built on a miss), None if not cacheable."""
    if merge_keys is not MERGE_KEYS:
        return None  # another list-key table: not worth a cache key of its own
    content: str | bytes
    if desired_digest is not None:
        content = desired_digest
    else:
        try:
            content = orjson.dumps(desired, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None
    key = (content, namespace_default, cluster_scoped, manager)
    plan = _plans.get(key)  # one C call under the GIL: no lock needed to read
    if plan is not None:
        try:  # noqa: SIM105 (a bare try costs nothing; contextlib.suppress costs a context per hit)
            _plans.move_to_end(key)
        except KeyError:  # evicted meanwhile by another thread
            pass
        STATS["hits"] += 1
        return plan
    plan = _build(desired, namespace_default=namespace_default, cluster_scoped=cluster_scoped,
                  merge_keys=merge_keys)
    with _lock:
        _plans[key] = plan
        STATS["plans"] += 1
        while len(_plans) > CACHE_SIZE:
            _plans.popitem(last=False)
    return plan


def _build(
    desired: dict[str, Any], *, namespace_default: str | None, cluster_scoped: bool | None,
    merge_keys: MergeKeys,
) -> Plan:
    """Normalize the manifest once and compile its checks (or a refusal)."""
    try:
        normalized = normalize(desired, side="desired", namespace_default=namespace_default,
                               cluster_scoped=cluster_scoped)
        if object_group_kind(normalized) in UNDECIDED_KINDS:
            raise _Ineligible
        key = ResourceKey.of(normalized)
        if any(rule.matches(key) for rule in DEFAULT_IGNORE_RULES):
            raise _Ineligible
        check = _generated(_compile(normalized, "", merge_keys)[0])
        wanted = drop_nulls(canonical(normalized, merge_keys))
    except Exception:  # _Ineligible, or a problem the full comparison meets and reports
        return Plan(check=None)
    return Plan(check=check, key=key, desired=LazyMapping(_desired_view, normalized), wanted=wanted, normalized=normalized)


def _key_of(item: Mapping[str, Any], fields: tuple[str, ...]) -> Any:
    """A merge-keyed item's key: the key field's value, or a tuple of them; only strings and ints."""
    values = tuple(item[name] for name in fields)
    if any(type(value) is not str and type(value) is not int for value in values):
        raise _Ineligible
    return values[0] if len(values) == 1 else values


def _compile(value: Any, field_name: str, merge_keys: MergeKeys) -> tuple[Check, bool]:
    """The check for one normalized desired value (nulls in maps dropped, as the comparison does), and
    whether a bare ``==`` against the desired value is exact for it (only strings, None, maps, lists)."""
    kind = type(value)
    if kind is str or value is None:
        return (_leaf, value), True
    if kind is int or kind is float or kind is bool:
        return (_leaf, value), False
    if kind is dict:
        check, plain = _compile_map(value, merge_keys)
    elif kind is list:
        specs = merge_keys.get(field_name) if value else None
        if specs is not None and keyed(value, specs) is not None:
            check, plain = _compile_keyed(value, specs, merge_keys)
        else:
            compiled = [_compile(item, "", merge_keys) for item in value]
            plain = all(item_plain for _, item_plain in compiled)
            checks = tuple(check for check, _ in compiled)
            check = (_list, _exact_of(value, plain), checks, merge_keys.get(field_name))
    else:
        raise _Ineligible
    # A check depends only on the value and the field it sits under (which decides list keying).
    return _share("check:" + field_name, value, check), plain


def _exact_of(value: Any, plain: bool) -> tuple[Any, bytes | None] | None:
    """``exact`` for a map or list (see the table above); None when it cannot be serialized."""
    if plain:
        return value, None
    try:
        return value, orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None


def _same(live: Any, exact: tuple[Any, bytes | None]) -> bool:
    """Whether live is exactly the desired value (``==``, then its bytes when it holds numbers)."""
    if live != exact[0]:
        return False
    return exact[1] is None or _same_bytes(live, exact[1])


def _same_bytes(live: Any, wanted: bytes) -> bool:
    try:
        return orjson.dumps(live, option=orjson.OPT_SORT_KEYS) == wanted
    except TypeError:
        return False


def _compile_map(value: dict[str, Any], merge_keys: MergeKeys) -> tuple[Check, bool]:
    """A map's check (see the table above)."""
    keys: list[str] = []
    values: list[Any] = []
    zero_leaves: list[tuple[str, Any]] = []
    children: list[tuple[str, Check, bool]] = []
    plain = True
    for name, item in value.items():
        if item is None:
            continue  # drop_nulls: not set; live's own value is projected away
        check, item_plain = _compile(item, name, merge_keys)
        plain = plain and item_plain
        if check[0] is not _leaf:
            children.append((name, check, is_zero(drop_nulls(canonical(item, merge_keys, name)))))
        elif is_zero(item):
            zero_leaves.append((name, item))
        else:
            keys.append(name)
            values.append(item)
    if len(keys) == 1:  # itemgetter of one key returns the value, not a tuple
        keys.append(keys[0])
        values.append(values[0])
    getter = itemgetter(*keys) if keys else None
    types = tuple(map(type, values))
    loose = any(kind is not str for kind in types)
    check = (_map, _exact_of(value, plain), getter, tuple(values), types if loose else None,
             tuple(zero_leaves), tuple(children))
    return check, plain


_MAX_DEPTH = 24
"""Maps nested deeper than this inside one generated function stay interpreted (Python's block limits)."""
_code: dict[str, CodeType] = {}
"""Generated check code by source text: manifests of the same shape share it (their values differ only in
the constants the function is given)."""


def _generated(check: Check) -> Check:
    """A map check whose function is Python generated for this map (nested maps inlined), instead of the
    interpreter ``_map``: the same decisions without a call and a tuple unpack per node."""
    if check[0] is not _map:
        return check
    lines: list[str] = []
    consts: list[Any] = []
    _emit_map(check, "v0", 1, lines, consts, [0])
    lines.append("    return True")
    # The constants are the function's defaults (read as locals), never globals: one globals dict for
    # every generated check keeps the interpreter's global-lookup caches valid across plans, and a plan's
    # constants sit together in one tuple.
    header = "def check(_check, v0" + "".join(f", c{index}=None" for index in range(len(consts))) + "):"
    source = "\n".join([header, *lines])
    with _lock:
        code = _code.get(source)
        if code is None:
            if len(_code) >= SHARED_SIZE // 16:
                _code.clear()
            module = compile(source, "<fastpath check>", "exec")
            code = next(c for c in module.co_consts if isinstance(c, CodeType))
            _code[source] = code
    function = FunctionType(code, _GLOBALS, "check", tuple(consts))
    return (function, *check[1:])


def _const(value: Any, consts: list[Any]) -> str:
    consts.append(value)
    return f"c{len(consts) - 1}"


def _emit_map(check: Check, var: str, depth: int, lines: list[str], consts: list[Any], counter: list[int]) -> None:
    """Statements that ``return False`` unless the live value in ``var`` matches the map ``check``."""
    _, exact, getter, values, types, zero_leaves, children = check
    pad = "    " * depth
    lines.append(f"{pad}if type({var}) is not dict: return False")
    if exact is not None:
        same = f"{var} != {_const(exact[0], consts)}"
        if exact[1] is not None:
            same += f" or not same_bytes({var}, {_const(exact[1], consts)})"
        lines.append(f"{pad}if {same}:")
        depth += 1
        pad = "    " * depth
        lines.append(f"{pad}pass")
    if getter is not None:
        lines += [f"{pad}try: found = {_const(getter, consts)}({var})", f"{pad}except KeyError: return False",
                  f"{pad}if found != {_const(values, consts)}: return False"]
        if types is not None:
            lines.append(f"{pad}if tuple(map(type, found)) != {_const(types, consts)}: return False")
    for name, wanted in zero_leaves:
        lines += [f"{pad}x = {var}.get({name!r}, M)",
                  f"{pad}if x is not M and (type(x) is not {_const(type(wanted), consts)} or x != "
                  f"{_const(wanted, consts)}): return False"]
    for name, child, zero in children:
        counter[0] += 1
        value = f"v{counter[0]}"
        lines.append(f"{pad}{value} = {var}.get({name!r}, M)")
        inner = pad
        if zero:
            lines.append(f"{pad}if {value} is not M:")
            inner = pad + "    "
        else:
            lines.append(f"{pad}if {value} is M: return False")
        if child[0] is _map and depth < _MAX_DEPTH:
            _emit_map(child, value, len(inner) // 4, lines, consts, counter)
            if zero:
                lines.append(f"{inner}pass")
        else:
            ref = _const(child, consts)
            lines.append(f"{inner}if not {ref}[0]({ref}, {value}): return False")


def _compile_keyed(
    items: list[Any], specs: tuple[tuple[str, ...], ...], merge_keys: MergeKeys
) -> tuple[Check, bool]:
    """A merge-keyed list: checks by key, the spec ``keyed`` chose, and desired's key order."""
    index = next(i for i, fields in enumerate(specs) if keyed(items, (fields,)) is not None)
    fields = specs[index]
    by_key: dict[Any, tuple[Check, bool]] = {}
    plain = True
    for item in items:
        check, item_plain = _compile(item, "", merge_keys)
        plain = plain and item_plain
        by_key[_key_of(item, fields)] = (_generated(check), is_zero(drop_nulls(canonical(item, merge_keys))))
    if len(by_key) != len(items):
        raise _Ineligible
    return (_keyed, _exact_of(items, plain), index, specs, by_key, tuple(by_key)), plain


def _no_rule_matches(plan: Plan, rules: Sequence[IgnoreRule]) -> bool:
    """Whether none of the app's ignore rules matches the object (remembered per rule sequence)."""
    if not rules:
        return True
    seen = plan.rules.get(id(rules))
    if seen is not None and seen[0] is rules:
        return seen[1]
    assert plan.key is not None
    key = plan.key
    verdict = not any(rule.matches(key) for rule in rules)
    if isinstance(rules, tuple) and len(plan.rules) < 8:  # a tuple cannot change under its id
        plan.rules[id(rules)] = (rules, verdict)
    return verdict


# ----- live ----------------------------------------------------------------------------------------


def _matches(check: Check, live: Any) -> bool:
    """Whether the raw live value projects onto the desired value exactly (see the module docstring)."""
    result: bool = check[0](check, live)
    return result


def _leaf(check: Check, live: Any) -> bool:
    wanted = check[1]
    return type(live) is type(wanted) and live == wanted


def _map(check: Check, live: Any) -> bool:
    if type(live) is not dict:
        return False
    _, exact, getter, values, types, zero_leaves, children = check
    if exact is not None and _same(live, exact):
        return True
    if getter is not None:
        try:
            found = getter(live)
        except KeyError:
            return False
        if found != values or (types is not None and tuple(map(type, found)) != types):
            return False
    for name, wanted in zero_leaves:
        value = live.get(name, _MISSING)
        if value is not _MISSING and (type(value) is not type(wanted) or value != wanted):
            return False
    for name, child, zero in children:
        value = live.get(name, _MISSING)
        if value is _MISSING:
            if not zero:
                return False
        elif not child[0](child, value):
            return False
    return True


def _list(check: Check, live: Any) -> bool:
    if type(live) is not list:
        return False
    _, exact, checks, specs = check
    if exact is not None and _same(live, exact):
        return True
    if len(live) != len(checks):
        return False
    if specs is not None and live and keyed(live, specs) is not None:
        return False  # live would be compared by key, desired as a plain list
    return all(child[0](child, item) for child, item in zip(checks, live, strict=True))


def _keyed(check: Check, live: Any) -> bool:
    """A merge-keyed list: same key spec, every desired item matched by key, shared items in order."""
    if type(live) is not list or not live:
        return False
    _, exact, index, specs, by_key, order = check
    if exact is not None and _same(live, exact):
        return True
    live_items = _live_keys(live, specs[0][0]) if index == 0 and len(specs[0]) == 1 else None
    if live_items is None:
        found = _live_keys_general(live, specs)
        if found is None or found[0] != index:
            return False
        live_items = found[1]
    for key, (child, zero) in by_key.items():
        item = live_items.get(key, _MISSING)
        if item is _MISSING:
            if not zero:
                return False
        elif not child[0](child, item):
            return False
    if len(live_items) == len(order) and tuple(live_items) == order:
        return True
    shared_live = [key for key in live_items if key in by_key]
    return shared_live == [key for key in order if key in live_items]


def _live_keys(items: list[Any], name: str) -> dict[Any, Any] | None:
    """Live's items by the one key field ``name``, when every item is a dict with a string or int value
    there and the values are unique (else None: the general path decides)."""
    by_key: dict[Any, Any] = {}
    for item in items:
        if type(item) is not dict:
            return None
        key = item.get(name, _MISSING)
        if type(key) is not str and type(key) is not int:
            return None
        by_key[key] = item
    return by_key if len(by_key) == len(items) else None


def _live_keys_general(
    items: list[Any], specs: tuple[tuple[str, ...], ...]
) -> tuple[int, dict[Any, Any]] | None:
    """The spec ``keyed`` would choose for live's items and the items by key; None when an item is not
    a dict or a key value is not a string or an int (undecided)."""
    if any(type(item) is not dict for item in items):
        return None
    for index, fields in enumerate(specs):
        if not all(all(name in item for name in fields) for item in items):
            continue
        keys = [tuple(item[name] for name in fields) for item in items]
        if any(type(value) is not str and type(value) is not int for key in keys for value in key):
            return None
        by_key = dict(zip([key[0] if len(key) == 1 else key for key in keys], items, strict=True))
        if len(by_key) == len(items):
            return index, by_key
    return None


_GLOBALS: dict[str, Any] = {"M": _MISSING, "KeyError": KeyError, "dict": dict, "type": type, "map": map,
                            "tuple": tuple, "same_bytes": _same_bytes}
"""The one globals dict of every generated check (``_generated``)."""


def _no_removals(plan: Plan, live: dict[str, Any], manager: str) -> bool:
    """Whether every field fleetdeck's ``Apply`` entries own live is one the manifest sets (then no
    pending removal can exist); remembered per distinct field set."""
    meta = live.get("metadata")
    entries = meta.get("managedFields") if type(meta) is dict or isinstance(meta, Mapping) else None
    if type(entries) is not list and not isinstance(entries, _SEQUENCES):
        return True
    mine = []
    for entry in entries:
        if type(entry) is not dict and not isinstance(entry, Mapping):
            continue
        name = entry.get("manager")  # read as ManagerEntry.parse reads them: str(value or "")
        if type(name) is str:
            if name != manager:  # another manager's entry, the common case: nothing else to read
                continue
        elif str(name or "") != manager:
            continue
        operation = entry.get("operation")
        subresource = entry.get("subresource")
        if (operation if type(operation) is str else str(operation or "")) == "Apply" and not str(subresource or ""):
            mine.append(entry)
    if not mine:
        return True
    # Compared with ``==`` against a private JSON copy of each field set seen: equal JSON values parse to
    # the same owned paths (``ManagerEntry.parse`` reads keys, which are strings, and whether a child is a
    # non-empty map; ``1 == True`` can only meet at a leaf, which owns the same path either way). ``==``
    # allocates nothing, and the copy is shared by every plan that met the same set (``_signatures``),
    # so a pass over many objects compares against one copy that stays in the CPU cache.
    if len(mine) == 1:  # the common case, without a comprehension's frame
        signature = [[mine[0].get("fieldsType", "FieldsV1"), mine[0].get("fieldsV1")]]
    else:
        signature = [[entry.get("fieldsType", "FieldsV1"), entry.get("fieldsV1")] for entry in mine]
    for seen, known in plan.removals:
        if seen == signature:
            return known
    try:  # JSON values only (else the full comparison decides)
        content = orjson.dumps(signature)
    except TypeError:
        return False
    with _lock:  # one private copy per distinct field set, shared by every plan that met it
        copied = _signatures.get(content)
        if copied is None:
            if len(_signatures) >= SHARED_SIZE // 16:
                _signatures.clear()
            copied = _signatures[content] = copy_json(signature)
    owned: set[FieldPath] = set()
    for entry in mine:
        owned |= ManagerEntry.parse(entry).owned
    in_git = Resolver(plan.wanted)
    verdict = all(not path or in_git(path) is not None for path in owned)
    if len(plan.removals) < 4:
        plan.removals.append((copied, verdict))
    return verdict
