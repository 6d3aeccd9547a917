"""The in-sync kernel of the local comparison (core/reconcile/fastpath.py) against the full comparison.

The kernel may only answer "in sync" when the full comparison would say exactly that (same verdict, same
displayed objects); everything else it must leave to the full comparison. The property test generates
manifests and live objects with the cases the normalization exists for: quantities in other spellings,
server defaults, merge-keyed lists (reordered, extra items, duplicate keys), zero values, nulls, integral
floats and booleans where numbers are expected, managedFields with pending removals, Secrets and ignore
rules.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.model import ResourceState
from core.reconcile import diff as diff_module
from core.reconcile import fastpath
from core.reconcile.canonical import MERGE_KEYS
from core.reconcile.diff import compare
from core.reconcile.ignore import IgnoreRule
from core.reconcile.jsonpath import thaw
from core.reconcile.managed_fields import ManagedFields
from core.reconcile.normalize import normalize
from core.reconcile.quantity import canonical_quantity

OBJECTS = Path(__file__).resolve().parents[1] / "fixtures" / "objects"
LIVE = json.loads((OBJECTS / "deployment-live.json").read_text())
DESIRED = yaml.safe_load((OBJECTS / "deployment-desired.yaml").read_text())


def both(desired: Any, live: Any, **options: Any) -> tuple[Any, Any]:
    """The kernel-first comparison and the full one, with a cold kernel cache each time."""
    fastpath.clear_cache()
    return compare(desired, live, **options), compare(desired, live, fast=False, **options)


def assert_same(fast: Any, slow: Any) -> None:
    """Identical verdicts, displayed objects included."""
    assert fast.state == slow.state
    assert fast.changes == slow.changes
    assert (fast.message, fast.warnings, fast.approximate, fast.strategy) == (
        slow.message, slow.warnings, slow.approximate, slow.strategy)
    assert thaw(fast.desired) == thaw(slow.desired)
    assert thaw(fast.live) == thaw(slow.live)
    assert fast == slow


def decided(desired: Any, live: Any, **options: Any) -> bool:
    """Whether the kernel answers for this pair (rather than the full comparison)."""
    fastpath.clear_cache()
    return fastpath.in_sync(desired, live, manager="fleetdeck", **options) is not None


def in_sync_fixture() -> tuple[dict[str, Any], dict[str, Any]]:
    """The hand-checked Deployment pair with its kubectl-edit drift undone: in sync after normalization
    (quantities respelled, protocol and probe defaults, server metadata, other managers)."""
    desired, live = copy.deepcopy(DESIRED), copy.deepcopy(LIVE)
    live["spec"]["replicas"] = desired["spec"]["replicas"]
    return desired, live


# ----- examples --------------------------------------------------------------------------------------


def test_the_kernel_decides_the_realistic_in_sync_deployment() -> None:
    desired, live = in_sync_fixture()
    assert decided(desired, live, namespace_default="shop")
    fast, slow = both(desired, live, namespace_default="shop")
    assert slow.state is ResourceState.SYNCED
    assert_same(fast, slow)


def test_a_second_comparison_reuses_the_normalized_manifest() -> None:
    desired, live = in_sync_fixture()
    fastpath.clear_cache()
    before = dict(fastpath.STATS)
    compare(desired, live, namespace_default="shop")
    compare(desired, copy.deepcopy(live), namespace_default="shop", desired_digest=None)
    assert fastpath.STATS["plans"] - before["plans"] == 1
    assert fastpath.STATS["hits"] - before["hits"] == 1


def _set(obj: dict[str, Any], pointer: str, value: Any) -> None:
    *parents, last = [int(t) if t.isdigit() else t for t in pointer.strip("/").split("/")]
    node: Any = obj
    for token in parents:
        node = node[token]
    node[last] = value


@pytest.mark.parametrize(
    ("pointer", "value"),
    [
        ("/spec/replicas", True),  # a boolean is not 1 (here: 3 vs True differs anyway)
        ("/spec/replicas", 3.0),  # an integral float: equal after normalization, but not raw
        ("/spec/template/spec/containers/0/resources/limits/cpu", "1000m"),  # another spelling
        ("/spec/template/spec/containers/0/env", [{"name": "PORT", "value": "8080"},
                                                  {"name": "LOG_LEVEL", "value": "info"}]),  # reordered
        ("/spec/template/spec/containers/0/env/0/value", "debug"),  # a changed value
        ("/spec/template/spec/containers/0/ports/0", {"containerPort": 8080, "name": "http"}),  # no protocol
        ("/spec/template/spec/containers/0/readinessProbe/initialDelaySeconds", False),
        ("/metadata/labels", {}),
    ],
)
def test_subtle_live_values_leave_the_verdict_to_the_full_comparison(pointer: str, value: Any) -> None:
    desired, live = in_sync_fixture()
    _set(live, pointer, value)
    assert not decided(desired, live, namespace_default="shop")
    assert_same(*both(desired, live, namespace_default="shop"))


def test_replicas_true_against_one_is_drift_for_both() -> None:
    desired, live = in_sync_fixture()
    desired["spec"]["replicas"] = 1
    live["spec"]["replicas"] = True
    fast, slow = both(desired, live, namespace_default="shop")
    assert slow.state is ResourceState.OUT_OF_SYNC
    assert_same(fast, slow)


def test_a_pending_removal_is_left_to_the_full_comparison() -> None:
    desired, live = in_sync_fixture()
    del desired["metadata"]["labels"]["tier"]  # fleetdeck applied it before; live still has it
    del live["metadata"]["labels"]["tier"]  # ... even gone from live, the field set still names it
    assert not decided(desired, live, namespace_default="shop")
    assert_same(*both(desired, live, namespace_default="shop"))


def test_a_matching_ignore_rule_is_left_to_the_full_comparison() -> None:
    desired, live = in_sync_fixture()
    rules = (IgnoreRule(kind="Deployment", json_pointers=("/spec/replicas",)),)
    assert not decided(desired, live, namespace_default="shop", ignore_rules=rules)
    assert_same(*both(desired, live, namespace_default="shop", ignore_rules=rules))
    other = (IgnoreRule(kind="ConfigMap", json_pointers=("/data",)),)
    assert decided(desired, live, namespace_default="shop", ignore_rules=other)


def test_secrets_are_left_to_the_full_comparison() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "shop"},
              "type": "Opaque", "data": {"password": "c2VjcmV0"}}
    assert not decided(secret, copy.deepcopy(secret))
    fast, slow = both(secret, copy.deepcopy(secret))
    assert "c2VjcmV0" not in json.dumps(thaw(fast.live))
    assert_same(fast, slow)


def test_the_displayed_live_object_is_computed_on_first_read_only() -> None:
    desired, live = in_sync_fixture()
    fastpath.clear_cache()
    result = compare(desired, live, namespace_default="shop")
    assert result.live is not None and "status" not in result.live
    assert result.live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


def test_a_quantity_too_large_for_decimal_is_left_as_written() -> None:
    """A cluster string such as ``1e9999999`` (decimal.Overflow) is not a quantity: neither the full
    comparison nor the kernel's lazily built display of live raises on it."""
    assert canonical_quantity("1e9999999") == "1e9999999"
    desired, live = in_sync_fixture()
    live["spec"]["template"]["spec"]["containers"].append(
        {"name": "sidecar", "image": "proxy:1", "resources": {"limits": {"cpu": "1e9999999"}}})
    fast, slow = both(desired, live, namespace_default="shop")
    assert slow.state is ResourceState.SYNCED
    assert_same(fast, slow)


