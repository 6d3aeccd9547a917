"""Shared app state and leases on the simulated cluster: encoding, optimistic concurrency, expiry, takeover."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest
import pytest_asyncio

from core.errors import ClusterError, LockedError
from core.journal import OperatorIdentity
from core.model import (
    AppControl,
    HistoryEntry,
    OperationPhase,
    ResourceKey,
    SyncAction,
    SyncResultEntry,
    SyncTrigger,
    newest_first,
)
from core.simulated.simulated_cluster import SimulatedCluster, SimulationTiming
from core.sync import record
from core.sync.lease import (
    AUTOMATION_LEASE,
    AutomationLease,
    Claim,
    LeaseClient,
    OperationLease,
    format_micro_time,
    operation_lease_name,
    parse_micro_time,
)
from core.sync.state import (
    CONFIGMAPS,
    MAX_NAME,
    NAMESPACE,
    AppState,
    AppStateStore,
    InventoryItem,
    OperationRecord,
    decode,
    encode,
    state_name,
)

ALICE = OperatorIdentity(os_user="alice", host="bastion-1", pid=101)
BOB = OperatorIdentity(os_user="bob", host="bastion-2", pid=202)
CM = ResourceKey("", "ConfigMap", "web", "cfg")
DEP = ResourceKey("apps", "Deployment", "web", "api")


class Clock:
    """A settable wall clock."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture
async def api() -> AsyncIterator[SimulatedCluster]:
    """A fresh simulated cluster."""
    cluster = SimulatedCluster("sim", timing=SimulationTiming.instant(), controllers=False)
    yield cluster
    await cluster.close()


def _op(op_id: str = "op-1", *, phase: OperationPhase = OperationPhase.RUNNING, wave: int | None = 2) -> OperationRecord:
    return OperationRecord(id=op_id, kind="sync", revision="a" * 40, phase=phase, started_at=1000.0,
                           by="alice@bastion-1", wave=wave, stage="apply")


# ---------------------------------------------------------------------------------------------- names, codec


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        pytest.param("web", "fleetdeck-app-web", id="plain"),
        pytest.param("team.web-1", "fleetdeck-app-team.web-1", id="dots-and-dashes"),
    ],
)
def test_state_name_keeps_valid_names(app: str, expected: str) -> None:
    """Valid DNS names are used as they are."""
    assert state_name(app) == expected


def test_state_name_sanitizes_and_disambiguates() -> None:
    """Invalid or overlong names become valid, bounded, and distinct from each other."""
    names = {state_name(app) for app in ("Web", "web", "web_", "we b", "x" * 400)}
    assert len(names) == 5
    for name in names:
        assert len(name) <= MAX_NAME
        assert name == name.lower() and " " not in name and "_" not in name
        assert name[-1].isalnum()


def test_encode_decode_round_trip() -> None:
    """Everything written reads back the same."""
    state = AppState(
        app="web",
        control=AppControl(paused=True, reason="incident", by="alice", at=10.0, expires_at=None, pinned="b" * 40),
        inventory=(InventoryItem(CM, "v1"), InventoryItem(DEP, "apps/v1")),
        history=(HistoryEntry(1, "a" * 40, "sync", "alice", 5.0, "Succeeded", "1 created"),
                 HistoryEntry(2, "b" * 40, "sync", "alice", 6.0, "Succeeded", "1 configured",
                              trigger=SyncTrigger.SELF_HEAL)),
        operation=_op(), last_operation=replace(_op("op-0", phase=OperationPhase.FAILED), automated=True,
                                                self_heal=True),
    )
    body = encode(state, history_limit=10)
    body["metadata"]["resourceVersion"] = "7"
    assert decode("web", body, now=11.0) == replace(state, inventory=tuple(sorted(state.inventory, key=lambda i: i.key)),
                                                     resource_version="7")
    assert body["metadata"]["namespace"] == NAMESPACE


