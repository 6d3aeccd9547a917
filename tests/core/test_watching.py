"""Fast tests of the watch state machine and the cache, on fake loop time against an in-process fake API.

The real behaviour against kube-apiserver is covered by ``tests/cluster/test_live_watch.py``; these pin
the state machine (410 → relist, clean close → resume, inactivity timeout, backoff bounds, cache
connection states) without real sleeping: ``FakeTimeLoop`` jumps its clock to the next timer whenever
nothing is ready.
"""

from __future__ import annotations

import asyncio
import random
import selectors
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any

import pytest

from core.errors import ClusterError
from core.live.api import JSON, APIResource
from core.live.cache import ClusterCache
from core.live.watch_events import MALFORMED_EVENT, Deleted, KindNotServed, Listed, Upserted, WatchForbidden
from core.live.watching import (
    HEALTHY_RESET,
    Backoff,
    WatchState,
    continuous_watch,
    infinite_watch,
    paged_list,
    watch_stream,
)
from core.model import ConnectionState, ResourceKey
from core.settings import WatchSettings

CM = APIResource(group="", version="v1", kind="ConfigMap", plural="configmaps", namespaced=True,
                 verbs=frozenset({"list", "watch"}))
SETTINGS = WatchSettings(watch_timeout=(240, 240), read_timeout=330.0, resync_interval=600.0)
HANG = object()


# ---------------------------------------------------------------------------------------------- fake time


class _InstantSelector:
    """Wraps the loop's selector: instead of blocking for ``timeout``, advance the fake clock by it."""

    def __init__(self, real: selectors.BaseSelector, loop: FakeTimeLoop) -> None:
        self._real = real
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = self._real.select(0)
        if ready:
            return ready
        if timeout is None:
            raise RuntimeError("deadlock: nothing is ready and no timer is scheduled")
        self._loop.now += timeout
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class FakeTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when every task waits for a timer."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self._selector = _InstantSelector(self._selector, self)  # type: ignore[has-type,arg-type]

    def time(self) -> float:
        return self.now


def run(coro_fn: Callable[[], Coroutine[Any, Any, Any]]) -> tuple[Any, float]:
    """Run a coroutine on fake time; returns its result and the fake seconds that passed."""
    loop = FakeTimeLoop()
    try:
        started = time.monotonic()
        result = loop.run_until_complete(coro_fn())
        assert time.monotonic() - started < 5, "the test slept for real"
        return result, loop.now
    finally:
        loop.close()


# ---------------------------------------------------------------------------------------------- fake API


def cm(name: str, rv: str) -> JSON:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}, "data": {}}


def event(kind: str, name: str, rv: str) -> JSON:
    return {"type": kind, "object": {"apiVersion": "v1", "kind": "ConfigMap", **cm(name, rv)}}


def bookmark(rv: str) -> JSON:
    return {"type": "BOOKMARK", "object": {"kind": "ConfigMap", "metadata": {"resourceVersion": rv}}}


def gone() -> JSON:
    return {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                        "message": "too old resource version"}}


