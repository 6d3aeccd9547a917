"""A plan asked while the cluster's first lists are still under way (a console opened a moment ago).

A row can show a verdict as soon as its own kinds are listed, while another tracked kind (here Pods, held by
the fault proxy in front of a real kube-apiserver) is still listing. A plan needs every kind (owners, prune,
health), so it waits for the first lists (at most ``FIRST_LISTS_WAIT``), then plans; if the lists are still
under way by then, it is blocked saying which kinds are still listing, never with a bare "not current".
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

import core.engine.actions as actions
from core.engine import make_engine
from core.journal import Journal
from devcluster import ClusterInfo
from tests.cluster.http_faults import FaultProxy
from tests.cluster.test_http_faults_cli import proxied_fleet
from tests.cluster.test_liveness import until

pytestmark = pytest.mark.cluster


def pod_lists(gate: threading.Event) -> Callable[[web.Request], threading.Event | None]:
    def hold(request: web.Request) -> threading.Event | None:
        listing = request.path == "/api/v1/pods" and "watch" not in request.query
        return gate if listing and request.query.get("limit") != "1" else None
    return hold


async def test_a_plan_waits_for_the_first_lists_then_plans(
        tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    with FaultProxy(cluster) as proxy:
        proxy.hold = pod_lists(gate)
        fleet = proxied_fleet(tmp_path, repo, proxy, namespace)
        engine = make_engine(fleet, read_only=False, journal=Journal(tmp_path / "journal.jsonl"),
                             cache=tmp_path / "cache")
        await engine.start()
        try:
            await until(engine, lambda s: bool((row := s.app(namespace, "proxied")) and row.resources
                                               and not row.loading), 60)
            runtime = engine.clusters["proxied"]
            assert not runtime.view.listed and ("", "Pod") in runtime.cache.first_lists_pending

            monkeypatch.setattr(actions, "FIRST_LISTS_WAIT", 1.0)
            blocked = await engine.plan_sync(namespace, "proxied")
            assert blocked.blocked.startswith("cluster proxied is still listing (Pod not listed yet)"), blocked.blocked

            monkeypatch.setattr(actions, "FIRST_LISTS_WAIT", 30.0)
            planning = asyncio.create_task(engine.plan_sync(namespace, "proxied"))
            await asyncio.sleep(0.5)
            assert not planning.done()  # waiting for the Pod list
            gate.set()
            plan = await planning
            assert plan.blocked == "", plan.blocked
            assert runtime.view.listed and plan.steps
        finally:
            gate.set()
            await engine.stop()
