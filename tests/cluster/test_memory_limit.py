"""Fault R1 (fleetdeck's own memory cap) with the real command and a real kube-apiserver: under a budget far
below what the process uses (``--memory-limit 16M``, and ``FLEETDECK_MEMORY_LIMIT``), every verb warns
``fleet: MemoryLimit: …`` on stderr, exits as docs/cli.md says for the fleet's state (the warning does not
change the exit code), shows the same rows as without a budget, and a sync lands (its plan re-reads what
was dropped); no traceback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from devcluster import ClusterInfo
from tests.cluster.conftest import fleet_file
from tests.cluster.test_cli import run

pytestmark = pytest.mark.cluster

WARNING = "fleet: MemoryLimit: resident memory"


def rows(stdout: str) -> list[tuple[str, str, str]]:
    return [(a["app"], a["sync"], a["health"]) for a in json.loads(stdout)["apps"]]


def test_a_low_memory_limit_warns_and_changes_nothing_else(tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                                          namespace: str) -> None:
    fleet = str(fleet_file(tmp_path, repo, cluster, namespace))
    free = run(tmp_path, "status", "--fleet", fleet, "-o", "json")
    assert free.returncode == 1, free.stdout + free.stderr  # never synced: OutOfSync
    assert "MemoryLimit" not in free.stderr

    tight = run(tmp_path, "--memory-limit", "16M", "status", "--fleet", fleet, "-o", "json")
    assert tight.returncode == 1, tight.stdout + tight.stderr
    assert "Traceback" not in tight.stderr
    assert rows(tight.stdout) == rows(free.stdout)
    conditions = json.loads(tight.stdout)["conditions"]  # JSON carries it; the table prints it on stderr
    assert [(c["type"], c["severity"]) for c in conditions] == [("MemoryLimit", "warning")], conditions
    assert "over fleetdeck's 16 MiB budget (--memory-limit" in conditions[0]["message"], conditions

    table = run(tmp_path, "status", "--fleet", fleet, env={"FLEETDECK_MEMORY_LIMIT": "16M"})
    assert table.returncode == 1 and WARNING in table.stderr and "Traceback" not in table.stderr, table.stderr

    synced = run(tmp_path, "sync", namespace, "--yes", "--fleet", fleet, "--memory-limit", "16M")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "Traceback" not in synced.stderr
    after = run(tmp_path, "status", "--fleet", fleet, "--memory-limit", "16M", "-o", "json")
    assert after.returncode == 0, after.stdout + after.stderr  # in sync and healthy: the warning is not a failure
    assert '"type": "MemoryLimit"' in after.stdout
    assert rows(after.stdout) == rows(run(tmp_path, "status", "--fleet", fleet, "-o", "json").stdout)

    bad = run(tmp_path, "status", "--fleet", fleet, "--memory-limit", "lots")
    assert bad.returncode == 2 and "is not a size" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_the_console_shows_the_memory_warning(tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                              namespace: str) -> None:
    """The console (served to a browser tab, ``tests/cluster/test_serve.py``) says it on its repo line."""
    from tests.cluster.test_serve import WebConsole, served, with_tab

    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    with served(tmp_path, "--fleet", str(fleet), "--memory-limit", "16M") as (port, _):
        async def look(tab: WebConsole) -> None:
            await tab.wait_for(lambda s: "MemoryLimit: resident memory" in s and namespace[:20] in s,
                               "the memory warning and the app")

        asyncio.run(with_tab(port, look))
