"""K14 for real: etcd restored from a snapshot while fleetdeck watches.

A lone kube-apiserver on its own etcd (a private plane), a read-only engine watching it. The test takes a
snapshot of the live etcd (the Maintenance Snapshot RPC, as ``etcdctl snapshot save``), changes the
cluster (a new ConfigMap, more writes), then restores the snapshot with ``etcdutl snapshot restore``
(no ``--bump-revision``: the naive restore), restarts etcd and the apiserver, and checks what the real
watcher makes of it: the kind is relisted at an older resourceVersion, the row carries the StateRewound
warning, and the ConfigMap created after the snapshot is gone from the cache.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.engine import make_engine
from core.journal import Journal
from core.model import ResourceKey
from core.settings import EngineSettings, WatchSettings
from devcluster import ControlPlane, etcd
from tests.engine.conftest import git, write_app

pytestmark = pytest.mark.cluster

NS = "rewind"


def configmap(name: str, value: str = "1") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS},
            "data": {"v": value}}


async def test_a_real_etcd_restore_is_a_state_rewound_warning_on_the_rows(
        tmp_path: Path, private_plane_factory: Callable[[], ControlPlane]) -> None:
    plane = private_plane_factory()
    if not Path(plane.binaries.etcd).with_name("etcdutl").exists():
        pytest.skip("no etcdutl next to etcd (scripts/build-control-plane builds it)")
    info, _ = plane.start_lone_apiserver("fd-rewind")
    rest = info.rest()
    rest.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": NS}})
    rest.request("POST", f"/api/v1/namespaces/{NS}/configmaps", body=configmap("before"))

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write_app(repo, [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "before"}, "data": {"v": "1"}}],
              "the app")
    fleet = tmp_path / "fleetdeck.yaml"
    fleet.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main"},
        "clusters": [{"name": info.name, "kubeconfig": str(info.kubeconfig), "context": info.admin_context}],
        "apps": [{"name": "web", "path": "apps/web", "namespace": NS}],
    }))
    settings = EngineSettings(watch=WatchSettings(backoff_initial=0.2, backoff_max=1.0), publish_interval=0.05)
    engine = make_engine(fleet, read_only=True, settings=settings, journal=Journal(tmp_path / "journal.jsonl"),
                         cache=tmp_path / "cache")
    await engine.start()
    try:
        await engine.wait_ready(timeout=60)
        cache = engine.clusters[info.name].cache
        after = ResourceKey("", "ConfigMap", NS, "after")

        snapshot_file = tmp_path / "etcd.snapshot"
        size = etcd.snapshot(plane.etcd_port, snapshot_file)
        at_snapshot = plane.etcd_revision()
        rest.request("POST", f"/api/v1/namespaces/{NS}/configmaps", body=configmap("after"))
        for i in range(20):  # etcd moves well past the snapshot
            rest.request("PUT", f"/api/v1/namespaces/{NS}/configmaps/before", body=configmap("before", str(i)))
        await wait_for(lambda: cache.get(after) is not None, 30)
        before_restore = plane.etcd_revision()

        restart = await asyncio.to_thread(plane.restore_etcd, snapshot_file)
        restored_at = time.monotonic()
        assert plane.etcd_revision() < before_restore  # the restore went back in time

        def warned() -> bool:
            row = next((a for a in engine.snapshot.apps if a.cluster == info.name), None)
            return row is not None and any(c.type == "StateRewound" for c in row.conditions)

        await wait_for(warned, 40)
        noticed = time.monotonic() - restored_at
        row = next(a for a in engine.snapshot.apps if a.cluster == info.name)
        (condition,) = [c for c in row.conditions if c.type == "StateRewound"]
        assert condition.message.startswith("cluster state rewound: "), condition.message
        assert "older than before (etcd restored from a backup?)" in condition.message, condition.message
        assert cache.rewound is not None
        await wait_for(lambda: cache.get(after) is None, 30)  # created after the snapshot: gone again
        print(f"\nK14: snapshot of {size:,} bytes at revision {at_snapshot}; etcd at {before_restore} restored "
              f"back to it; etcd and apiserver back in {restart:.1f}s; StateRewound on the row "
              f"{noticed:.1f}s later: {condition.message}")
    finally:
        await engine.stop()


async def wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s")
        await asyncio.sleep(0.1)
