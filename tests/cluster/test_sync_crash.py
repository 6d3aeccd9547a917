"""A sync process killed with SIGKILL mid-way: state stays consistent, the journal verifies, no duplicate history."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from core.errors import LockedError
from core.journal import Journal, read_entries, verify
from core.live.kube import KubeClient
from core.model import OperationPhase, OperationState, ResourceKey
from core.sync.operation import OperationOptions
from core.sync.state import CONFIGMAPS, AppStateStore
from devcluster import ClusterInfo
from tests.cluster.sync_support import (
    PYTHON,
    REVISION_B,
    ROOT,
    by_key,
    configmap,
    make_plan,
    operation,
    unique,
)

pytestmark = pytest.mark.cluster
WAVES = 12
KILL_AT_WAVE = 4
LEASE_SECONDS = 4.0

SYNCER = """
import asyncio, signal, sys
# Ctrl-C as on a terminal: a shell starts background jobs with SIGINT ignored, and children inherit that.
signal.signal(signal.SIGINT, signal.default_int_handler)
from pathlib import Path
from core.journal import Journal, current_identity
from core.live.kube import KubeClient
from core.live.kubeconfig import load_kubeconfig
from core.sync.operation import OperationOptions
from tests.cluster.sync_support import by_key, configmap, make_plan, operation

kubeconfig, context, app, ns, journal_path, waves, lease = sys.argv[1:8]

async def main():
    config = load_kubeconfig(kubeconfig)
    api = KubeClient(cluster="fd-a", context=config.context(context))
    desired = by_key([configmap(f"cm-{w}", ns, wave=w) for w in range(int(waves))])
    plan, live = await make_plan(api, app=app, desired=desired)
    options = OperationOptions(wave_delay=0.4, lease_duration=float(lease), lease_renew=1.0)
    op = operation(api, plan, desired=desired, live=live, journal=Journal(Path(journal_path)),
                   identity=current_identity(kube_user="fleetdeck-admin"), options=options)
    while await op.step():
        applied = sum(1 for e in op.state().entries if e.action.value == "created")
        print("APPLIED", applied, flush=True)
    print("FINISHED", op.state().phase.value, flush=True)

asyncio.run(main())
"""


async def _kill_mid_sync(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line, f"syncer exited before wave {KILL_AT_WAVE} (rc={proc.poll()})"
        if line.startswith("APPLIED") and int(line.split()[1]) >= KILL_AT_WAVE:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            return
    pytest.fail("the syncer did not reach the kill point")


async def _run_when_lease_expires(
    api: KubeClient, app: str, namespace: str, journal: Journal
) -> tuple[OperationState, list[str]]:
    """Retry a sync of the same app until the dead process's lease expires; the result and refusals."""
    desired = by_key([configmap(f"cm-{w}", namespace, wave=w) for w in range(WAVES)])
    plan, live = await make_plan(api, app=app, desired=desired, revision=REVISION_B)
    holders: list[str] = []
    deadline = time.monotonic() + 60
    while True:
        op = operation(api, plan, desired=desired, live=live, journal=journal,
                       options=OperationOptions(wait_between_waves=False))
        try:
            return await op.run_to_completion(), holders
        except LockedError as exc:
            holders.append(exc.holder)
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def test_sigkill_mid_sync_leaves_consistent_state(
    api: KubeClient, cluster: ClusterInfo, namespace: str, tmp_path: Path
) -> None:
    """Killed at wave 4 of 12: state says interrupted there, the journal verifies, a rerun records history once."""
    app = unique("killed")
    crashed_journal = tmp_path / "crashed.jsonl"
    proc = subprocess.Popen(
        [PYTHON, "-c", SYNCER, str(cluster.kubeconfig), cluster.admin_context, app, namespace,
         str(crashed_journal), str(WAVES), str(LEASE_SECONDS)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        await _kill_mid_sync(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    store = AppStateStore(api)
    state = await store.load(app)
    assert state.operation is not None and state.operation.phase is OperationPhase.RUNNING
    assert "was interrupted at wave" in state.interrupted
    assert state.operation.wave is not None and state.operation.wave >= KILL_AT_WAVE - 1
    assert state.history == ()
    crashed_holder = state.operation.holder
    assert crashed_holder.endswith(f":{proc.pid}")
    applied = [w for w in range(WAVES) if await api.get(CONFIGMAPS, f"cm-{w}", namespace) is not None]
    assert applied == list(range(len(applied))) and KILL_AT_WAVE <= len(applied) < WAVES
    assert verify(crashed_journal).ok
    assert [e.result for e in read_entries(crashed_journal)] == ["started"]

    journal = Journal(tmp_path / "restart.jsonl")
    result, holders = await _run_when_lease_expires(api, app, namespace, journal)
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert "interrupted at wave" in result.message
    assert holders == []  # the dead process ran on this host: its lease was released at once, not waited out
    takeovers = [e for e in read_entries(journal.path) if e.action == "lock-takeover"]
    assert [e.result for e in takeovers] == ["succeeded"]
    assert f"released lock of dead process {proc.pid}" in takeovers[0].message
    state = await store.load(app)
    assert state.operation is None
    assert [h.revision for h in state.history] == [REVISION_B]
    assert state.last_operation is not None and state.last_operation.phase is OperationPhase.SUCCEEDED
    assert all(ResourceKey("", "ConfigMap", namespace, f"cm-{w}") in state.inventory_keys for w in range(WAVES))
    assert verify(journal.path).ok
    assert verify(crashed_journal).ok
