"""Row O3 with SIGINT (Ctrl-C), against a real apiserver: a sync process interrupted mid-way stops, journals
the cancellation (the journal still verifies), leaves a state that reads "interrupted at wave N" with only
whole waves applied, and the next sync on this host starts at once and finishes the job."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from core.journal import Journal, read_entries, verify
from core.live.kube import KubeClient
from core.model import OperationPhase
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
from tests.cluster.test_sync_crash import SYNCER

pytestmark = pytest.mark.cluster
WAVES = 12
INTERRUPT_AT_WAVE = 4


async def test_sigint_mid_sync_is_journalled_and_resumable(
    api: KubeClient, cluster: ClusterInfo, namespace: str, tmp_path: Path
) -> None:
    app = unique("interrupted")
    first_journal = tmp_path / "first.jsonl"
    proc = subprocess.Popen(
        [PYTHON, "-c", SYNCER, str(cluster.kubeconfig), cluster.admin_context, app, namespace,
         str(first_journal), str(WAVES), "30"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = await asyncio.to_thread(proc.stdout.readline)
            assert line, f"syncer exited early (rc={proc.poll()}): {proc.stderr.read() if proc.stderr else ''}"
            if line.startswith("APPLIED") and int(line.split()[1]) >= INTERRUPT_AT_WAVE:
                break
        interrupted_at = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        await asyncio.to_thread(proc.wait, 30)
        stopped = time.monotonic() - interrupted_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode != 0 and stopped < 5, (proc.returncode, stopped)

    assert verify(first_journal).ok
    entries = read_entries(first_journal)
    assert [e.result for e in entries] == ["started", "failed"]
    assert "cancelled at wave" in entries[-1].message and "interrupted" in entries[-1].message

    store = AppStateStore(api)
    state = await store.load(app)
    assert state.operation is not None and state.operation.phase is OperationPhase.RUNNING
    assert "interrupted at wave" in state.interrupted
    assert state.history == ()
    applied = [w for w in range(WAVES) if await api.get(CONFIGMAPS, f"cm-{w}", namespace) is not None]
    assert applied == list(range(len(applied))) and INTERRUPT_AT_WAVE <= len(applied) < WAVES

    journal = Journal(tmp_path / "second.jsonl")
    desired = by_key([configmap(f"cm-{w}", namespace, wave=w) for w in range(WAVES)])
    plan, live = await make_plan(api, app=app, desired=desired, revision=REVISION_B)
    began = time.monotonic()
    result = await operation(api, plan, desired=desired, live=live, journal=journal,
                             options=OperationOptions(wait_between_waves=False)).run_to_completion()
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert "interrupted at wave" in result.message
    takeovers = [e for e in read_entries(journal.path) if e.action == "lock-takeover"]
    assert [e.result for e in takeovers] == ["succeeded"]  # the interrupted process is gone: no 30 s wait
    assert f"released lock of dead process {proc.pid}" in takeovers[0].message
    state = await store.load(app)
    assert state.operation is None and [h.revision for h in state.history] == [REVISION_B]
    print(f"\nO3: SIGINT stopped the sync in {stopped:.2f}s; the rerun finished in {time.monotonic() - began:.2f}s")