def test_expired_pause_reads_as_not_paused() -> None:
    """A pause whose expiry passed is not a pause (the pin stays)."""
    body = encode(AppState(app="web", control=AppControl(paused=True, reason="r", expires_at=100.0, pinned="p")),
                  history_limit=10)
    assert decode("web", body, now=99.0).control.paused
    after = decode("web", body, now=101.0).control
    assert not after.paused and after.pinned == "p"


def test_damaged_keys_never_loosen_safety() -> None:
    """Unreadable control reads as paused, inventory as empty, operation as interrupted."""
    body = {"metadata": {"resourceVersion": "3"},
            "data": {"control": "{not json", "inventory": "[{]", "operation": "[1,2]", "history": "null"}}
    state = decode("web", body, now=0.0)
    assert state.control.paused and "unreadable" in state.control.reason
    assert state.inventory == ()
    assert state.operation is not None and state.operation.phase is OperationPhase.ERROR


def test_history_written_before_triggers_reads_as_unknown() -> None:
    """An entry stored without a trigger (or with one this version does not know) is labelled "sync": it
    may have been manual or automated, so the console does not claim either."""
    raw = [{"id": 1, "revision": "a", "kind": "sync", "by": "x", "at": 1.0, "result": "Succeeded"},
           {"id": 2, "revision": "b", "kind": "sync", "by": "x", "at": 2.0, "result": "Succeeded",
            "trigger": "webhook"},
           {"id": 3, "revision": "a", "kind": "rollback", "by": "x", "at": 3.0, "result": "Succeeded"}]
    state = decode("web", {"metadata": {}, "data": {"history": json.dumps(raw)}}, now=0.0)
    assert [(h.trigger, h.label) for h in state.history] == [
        (SyncTrigger.UNKNOWN, "sync"), (SyncTrigger.UNKNOWN, "sync"), (SyncTrigger.UNKNOWN, "rollback")]
    assert [h.id for h in newest_first(state.history)] == [3, 2, 1]


def test_history_is_capped_on_write() -> None:
    """Only the last history_limit entries are stored."""
    history = tuple(HistoryEntry(i, "r", "sync", "a", float(i), "Succeeded") for i in range(1, 15))
    body = encode(AppState(app="web", history=history), history_limit=10)
    assert [e["id"] for e in json.loads(body["data"]["history"])] == list(range(5, 15))


# ---------------------------------------------------------------------------------------------- store


async def test_first_update_creates_namespace_and_configmap(api: SimulatedCluster) -> None:
    """The first write creates fleetdeck-system and the app's ConfigMap."""
    store = AppStateStore(api)
    assert (await store.load("web")).resource_version == ""
    written = await store.pause("web", reason="incident", by="alice")
    assert written.control.paused and written.resource_version
    assert api.get_object(ResourceKey("", "Namespace", "", NAMESPACE)) is not None
    assert (await store.load("web")).control.reason == "incident"


async def test_stale_resource_version_is_refused(api: SimulatedCluster) -> None:
    """A write carrying an old resourceVersion gets 409 (the precondition the store relies on)."""
    store = AppStateStore(api)
    old = await store.pause("web", reason="one", by="alice")
    await store.pause("web", reason="two", by="bob")
    with pytest.raises(ClusterError) as conflict:
        await api.apply(CONFIGMAPS, encode(replace(old, control=AppControl()), history_limit=10),
                        field_manager="fleetdeck")
    assert conflict.value.conflict


async def test_concurrent_updates_all_land(api: SimulatedCluster) -> None:
    """Racing read-modify-writes retry on conflict until every one is applied."""
    api.set_latency(0.001)
    stores = [AppStateStore(api) for _ in range(5)]

    def add(index: int) -> Callable[[AppState], AppState]:
        def fn(state: AppState) -> AppState:
            entry = HistoryEntry(index, "r", "sync", "x", 0.0, "Succeeded")
            return replace(state, history=(*state.history, entry))
        return fn

    await stores[0].resume("web")
    await asyncio.gather(*(store.update("web", add(i)) for i, store in enumerate(stores, start=1)))
    assert sorted(h.id for h in (await stores[0].load("web")).history) == [1, 2, 3, 4, 5]


