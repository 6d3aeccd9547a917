"""Kubernetes Events of an app: parsing both APIs, folding duplicates, order, caps, the feed and the engine."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from core.live.event_feed import FORBIDDEN, EventFeed, EventStore
from core.model import HealthStatus, ResourceKey
from core.reconcile.event_summary import parse_event, summarize
from core.settings import WatchSettings
from core.simulated.simulated_cluster import SimulatedCluster, SimulatedUser, SimulationTiming
from tests.engine.conftest import WEB, Fleet, StartEngine, write_app
from tests.engine.test_engine import app_row, wait_for

POD = ResourceKey("", "Pod", "web", "web-1")
DEPLOY = ResourceKey("apps", "Deployment", "web", "web")


def core_event(uid: str, *, reason: str = "BackOff", message: str = "back-off", type: str = "Warning",
               count: int = 1, last: str = "2026-12-07T10:00:00Z", obj: ResourceKey = POD,
               namespace: str = "web") -> dict[str, Any]:
    api_version = f"{obj.group}/v1" if obj.group else "v1"
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{obj.name}.{uid}", "namespace": namespace, "uid": uid},
            "involvedObject": {"apiVersion": api_version, "kind": obj.kind, "namespace": obj.namespace,
                               "name": obj.name},
            "type": type, "reason": reason, "message": message, "count": count,
            "firstTimestamp": "2026-12-07T09:00:00Z", "lastTimestamp": last, "source": {"component": "kubelet"}}


def test_parses_core_v1_and_events_k8s_io() -> None:
    """Both APIs give the same fields: object, reason, message/note, count/series, last seen."""
    old = parse_event(core_event("a", count=4))
    assert old is not None and old.object == POD and old.count == 4 and old.message == "back-off"
    assert old.last_seen is not None and old.first_seen is not None and old.last_seen > old.first_seen
    new = parse_event({
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "x", "namespace": "web", "uid": "b"},
        "regarding": {"kind": "Pod", "namespace": "web", "name": "web-1"}, "reason": "BackOff", "note": "n",
        "type": "Warning", "reportingController": "kubelet", "eventTime": "2026-12-07T09:00:00.000000Z",
        "series": {"count": 7, "lastObservedTime": "2026-12-07T11:00:00.000000Z"}})
    assert new is not None and new.object == POD and new.count == 7 and new.message == "n"
    assert new.source == "kubelet" and new.last_seen is not None and new.last_seen > (old.last_seen or 0)
    assert parse_event({"apiVersion": "v1", "kind": "Event", "metadata": {}}) is None


def test_fold_sums_counts_of_identical_events_and_orders_warnings_first() -> None:
    """Same type+reason+message+object → one line with the summed count; Warnings first, then newest."""
    events = [parse_event(e) for e in (
        core_event("1", count=3, last="2026-12-07T10:00:00Z"),
        core_event("2", count=2, last="2026-12-07T10:05:00Z"),
        core_event("3", reason="Pulled", type="Normal", message="pulled", last="2026-12-07T10:10:00Z"),
        core_event("4", reason="ScalingReplicaSet", type="Normal", message="scaled", obj=DEPLOY,
                   last="2026-12-07T10:20:00Z"),
        core_event("5", reason="Unhealthy", message="probe", last="2026-12-07T09:30:00Z"),
        core_event("6", obj=ResourceKey("", "Pod", "web", "other")),
    )]
    lines, omitted = summarize([e for e in events if e], [POD, DEPLOY])
    assert omitted == 0
    assert [(e.type, e.reason, e.object.name, e.count) for e in lines] == [
        ("Warning", "BackOff", "web-1", 5), ("Warning", "Unhealthy", "web-1", 1),
        ("Normal", "ScalingReplicaSet", "web", 1), ("Normal", "Pulled", "web-1", 1)]
    folded = lines[0]
    assert folded.last_seen is not None and folded.first_seen is not None and folded.last_seen > folded.first_seen
    capped, omitted = summarize([e for e in events if e], [POD, DEPLOY], cap=2)
    assert [e.reason for e in capped] == ["BackOff", "Unhealthy"] and omitted == 2


def test_store_caps_each_namespace_dropping_the_oldest() -> None:
    """Beyond the cap the oldest (last seen) go; namespaces not kept are never stored."""
    store = EventStore(cap=10, keep=lambda ns: ns == "web")
    for i in range(25):
        store.upsert(core_event(f"u{i}", message=f"m{i}", last=f"2026-12-07T10:{i:02d}:00Z"))
    assert store.upsert(core_event("x", namespace="elsewhere")) is None
    kept = sorted(int(e.message[1:]) for e in store.events())
    assert len(kept) <= 10 and kept[-1] == 24 and min(kept) > 10
    assert store.dropped == 25 - len(kept)
    store.retain({"u24"})
    assert [e.uid for e in store.events()] == ["u24"]


async def test_feed_lists_and_watches_a_simulated_cluster() -> None:
    """Events recorded after the list arrive through the watch; a deleted one goes."""
    cluster = SimulatedCluster("dev", timing=SimulationTiming.instant(), controllers=False)
    cluster.ensure_namespace("web")
    resource = cluster.resource_for("v1", "Event")
    assert resource is not None
    await cluster.create(resource, core_event("1"))
    feed = EventFeed(cluster, settings=WatchSettings())
    feed.start()
    try:
        await feed.wait_answered(5)
        assert feed.listed and [e.reason for e in feed.store.events()] == ["BackOff"]
        await cluster.create(resource, core_event("2", reason="Killing", message="stopping"))
        async with asyncio.timeout(5):
            while len(feed.store) < 2:
                await asyncio.sleep(0.01)
        assert cluster.delete_as("test", ResourceKey("", "Event", "web", "web-1.1"))
        async with asyncio.timeout(5):
            while len(feed.store) > 1:
                await asyncio.sleep(0.01)
        assert feed.watches >= 1
    finally:
        await feed.stop()
        await cluster.close()


async def test_feed_says_forbidden_and_keeps_nothing_secret() -> None:
    """A user who may not list events: the feed says "events not readable: forbidden" and does not fail."""
    cluster = SimulatedCluster("dev", timing=SimulationTiming.instant(), controllers=False,
                               user=SimulatedUser(name="viewer", read_only=True, denied=frozenset({("", "Event")})))
    feed = EventFeed(cluster, settings=WatchSettings(list_only=True))
    feed.start()
    try:
        await feed.wait_answered(5)
        assert feed.error == FORBIDDEN and not feed.listed
    finally:
        await feed.stop()
        await cluster.close()


async def test_engine_shows_the_backoff_warning_of_a_crash_looping_pod(fleet: Fleet, started: StartEngine) -> None:
    """A Deployment whose pods crash loop: the app's events hold the kubelet's BackOff Warning about its pod
    (a grandchild: Deployment → ReplicaSet → Pod) first, and the rollout's Normal ScalingReplicaSet."""
    broken = copy.deepcopy(WEB)
    broken["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:crashloop"
    write_app(fleet.repo, [broken], "web: broken image")
    engine = await started()
    states = [s async for s in engine.execute_plan(await engine.plan_sync("web", "dev"))]
    assert states[-1].phase.successful, states[-1].message
    await fleet.clusters["dev"].settle()
    await wait_for(engine, lambda s: app_row(s, "web", "dev").health.status is HealthStatus.DEGRADED
                   or any(r.key.kind == "Pod" for r in app_row(s, "web", "dev").resources))
    async with asyncio.timeout(10):
        while True:
            found = await engine.app_events("web", "dev")
            if any(e.warning for e in found.events):
                break
            await asyncio.sleep(0.05)
    assert found.listed and not found.error
    first = found.events[0]
    assert first.warning and first.reason == "BackOff" and first.object.kind == "Pod"
    assert first.object.name.startswith("web-") and "Back-off restarting failed container" in first.message
    assert any(e.reason == "ScalingReplicaSet" and e.object == ResourceKey("apps", "Deployment", "web", "web")
               for e in found.events)
    assert (await engine.app_events("web", "prod")).events == ()


async def test_engine_says_events_are_forbidden_and_the_row_is_unaffected(fleet: Fleet, started: StartEngine) -> None:
    """Credentials that may not list events: app_events says "events not readable: forbidden"; the row's
    sync and health are what they were (the app does not fail)."""
    fleet.clusters["dev"].set_user(SimulatedUser(name="viewer", denied=frozenset({("", "Event")})))
    engine = await started()
    before = app_row(engine.snapshot, "web", "dev")
    async with asyncio.timeout(10):
        while not (found := await engine.app_events("web", "dev")).error:
            await asyncio.sleep(0.05)
    assert found.error == FORBIDDEN and found.events == () and not found.listed
    after = app_row(engine.snapshot, "web", "dev")
    assert (after.sync, after.health.status, after.stale) == (before.sync, before.health.status, before.stale)
    assert await engine.app_events("web", "dev") is found  # nothing changed: the same answer, not recomputed