class FakeAPI:
    """Scripted lists and watches; records every call."""

    cluster = "fake"
    server = "https://fake.invalid"

    def __init__(self, *, lists: list[Any] | None = None, watches: list[list[Any]] | None = None) -> None:
        self.lists = list(lists or [])
        self.watches = list(watches or [])
        self.list_calls: list[tuple[int, str]] = []
        self.watch_calls: list[str] = []
        self.probe_rv = "999"
        """The resourceVersion a ``limit=1`` probe answers with (the server's current one)."""

    async def list(self, resource: APIResource, *, label_selector: str = "", limit: int = 500,
                   continue_token: str = "") -> JSON:
        self.list_calls.append((limit, continue_token))
        if limit == 1:
            return {"items": [], "metadata": {"resourceVersion": self.probe_rv}}  # a probe
        step = self.lists.pop(0) if self.lists else {"items": [], "metadata": {"resourceVersion": "1"}}
        if isinstance(step, BaseException):
            raise step
        assert isinstance(step, dict)
        return dict(step, items=[dict(i) for i in step["items"]])

    async def watch(self, resource: APIResource, *, resource_version: str, timeout_seconds: int,
                    label_selector: str = "") -> AsyncIterator[JSON]:
        self.watch_calls.append(resource_version)
        script = self.watches.pop(0) if self.watches else [HANG]
        for step in script:
            if step is HANG:
                await asyncio.Event().wait()
            if isinstance(step, tuple):
                await asyncio.sleep(step[1])
                continue
            if isinstance(step, BaseException):
                raise step
            assert isinstance(step, dict)
            yield step

    async def discover(self) -> tuple[APIResource, ...]:
        return (CM,)

    async def get(self, resource: APIResource, name: str, namespace: str = "") -> JSON | None:
        raise NotImplementedError

    async def ping(self, timeout: float) -> None:
        pass

    async def apply(self, resource: APIResource, obj: Mapping[str, Any], *, field_manager: str,
                    dry_run: bool = False, force: bool = True) -> JSON:
        raise NotImplementedError

    async def delete(self, resource: APIResource, name: str, namespace: str = "", *,
                     propagation: str = "Foreground", uid: str | None = None, dry_run: bool = False) -> None:
        raise NotImplementedError

    async def create(self, resource: APIResource, obj: Mapping[str, Any], *, dry_run: bool = False) -> JSON:
        raise NotImplementedError

    async def patch(self, resource: APIResource, name: str, namespace: str, patch: Mapping[str, Any], *,
                    dry_run: bool = False) -> JSON:
        raise NotImplementedError

    async def can_i(self, verb: str, resource: APIResource, namespace: str = "") -> bool:
        return False

    async def whoami(self) -> str:
        return "fake"

    def server_time(self) -> float:
        return time.time()

    async def close(self) -> None:
        pass


def page(*items: JSON, rv: str = "10", token: str = "") -> JSON:
    return {"items": list(items), "metadata": {"resourceVersion": rv, "continue": token}}


async def collect(gen: AsyncIterator[Any], limit: int = 100) -> list[Any]:
    out = []
    async for item in gen:
        out.append(item)
        if len(out) >= limit:
            break
    return out


def err(status: int | None, reason: str = "") -> ClusterError:
    return ClusterError("boom", cluster="fake", status=status, reason=reason)


# ---------------------------------------------------------------------------------------------- level 1-2


def test_paged_list_follows_continue_tokens_and_types_items() -> None:
    """A paginated list returns every page's items with apiVersion/kind and the last page's version."""
    api = FakeAPI(lists=[page(cm("a", "1"), cm("b", "2"), token="t1"), page(cm("c", "3"), rv="20")])
    (items, rv), _ = run(lambda: paged_list(api, CM, page_size=2))
    assert [i["metadata"]["name"] for i in items] == ["a", "b", "c"]
    assert {i["kind"] for i in items} == {"ConfigMap"} and items[0]["apiVersion"] == "v1"
    assert rv == "20"
    assert api.list_calls == [(2, ""), (2, "t1")]


def test_expired_continue_token_restarts_the_list_once() -> None:
    """A 410 mid-list (expired continue token) restarts from the first page once, then gives up."""
    api = FakeAPI(lists=[page(cm("a", "1"), token="t1"), err(410), page(cm("a", "1"), cm("b", "2"), rv="30")])
    (items, rv), _ = run(lambda: paged_list(api, CM, page_size=2))
    assert len(items) == 2 and rv == "30"
    api = FakeAPI(lists=[page(cm("a", "1"), token="t1"), err(410), page(cm("a", "1"), token="t2"), err(410)])
    with pytest.raises(ClusterError) as caught:
        run(lambda: paged_list(api, CM, page_size=2))
    assert caught.value.gone


