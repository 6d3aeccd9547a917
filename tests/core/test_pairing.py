"""Pairing desired with live objects: missing, extraneous, shared and copied tracking."""

from __future__ import annotations

from typing import Any

import pytest

from core.model import ResourceKey
from core.reconcile.pairing import Pair, pair
from core.reconcile.tracking import add_tracking

APP = "shop"
WEB = ResourceKey("apps", "Deployment", "shop", "web")
API = ResourceKey("apps", "Deployment", "shop", "api")
OLD = ResourceKey("", "ConfigMap", "shop", "old-config")
EXT = ResourceKey("extensions", "Deployment", "shop", "web")


def manifest(key: ResourceKey, *, uid: str | None = None) -> dict[str, Any]:
    """A bare object at ``key``."""
    meta: dict[str, Any] = {"name": key.name, "namespace": key.namespace}
    if uid:
        meta["uid"] = uid
    return {"apiVersion": f"{key.group}/v1" if key.group else "v1", "kind": key.kind, "metadata": meta}


def tracked(
    key: ResourceKey, app: str = APP, *, claims: ResourceKey | None = None, uid: str | None = None
) -> dict[str, Any]:
    """A live object tracked by ``app``; ``claims`` makes the annotation name another object (a copy)."""
    return add_tracking(manifest(key, uid=uid), app=app, key=claims or key)


def summary(pairs: tuple[Pair, ...]) -> list[tuple[str, bool, bool, tuple[str, ...]]]:
    """(name, has desired, has live, warnings) per pair."""
    return [(p.key.name, p.desired is not None, p.live is not None, p.warnings) for p in pairs]


@pytest.mark.parametrize(
    ("desired", "live", "expected"),
    [
        pytest.param({WEB: manifest(WEB)}, {WEB: tracked(WEB)}, [("web", True, True, ())], id="paired"),
        pytest.param({WEB: manifest(WEB)}, {}, [("web", True, False, ())], id="missing-in-cluster"),
        pytest.param({}, {OLD: tracked(OLD)}, [("old-config", False, True, ())], id="extraneous-owned"),
        pytest.param({}, {OLD: manifest(OLD)}, [], id="untracked-live-ignored"),
        pytest.param({}, {OLD: tracked(OLD, "billing")}, [], id="other-apps-object-never-extraneous"),
        pytest.param({}, {OLD: tracked(OLD, claims=API)}, [], id="copied-annotation-ignored"),
        pytest.param(
            {WEB: manifest(WEB)},
            {WEB: tracked(WEB, "billing")},
            [
                (
                    "web",
                    True,
                    True,
                    (
                        "SharedResourceWarning: also tracked by app 'billing'; it will never be pruned by 'shop'",
                    ),
                )
            ],
            id="shared-with-other-app",
        ),
        pytest.param(
            {WEB: manifest(WEB)},
            {WEB: tracked(WEB, uid="u1"), EXT: tracked(EXT, uid="u1")},
            [("web", True, True, ())],
            id="same-uid-under-second-group-dropped",
        ),
        pytest.param(
            {WEB: manifest(WEB), API: manifest(API)},
            {API: tracked(API), OLD: tracked(OLD), WEB: tracked(WEB)},
            [("old-config", False, True, ()), ("api", True, True, ()), ("web", True, True, ())],
            id="sorted-by-key",
        ),
    ],
)
def test_pair(desired: dict[ResourceKey, Any], live: dict[ResourceKey, Any], expected: list[Any]) -> None:
    """Live objects join the comparison at desired keys or by this app's self-referencing tracking."""
    assert summary(pair(desired, live, app=APP)) == expected


def test_pair_flags() -> None:
    """Pair.missing and Pair.extraneous describe the one-sided cases."""
    (missing,) = pair({WEB: manifest(WEB)}, {}, app=APP)
    (extraneous,) = pair({}, {OLD: tracked(OLD)}, app=APP)
    assert missing.missing and not missing.extraneous
    assert extraneous.extraneous and not extraneous.missing
