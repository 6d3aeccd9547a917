"""The cache stores objects compactly but readers see the objects the API server sent."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from core.live.api import APIResource
from core.live.cache import ClusterCache
from core.live.compact import WatchLine, decode_watch_line
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


def test_watch_lines_stay_compact_and_decode_to_what_the_server_sent() -> None:
    pod = _pod("a", "7", app="web")
    line = orjson.dumps({"type": "MODIFIED", "object": pod}) + b"\n"
    event = decode_watch_line(line)
    assert isinstance(event, WatchLine) and event.type == "MODIFIED"
    assert event.object[1:6] == ("7", {"app": "web"}, ("u-1",), "shop", "a")
    cache = ClusterCache("c")
    (change,) = cache.apply(Upserted(PODS, compact=event.object))
    key = ResourceKey("", "Pod", "shop", "a")
    assert cache.decodes == 0 and cache.drain_dirty() == {key}
    assert cache.get(key) == pod == change.obj
    assert cache.apply(Upserted(PODS, compact=event.object)) == ()  # same resourceVersion
    gone = decode_watch_line(orjson.dumps({"type": "DELETED", "object": pod}))
    assert isinstance(gone, WatchLine)
    assert cache.apply(Deleted(PODS, compact=gone.object)) == (Deleted(PODS, pod),)
    assert cache.get(key) is None


def test_lines_the_projection_cannot_read_take_the_dict_path() -> None:
    odd = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "labels": {"n": 1}}}
    no_kind = {"metadata": {"name": "a"}}
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "code": 410}
    for doc in ({"type": "ADDED", "object": odd}, {"type": "ADDED", "object": no_kind},
                {"type": "ERROR", "object": status}, {"type": "ADDED", "object": "x"}, [1]):
        assert decode_watch_line(orjson.dumps(doc)) == doc
    cache = ClusterCache("c")
    cache.apply(Upserted(PODS, copy.deepcopy(odd)))
    assert list(cache.entries()) == [(ResourceKey("", "Pod", "", "a"), {"n": "1"}, ())]
    assert list(cache) == [odd]