def test_list_then_watch_yields_typed_events_and_tracks_bookmarks() -> None:
    """Listed comes first; ADDED/MODIFIED/DELETED become Upserted/Deleted; a bookmark moves the RV."""
    api = FakeAPI(lists=[page(cm("a", "1"), rv="10")],
                  watches=[[event("ADDED", "b", "11"), event("MODIFIED", "a", "12"), bookmark("15"),
                            event("DELETED", "b", "16"), bookmark("18")], [HANG]])
    state = WatchState()

    async def scenario() -> list[Any]:
        return await collect(continuous_watch(api, CM, settings=SETTINGS, state=state), limit=4)

    events, _ = run(scenario)
    assert isinstance(events[0], Listed) and events[0].resource_version == "10"
    assert [type(e).__name__ for e in events[1:]] == ["Upserted", "Upserted", "Deleted"]
    assert events[3].obj["metadata"]["name"] == "b"
    assert state.resource_version == "16"
    assert api.watch_calls == ["10"]


def test_server_close_resumes_from_the_last_version_without_relisting() -> None:
    """A clean end of the stream re-watches from the last RV (bookmark included); no second list."""
    api = FakeAPI(lists=[page(rv="10")],
                  watches=[[event("ADDED", "a", "11"), bookmark("14")], [event("ADDED", "b", "15")], [HANG]])

    async def scenario() -> list[Any]:
        return await collect(continuous_watch(api, CM, settings=SETTINGS), limit=3)

    events, _ = run(scenario)
    assert [type(e).__name__ for e in events] == ["Listed", "Upserted", "Upserted"]
    assert api.watch_calls == ["10", "14"]
    assert len(api.list_calls) == 1


@pytest.mark.parametrize("failure", [pytest.param([gone()], id="in-band-error-410"),
                                     pytest.param([err(410)], id="http-410"),
                                     pytest.param([err(None, MALFORMED_EVENT)], id="malformed-event")])
def test_gone_returns_so_the_caller_relists(failure: list[Any]) -> None:
    """410 (in band or as an error) and a malformed line end continuous_watch with the RV cleared."""
    api = FakeAPI(lists=[page(rv="10")], watches=[[event("ADDED", "a", "11"), *failure]])
    state = WatchState()
    events, _ = run(lambda: collect(continuous_watch(api, CM, settings=SETTINGS, state=state)))
    assert [type(e).__name__ for e in events] == ["Listed", "Upserted"]
    assert state.resource_version == ""


@pytest.mark.parametrize(("status", "error"), [(403, WatchForbidden), (404, KindNotServed), (500, ClusterError)])
def test_other_errors_raise_typed(status: int, error: type[ClusterError]) -> None:
    """403 and 404 become WatchForbidden/KindNotServed; other failures propagate as ClusterError."""
    api = FakeAPI(lists=[err(status)])
    with pytest.raises(error) as caught:
        run(lambda: collect(continuous_watch(api, CM, settings=SETTINGS)))
    assert caught.value.status == status


def test_in_band_error_other_than_410_raises_with_its_code() -> None:
    """An ERROR event with code 500 raises a ClusterError with that status."""
    bad = {"type": "ERROR", "object": {"kind": "Status", "code": 500, "message": "etcd is sad"}}
    api = FakeAPI(lists=[page(rv="10")], watches=[[bad]])
    with pytest.raises(ClusterError) as caught:
        run(lambda: collect(continuous_watch(api, CM, settings=SETTINGS)))
    assert caught.value.status == 500 and "etcd is sad" in caught.value.message


def test_inactivity_timeout_ends_a_silent_watch() -> None:
    """A stream that sends nothing raises a transient Timeout after read_timeout (fake seconds)."""
    api = FakeAPI(watches=[[HANG]])

    async def scenario() -> None:
        async for _ in watch_stream(api, CM, resource_version="5", timeout_seconds=240, inactivity_timeout=330):
            pass

    with pytest.raises(ClusterError) as caught:
        run(scenario)
    assert caught.value.reason == "Timeout" and caught.value.transient


def test_inactivity_timeout_measures_fake_time() -> None:
    """The timeout fires after exactly read_timeout seconds of loop time, with no real sleeping."""
    api = FakeAPI(watches=[[event("ADDED", "a", "6"), HANG]])

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(ClusterError):
            async for _ in watch_stream(api, CM, resource_version="5", timeout_seconds=240, inactivity_timeout=42):
                pass
        return loop.time() - start

    waited, _ = run(scenario)
    assert waited == pytest.approx(42)


