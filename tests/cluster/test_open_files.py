"""A fleet larger than the open-file limit allows (docs/reliability.md, K17), with the real command and a real
kube-apiserver: 120 fleet clusters, all contexts of one real API server, so every cluster opens its own
connections as separate clusters would.

* Hard limit too low (``prlimit --nofile=128:128``): an ``OpenFileLimit`` warning says how many files the
  fleet needs and what to raise, and the clusters' connections are queued under a connection budget
  (``core.live.connection_budget``: at most limit − 64 open at once, no keep-alive), so every cluster is
  still read, slower, instead of failing with "Too many open files"; no traceback, never "not a Git
  repository" (what GitPython made of an exhausted process).
* Soft limit low, hard limit high (``--nofile=128:4096``, the usual distribution default is 1024 soft): the
  soft limit is raised at start, like the Go runtime does, and every cluster is read.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml

from devcluster import ClusterInfo
from tests.cluster.conftest import fleet_file
from tests.cluster.test_cli import run

pytestmark = pytest.mark.cluster

CLUSTERS = 120


def many_clusters(tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> Path:
    """The test's fleet with its one cluster repeated ``CLUSTERS`` times under other names."""
    data = yaml.safe_load(fleet_file(tmp_path, repo, cluster, namespace).read_text())
    one = data["clusters"][0]
    data["clusters"] = [{**one, "name": f"c{i:03d}"} for i in range(CLUSTERS)]
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def limited(tmp_path: Path, fleet: Path, soft: int, hard: int, *verb: str) -> tuple[int, str, str]:
    """``fleetdeck --fleet FLEET VERB`` under ``prlimit --nofile=SOFT:HARD``: exit code, stdout, stderr."""
    prlimit = shutil.which("prlimit")
    assert prlimit, "prlimit (util-linux) is needed to run fleetdeck under an open-file limit"
    done = run(tmp_path, "--fleet", str(fleet), *(verb or ("status",)),
               wrapper=(prlimit, f"--nofile={soft}:{hard}"))
    return done.returncode, done.stdout, done.stderr


def test_a_hard_limit_too_low_queues_connections_and_every_cluster_is_read(
        tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    """The hard limit is 128 files for 120 clusters: connections queue under the budget and every cluster
    is read (this test used to expect the clusters failing with "Too many open files", exit 2)."""
    fleet = many_clusters(tmp_path, repo, cluster, namespace)
    began = time.monotonic()
    code, out, err = limited(tmp_path, fleet, 128, 128)
    took = time.monotonic() - began
    assert "Traceback" not in err
    assert "fleet: OpenFileLimit: open-file limit 128 is below the about" in err, err
    assert "connections are queued, at most 64 open at once" in err and "ulimit -Hn" in err, err
    assert "not a Git repository" not in out + err
    assert "too many open files" not in (out + err).lower(), out + err
    assert code in (0, 1), out + err  # 1: the app was never synced, so it is OutOfSync
    rows = [line for line in out.splitlines()[1:] if line.strip()]
    assert len(rows) == CLUSTERS and all(" Unknown " not in row for row in rows), out
    print(f"\nK17: {CLUSTERS} clusters read under --nofile=128:128 in {took:.1f}s")
    code, out, err = limited(tmp_path, fleet, 128, 128, "diff", namespace, "--cluster", "c007")
    assert "Traceback" not in err and "too many open files" not in (out + err).lower(), out + err
    assert code == 1, out + err  # the app's drift on that cluster, read through the budget
    assert "fleet: OpenFileLimit: open-file limit 128 is below the about" in err, err


def test_a_low_soft_limit_is_raised_and_every_cluster_is_read(tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                                              namespace: str) -> None:
    code, out, err = limited(tmp_path, many_clusters(tmp_path, repo, cluster, namespace), 128, 4096)
    assert code in (0, 1), out + err  # 1: the app was never synced, so it is OutOfSync
    assert "OpenFileLimit" not in err and "Unreachable" not in err, err
    rows = [line for line in out.splitlines()[1:] if line.strip()]
    assert len(rows) == CLUSTERS and all(" Unknown " not in row for row in rows), out
