"""Shared state and leases against a real kube-apiserver: SSA preconditions, races, MicroTime, RBAC."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import pytest

from core.errors import ClusterError, LockedError
from core.journal import OperatorIdentity
from core.live.kube import KubeClient
from core.model import AppControl, HistoryEntry
from core.sync.lease import LEASES, Claim, LeaseClient, OperationLease, operation_lease_name
from core.sync.state import CONFIGMAPS, NAMESPACE, AppState, AppStateStore, encode, state_name
from devcluster import ClusterInfo
from tests.cluster.sync_support import fleetdeck_writes, kube, now_utc, unique

pytestmark = pytest.mark.cluster
ALICE = OperatorIdentity(os_user="alice", host="bastion-1", pid=101)
BOB = OperatorIdentity(os_user="bob", host="bastion-2", pid=202)


async def test_server_side_apply_honours_the_resource_version_precondition(api: KubeClient) -> None:
    """A state write carrying a stale resourceVersion is refused with 409 by the real apiserver."""
    app = unique("rv")
    store = AppStateStore(api)
    stale = await store.pause(app, reason="one", by="alice")
    await store.pause(app, reason="two", by="bob")
    with pytest.raises(ClusterError) as conflict:
        await api.apply(CONFIGMAPS, encode(replace(stale, control=AppControl()), history_limit=10),
                        field_manager="fleetdeck")
    assert conflict.value.conflict
    assert (await store.load(app)).control.reason == "two"


async def test_racing_writers_from_two_clients_all_land(cluster: ClusterInfo) -> None:
    """Concurrent read-modify-writes through two connections retry on 409 until each is applied."""
    app = unique("race")
    async with kube(cluster) as first, kube(cluster) as second:
        stores = [AppStateStore(first), AppStateStore(second)] * 2

        def add(index: int) -> Callable[[AppState], AppState]:
            def fn(state: AppState) -> AppState:
                return replace(state, history=(*state.history, HistoryEntry(index, "r", "sync", "x", 0.0, "ok")))
            return fn

        await stores[0].pause(app, reason="seed", by="t")
        await asyncio.gather(*(s.update(app, add(i)) for i, s in enumerate(stores, start=1)))
        assert sorted(h.id for h in (await stores[0].load(app)).history) == [1, 2, 3, 4]


async def test_pin_and_pause_is_a_single_write(api: KubeClient, cluster: ClusterInfo) -> None:
    """The audit log shows one patch of the state ConfigMap for a rollback's pin and pause."""
    app = unique("pin")
    store = AppStateStore(api)
    await store.pause(app, reason="before", by="alice")
    since = now_utc()
    state = await store.pin_and_pause(app, revision="c" * 40, reason="rollback to #2", by="alice")
    assert state.control.paused and state.control.pinned == "c" * 40
    writes = [e for e in fleetdeck_writes(cluster, since) if e.get("objectRef", {}).get("name") == state_name(app)]
    assert [e["verb"] for e in writes] == ["patch"]


async def test_read_only_credentials_read_state_but_cannot_write_it(api: KubeClient, cluster: ClusterInfo) -> None:
    """The viewer sees an app's pause; its own write attempt is a 403, not a silent no-op."""
    app = unique("viewer")
    await AppStateStore(api).pause(app, reason="incident", by="alice")
    async with kube(cluster, viewer=True) as viewer:
        store = AppStateStore(viewer)
        assert (await store.load(app)).control.reason == "incident"
        with pytest.raises(ClusterError) as denied:
            await store.resume(app)
        assert denied.value.forbidden


async def test_leases_exclude_expire_and_are_taken_over(api: KubeClient) -> None:
    """Real Lease objects (MicroTime fields) exclude a second holder until expiry, then hand over."""
    app = unique("lease")
    now = [1_800_000_000.0]
    client = LeaseClient(api, clock=lambda: now[0])
    name = operation_lease_name(app)
    first = await client.acquire(Claim(name, ALICE.holder, "op-a", ALICE.by, "sync op-a", duration=30))
    assert first.holder == ALICE.holder and first.resource_version
    with pytest.raises(LockedError) as refused:
        await client.acquire(Claim(name, BOB.holder, "op-b", BOB.by, "sync op-b", duration=30))
    assert refused.value.holder == ALICE.holder and "sync op-a" in str(refused.value)
    now[0] += 31
    taken = await client.acquire(Claim(name, BOB.holder, "op-b", BOB.by, "sync op-b", duration=30))
    assert taken.holder == BOB.holder and taken.transitions == 1
    stored = await api.get(LEASES, name, NAMESPACE)
    assert stored is not None and stored["spec"]["renewTime"].endswith("Z")


async def test_operation_lease_release_frees_the_app(api: KubeClient) -> None:
    """After release another operator gets the app at once."""
    app = unique("release")
    async with OperationLease(api, app=app, identity=ALICE, token="op-a"):
        with pytest.raises(LockedError):
            await OperationLease(api, app=app, identity=BOB, token="op-b").acquire()
    bob = OperationLease(api, app=app, identity=BOB, token="op-b")
    await bob.acquire()
    await bob.release()