def test_resync_interval_forces_a_relist() -> None:
    """Once resync_interval has passed since the list, the next round relists instead of re-watching."""
    settings = WatchSettings(watch_timeout=(240, 240), read_timeout=330.0, resync_interval=100.0)
    api = FakeAPI(lists=[page(rv="10"), page(rv="50")], watches=[[bookmark("12"), ("sleep", 101)], [HANG]])
    state = WatchState()

    async def scenario() -> list[Any]:
        clock = asyncio.get_running_loop().time
        events = [e async for e in continuous_watch(api, CM, settings=settings, state=state, clock=clock)]
        assert state.resource_version == ""
        return events + await collect(continuous_watch(api, CM, settings=settings, state=state,
                                                       clock=clock), limit=1)

    events, elapsed = run(scenario)
    assert [(type(e).__name__, e.resource_version) for e in events] == [("Listed", "10"), ("Listed", "50")]
    assert api.watch_calls == ["10"] and elapsed == pytest.approx(101)


def test_rewound_resource_version_is_flagged() -> None:
    """A relist whose resourceVersion is older than the previous list's is marked rewound (K14)."""
    state = WatchState(newest_listed="100")
    api = FakeAPI(lists=[page(rv="40")])
    events, _ = run(lambda: collect(continuous_watch(api, CM, settings=SETTINGS, state=state), limit=1))
    assert events[0].rewound


# ---------------------------------------------------------------------------------------------- level 3


