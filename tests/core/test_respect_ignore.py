"""Ignored fields another field manager owns are left out of the apply (``respect_ignore``)."""

from __future__ import annotations

from typing import Any

from core.reconcile.ignore import IgnoreRule, respect_ignore

RULE = IgnoreRule(group="apps", kind="Deployment", json_pointers=("/spec/replicas",))


def _deployment(replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "web", "image": "web:1", "env": [{"name": "A", "value": "1"}]}]}}}}


def _live(replicas: int, owners: dict[str, dict[str, Any]]) -> dict[str, Any]:
    live = _deployment(replicas)
    live["metadata"]["managedFields"] = [
        {"manager": name, "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": fields}
        for name, fields in owners.items()
    ]
    return live


def test_field_owned_by_another_manager_is_left_out() -> None:
    live = _live(7, {"fleetdeck": {"f:spec": {"f:template": {}}}, "hpa": {"f:spec": {"f:replicas": {}}}})
    desired = _deployment(2)
    body, left_out = respect_ignore(desired, live, [RULE], manager="fleetdeck")
    assert "replicas" not in body["spec"]
    assert left_out == (("/spec/replicas", "hpa"),)
    assert desired["spec"]["replicas"] == 2, "the manifest itself is not modified"


def test_field_fleetdeck_owns_is_sent() -> None:
    live = _live(7, {"fleetdeck": {"f:spec": {"f:replicas": {}}}, "hpa": {"f:spec": {"f:replicas": {}}}})
    body, left_out = respect_ignore(_deployment(2), live, [RULE], manager="fleetdeck")
    assert body["spec"]["replicas"] == 2 and left_out == ()


def test_new_object_and_unmatched_rules_send_everything() -> None:
    assert respect_ignore(_deployment(2), None, [RULE], manager="fleetdeck")[0]["spec"]["replicas"] == 2
    other = IgnoreRule(kind="StatefulSet", json_pointers=("/spec/replicas",))
    live = _live(7, {"hpa": {"f:spec": {"f:replicas": {}}}})
    assert respect_ignore(_deployment(2), live, [other], manager="fleetdeck")[1] == ()


def test_jq_path_into_keyed_list_uses_the_item_key() -> None:
    rule = IgnoreRule(kind="Deployment", jq_paths=(".spec.template.spec.containers[].image",))
    owned: dict[str, Any] = {"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}}}}}}}
    live = _live(2, {"image-updater": owned})
    body, left_out = respect_ignore(_deployment(2), live, [rule], manager="fleetdeck")
    assert "image" not in body["spec"]["template"]["spec"]["containers"][0]
    assert left_out == (("/spec/template/spec/containers/0/image", "image-updater"),)


def test_trusted_manager_fields_are_left_out_unless_fleetdeck_owns_them() -> None:
    """A ``managed_fields_managers`` rule: the leaves that manager owns (and fleetdeck does not) are not sent."""
    rule = IgnoreRule(kind="Deployment", managed_fields_managers=("image-updater",))
    image: dict[str, Any] = {"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}}}}}}}
    live = _live(2, {"fleetdeck": {"f:spec": {"f:replicas": {}}}, "image-updater": image})
    body, left_out = respect_ignore(_deployment(2), live, [rule], manager="fleetdeck")
    assert "image" not in body["spec"]["template"]["spec"]["containers"][0]
    assert body["spec"]["replicas"] == 2
    assert left_out == (("/spec/template/spec/containers/0/image", "image-updater"),)
    shared = _live(2, {"fleetdeck": image, "image-updater": image})
    assert respect_ignore(_deployment(2), shared, [rule], manager="fleetdeck")[1] == ()