async def test_unchanged_update_writes_nothing(api: SimulatedCluster) -> None:
    """An update whose function returns the state unchanged sends no write."""
    store = AppStateStore(api)
    await store.pause("web", reason="r", by="a")
    before = len(api.requests)
    await store.update("web", lambda s: s)
    assert all(verb == "get" for verb, _ in list(api.requests)[before:])


async def test_pin_and_pause_is_one_write_and_resume_clears_both(api: SimulatedCluster) -> None:
    """Rollback's pin and pause land together; resume clears both."""
    store = AppStateStore(api)
    await store.pause("web", reason="before", by="bob")
    before = len(api.requests)
    state = await store.pin_and_pause("web", revision="c" * 40, reason="rollback to #3", by="alice")
    writes = [v for v, _ in list(api.requests)[before:] if v != "get"]
    assert writes == ["patch"]
    assert state.control.paused and state.control.pinned == "c" * 40
    cleared = await store.resume("web")
    assert cleared.control == AppControl()


# ---------------------------------------------------------------------------------------------- record


def test_finish_appends_history_once() -> None:
    """The final write appends history only while the operation is still the in-flight one."""
    op = _op()
    started = record.begin(AppState(app="web"), op, now=1.0)
    outcome = record.Outcome(operation=replace(op, phase=OperationPhase.SUCCEEDED, finished_at=2.0),
                             entries=(SyncResultEntry(CM, SyncAction.CREATED),), api_versions={CM: "v1"},
                             record_history=True, summary="1 created")
    once = record.finish(started, outcome, history_limit=10)
    twice = record.finish(once, outcome, history_limit=10)
    assert len(once.history) == 1 and once.operation is None
    assert twice.history == once.history
    assert once.inventory == (InventoryItem(CM, "v1"),)


def test_begin_moves_an_interrupted_operation_to_last() -> None:
    """Starting over a dead operation records it as an Error saying where it stopped."""
    dead = record.begin(AppState(app="web"), _op("op-dead", wave=3), now=1.0)
    state = record.begin(dead, _op("op-new", wave=None), now=5.0)
    assert state.operation is not None and state.operation.id == "op-new"
    assert state.last_operation is not None and state.last_operation.phase is OperationPhase.ERROR
    assert "interrupted at wave 3" in state.last_operation.message


def test_inventory_keeps_unpruned_and_drops_pruned() -> None:
    """applied ∪ (previous − pruned): prune survivors and skipped keys stay prunable later."""
    old = ResourceKey("", "ConfigMap", "web", "old")
    gone = ResourceKey("", "ConfigMap", "web", "gone")
    entries = (SyncResultEntry(DEP, SyncAction.CONFIGURED), SyncResultEntry(gone, SyncAction.PRUNED),
               SyncResultEntry(old, SyncAction.FAILED))
    result = record.inventory_after((InventoryItem(old, "v1"), InventoryItem(gone, "v1")), entries,
                                    api_versions={DEP: "apps/v1"})
    assert {i.key for i in result} == {DEP, old}


# ---------------------------------------------------------------------------------------------- leases


def test_micro_time_round_trip() -> None:
    """MicroTime formatting keeps microseconds and parses back."""
    text = format_micro_time(1_800_000_000.123456)
    assert text.endswith(".123456Z")
    assert parse_micro_time(text) == pytest.approx(1_800_000_000.123456)
    assert parse_micro_time("2027-01-15T08:00:00Z") is not None
    assert parse_micro_time("garbage") is None


