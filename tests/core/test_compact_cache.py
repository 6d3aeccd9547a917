"""The cache stores objects compactly but readers see the objects the API server sent."""

from __future__ import annotations

import copy
from typing import Any

from core.live.api import APIResource
from core.live.cache import ClusterCache
from core.live.watch_events import Deleted, Listed, Upserted
from core.model import ResourceKey

PODS = APIResource("", "v1", "Pod", "pods", True, frozenset({"list", "watch"}))


def _pod(name: str, version: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "resourceVersion": version, "labels": labels,
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "uid": "u-1"}],
                         "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]}, "status": {"phase": "Running"}}


def test_readers_see_equal_objects_and_changes_invalidate_decoded() -> None:
    cache = ClusterCache("c")
    pod = _pod("a", "1", app="web")
    cache.apply(Upserted(resource=PODS, obj=copy.deepcopy(pod)))
    key = ResourceKey("", "Pod", "shop", "a")
    assert cache.get(key) == pod
    assert cache.get(key) is cache.get(key)  # decoded once while unchanged
    assert cache.decodes == 1
    assert dict(cache.objects("", "Pod")) == {key: pod}
    assert list(cache) == [pod]
    assert cache.version_of(key) == "1"
    changed = _pod("a", "2", app="api")
    cache.apply(Upserted(resource=PODS, obj=copy.deepcopy(changed)))
    assert cache.get(key) == changed
    assert list(cache.entries()) == [(key, {"app": "api"}, ("u-1",))]
    assert cache.drain_dirty() == {key}


def test_relist_and_delete_return_decoded_objects() -> None:
    cache = ClusterCache("c")
    a, b = _pod("a", "1"), _pod("b", "1")
    cache.apply(Listed(resource=PODS, items=(copy.deepcopy(a), copy.deepcopy(b)), resource_version="5"))
    changes = cache.apply(Listed(resource=PODS, items=(copy.deepcopy(a),), resource_version="6"))
    assert changes == (Deleted(resource=PODS, obj=b, synthetic=True),)
    assert cache.drain_dirty() == {ResourceKey("", "Pod", "shop", "a"), ResourceKey("", "Pod", "shop", "b")}
    assert cache.apply(Deleted(resource=PODS, obj=a)) == (Deleted(resource=PODS, obj=a),)
    assert cache.get(ResourceKey("", "Pod", "shop", "a")) is None
    assert cache.drop_kind(PODS) == ()
