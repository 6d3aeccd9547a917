"""Liveness without a real cluster: the cache's heartbeat state, the watcher's heartbeat, dead-process checks."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

from core.errors import ClusterError
from core.live.api import APIResource
from core.live.cache import ClusterCache
from core.live.cluster import ClusterWatcher
from core.live.watch_events import Listed
from core.model import ConnectionState
from core.settings import WatchSettings
from core.simulated.simulated_cluster import SimulatedCluster, SimulationTiming
from core.sync.lease import ProcessMark, mark_of, process_gone, this_process

CM = ("", "ConfigMap")
HUNG = ClusterError("GET /version: no answer within 3s", cluster="c", status=None, reason="Timeout")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state_of(cache: ClusterCache) -> ConnectionState:
    """The cache's state (read through a call, so the type checker does not narrow it across changes)."""
    return cache.state


def connected_cache(clock: Clock) -> ClusterCache:
    cache = ClusterCache("c", unreachable_after=30.0, clock=clock)
    cache.track(CM)
    resource = APIResource("", "v1", "ConfigMap", "configmaps", True, frozenset({"list", "watch"}))
    cache.apply(Listed(resource=resource, items=(), resource_version="1"))
    assert cache.state is ConnectionState.CONNECTED
    return cache


def test_heartbeat_failure_degrades_then_ages_into_unreachable() -> None:
    """No answer: Degraded (stale, every kind failing, message) at once, Unreachable after unreachable_after."""
    clock = Clock()
    cache = connected_cache(clock)
    assert cache.heartbeat_failed(HUNG)
    assert cache.state is ConnectionState.DEGRADED
    assert cache.message == "API server of cluster c not responding: GET /version: no answer within 3s"
    assert cache.stale and not cache.responsive
    failure = cache.failure(*CM)
    assert failure is not None and failure.transient
    assert cache.failure("", "Secret") is None  # untracked kinds are not claimed
    clock.now += 29
    assert not cache.heartbeat_failed(HUNG)  # same streak: no change
    clock.now += 1
    assert cache.refresh_state()
    assert state_of(cache) is ConnectionState.UNREACHABLE
    assert cache.heartbeat_ok()
    assert state_of(cache) is ConnectionState.CONNECTED and cache.message == "" and not cache.stale
    assert not cache.heartbeat_ok()


def test_heartbeat_failure_before_any_list_is_unreachable() -> None:
    """A cluster never reached whose server does not answer is Unreachable at once."""
    cache = ClusterCache("c", clock=Clock())
    cache.track(CM)
    cache.heartbeat_failed(HUNG)
    assert cache.state is ConnectionState.UNREACHABLE


async def test_watcher_marks_a_silent_server_stale_and_recovers() -> None:
    """A simulated server slower than the heartbeat deadline is stale; answering again is Connected."""
    sim = SimulatedCluster("c", timing=SimulationTiming.instant())
    cache = ClusterCache("c", unreachable_after=30.0)
    settings = WatchSettings(heartbeat_interval=0.05, heartbeat_timeout=0.1, backoff_initial=0.05, backoff_max=0.2)
    watcher = ClusterWatcher(sim, cache, kinds=[CM], settings=settings, tick=0.05)
    await watcher.start()
    try:
        await watcher.wait_until(lambda: cache.state is ConnectionState.CONNECTED, timeout=10)
        sim.set_latency(5.0)
        await watcher.wait_until(lambda: cache.state is ConnectionState.DEGRADED, timeout=10)
        assert "API server of cluster" in cache.message and "not responding" in cache.message
        sim.set_latency(0.0)
        await watcher.wait_until(lambda: cache.state is ConnectionState.CONNECTED, timeout=10)
        assert watcher.heartbeats > 2
    finally:
        await watcher.stop()
        await sim.close()