# ----- property --------------------------------------------------------------------------------------

_QUANTITIES = st.sampled_from(["1", "1000m", 1, 1.0, 0.5, "500m", "0.5", "1Gi", "1024Mi", "1e3", "1k", "250m",
                               "0", 0, "abc", "", True, None])
_NAMES = st.sampled_from(["web", "side", "LOG", "PORT", "a", 1])
_SCALARS = st.one_of(st.sampled_from([0, 1, 3, 3.0, 1.5, True, False, "", "x", "1", None]), st.integers(-2, 5))


@st.composite
def _container(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"name": draw(_NAMES), "image": draw(st.sampled_from(["web:1", "web:2"]))}
    if draw(st.booleans()):
        out["env"] = [{"name": draw(_NAMES), "value": draw(st.sampled_from(["1", "info", None, ""]))}
                      for _ in range(draw(st.integers(0, 4)))]
    if draw(st.booleans()):
        port: dict[str, Any] = {"containerPort": draw(st.sampled_from([80, 8080, 80.0, "80"]))}
        if draw(st.booleans()):
            port["protocol"] = draw(st.sampled_from(["TCP", "UDP"]))
        out["ports"] = [port]
    if draw(st.booleans()):
        out["resources"] = {part: {"cpu": draw(_QUANTITIES)} for part in draw(
            st.lists(st.sampled_from(["limits", "requests"]), unique=True, max_size=2))}
    if draw(st.booleans()):
        out["readinessProbe"] = {"initialDelaySeconds": draw(_SCALARS), "periodSeconds": draw(_SCALARS)}
    if draw(st.booleans()):
        out["args"] = draw(st.lists(st.sampled_from(["a", "b", 1]), max_size=3))
    return out


