"""The headless command line against a real kube-apiserver: the verbs a script or CI job would use.

Each command runs as the installed ``fleetdeck`` executable in a subprocess, with its own journal and
cache, and is judged by its exit code and output, as a pipeline would judge it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from devcluster import ClusterInfo
from tests.cluster.conftest import app_objects, commit, fleet_file

pytestmark = pytest.mark.cluster

FLEETDECK = str(Path(sys.executable).with_name("fleetdeck"))


def run(tmp: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None,
        wrapper: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """``fleetdeck ARGS`` with a private journal and cache (and ``env`` added to the environment), run
    through ``wrapper`` when given (``prlimit --nofile=…``)."""
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("FLEETDECK_")},
            "FLEETDECK_JOURNAL": str(tmp / "journal.jsonl"), "XDG_CACHE_HOME": str(tmp / "xdg"),
            "XDG_STATE_HOME": str(tmp / "state"), **(env or {})}
    return subprocess.run([*wrapper, FLEETDECK, *args], capture_output=True, text=True, env=full, timeout=180,
                          input=stdin)


@pytest.fixture
def fleet(tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> Path:
    """The fleet file of the test's app."""
    return fleet_file(tmp_path, repo, cluster, namespace)


def status(tmp: Path, fleet: Path, *, code: int) -> dict[str, Any]:
    """``status -o json``'s first row; the exit code must be ``code`` (0 in sync and healthy, 1 drift)."""
    result = run(tmp, "status", "--fleet", str(fleet), "-o", "json")
    assert result.returncode == code, result.stdout + result.stderr
    apps: list[dict[str, Any]] = json.loads(result.stdout)["apps"]
    return apps[0]


def test_sync_diff_pause_history_and_audit(tmp_path: Path, fleet: Path, repo: Path, cluster: ClusterInfo,
                                           namespace: str) -> None:
    """sync --yes applies the plan (exit 0); diff exits 0 in sync and 1 with drift; pause/resume show in
    status; history lists both revisions; the journal verifies; the report names the app."""
    app = namespace
    before = status(tmp_path, fleet, code=1)
    assert before["sync"] == "OutOfSync" and len(before["drifted"]) == 5

    dry = run(tmp_path, "sync", app, "--fleet", str(fleet), "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert status(tmp_path, fleet, code=1)["sync"] == "OutOfSync"  # a dry run writes nothing

    synced = run(tmp_path, "sync", app, "--fleet", str(fleet), "--yes")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "Succeeded" in synced.stdout
    in_sync = run(tmp_path, "diff", app, "--fleet", str(fleet))
    assert in_sync.returncode == 0, in_sync.stdout + in_sync.stderr
    assert status(tmp_path, fleet, code=0)["sync"] == "Synced"

    commit(repo, app_objects(namespace, replicas=3), "web: 3 replicas")
    drift = run(tmp_path, "diff", app, "--fleet", str(fleet))
    assert drift.returncode == 1, drift.stdout + drift.stderr
    assert "-  replicas: 2" in drift.stdout and "+  replicas: 3" in drift.stdout

    assert run(tmp_path, "pause", app, "--fleet", str(fleet), "--reason", "freeze", "--for", "1h").returncode == 0
    paused = status(tmp_path, fleet, code=1)  # Git moved to 3 replicas: drift
    assert paused["paused"] is True
    assert paused["approximate"] is False  # writable credentials: the server's dry run decided
    assert run(tmp_path, "resume", app, "--fleet", str(fleet)).returncode == 0
    assert status(tmp_path, fleet, code=1)["paused"] is False

    history = run(tmp_path, "history", app, "--fleet", str(fleet), "-o", "json")
    assert history.returncode == 0, history.stderr
    subjects = [r["subject"] for r in json.loads(history.stdout)["revisions"]]
    assert subjects[:2] == ["web: 3 replicas", "web 1.0"]

    journal = run(tmp_path, "audit", "journal")
    assert journal.returncode == 0 and "hash chain intact" in journal.stdout + journal.stderr
    report = run(tmp_path, "audit", "report", "--fleet", str(fleet))
    assert report.returncode == 0 and app[:20] in report.stdout


def test_read_only_refuses_with_exit_3(tmp_path: Path, fleet: Path, cluster: ClusterInfo, namespace: str) -> None:
    """In read-only mode sync and pause are refused with exit code 3 and a message, and nothing changes."""
    sync = run(tmp_path, "sync", namespace, "--fleet", str(fleet), "--yes", "--read-only")
    assert sync.returncode == 3 and "read-only" in sync.stderr  # refused before any plan
    pause = run(tmp_path, "pause", namespace, "--fleet", str(fleet), "--read-only")
    assert pause.returncode == 3 and "read-only" in pause.stderr
    assert status(tmp_path, fleet, code=1)["sync"] == "OutOfSync"


def test_bad_fleet_file_names_line_and_field(tmp_path: Path) -> None:
    """A malformed fleet file is exit 2 with file:line and the field; no traceback."""
    bad = tmp_path / "fleetdeck.yaml"
    bad.write_text("repo:\n  url: .\nclusters:\n  - name: a\n    contxt: a\napps: []\n")
    result = run(tmp_path, "status", "--fleet", str(bad))
    assert result.returncode == 2
    assert "fleetdeck.yaml:5" in result.stderr and "contxt" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_cluster_is_reported_not_crashed(tmp_path: Path, repo: Path, namespace: str) -> None:
    """A cluster that refuses connections shows Unreachable with the reason; diff exits 2."""
    kubeconfig = tmp_path / "dead.kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": "https://127.0.0.1:9", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "u"}}],
    }))
    fleet = tmp_path / "dead.yaml"
    fleet.write_text(json.dumps({"repo": {"url": str(repo)}, "clusters": [{"name": "dead", "kubeconfig": str(kubeconfig)}],
                                 "apps": [{"name": namespace, "path": "apps/web", "namespace": namespace}]}))
    result = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json")
    assert result.returncode == 2, result.stderr  # the cluster could not be read
    data = json.loads(result.stdout)
    assert data["clusters"][0]["connection"] == "Unreachable"
    assert data["apps"][0]["sync"] == "Unknown"
    assert run(tmp_path, "diff", namespace, "--fleet", str(fleet)).returncode == 2