def test_backoff_is_exponential_capped_and_jittered() -> None:
    """Delays double from the initial value up to the cap; jitter scales them into [0, cap]."""
    top = Backoff(1.0, 30.0, rng=lambda: 1.0)
    assert [top.next() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    low = Backoff(1.0, 30.0, rng=lambda: 0.0)
    assert low.next() == 0
    jitter = Backoff(1.0, 30.0, rng=random.Random(7).random)
    delays = [jitter.next() for _ in range(50)]
    assert all(0 <= d <= 30 for d in delays) and len(set(delays)) > 40
    top.reset()
    assert top.next() == 1


def test_infinite_watch_backs_off_on_connection_errors_then_resumes_from_rv() -> None:
    """After a dropped stream: back off, probe with limit=1, then resume from the last RV (no relist)."""
    api = FakeAPI(lists=[page(rv="10")],
                  watches=[[event("ADDED", "a", "11"), err(None)], [event("ADDED", "b", "12")], [HANG]])
    delays: list[float] = []
    health: list[str] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    async def scenario() -> list[Any]:
        return await collect(infinite_watch(
            api, CM, settings=SETTINGS, sleep=sleep, rng=random.Random(1),
            on_error=lambda exc: health.append("error"), on_healthy=lambda: health.append("healthy")), limit=3)

    events, _ = run(scenario)
    assert [type(e).__name__ for e in events] == ["Listed", "Upserted", "Upserted"]
    assert api.list_calls == [(500, ""), (1, "")]  # one list, one probe
    assert api.watch_calls == ["10", "11"]
    assert health == ["healthy", "error", "healthy"]
    assert len(delays) == 1 and 0 <= delays[0] <= SETTINGS.backoff_initial


def test_a_server_older_than_our_watch_is_relisted_and_flagged_rewound() -> None:
    """K14 as a real restore shows it: after the outage the probe finds the server at resourceVersion 30,
    older than the 50 our watch had reached (etcd restored from a backup). A watch from 50 would wait for
    a future that never comes, so the kind is relisted at once, and the list (30, newer than the last
    list's 10 but older than what we saw) is flagged rewound."""
    api = FakeAPI(lists=[page(rv="10"), page(rv="30")],
                  watches=[[event("ADDED", "a", "50"), err(None)], [HANG]])
    api.probe_rv = "30"

    async def sleep(seconds: float) -> None:
        pass

    events, _ = run(lambda: collect(infinite_watch(api, CM, settings=SETTINGS, sleep=sleep,
                                                   rng=random.Random(1)), limit=3))
    assert [type(e).__name__ for e in events] == ["Listed", "Upserted", "Listed"]
    assert not events[0].rewound and events[2].rewound
    assert api.list_calls == [(500, ""), (1, ""), (500, "")]  # list, probe, relist
    assert "50" not in api.watch_calls  # never a watch from a resourceVersion the server has not reached


def test_infinite_watch_relists_after_410() -> None:
    """A 410 makes infinite_watch list again at once (no backoff) and yield a second Listed."""
    api = FakeAPI(lists=[page(cm("a", "1"), rv="10"), page(rv="20")], watches=[[gone()], [HANG]])
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    events, _ = run(lambda: collect(infinite_watch(api, CM, settings=SETTINGS, sleep=sleep), limit=2))
    assert [type(e).__name__ for e in events] == ["Listed", "Listed"]
    assert events[1].resource_version == "20" and api.watch_calls == ["10"]
    assert delays == []


def test_infinite_watch_delays_stay_within_bounds_while_the_cluster_is_down() -> None:
    """Twelve failed lists in a row: each delay is within [0, min(cap, initial * 2**n)]."""
    api = FakeAPI(lists=[err(None)] * 12 + [page(rv="10")])
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    events, _ = run(lambda: collect(infinite_watch(api, CM, settings=SETTINGS, sleep=sleep,
                                                   rng=random.Random(3)), limit=1))
    assert isinstance(events[0], Listed)
    assert len(delays) == 12
    for attempt, delay in enumerate(delays):
        assert 0 <= delay <= min(SETTINGS.backoff_max, SETTINGS.backoff_initial * 2**attempt)


def test_backoff_resets_after_a_healthy_minute() -> None:
    """A failure after HEALTHY_RESET seconds of health starts again from the initial delay."""
    now = [0.0]
    api = FakeAPI(lists=[err(None), err(None), err(None), err(None), page(rv="10")],
                  watches=[[event("ADDED", "a", "11"), err(None)], [HANG]])
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    class MaxRandom(random.Random):
        def random(self) -> float:
            return 0.999999

    async def scenario() -> None:
        gen = infinite_watch(api, CM, settings=SETTINGS, sleep=sleep, clock=lambda: now[0], rng=MaxRandom())
        assert isinstance(await anext(gen), Listed)
        now[0] += HEALTHY_RESET + 1
        assert isinstance(await anext(gen), Upserted)
        await asyncio.wait_for(anext(gen), timeout=1)

    with pytest.raises(TimeoutError):
        run(scenario)
    assert delays == pytest.approx([1, 2, 4, 8, 1], rel=1e-5)


def test_forbidden_retries_slowly_and_not_found_stops() -> None:
    """403 waits backoff_max before trying again; 404 ends the generator (the kind is gone)."""
    api = FakeAPI(lists=[err(403), err(404)])
    delays: list[float] = []
    errors: list[ClusterError] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    events, _ = run(lambda: collect(infinite_watch(api, CM, settings=SETTINGS, sleep=sleep,
                                                   on_error=errors.append)))
    assert events == []
    assert delays == [SETTINGS.backoff_max]
    assert [type(e) for e in errors] == [WatchForbidden, KindNotServed]


# ---------------------------------------------------------------------------------------------- cache


def key(name: str) -> ResourceKey:
    return ResourceKey(group="", kind="ConfigMap", namespace="ns", name=name)


def test_relist_replaces_the_kind_and_emits_synthetic_deletes() -> None:
    """A relist keeps changed and new objects, and turns vanished ones into synthetic deletes."""
    cache = ClusterCache("c")
    cache.apply(Listed(CM, (cm("a", "1"), cm("b", "2")), "10"))
    assert cache.drain_dirty() == {key("a"), key("b")}
    changes = cache.apply(Listed(CM, (cm("a", "1"), cm("c", "5")), "20"))
    assert {(type(c).__name__, c.obj["metadata"]["name"]) for c in changes} == {("Upserted", "c"), ("Deleted", "b")}
    assert all(c.synthetic for c in changes if isinstance(c, Deleted))
    assert cache.get(key("b")) is None and cache.get(key("c")) is not None
    assert cache.drain_dirty() == {key("b"), key("c")} and cache.drain_dirty() == frozenset()
    assert cache.list_version("", "ConfigMap") == "20"


def test_events_with_the_same_version_are_not_changes() -> None:
    """Re-delivered objects (same resourceVersion) and deletes of unknown objects change nothing."""
    cache = ClusterCache("c")
    cache.apply(Listed(CM, (cm("a", "1"),), "10"))
    version = cache.version
    assert cache.apply(Upserted(CM, cm("a", "1"))) == ()
    assert cache.apply(Deleted(CM, cm("zzz", "3"))) == ()
    assert cache.version == version
    assert cache.apply(Upserted(CM, cm("a", "2")))
    assert cache.get(key("a"))["metadata"]["resourceVersion"] == "2"  # type: ignore[index]


def test_managed_fields_are_kept() -> None:
    """The cache stores objects as sent, managedFields included (drift needs them)."""
    cache = ClusterCache("c")
    obj = cm("a", "1")
    obj["metadata"]["managedFields"] = [{"manager": "fleetdeck", "operation": "Apply"}]
    cache.apply(Listed(CM, (obj,), "1"))
    assert cache.get(key("a"))["metadata"]["managedFields"][0]["manager"] == "fleetdeck"  # type: ignore[index]


def now_state(cache: ClusterCache) -> ConnectionState:
    """The cache's state, read through a call so the type checker does not narrow it between steps."""
    return cache.state


def test_connection_states_keep_data_and_age_into_unreachable() -> None:
    """Connecting → Connected → Degraded (some failing) → Unreachable (all, long enough) → Connected."""
    now = [1000.0]
    deploy = APIResource(group="apps", version="v1", kind="Deployment", plural="deployments", namespaced=True)
    cache = ClusterCache("c", unreachable_after=30, clock=lambda: now[0])
    cache.track(CM.group_kind)
    cache.track(deploy.group_kind)
    assert now_state(cache) is ConnectionState.CONNECTING
    cache.apply(Listed(CM, (cm("a", "1"),), "10"))
    cache.apply(Listed(deploy, (), "10"))
    assert now_state(cache) is ConnectionState.CONNECTED
    cache.kind_failed(CM.group_kind, err(None))
    assert now_state(cache) is ConnectionState.DEGRADED and cache.stale
    now[0] += 5
    cache.kind_failed(deploy.group_kind, err(None))
    assert now_state(cache) is ConnectionState.DEGRADED
    now[0] += 31
    assert cache.refresh_state() and now_state(cache) is ConnectionState.UNREACHABLE
    assert cache.since == now[0] and "boom" in cache.message
    assert cache.get(key("a")) is not None, "data is never cleared on disconnect"
    cache.kind_healthy(CM.group_kind)
    assert now_state(cache) is ConnectionState.DEGRADED
    cache.apply(Upserted(deploy, {"metadata": {"name": "d", "namespace": "ns", "resourceVersion": "30"}}))
    assert now_state(cache) is ConnectionState.CONNECTED and not cache.stale


def test_never_reached_cluster_is_unreachable_at_once_and_forbidden_is_degraded() -> None:
    """K1: a cluster that never answered is Unreachable immediately; 403 on every kind is Degraded."""
    cache = ClusterCache("c")
    cache.track(CM.group_kind)
    cache.kind_failed(CM.group_kind, err(None))
    assert cache.state is ConnectionState.UNREACHABLE
    other = ClusterCache("d")
    other.track(CM.group_kind)
    other.kind_failed(CM.group_kind, err(403))
    assert other.state is ConnectionState.DEGRADED


def test_drop_kind_deletes_its_objects() -> None:
    """Dropping a kind whose CRD is gone emits synthetic deletes and untracks it."""
    cache = ClusterCache("c")
    cache.track(CM.group_kind)
    cache.apply(Listed(CM, (cm("a", "1"),), "10"))
    changes = cache.drop_kind(CM)
    assert [c.obj["metadata"]["name"] for c in changes] == ["a"] and len(cache) == 0
    assert not cache.listed("", "ConfigMap")