@st.composite
def _manifest(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Deployment", "Deployment", "Deployment", "ConfigMap", "Secret", "Service",
                                 "HorizontalPodAutoscaler"]))
    api = {"Deployment": "apps/v1", "HorizontalPodAutoscaler": "autoscaling/v2"}.get(kind, "v1")
    meta: dict[str, Any] = {"name": "web"}
    if draw(st.booleans()):
        meta["namespace"] = "shop"
    if draw(st.booleans()):
        meta["labels"] = draw(st.dictionaries(st.sampled_from(["app", "tier"]), st.sampled_from(["web", None, ""]),
                                              max_size=2))
    if draw(st.booleans()):
        meta["annotations"] = {}
    obj: dict[str, Any] = {"apiVersion": api, "kind": kind, "metadata": meta}
    if kind == "Deployment":
        spec: dict[str, Any] = {"template": {"spec": {"containers": draw(st.lists(_container(), min_size=1,
                                                                                 max_size=2))}}}
        if draw(st.booleans()):
            spec["replicas"] = draw(_SCALARS)
        if draw(st.booleans()):
            spec["template"]["metadata"] = {"annotations": {}, "labels": {"app": "web"}}
        obj["spec"] = spec
    elif kind == "Service":
        obj["spec"] = {"ports": [{"port": draw(st.sampled_from([80, 443])), "targetPort": draw(_SCALARS)}]}
    else:
        obj["data"] = draw(st.dictionaries(st.sampled_from(["a", "b"]), _SCALARS, max_size=2))
    return obj


def _paths(value: Any, prefix: str = "") -> list[str]:
    """Every pointer into ``value`` (for mutations)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, f"{prefix}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, f"{prefix}/{index}")
    return found


def _fields_v1(value: Any) -> Any:
    """A fieldsV1 tree naming every field of ``value`` (list items by name, else by index)."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, list):
            out[f"f:{key}"] = {
                (f"k:{json.dumps({'name': it['name']}, separators=(',', ':'))}" if isinstance(it, dict)
                 and "name" in it else f"i:{i}"): {".": {}, **_fields_v1(it)}
                for i, it in enumerate(item)
            }
        else:
            out[f"f:{key}"] = _fields_v1(item)
    return out