def test_process_gone() -> None:
    """Only a process of this host and boot that no longer exists (or is another process now) is gone."""
    here = this_process()
    assert here.boot_id and here.host and here.start
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    dead = dataclasses.replace(here, pid=proc.pid, start="")
    assert process_gone(dead)
    assert not process_gone(here)
    assert not process_gone(dataclasses.replace(dead, host="elsewhere"))
    assert not process_gone(dataclasses.replace(dead, boot_id="other-boot"))
    assert not process_gone(dataclasses.replace(dead, boot_id=""))
    assert not process_gone(dataclasses.replace(dead, pid_namespace="pid:[1]"))
    assert process_gone(dataclasses.replace(here, start="1"))  # this pid, but started at another time
    assert mark_of(os.getpid()) == here


def test_zombie_holder_is_gone() -> None:
    """A holder that exited but was not reaped yet (a zombie) holds nothing."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        mark = mark_of(proc.pid)
        for _ in range(200):
            if Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
                break
            time.sleep(0.05)
        assert process_gone(mark)
    finally:
        proc.wait(timeout=30)


def test_process_mark_round_trips_through_annotations() -> None:
    mark = this_process()
    assert ProcessMark.from_annotations(mark.annotations()) == mark
    assert ProcessMark.from_annotations({}) is None


async def test_watches_silent_through_an_outage_resume_without_relisting() -> None:
    """Streams that heard nothing (not even a bookmark) during the outage are restarted from their RV."""
    timing = dataclasses.replace(SimulationTiming.instant(), bookmark_interval=3600.0)
    sim = SimulatedCluster("c", timing=timing)
    cache = ClusterCache("c", unreachable_after=30.0)
    settings = WatchSettings(heartbeat_interval=0.05, heartbeat_timeout=0.1, backoff_initial=0.05, backoff_max=0.2)
    watcher = ClusterWatcher(sim, cache, kinds=[CM], settings=settings, tick=0.05)
    await watcher.start()
    try:
        await watcher.wait_until(lambda: cache.state is ConnectionState.CONNECTED, timeout=10)
        state = watcher.state_of(*CM)
        assert state is not None
        watches = state.watches
        sim.set_latency(5.0)
        await watcher.wait_until(lambda: cache.state is ConnectionState.DEGRADED, timeout=10)
        sim.set_latency(0.0)
        await watcher.wait_until(lambda: cache.state is ConnectionState.CONNECTED, timeout=10)
        await watcher.wait_until(lambda: state.watches > watches, timeout=10)
        assert watcher.restarted_watches >= 1
        assert state.lists == 1  # resumed from its resourceVersion
    finally:
        await watcher.stop()
        await sim.close()


async def test_watches_that_kept_hearing_bookmarks_are_left_alone() -> None:
    """A stream that got bookmarks during the outage is healthy: not restarted."""
    sim = SimulatedCluster("c", timing=SimulationTiming.instant())  # bookmarks every 20 ms
    cache = ClusterCache("c", unreachable_after=30.0)
    settings = WatchSettings(heartbeat_interval=0.05, heartbeat_timeout=0.1)
    watcher = ClusterWatcher(sim, cache, kinds=[CM], settings=settings, tick=0.05)
    await watcher.start()
    try:
        await watcher.wait_until(lambda: cache.state is ConnectionState.CONNECTED, timeout=10)
        state = watcher.state_of(*CM)
        assert state is not None
        async with asyncio.timeout(10):  # the watch is streaming (a bookmark arrived after the list)
            while state.heard_at is None or state.listed_at is None or state.heard_at <= state.listed_at:
                await asyncio.sleep(0.01)
        sim.set_latency(5.0)
        await watcher.wait_until(lambda: cache.state is ConnectionState.DEGRADED, timeout=10)
        sim.set_latency(0.0)
        await watcher.wait_until(lambda: cache.state is ConnectionState.CONNECTED, timeout=10)
        assert watcher.restarted_watches == 0
    finally:
        await watcher.stop()
        await sim.close()
