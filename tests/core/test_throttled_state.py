"""K8: "Throttled" is a connection state of its own (the API server answers 429 and asks to wait), distinct
from Degraded (something is broken) and Unreachable (no answer)."""

from __future__ import annotations

from core.errors import ClusterError
from core.live.api import APIResource
from core.live.cache import ClusterCache
from core.live.watch_events import Listed, Throttled
from core.model import ConnectionState

CM = APIResource(group="", version="v1", kind="ConfigMap", plural="configmaps", namespaced=True)
SECRET = APIResource(group="", version="v1", kind="Secret", plural="secrets", namespaced=True)
BUSY = Throttled("list /ConfigMap: Too many requests, please try again later.", cluster="c", retry_after=2)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state_of(cache: ClusterCache) -> ConnectionState:
    return cache.state


def cache_with_two_kinds(clock: Clock) -> ClusterCache:
    cache = ClusterCache("c", unreachable_after=30.0, clock=clock)
    for resource in (CM, SECRET):
        cache.track(resource.group_kind)
        cache.apply(Listed(resource=resource, items=(), resource_version="5"))
    assert state_of(cache) is ConnectionState.CONNECTED
    return cache


def test_a_throttled_kind_makes_the_cluster_throttled_not_degraded_and_it_never_ages_into_unreachable() -> None:
    clock = Clock()
    cache = cache_with_two_kinds(clock)
    assert cache.kind_failed(CM.group_kind, BUSY)
    assert state_of(cache) is ConnectionState.THROTTLED
    assert cache.message == ("throttled by the API server: 1 of 2 kinds waiting (ConfigMap): "
                             "list /ConfigMap: Too many requests, please try again later. "
                             "(the server asks to retry after 2s)")
    assert cache.stale  # the throttled kind's objects may be out of date
    cache.kind_failed(SECRET.group_kind, Throttled("list /Secret: Too many requests", cluster="c"))
    clock.now += 120  # every kind throttled for two minutes: the server still answers
    cache.refresh_state()
    assert state_of(cache) is ConnectionState.THROTTLED
    assert cache.message.startswith("throttled by the API server: 2 of 2 kinds waiting (ConfigMap, Secret): ")
    cache.apply(Listed(resource=CM, items=(), resource_version="6"))
    cache.apply(Listed(resource=SECRET, items=(), resource_version="6"))
    assert state_of(cache) is ConnectionState.CONNECTED and cache.message == ""


def test_a_broken_kind_next_to_a_throttled_one_is_degraded_and_a_hung_server_wins() -> None:
    clock = Clock()
    cache = cache_with_two_kinds(clock)
    cache.kind_failed(CM.group_kind, BUSY)
    cache.kind_failed(SECRET.group_kind, ClusterError("list /Secret: forbidden", cluster="c", status=403))
    assert state_of(cache) is ConnectionState.DEGRADED
    assert cache.message.startswith("2 of 2 kinds failing (ConfigMap, Secret): "), cache.message
    cache.kind_healthy(SECRET.group_kind)
    assert state_of(cache) is ConnectionState.THROTTLED
    cache.heartbeat_failed(ClusterError("GET /version: no answer within 3s", cluster="c", status=None))
    assert state_of(cache) is ConnectionState.DEGRADED  # no answer at all is worse than "wait"
    clock.now += 31
    cache.refresh_state()
    assert state_of(cache) is ConnectionState.UNREACHABLE
    cache.heartbeat_ok()
    assert state_of(cache) is ConnectionState.THROTTLED


def test_a_cluster_throttled_before_its_first_list_is_throttled_not_unreachable() -> None:
    cache = ClusterCache("c", unreachable_after=30.0, clock=Clock())
    cache.track(CM.group_kind)
    cache.kind_failed(CM.group_kind, BUSY)
    assert state_of(cache) is ConnectionState.THROTTLED