@st.composite
def _pair(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    desired = draw(_manifest())
    live = copy.deepcopy(desired)
    live["metadata"].setdefault("namespace", "shop")
    live["metadata"].update(uid="u", resourceVersion="7", creationTimestamp="2026-01-01T00:00:00Z")
    live["status"] = {"replicas": 1}
    for container in live.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
        if isinstance(container, dict) and draw(st.booleans()):  # server defaults
            container.update(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log")
            for port in container.get("ports", []):
                port.setdefault("protocol", "TCP")
    managers = []
    if draw(st.booleans()):  # fleetdeck applied this manifest (or one with one more field)
        owned = _fields_v1({k: v for k, v in desired.items() if k not in ("apiVersion", "kind")})
        if draw(st.booleans()):
            owned.setdefault("f:metadata", {}).setdefault("f:labels", {})["f:old"] = {}
        managers.append({"manager": "fleetdeck", "operation": "Apply", "fieldsType": "FieldsV1",
                         "fieldsV1": owned, "time": "2026-01-01T00:00:00Z"})
    if draw(st.booleans()):
        managers.append({"manager": "kubectl-edit", "operation": "Update", "fieldsType": "FieldsV1",
                         "fieldsV1": {"f:metadata": {"f:labels": {"f:old": {}}}}})
    if managers:
        live["metadata"]["managedFields"] = managers
    if draw(st.booleans()):
        live["metadata"].setdefault("labels", {})["old"] = "x"
    containers = live.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    if draw(st.booleans()):  # a list-map in another order live (kubectl edit swapping two entries)
        for listing in [containers, *(c.get("env", []) for c in containers if isinstance(c, dict))]:
            if len(listing) > 1 and draw(st.booleans()):
                listing.reverse()
    for _ in range(draw(st.integers(0, 2))):  # mutations: respellings, types, removals, reorders
        paths = _paths(live["spec"]) if isinstance(live.get("spec"), dict) else []
        if not paths:
            break
        pointer = "/spec" + draw(st.sampled_from(paths))
        *parents, last = [int(t) if t.isdigit() else t for t in pointer.strip("/").split("/")]
        node: Any = live
        for token in parents:
            node = node[token]
        action = draw(st.sampled_from(["value", "delete", "reverse", "append"]))
        if action == "value":
            node[last] = draw(st.one_of(_SCALARS, _QUANTITIES))
        elif action == "delete":
            del node[last]
        elif action == "reverse" and isinstance(node[last], list):
            node[last].reverse()
        elif action == "append" and isinstance(node[last], list):
            node[last].append(copy.deepcopy(node[last][0]) if node[last] else "extra")
    options: dict[str, Any] = {"namespace_default": draw(st.sampled_from([None, "shop"]))}
    if draw(st.booleans()):
        options["ignore_rules"] = (draw(st.sampled_from([
            IgnoreRule(kind="Deployment", json_pointers=("/spec/replicas",)),
            IgnoreRule(kind="ConfigMap", json_pointers=("/data/a",)),
            IgnoreRule(managed_fields_managers=("kubectl-edit",)),
        ])),)
    return desired, live, options


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_pair())
def test_the_kernel_never_disagrees_with_the_full_comparison(case: tuple[Any, Any, Any]) -> None:
    desired, live, options = case
    snapshot = copy.deepcopy((desired, live))
    fastpath.clear_cache()
    quick = fastpath.in_sync(desired, live, manager="fleetdeck", **options)
    fast, slow = both(desired, live, **options)
    if quick is not None:
        assert slow.state is ResourceState.SYNCED and not slow.changes and not slow.warnings
    assert_same(fast, slow)
    assert (desired, live) == snapshot  # neither side is modified


@given(st.one_of(st.sampled_from(["1000m", "1Gi", "1024Mi", "0.5", "1e3", "1k", "1500m", "2048Ki", "1.5Gi", "100M",
                                  "0.1", "1E3", "-1", "+1", ".5", "5e-3", "1000n"]),
                 st.integers(-10**6, 10**6), st.decimals(-1000, 1000, places=3).map(str),
                 st.builds(lambda n, s: f"{n}{s}", st.integers(0, 5000),
                           st.sampled_from(["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "n", "u", "e3", "e-3"]))))
def test_canonical_quantities_are_fixed_points(value: Any) -> None:
    """The kernel compares raw live quantities with canonical desired ones: a live value equal to a
    canonical quantity must normalize to itself."""
    once = canonical_quantity(value)
    assert canonical_quantity(once) == once


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_pair())
def test_the_order_precheck_never_hides_a_reorder(case: tuple[Any, Any, Any]) -> None:
    """The full comparison skips its order walk when ``_may_reorder`` says no list-map can be reordered."""
    desired, live, _ = case
    sides = diff_module._Sides(normalize(desired, side="desired"), normalize(live, side="live"),
                               ManagedFields.of(live))
    found: list[Any] = []
    diff_module._walk_order(sides.desired, sides.live, "", [], sides, MERGE_KEYS, found)
    if found:
        assert diff_module._may_reorder(sides.desired, sides.live, "", MERGE_KEYS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_pair())
def test_explaining_without_deepdiff_reports_what_deepdiff_reports(case: tuple[Any, Any, Any]) -> None:
    """``_explain`` turns a differing root into its change directly when deepdiff's report is fixed
    without a walk (``_plain_op``); with every root sent to deepdiff the verdict is the same."""
    desired, live, options = case
    direct = compare(desired, live, fast=False, **options)
    original = diff_module._plain_op
    diff_module._plain_op = lambda live, desired: None  # type: ignore[assignment]
    try:
        through_deepdiff = compare(desired, live, fast=False, **options)
    finally:
        diff_module._plain_op = original
    assert_same(direct, through_deepdiff)


@pytest.mark.parametrize(
    ("live_value", "desired_value"),
    [(0.0, -0.0), (1, 1.0), (True, 1), ("a", "b"), (None, "x"), ([1], [2]), ({"a": 1}, [1]), (3, 4), (False, True)],
)
def test_explaining_one_field_matches_deepdiff(live_value: Any, desired_value: Any) -> None:
    desired, live = in_sync_fixture()
    live["spec"]["template"]["spec"]["containers"][0]["x-field"] = live_value
    desired["spec"]["template"]["spec"]["containers"][0]["x-field"] = desired_value
    desired["metadata"]["labels"]["extra"] = "in-git-only"
    direct = compare(desired, live, fast=False, namespace_default="shop")
    original = diff_module._plain_op
    diff_module._plain_op = lambda live, desired: None  # type: ignore[assignment]
    try:
        through_deepdiff = compare(desired, live, fast=False, namespace_default="shop")
    finally:
        diff_module._plain_op = original
    assert_same(direct, through_deepdiff)


def test_a_verdict_can_keep_the_compact_live_object_instead_of_the_decoded_one() -> None:
    """The engine memoizes verdicts: ``keep_compact`` makes an in-sync verdict hold the cache's compact
    entry (bytes) rather than the decoded dicts, and its displayed live object is the same."""
    from core.live.compact import compact

    desired, live = in_sync_fixture()
    fastpath.clear_cache()
    reference = compare(desired, copy.deepcopy(live), namespace_default="shop")
    verdict = compare(desired, live, namespace_default="shop")
    def argument(view: Any) -> Any:
        return view._argument

    assert argument(verdict.live) is live
    entry = compact(live)
    fastpath.keep_compact(verdict, live, entry)
    assert argument(verdict.live) is entry
    assert thaw(verdict.live) == thaw(reference.live)
    assert verdict == reference
    slow = compare(desired, live, fast=False, namespace_default="shop")
    fastpath.keep_compact(slow, live, entry)  # not a kernel verdict: left as it is
    assert thaw(slow.live) == thaw(reference.live)


def test_the_kernels_verdict_is_the_one_the_constructor_builds() -> None:
    """``fastpath._synced`` sets the frozen verdict's slots directly; the result equals (and reads as) the
    ``ResourceDiff`` its constructor builds from the same values, every field included."""
    assert fastpath._synced is not fastpath._synced_verdict  # the fields are the ones the builder knows
    desired, live = {"kind": "ConfigMap"}, {"kind": "ConfigMap", "data": {}}
    fast, reference = fastpath._synced(desired, live), fastpath._synced_verdict(desired, live)
    assert fast == reference
    assert repr(fast) == repr(reference)
    assert hash(fast.state) == hash(reference.state)
    assert fast.desired is desired and fast.live is live
