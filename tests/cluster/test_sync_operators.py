"""Two operators syncing the same app at once: one proceeds, the other is refused with the holder's name."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from core.errors import DuplicateRequestError, LockedError
from core.journal import Journal, OperatorIdentity, read_entries, verify
from core.live.kube import KubeClient
from core.model import OperationPhase
from core.sync.state import AppStateStore
from devcluster import ClusterInfo
from tests.cluster.sync_support import (
    PYTHON,
    ROOT,
    by_key,
    configmap,
    make_plan,
    operation,
    unique,
)

pytestmark = pytest.mark.cluster

OPERATOR = """
import asyncio, sys
from pathlib import Path
from core.journal import Journal, current_identity
from core.live.kube import KubeClient
from core.live.kubeconfig import load_kubeconfig
from tests.cluster.sync_support import by_key, configmap, make_plan, operation

kubeconfig, context, app, ns, journal_path = sys.argv[1:6]

async def main():
    config = load_kubeconfig(kubeconfig)
    api = KubeClient(cluster="fd-a", context=config.context(context))
    desired = by_key([configmap("from-process", ns)])
    plan, live = await make_plan(api, app=app, desired=desired)
    op = operation(api, plan, desired=desired, live=live, journal=Journal(Path(journal_path)),
                   identity=current_identity(kube_user="fleetdeck-admin"))
    await op.step()
    print("HOLDING", op.identity.holder, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    state = await op.run_to_completion()
    print("DONE", state.phase.value, flush=True)
    await api.close()

asyncio.run(main())
"""


async def _readline(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout=60)
    assert line, f"operator process exited early (rc={proc.poll()})"
    return line.strip()


async def test_second_operator_process_is_told_who_holds_the_app(
    api: KubeClient, cluster: ClusterInfo, namespace: str, tmp_path: Path
) -> None:
    """While another process's sync holds the app's lease, a sync here gets LockedError naming it."""
    app = unique("contended")
    proc = subprocess.Popen(
        [PYTHON, "-c", OPERATOR, str(cluster.kubeconfig), cluster.admin_context, app, namespace,
         str(tmp_path / "other.jsonl")],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        holding = await _readline(proc)
        assert holding.startswith("HOLDING ")
        holder = holding.split(" ", 1)[1]
        assert holder.endswith(f":{proc.pid}")
        journal = Journal(tmp_path / "mine.jsonl")
        bob = OperatorIdentity(os_user="bob", host="bastion-2", pid=4242)
        desired = by_key([configmap("from-test", namespace)])
        plan, live = await make_plan(api, app=app, desired=desired)
        mine = operation(api, plan, desired=desired, live=live, journal=journal, identity=bob)
        with pytest.raises(LockedError) as refused:
            await mine.step()
        assert refused.value.holder == holder
        assert holder in str(refused.value) and "since" in str(refused.value)
        assert not isinstance(refused.value, DuplicateRequestError)  # another request: locked, not a duplicate
        assert mine.state().phase is OperationPhase.FAILED
        assert [e.result for e in read_entries(journal.path)] == ["started", "refused"]
        assert holder in read_entries(journal.path)[-1].message
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert await _readline(proc) == "DONE Succeeded"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    retry = operation(api, plan, desired=desired, live=live, journal=journal, identity=bob)
    assert (await retry.run_to_completion()).phase is OperationPhase.SUCCEEDED
    assert verify(journal.path).ok
    assert len((await AppStateStore(api).load(app)).history) == 2


async def test_the_same_request_from_another_process_is_a_duplicate(
    api: KubeClient, cluster: ClusterInfo, namespace: str, tmp_path: Path
) -> None:
    """Two operators asking for the same sync (same app, revision, resources and options) at once: the second
    is told that its request is already running, by whom and since when, journalled as refused; the
    first completes and history holds one sync."""
    app = unique("same-request")
    proc = subprocess.Popen(
        [PYTHON, "-c", OPERATOR, str(cluster.kubeconfig), cluster.admin_context, app, namespace,
         str(tmp_path / "other.jsonl")],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        holder = (await _readline(proc)).split(" ", 1)[1]
        journal = Journal(tmp_path / "mine.jsonl")
        desired = by_key([configmap("from-process", namespace)])  # what the other process syncs
        plan, live = await make_plan(api, app=app, desired=desired)
        mine = operation(api, plan, desired=desired, live=live, journal=journal,
                         identity=OperatorIdentity(os_user="bob", host="bastion-2", pid=4242))
        with pytest.raises(DuplicateRequestError) as duplicate:
            await mine.step()
        message = str(duplicate.value)
        assert message.startswith(f"duplicate request: the same request is already running on cluster {api.cluster}")
        assert holder in message and "it was not carried out again" in message
        assert [e.result for e in read_entries(journal.path)] == ["started", "refused"]
        assert "duplicate request" in read_entries(journal.path)[-1].message
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert await _readline(proc) == "DONE Succeeded"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert len((await AppStateStore(api).load(app)).history) == 1


async def test_two_operations_in_one_process_exclude_each_other(
    api: KubeClient, namespace: str, tmp_path: Path
) -> None:
    """Two SyncOperations of the same app started together: exactly one runs, the other is locked out."""
    app = unique("twice")
    journal = Journal(tmp_path / "j.jsonl")
    desired = by_key([configmap("x", namespace)])
    plan, live = await make_plan(api, app=app, desired=desired)
    ops = [operation(api, plan, desired=desired, live=live, journal=journal) for _ in range(2)]
    begun = await asyncio.gather(*(op.step() for op in ops), return_exceptions=True)
    locked = [r for r in begun if isinstance(r, LockedError)]
    winners = [op for op, r in zip(ops, begun, strict=True) if r is True]
    assert len(locked) == 1 and len(winners) == 1, begun
    assert winners[0].identity.holder in str(locked[0])
    # The same plan submitted twice (a key repeat) is one request: the second is told it is a duplicate.
    assert isinstance(locked[0], DuplicateRequestError)
    assert str(locked[0]).startswith("duplicate request: the same request is already running on cluster")
    assert (await winners[0].run_to_completion()).phase is OperationPhase.SUCCEEDED
    assert len((await AppStateStore(api).load(app)).history) == 1
    assert verify(journal.path).ok