async def test_operation_lease_excludes_others_and_names_the_holder(api: SimulatedCluster) -> None:
    """Bob is refused while Alice holds the app; after release he gets it."""
    clock = Clock()
    alice = OperationLease(api, app="web", identity=ALICE, token="op-a", what="sync op-a", clock=clock)
    bob = OperationLease(api, app="web", identity=BOB, token="op-b", clock=clock)
    await alice.acquire()
    with pytest.raises(LockedError) as refused:
        await bob.acquire()
    assert refused.value.holder == "alice@bastion-1:101"
    assert "sync op-a" in str(refused.value) and refused.value.since.startswith("2027-")
    await alice.release()
    await bob.acquire()
    await bob.release()


async def test_same_process_other_operation_is_refused(api: SimulatedCluster) -> None:
    """The same holder with another operation token does not get the lease."""
    first = OperationLease(api, app="web", identity=ALICE, token="op-1")
    await first.acquire()
    with pytest.raises(LockedError):
        await OperationLease(api, app="web", identity=ALICE, token="op-2").acquire()
    await first.release()


async def test_expired_lease_is_taken_over(api: SimulatedCluster) -> None:
    """A holder that stopped renewing loses the lease after its duration; transitions count up."""
    clock = Clock()
    client = LeaseClient(api, clock=clock)
    name = operation_lease_name("web")
    held = await client.acquire(Claim(name, ALICE.holder, "op-a", ALICE.by, "sync", duration=30))
    clock.now += 29
    with pytest.raises(LockedError):
        await client.acquire(Claim(name, BOB.holder, "op-b", BOB.by, "sync", duration=30))
    clock.now += 2
    taken = await client.acquire(Claim(name, BOB.holder, "op-b", BOB.by, "sync", duration=30))
    assert taken.holder == BOB.holder and taken.transitions == held.transitions + 1


async def test_operation_lease_renews_in_the_background(api: SimulatedCluster) -> None:
    """While held, the lease's renewTime keeps moving."""
    lease = OperationLease(api, app="web", identity=ALICE, token="op-a", renew_every=0.01)
    await lease.acquire()
    first = await lease.client.read(operation_lease_name("web"))
    await asyncio.sleep(0.1)
    second = await lease.client.read(operation_lease_name("web"))
    await lease.release()
    assert first is not None and second is not None
    assert second.renewed_at is not None and first.renewed_at is not None
    assert second.renewed_at > first.renewed_at
    after = await lease.client.read(operation_lease_name("web"))
    assert after is not None and after.holder == ""


async def test_one_automation_owner_per_cluster(api: SimulatedCluster) -> None:
    """Two fleetdecks: one holds the automation lease; when it releases, the other takes over."""
    clock = Clock()
    mono = Clock(0.0)
    first = AutomationLease(api, identity=ALICE, clock=clock, monotonic=mono)
    second = AutomationLease(api, identity=BOB, clock=clock, monotonic=mono)
    assert await first.tick()
    assert not await second.tick()
    assert second.holder == ALICE.holder
    await first.release()
    assert not first.held
    assert await second.tick()
    record_ = await second.client.read(AUTOMATION_LEASE)
    assert record_ is not None and record_.holder == BOB.holder


async def test_automation_lease_lapses_without_renewal(api: SimulatedCluster) -> None:
    """A holder whose renewals fail stops automating after the renew deadline; another takes over later."""
    clock, mono = Clock(), Clock(0.0)
    first = AutomationLease(api, identity=ALICE, clock=clock, monotonic=mono)
    second = AutomationLease(api, identity=BOB, clock=clock, monotonic=mono)
    assert await first.tick()
    api.set_reachable(False)
    mono.now += 15
    clock.now += 15
    assert await first.tick()  # the renewal failed, but the renew deadline (20 s) has not passed
    mono.now += 10
    clock.now += 20
    assert not first.held
    api.set_reachable(True)
    assert await second.tick()
    assert not await first.tick()
