"""Sync order (waves, kinds, dependency bubbling), prune safety and tracking."""

from __future__ import annotations

from typing import Any

import pytest

from core.model import ResourceKey
from core.reconcile.plan import (
    KIND_ORDER,
    is_tracked_by,
    kind_rank,
    order_for_apply,
    order_for_prune,
    prunable,
    sync_options,
    sync_wave,
)
from core.reconcile.tracking import (
    APP_LABEL,
    TRACKING_ANNOTATION,
    add_tracking,
    app_label_value,
    parse_tracking_id,
    tracking_id,
    tracking_of,
)


def obj(
    kind: str, name: str, *, namespace: str = "", wave: Any = None, group: str = "", **extra: Any
) -> dict[str, Any]:
    """A minimal object, optionally in a sync wave."""
    api_version = f"{group}/v1" if group else "v1"
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    if wave is not None:
        meta["annotations"] = {"fleetdeck.io/sync-wave": str(wave)}
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **extra}


def names(ordered: list[tuple[dict[str, Any], int]]) -> list[tuple[str, int]]:
    """``kind/name`` and wave of each ordered item."""
    return [(f"{o['kind']}/{o['metadata']['name']}", wave) for o, wave in ordered]


def test_kind_order_matches_argo() -> None:
    """Namespaces first, APIService last among known kinds, unknown kinds after all of them."""
    assert KIND_ORDER[0] == "Namespace" and KIND_ORDER[-1] == "APIService"
    assert kind_rank("ConfigMap") < kind_rank("Deployment") < kind_rank("Ingress") < kind_rank("Widget")


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        pytest.param({}, (0, None), id="absent"),
        pytest.param({"fleetdeck.io/sync-wave": "-2"}, (-2, None), id="negative"),
        pytest.param({"argocd.argoproj.io/sync-wave": "5"}, (5, None), id="argo-fallback"),
        pytest.param(
            {"fleetdeck.io/sync-wave": "1", "argocd.argoproj.io/sync-wave": "9"},
            (1, None),
            id="fleetdeck-wins",
        ),
        pytest.param(
            {"fleetdeck.io/sync-wave": "early"},
            (0, "ignoring invalid fleetdeck.io/sync-wave 'early': not an integer; using wave 0"),
            id="bad-value-warns",
        ),
    ],
)
def test_sync_wave(annotations: dict[str, str], expected: tuple[int, str | None]) -> None:
    """Waves come from fleetdeck's annotation, then Argo's; bad values are wave 0 with a warning."""
    assert sync_wave({"metadata": {"annotations": annotations}}) == expected


def test_apply_order_by_wave_kind_name() -> None:
    """Applies sort by wave, then kind order, then name."""
    items = [
        obj("Deployment", "b", namespace="shop", group="apps"),
        obj("Deployment", "a", namespace="shop", group="apps"),
        obj("ConfigMap", "z", namespace="shop"),
        obj("Job", "migrate", namespace="shop", group="batch", wave=-1),
        obj("Service", "web", namespace="shop", wave=2),
    ]
    assert names(order_for_apply(items)) == [
        ("Job/migrate", -1), ("ConfigMap/z", 0), ("Deployment/a", 0), ("Deployment/b", 0), ("Service/web", 2),
    ]  # fmt: skip


def test_namespace_and_crd_bubble_before_dependents() -> None:
    """A Namespace or CRD in a later wave moves before its first dependent and takes its wave."""
    crd = obj("CustomResourceDefinition", "widgets.example.com", group="apiextensions.k8s.io", wave=3,
              spec={"group": "example.com", "names": {"kind": "Widget"}})  # fmt: skip
    items = [
        obj("Namespace", "shop", wave=5),
        obj("ConfigMap", "cfg", namespace="shop", wave=1),
        obj("Widget", "w", namespace="shop", group="example.com", wave=-1),
        crd,
    ]
    assert names(order_for_apply(items)) == [
        ("CustomResourceDefinition/widgets.example.com", -1), ("Namespace/shop", -1), ("Widget/w", -1), ("ConfigMap/cfg", 1),
    ]  # fmt: skip


def test_prune_order_is_reversed() -> None:
    """Prunes run in reverse apply order: dependents and higher waves first, namespaces last."""
    items = [obj("Namespace", "shop"), obj("Deployment", "web", namespace="shop", group="apps", wave=1)]
    assert names(order_for_prune(items)) == [("Deployment/web", 1), ("Namespace/shop", 0)]


def test_order_accepts_wrapped_items() -> None:
    """Any item type works when obj_of says where its object is."""
    items = [("b", obj("Service", "b")), ("a", obj("Namespace", "a"))]
    assert [item[0] for item, _ in order_for_apply(items, obj_of=lambda item: item[1])] == ["a", "b"]


APP = "shop"
KEY = ResourceKey("apps", "Deployment", "shop", "web")


def owned(**annotations: str) -> dict[str, Any]:
    """A live Deployment carrying the app's label and tracking, plus ``annotations``."""
    out = add_tracking(obj("Deployment", "web", namespace="shop", group="apps"), app=APP, key=KEY)
    out["metadata"]["annotations"].update(annotations)
    return out


def with_meta(base: dict[str, Any], **meta: Any) -> dict[str, Any]:
    """``base`` with metadata fields replaced."""
    return {**base, "metadata": {**base["metadata"], **meta}}


