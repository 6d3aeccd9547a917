"""managedFields (fieldsV1) parsing and ownership questions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.reconcile.canonical import field_path_of
from core.reconcile.managed_fields import ManagedFields, ManagerEntry, field_slot, parse_element

LIVE = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "objects" / "deployment-live.json").read_text()
)
CONTAINER = ("k", '{"name":"web"}')
SPEC = (("f", "spec"), ("f", "template"), ("f", "spec"), ("f", "containers"), CONTAINER)


@pytest.mark.parametrize(
    ("raw", "element"),
    [
        pytest.param("f:spec", ("f", "spec"), id="field"),
        pytest.param(
            'k:{"protocol":"TCP","containerPort":80}',
            ("k", '{"containerPort":80,"protocol":"TCP"}'),
            id="key-sorted",
        ),
        pytest.param('v:"example.com/finalizer"', ("v", '"example.com/finalizer"'), id="set-value"),
        pytest.param("i:2", ("i", 2), id="index"),
        pytest.param("f:metadata.annotations", ("f", "metadata.annotations"), id="dots-are-literal"),
    ],
)
def test_parse_element(raw: str, element: tuple[str, Any]) -> None:
    """fieldsV1 keys parse to path elements; key JSON is canonical so it compares by value."""
    assert parse_element(raw) == element


@pytest.mark.parametrize("raw", ["spec", "x:1", "k:{bad", "i:one"])
def test_parse_element_rejects(raw: str) -> None:
    """Malformed fieldsV1 keys raise ValueError."""
    with pytest.raises(ValueError):
        parse_element(raw)


def test_entries_parsed_from_live_deployment() -> None:
    """All four entries of the apiserver's managedFields are read, with manager, operation and time."""
    managed = ManagedFields.of(LIVE)
    assert [(e.manager, e.operation, e.subresource) for e in managed.entries] == [
        ("fleetdeck", "Apply", ""),
        ("kube-controller-manager", "Update", ""),
        ("kubectl-edit", "Update", ""),
        ("kube-controller-manager", "Update", "status"),
    ]
    assert managed.entries[2].time == "2026-05-02T14:03:10Z"


def test_members_include_leaves_and_dot_nodes() -> None:
    """An entry owns its leaves and every node marked with '.', not plain intermediate nodes."""
    owned = ManagedFields.of(LIVE).owned_by("fleetdeck")
    assert (*SPEC, ("f", "image")) in owned
    assert SPEC in owned
    assert (("f", "spec"), ("f", "template")) not in owned
    assert (("f", "spec"), ("f", "selector")) in owned
    assert (("f", "spec"), ("f", "replicas")) not in owned


def test_owned_by_filters_operation_and_subresource() -> None:
    """Only main-resource entries with the requested operation count."""
    managed = ManagedFields.of(LIVE)
    assert managed.owned_by("kubectl-edit") == frozenset()
    assert managed.owned_by("kubectl-edit", "Update") == {(("f", "spec"), ("f", "replicas"))}
    assert all(path[0] != ("f", "status") for path in managed.owned_by("kube-controller-manager", "Update"))


@pytest.mark.parametrize(
    ("path", "writer"),
    [
        pytest.param((("f", "spec"), ("f", "replicas")), ("kubectl-edit", "2026-05-02T14:03:10Z"), id="exact-update"),
        pytest.param((*SPEC, ("f", "image")), ("fleetdeck", "2026-05-01T09:12:44Z"), id="exact-apply"),
        pytest.param((("f", "spec"), ("f", "selector"), ("f", "matchLabels"), ("f", "app")), ("fleetdeck", "2026-05-01T09:12:44Z"), id="atomic-ancestor"),
        pytest.param((*SPEC, ("f", "resources")), ("fleetdeck", "2026-05-01T09:12:44Z"), id="descendant"),
        pytest.param((*SPEC, ("f", "imagePullPolicy")), ("fleetdeck", "2026-05-01T09:12:44Z"), id="nearest-ancestor"),
        pytest.param((("f", "metadata"), ("f", "annotations"), ("f", "deployment.kubernetes.io/revision")), ("kube-controller-manager", "2026-05-02T14:03:12Z"), id="controller"),
        pytest.param((("f", "data"),), None, id="untouched"),
    ],
)  # fmt: skip
def test_last_writer(path: Any, writer: tuple[str, str] | None) -> None:
    """last_writer prefers exact owners, then atomic ancestors, descendants and other ancestors."""
    assert ManagedFields.of(LIVE).last_writer(path) == writer


