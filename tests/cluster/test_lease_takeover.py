"""A lease left by a dead process on this host is taken over at once; live or remote holders still block.

Against a real kube-apiserver (a lone one in a private plane: leases need nothing else).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from core.errors import LockedError
from core.journal import Journal, OperatorIdentity, read_entries
from core.live.kube import KubeClient
from core.live.kubeconfig import load_kubeconfig
from core.model import OperationPhase
from core.sync.lease import (
    BOOT_ANNOTATION,
    HOST_ANNOTATION,
    LEASES,
    PID_ANNOTATION,
    Claim,
    LeaseClient,
    LeaseRecord,
    mark_of,
    operation_lease_name,
    this_process,
)
from core.sync.operation import OperationOptions
from core.sync.state import NAMESPACE
from devcluster import Binaries, ClusterInfo, ControlPlane, reaper
from tests.cluster.sync_support import REVISION_A, by_key, configmap, make_plan, operation, unique

pytestmark = pytest.mark.cluster

ALICE = OperatorIdentity("alice", "bastion", 111)
BOB = OperatorIdentity("bob", "bastion", 222)
DURATION = 300.0
"""Long enough that only a takeover, never an expiry, can explain a quick acquire."""


@pytest.fixture(scope="module")
def lone_cluster(control_plane_binaries: Binaries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    """One lone kube-apiserver shared by this module's tests (each uses its own lease names)."""
    plane = ControlPlane(tmp_path_factory.mktemp("lease-plane") / "plane", binaries=control_plane_binaries,
                         progress=None)
    plane.state_dir.mkdir(parents=True)
    watchdog = reaper.spawn(plane.state_dir)  # stops the plane even if pytest is killed
    try:
        info, _ = plane.start_lone_apiserver("fd-lease")
        yield info
    finally:
        plane.stop()
        if watchdog.stdin is not None:
            watchdog.stdin.close()
        watchdog.wait(timeout=60)


@pytest_asyncio.fixture
async def api(lone_cluster: ClusterInfo) -> AsyncIterator[KubeClient]:
    context = load_kubeconfig(lone_cluster.kubeconfig).context(lone_cluster.admin_context)
    client = KubeClient(cluster=lone_cluster.name, context=context)
    try:
        yield client
    finally:
        await client.close()


def dead_pid() -> int:
    """The pid of a process of this host that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def claim(who: OperatorIdentity, token: str, name: str, **process: object) -> Claim:
    mark = dataclasses.replace(this_process(), **process)  # type: ignore[arg-type]
    return Claim(name, f"{who.os_user}@{who.host}:{mark.pid}", token, who.by, f"sync {token}", DURATION, mark)


async def test_lease_of_a_dead_local_process_is_taken_over_at_once(api: KubeClient) -> None:
    """The lease names the process (host, pid, boot id); a dead pid here is released without waiting."""
    name = unique("fleetdeck-op-dead")
    pid = dead_pid()
    first = await LeaseClient(api).acquire(claim(ALICE, "op-a", name, pid=pid, start=""))
    raw = await api.get(LEASES, name, NAMESPACE)
    assert raw is not None
    notes = raw["metadata"]["annotations"]
    assert notes[PID_ANNOTATION] == str(pid) and notes[HOST_ANNOTATION] == this_process().host
    assert notes[BOOT_ANNOTATION] == this_process().boot_id != ""
    assert not first.expired(time.time())

    taken: list[LeaseRecord] = []

    async def journal(record: LeaseRecord) -> None:
        taken.append(record)

    began = time.monotonic()
    record = await LeaseClient(api, on_takeover=journal).acquire(claim(BOB, "op-b", name))
    assert time.monotonic() - began < DURATION / 10  # no expiry wait (generous bound)
    assert record.holder.startswith("bob@") and record.token == "op-b"
    assert record.transitions == first.transitions + 1
    assert [r.process.pid if r.process else None for r in taken] == [pid]


async def test_live_local_holder_and_other_hosts_still_block(api: KubeClient) -> None:
    """A live pid here, a dead pid on another host, or a lease from another boot: LockedError until expiry."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        cases = {
            "live": {"pid": sleeper.pid, "start": mark_of(sleeper.pid).start},
            "other-host": {"pid": dead_pid(), "host": "another-bastion"},
            "other-boot": {"pid": dead_pid(), "boot_id": "00000000-0000-0000-0000-000000000000"},
            "no-boot-id": {"pid": dead_pid(), "boot_id": ""},
        }
        for case, process in cases.items():
            name = unique(f"fleetdeck-op-{case}")
            await LeaseClient(api).acquire(claim(ALICE, "op-a", name, **process))
            taken: list[LeaseRecord] = []

            async def journal(record: LeaseRecord, taken: list[LeaseRecord] = taken) -> None:
                taken.append(record)

            with pytest.raises(LockedError) as refused:
                await LeaseClient(api, on_takeover=journal).acquire(claim(BOB, "op-b", name))
            assert "alice@bastion" in str(refused.value), case
            assert taken == [], case
    finally:
        sleeper.kill()
        sleeper.wait(timeout=30)


async def test_reused_pid_counts_as_dead(api: KubeClient) -> None:
    """A live pid whose start time differs from the recorded one is another process: taken over."""
    name = unique("fleetdeck-op-reused")
    await LeaseClient(api).acquire(claim(ALICE, "op-a", name, start="1"))  # this pid, another start time
    record = await LeaseClient(api).acquire(claim(BOB, "op-b", name))
    assert record.token == "op-b"


async def test_sync_journals_the_takeover(api: KubeClient, lone_cluster: ClusterInfo,
                                          tmp_path: Path) -> None:
    """A sync finding its app's lease held by a dead local process runs at once and journals the release."""
    namespace = unique("ns-takeover")
    lone_cluster.rest().request("POST", "/api/v1/namespaces",
                                body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    app = unique("takeover")
    pid = dead_pid()
    await LeaseClient(api).acquire(claim(ALICE, "op-dead", operation_lease_name(app), pid=pid, start=""))
    desired = by_key([configmap("cm", namespace)])
    plan, live = await make_plan(api, app=app, desired=desired, revision=REVISION_A)
    journal = Journal(tmp_path / "journal.jsonl")
    op = operation(api, plan, desired=desired, live=live, journal=journal,
                   options=OperationOptions(wait_between_waves=False))
    result = await op.run_to_completion()
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    entries = [(e.action, e.result, e.message) for e in read_entries(journal.path)]
    assert ("lock-takeover", "succeeded") in [(a, r) for a, r, _ in entries]
    message = next(m for a, _, m in entries if a == "lock-takeover")
    assert f"released lock of dead process {pid}" in message
    assert [r for a, r, _ in entries if a == "sync"] == ["started", "succeeded"]