@pytest.mark.parametrize(
    ("live", "inventory", "confirmed", "expected"),
    [
        pytest.param(owned(), {KEY}, False, (True, ""), id="all-signals"),
        pytest.param(owned(), set(), False, (False, "not in the app's inventory"), id="not-in-inventory"),
        pytest.param(
            with_meta(owned(), annotations={TRACKING_ANNOTATION: "other:apps/Deployment:shop/web"}),
            {KEY}, False, (False, "tracking annotation does not name app 'shop'"), id="other-app",
        ),
        pytest.param(
            with_meta(owned(), annotations={TRACKING_ANNOTATION: "shop:apps/Deployment:shop/api"}),
            {KEY}, False, (False, "tracking annotation was copied from another object"), id="copied-annotation",
        ),
        pytest.param(
            with_meta(owned(), labels={}), {KEY}, False, (False, "label fleetdeck.io/app does not match app 'shop'"),
            id="label-missing",
        ),
        pytest.param(owned(**{"fleetdeck.io/sync-options": "Prune=false"}), {KEY}, False, (False, "Prune=false"), id="prune-false"),
        pytest.param(
            owned(**{"argocd.argoproj.io/sync-options": "ServerSideApply=true,Prune=false"}), {KEY}, False,
            (False, "Prune=false"), id="argo-prune-false",
        ),
        pytest.param(
            owned(**{"fleetdeck.io/sync-options": "Prune=confirm"}), {KEY}, False,
            (False, "Prune=confirm: waiting for the operator's confirmation"), id="needs-confirmation",
        ),
        pytest.param(owned(**{"fleetdeck.io/sync-options": "Prune=confirm"}), {KEY}, True, (True, ""), id="confirmed"),
        pytest.param(
            owned(**{"fleetdeck.io/reconcile": "disabled"}), {KEY}, False, (False, "fleetdeck.io/reconcile: disabled"),
            id="reconcile-disabled",
        ),
        pytest.param(
            with_meta(owned(), deletionTimestamp="2026-05-01T00:00:00Z"), {KEY}, False, (False, "already being deleted"),
            id="deleting",
        ),
        pytest.param(
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}}, {KEY}, False,
            (False, "tracking annotation does not name app 'shop'"), id="untracked",
        ),
    ],
)  # fmt: skip
def test_prunable(
    live: dict[str, Any], inventory: set[ResourceKey], confirmed: bool, expected: tuple[bool, str]
) -> None:
    """Prune needs inventory, self-referencing tracking and the owner label, and respects opt-outs."""
    assert prunable(live, app=APP, inventory=inventory, confirmed=confirmed) == expected


def test_sync_options_parsed() -> None:
    """Sync options parse as a dict; fleetdeck's annotation overrides Argo's."""
    live = owned(
        **{
            "argocd.argoproj.io/sync-options": "Prune=false, Force=true",
            "fleetdeck.io/sync-options": "Prune=true",
        }
    )
    assert sync_options(live) == {"Prune": "true", "Force": "true"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param(ResourceKey("apps", "Deployment", "shop", "web"), "shop:apps/Deployment:shop/web", id="namespaced"),
        pytest.param(ResourceKey("", "Service", "shop", "web"), "shop:/Service:shop/web", id="core-group"),
        pytest.param(ResourceKey("rbac.authorization.k8s.io", "ClusterRole", "", "view"), "shop:rbac.authorization.k8s.io/ClusterRole:/view", id="cluster-scoped"),
    ],
)  # fmt: skip
def test_tracking_id_round_trip(key: ResourceKey, value: str) -> None:
    """Tracking ids use Argo's <app>:<group>/<kind>:<ns>/<name> format and parse back."""
    assert tracking_id("shop", key) == value
    assert parse_tracking_id(value) == ("shop", key)


@pytest.mark.parametrize(
    "value",
    ["", "shop", "shop:Deployment:shop/web", "a:b:c:d", ":apps/Deployment:ns/n", "shop:apps/Deployment:web"],
)
def test_malformed_tracking_ids(value: str) -> None:
    """Malformed tracking ids parse to None."""
    assert parse_tracking_id(value) is None


def test_add_tracking_is_self_referencing_and_pure() -> None:
    """add_tracking copies the object, adds label and annotation, and the result tracks itself."""
    manifest = obj("Deployment", "web", namespace="shop", group="apps")
    tracked = add_tracking(manifest, app=APP, key=KEY)
    assert "labels" not in manifest["metadata"]
    assert tracked["metadata"]["labels"] == {APP_LABEL: "shop"}
    tracking = tracking_of(tracked)
    assert tracking is not None and tracking.app == APP and tracking.self_referenced


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        pytest.param(owned(), True, id="own"),
        pytest.param(with_meta(owned(), annotations={TRACKING_ANNOTATION: "other:apps/Deployment:shop/web"}), False, id="other-app"),
        pytest.param(with_meta(owned(), annotations={TRACKING_ANNOTATION: "shop:apps/Deployment:shop/api"}), False, id="copied"),
        pytest.param(obj("Deployment", "web", namespace="shop", group="apps"), False, id="untracked"),
    ],
)  # fmt: skip
def test_is_tracked_by(live: dict[str, Any], expected: bool) -> None:
    """is_tracked_by needs a self-referencing annotation naming the app."""
    assert is_tracked_by(live, APP) is expected


@pytest.mark.parametrize(
    ("app", "expected_length"),
    [
        pytest.param("shop", 4, id="short"),
        pytest.param("a" * 63, 63, id="exactly-63"),
        pytest.param("a" * 80, 63, id="long"),
    ],
)
def test_app_label_value_fits_label_limit(app: str, expected_length: int) -> None:
    """Owner label values stay within 63 characters; long names get a prefix plus sha1[:10]."""
    value = app_label_value(app)
    assert len(value) == expected_length
    if len(app) > 63:
        assert value.startswith("a" * 52 + "-") and value != app_label_value(app + "b")
