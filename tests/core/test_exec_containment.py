"""Row B11 in a running fleet: a kubeconfig exec plugin that hangs, exits 1 or prints garbage fails its own
cluster with a clear message (the plugin's stderr shown with the token redacted, its stdout never echoed),
in bounded time, while a healthy cluster watched in the same event loop connects and keeps working."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from pathlib import Path

import pytest

from core.live.cache import ClusterCache
from core.live.cluster import ClusterWatcher
from core.live.kube import KubeClient
from core.live.kubeconfig import ContextConfig, Credentials, ExecConfig
from core.model import ConnectionState
from core.settings import WatchSettings
from core.simulated.simulated_cluster import SimulatedCluster, SimulationTiming

SECRET = "canary-exec-token-3d9f"
PLUGIN = textwrap.dedent('''
    import os, sys, time
    mode = os.environ["MODE"]
    if mode == "hang":
        time.sleep(60)
    elif mode == "fail":
        sys.stderr.write("error: token " + os.environ["SECRET"] + " expired\\n")
        sys.exit(1)
    else:
        print("token: " + os.environ["SECRET"])
''')
CM = ("", "ConfigMap")


@pytest.mark.parametrize(("mode", "words"), [
    ("hang", "did not finish within 0.5s"),
    ("fail", "exited with status 1"),
    ("garbage", "not JSON"),
])
async def test_broken_exec_plugin_fails_only_its_cluster(tmp_path: Path, mode: str, words: str) -> None:
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN)
    context = ContextConfig(name="broken", server="https://127.0.0.1:1", exec=ExecConfig(
        command=sys.executable, args=(str(script),), env=(("MODE", mode), ("SECRET", SECRET))))
    settings = WatchSettings(heartbeat_interval=0.1, backoff_initial=0.05, backoff_max=0.5)
    broken_api = KubeClient(cluster="broken", context=context, settings=settings,
                            credentials=Credentials(context, exec_timeout=0.5))
    broken = ClusterCache("broken", unreachable_after=30.0)
    sim = SimulatedCluster("healthy", timing=SimulationTiming.instant())
    healthy = ClusterCache("healthy", unreachable_after=30.0)
    watchers = [ClusterWatcher(broken_api, broken, kinds=[CM], settings=settings, tick=0.05),
                ClusterWatcher(sim, healthy, kinds=[CM], settings=settings, tick=0.05)]
    began = time.monotonic()
    for watcher in watchers:
        await watcher.start()
    try:
        await watchers[1].wait_until(lambda: healthy.state is ConnectionState.CONNECTED, timeout=5)
        connected = time.monotonic() - began
        await watchers[0].wait_until(lambda: words in broken.message, timeout=10)
        reported = time.monotonic() - began
        assert broken.state is not ConnectionState.CONNECTED and broken.stale
        assert SECRET not in broken.message
        if mode == "fail":
            assert "<redacted>" in broken.message and "expired" in broken.message
        sim.seed_apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later", "namespace": "default"}})
        async with asyncio.timeout(5):
            while not any(k.name == "later" for k in healthy.objects("", "ConfigMap")):
                await asyncio.sleep(0.02)
        assert healthy.state is ConnectionState.CONNECTED
        print(f"\nB11 {mode}: healthy cluster connected in {connected:.2f}s, broken one reported in {reported:.2f}s")
    finally:
        for watcher in watchers:
            await watcher.stop()
        await broken_api.close()
        await sim.close()
