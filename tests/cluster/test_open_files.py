"""A fleet larger than the open-file limit allows (docs/reliability.md, K17), with the real command and a real
kube-apiserver: 120 fleet clusters, all contexts of one real API server, so every cluster opens its own
connections as separate clusters would.

* Hard limit too low (``prlimit --nofile=128:128``): an ``OpenFileLimit`` warning says how many files the
  fleet needs and what to raise, the rows say "too many open files" (never "not a Git repository", which is
  what GitPython made of it), exit 2, no traceback.
* Soft limit low, hard limit high (``--nofile=128:4096``, the usual distribution default is 1024 soft): the
  soft limit is raised at start, like the Go runtime does, and every cluster is read.
"""

from __future__ import annotations

import shutil
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


def test_a_hard_limit_too_low_is_said_plainly(tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                              namespace: str) -> None:
    code, out, err = limited(tmp_path, many_clusters(tmp_path, repo, cluster, namespace), 128, 128)
    assert code == 2, out + err
    assert "Traceback" not in err
    assert "fleet: OpenFileLimit: open-file limit 128 is below the about" in err, err
    assert "ulimit -Hn" in err
    assert "not a Git repository" not in out + err
    assert "Too many open files" in err or "too many open files" in out, out + err
    code, out, err = limited(tmp_path, many_clusters(tmp_path, repo, cluster, namespace), 128, 128,
                             "diff", namespace)
    assert code == 2 and "Traceback" not in err, out + err  # diff says why it exits 2, as status does
    assert "fleet: OpenFileLimit: open-file limit 128 is below the about" in err, err


def test_a_low_soft_limit_is_raised_and_every_cluster_is_read(tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                                              namespace: str) -> None:
    code, out, err = limited(tmp_path, many_clusters(tmp_path, repo, cluster, namespace), 128, 4096)
    assert code in (0, 1), out + err  # 1: the app was never synced, so it is OutOfSync
    assert "OpenFileLimit" not in err and "Unreachable" not in err, err
    rows = [line for line in out.splitlines()[1:] if line.strip()]
    assert len(rows) == CLUSTERS and all(" Unknown " not in row for row in rows), out