def test_last_writer_prefers_latest_among_equals() -> None:
    """When two managers own a field equally, the later write wins."""
    fields: dict[str, Any] = {"f:spec": {"f:replicas": {}}}
    managed = ManagedFields.of({"metadata": {"managedFields": [
        {"manager": "a", "operation": "Apply", "time": "2026-01-01T00:00:00Z", "fieldsV1": fields},
        {"manager": "b", "operation": "Update", "time": "2026-03-01T00:00:00Z", "fieldsV1": fields},
    ]}})  # fmt: skip
    assert managed.last_writer((("f", "spec"), ("f", "replicas"))) == ("b", "2026-03-01T00:00:00Z")
    assert {e.manager for e in managed.owners((("f", "spec"), ("f", "replicas")))} == {"a", "b"}


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param({}, id="no-metadata"),
        pytest.param({"metadata": {"managedFields": "oops"}}, id="not-a-list"),
        pytest.param({"metadata": {"managedFields": [{"manager": "m", "fieldsType": "FieldsV2", "fieldsV1": {"f:a": {}}}]}}, id="unknown-type"),
        pytest.param({"metadata": {"managedFields": [{"manager": "m", "fieldsV1": {"bogus": {}, "k:{": {}}}]}}, id="bad-keys-skipped"),
    ],
)  # fmt: skip
def test_malformed_managed_fields_own_nothing(obj: dict[str, Any]) -> None:
    """Malformed or unknown managedFields never raise; they just own nothing."""
    assert ManagedFields.of(obj).owned_by("m", "Update") == frozenset()


def test_field_slot_resolves_keyed_items_in_plain_objects() -> None:
    """field_slot finds k:/v:/i: elements in plain lists."""
    obj = {"spec": {"ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 81, "protocol": "UDP"}],
                    "finalizers": ["a", "b"], "args": ["x", "y"]}}  # fmt: skip
    slot = field_slot(obj, (("f", "spec"), ("f", "ports"), ("k", '{"containerPort":81,"protocol":"UDP"}')))
    assert slot is not None and slot[1] == 1
    assert field_slot(obj, (("f", "spec"), ("f", "finalizers"), ("v", '"b"'))) == (
        obj["spec"]["finalizers"],
        1,
    )
    assert field_slot(obj, (("f", "spec"), ("f", "args"), ("i", 0))) == (obj["spec"]["args"], 0)
    assert field_slot(obj, (("f", "spec"), ("f", "nope"))) is None
    assert field_slot(obj, ()) is None


def test_entry_rank_none_when_unrelated() -> None:
    """An entry that owns nothing on a path has no rank for it."""
    entry = ManagerEntry.parse({"manager": "m", "operation": "Apply", "fieldsV1": {"f:a": {"f:b": {}}}})
    assert entry.rank((("f", "c"),)) is None
    assert entry.rank((("f", "a"), ("f", "b"))) == 0


@pytest.mark.parametrize(
    ("pointer", "writer"),
    [
        pytest.param("/spec/replicas", ("kubectl-edit", "2026-05-02T14:03:10Z"), id="scalar"),
        pytest.param("/spec/template/spec/containers/0/image", ("fleetdeck", "2026-05-01T09:12:44Z"), id="keyed-list-item"),
        pytest.param("/spec/template/spec/containers/0/env/1/value", ("fleetdeck", "2026-05-01T09:12:44Z"), id="nested-keyed"),
        pytest.param("/spec/nope", None, id="absent-pointer"),
    ],
)  # fmt: skip
def test_last_writer_of_json_pointer(pointer: str, writer: tuple[str, str] | None) -> None:
    """A JSON pointer into the live object maps to fieldsV1 keys, so its last writer can be named."""
    path = field_path_of(LIVE, pointer)
    assert (ManagedFields.of(LIVE).last_writer(path) if path is not None else None) == writer


def test_field_path_of_uses_merge_keys() -> None:
    """List indices become k: elements for associative lists and stay i: for atomic ones."""
    assert field_path_of(LIVE, "/spec/template/spec/containers/0/ports/0") == (
        ("f", "spec"), ("f", "template"), ("f", "spec"), ("f", "containers"), CONTAINER,
        ("f", "ports"), ("k", '{"containerPort":8080,"protocol":"TCP"}'),
    )  # fmt: skip
    assert field_path_of({"args": ["a", "b"]}, "/args/1") == (("f", "args"), ("i", 1))


def test_last_writer_and_owners_skip_the_descendant_scan_without_changing_answers() -> None:
    """``last_writer`` and ``owners`` rank direct owners first; over every path any entry of the live
    Deployment owns (and every prefix of one, and a path nobody owns) they answer as ranking all entries
    fully does."""
    managed = ManagedFields.of(LIVE)
    paths = {member[:depth] for entry in managed.entries for member in entry.owned for depth in range(len(member) + 1)}
    paths.add((("f", "spec"), ("f", "nobody")))
    for path in paths:
        ranked = [(rank, e) for e in managed.entries if (rank := e.rank(path)) is not None]
        expected = None
        if ranked:
            best = min(rank for rank, _ in ranked)
            entry = max((e for rank, e in ranked if rank == best), key=lambda e: e.time or "")
            expected = (entry.manager, entry.time)
        assert managed.last_writer(path) == expected
        assert managed.owners(path) == tuple(e for e in managed.entries if e.rank(path) in (0, 1))
