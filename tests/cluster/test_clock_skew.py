"""A bastion whose clock is wrong still agrees with the others on who holds an app (docs/reliability.md, K15).

The real ``fleetdeck`` command runs with its clock shifted by libfaketime (``LD_PRELOAD``: every
``clock_gettime`` of that process and its children is moved, the API server's is not) against a real
kube-apiserver, while this test, on the true clock, holds the app's operation lease as another operator.
Judged on the local clock, a bastion ten minutes ahead would see that lease as expired long ago and take it
over in the middle of the other operator's sync; judged on the API server's clock it is live.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from core.journal import OperatorIdentity
from core.live.kube import KubeClient
from core.sync.lease import LEASES, Claim, LeaseClient, operation_lease_name, parse_micro_time, this_process
from core.sync.state import NAMESPACE
from devcluster import ClusterInfo
from tests.cluster.conftest import fleet_file
from tests.cluster.test_cli import run

pytestmark = pytest.mark.cluster

FAKETIME_LIBRARY = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
AHEAD = 600
"""The skewed bastion's clock is ten minutes ahead: twenty lease durations."""


def skewed(seconds: int) -> dict[str, str]:
    """Environment that moves the command's clock by ``seconds`` (libfaketime, Debian package ``libfaketime``)."""
    if not FAKETIME_LIBRARY.exists():
        if os.environ.get("FLEETDECK_REQUIRE_CLUSTER") == "1":
            pytest.fail(f"{FAKETIME_LIBRARY} is missing: install the Debian package libfaketime (.ci/run does)")
        pytest.skip("libfaketime is not installed (Debian package libfaketime): cannot skew a process's clock")
    return {"LD_PRELOAD": str(FAKETIME_LIBRARY), "FAKETIME": f"{seconds:+d}", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


async def test_a_bastion_ahead_in_time_does_not_take_a_live_lease(tmp_path: Path, repo: Path,
                                                                  cluster: ClusterInfo, namespace: str,
                                                                  api: KubeClient) -> None:
    """Alice holds the app (30 s lease, renewed just now); Bob's fleetdeck, ten minutes ahead, is refused
    with Alice named, and the lease is still Alice's afterwards."""
    app = namespace
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    env = skewed(AHEAD)
    probe = await asyncio.to_thread(run, tmp_path, "--version", env=env)
    assert probe.returncode == 0, probe.stderr
    first = await asyncio.to_thread(run, tmp_path, "sync", app, "--fleet", str(fleet), "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    alice = OperatorIdentity("alice", "bastion-a", 4242)
    mark = this_process()
    name = operation_lease_name(app)
    held = await LeaseClient(api).acquire(Claim(name, f"alice@bastion-a:{mark.pid}", "op-alice", alice.by,
                                                "sync op-alice", 30.0, mark))
    result = await asyncio.to_thread(run, tmp_path, "sync", app, "--fleet", str(fleet), "--yes", env=env)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "alice@bastion-a" in result.stderr, result.stderr
    after = await LeaseClient(api).read(name)
    assert after is not None and after.token == "op-alice" and after.resource_version == held.resource_version


async def test_a_skewed_bastion_writes_lease_times_on_the_servers_clock(tmp_path: Path, repo: Path,
                                                                       cluster: ClusterInfo, namespace: str,
                                                                       api: KubeClient) -> None:
    """A sync from a bastion ten minutes ahead leaves ``renewTime`` within seconds of the true time, so the
    next fleetdeck (on any clock) judges the lease on the same clock."""
    app = namespace
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    result = await asyncio.to_thread(run, tmp_path, "sync", app, "--fleet", str(fleet), "--yes", env=skewed(AHEAD))
    assert result.returncode == 0, result.stdout + result.stderr
    lease = await api.get(LEASES, operation_lease_name(app), NAMESPACE)
    assert lease is not None
    renewed = parse_micro_time(str(lease["spec"]["renewTime"]))
    assert renewed is not None and abs(renewed - time.time()) < 5, (lease["spec"], time.time())