def test_failed_sync_offers_the_rollback_that_undoes_it(tmp_path: Path, fleet: Path, repo: Path,
                                                       cluster: ClusterInfo, namespace: str) -> None:
    """A sync that fails in its second wave (a custom resource of a CRD created in its first wave, which the
    API server rejects) after changing the Deployment exits 1 and names the rollback that puts back the
    revision that ran before; that very command runs (exit 0): the app is pinned to that revision and runs
    it, and the only difference left is the CRD the failed sync created (in the inventory, awaiting a
    prune) — the Deployment is back (fault O1: offer rollback)."""
    import subprocess as sp

    from tests.cluster.sync_support import crd, custom, unique

    first = run(tmp_path, "sync", namespace, "--fleet", str(fleet), "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    good = sp.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                  check=True).stdout.strip()
    group = f"{unique('g')}.example.com"
    commit(repo, [*app_objects(namespace, replicas=3), crd(group),
                  custom(group, "too-big", namespace, wave=1, size=99)], "web: 3 replicas and a widget too big")
    failed = run(tmp_path, "sync", namespace, "--fleet", str(fleet), "--yes")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "stopped at wave 1" in failed.stdout
    offer = f"`fleetdeck rollback {namespace} {good[:12]} --cluster {cluster.name}`"
    assert f"hint: to put back what ran before, roll back to {good[:12]}: {offer}" in failed.stderr

    words = offer.strip("`").split()[1:]
    undone = run(tmp_path, *words, "--fleet", str(fleet), "--yes")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    after = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json")
    row = json.loads(after.stdout)["apps"][0]
    assert (row["pinned"], row["running_revision"]) == (good, good), row
    assert row["drifted"] == [f"CustomResourceDefinition.apiextensions.k8s.io/widgets.{group}"], row
