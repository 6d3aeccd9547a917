"""How many requests a sync sends, counted by the real API server's audit log.

A sync of N ConfigMaps (two waves, so the wave between them is waited for) sends, per object, the preflight
server-side dry run and the apply, and nothing else: the health of a kind without a health rule is the
apply's answer, not a read. Per app it adds a fixed few (discovery, the operation Lease, the app's state).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.journal import Journal
from core.live.kube import KubeClient
from core.model import OperationPhase
from core.sync.operation import OperationOptions
from core.sync.state import CONFIGMAPS
from devcluster import ClusterInfo, audit_events, wait_for_audit_event
from tests.cluster.sync_support import (
    REVISION_B,
    by_key,
    configmap,
    make_plan,
    namespace_obj,
    now_utc,
    operation,
    sync,
    unique,
)

pytestmark = pytest.mark.cluster
ADMIN = "fleetdeck-admin"
N = 30


@pytest.fixture
def namespace(cluster: ClusterInfo) -> Iterator[str]:
    name = unique("sync-requests")
    cluster.rest().apply(f"/api/v1/namespaces/{name}", namespace_obj(name))
    yield name
    with contextlib.suppress(Exception):  # cleanup only: the apiserver may be gone
        cluster.rest().delete(f"/api/v1/namespaces/{name}")


def _requests(cluster: ClusterInfo, since: dt.datetime, marker: str) -> list[dict[str, Any]]:
    """fleetdeck's requests since ``since``, up to (not including) the marker read."""
    wait_for_audit_event(cluster, lambda e: (e.get("objectRef") or {}).get("name") == marker, since=since,
                         timeout=20)
    return [e for e in audit_events(cluster, since=since)
            if e.get("user", {}).get("username") == ADMIN and (e.get("objectRef") or {}).get("name") != marker]


def _kind(event: dict[str, Any]) -> str:
    verb = "dry-run " + event["verb"] if "dryRun=All" in event.get("requestURI", "") else event["verb"]
    return f"{verb} {(event.get('objectRef') or {}).get('resource', event.get('requestURI', ''))}"


async def test_a_sync_of_n_configmaps_sends_two_requests_per_object_and_ten_per_app(
    api: KubeClient, cluster: ClusterInfo, namespace: str, tmp_path: Path
) -> None:
    """Per ConfigMap: one dry run, one apply; no GET of it before or after (its health is the apply's answer,
    also where the sync waits for each wave to be healthy); per app at most 10 more."""
    app = unique("many")
    objs = [configmap(f"c{i}", namespace, wave=0 if i < N // 2 else 1, v=str(i)) for i in range(N)]
    desired = by_key(objs)
    journal = Journal(tmp_path / "journal.jsonl")
    first = await sync(api, app=app, desired=desired, journal=journal)  # creates them (and the app's state)
    assert first.phase is OperationPhase.SUCCEEDED, first.message
    changed = by_key([configmap(f"c{i}", namespace, wave=0 if i < N // 2 else 1, v=f"{i}b") for i in range(N)])

    plan, live = await make_plan(api, app=app, desired=changed, revision=REVISION_B)
    run = operation(api, plan, desired=changed, live=live, journal=journal,
                    options=OperationOptions(health_timeout=120, wait_for_health=True))
    since = now_utc()
    second = await run.run_to_completion()
    marker = unique("audit-marker")
    assert await api.get(CONFIGMAPS, marker, namespace) is None
    assert second.phase is OperationPhase.SUCCEEDED, second.message
    assert {e.action.value for e in second.entries} == {"configured"}
    events = await asyncio.to_thread(_requests, cluster, since, marker)
    counts = collections.Counter(_kind(e) for e in events)
    on_objects = [e for e in events if (e.get("objectRef") or {}).get("namespace") == namespace
                  and (e.get("objectRef") or {}).get("resource") == "configmaps"]
    per_object = collections.Counter(_kind(e) for e in on_objects)
    assert per_object == {"dry-run patch configmaps": N, "patch configmaps": N}, per_object
    # per app: discovery (/api, /apis), the Lease (read, take, give up: the release writes on the record it
    # took), the app's state (read once, then written at the start, at each of the 2 waves and at the end,
    # each write conditional on the version it wrote before)
    assert len(events) - len(on_objects) <= 10, sorted(counts.items())
