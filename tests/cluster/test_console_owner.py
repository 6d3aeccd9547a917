"""The real console in tmux, 80x24, over a fleet where an Argo CD Application owns one app and fleetdeck the
other: each row shows its owner, and a sync from the console of the argocd row, with an Argo CD sync option
chosen in the dialog, previews and writes exactly the Application patch.

Argo CD's controller is not running (it cannot be built here): the test writes the Application's ``status``
as Argo CD's API documents it (``tests.cluster.test_argocd_owner.create_application``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from devcluster import ClusterInfo
from tests.cluster.test_argocd_owner import apps_path, argocd_crd, create_application
from tests.cluster.test_console_e2e import Console

pytestmark = [pytest.mark.cluster, pytest.mark.tmux,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]

__all__ = ["argocd_crd"]


def row_of(screen: str, app: str) -> str:
    return next((line for line in screen.splitlines() if app[:8] in line and "fd-" in line), "")


def test_console_shows_the_owner_of_every_row_and_syncs_through_argocd(
        argocd_crd: None, tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    """At 80 columns the OWNER column says `argo` for the Application's app and `fd` for fleetdeck's; `s` on
    the argocd row shows the patch in the confirmation, `o` adds an Argo CD sync option (a misspelt one refused), `c` asks
    for Argo CD's own dry run, and `y` writes exactly the re-planned patch to the Application."""
    create_application(cluster, namespace, repo)
    mine = f"x{namespace[:7]}-fd"  # another app, no Application: fleetdeck's (its name sorts after)
    fleet = tmp_path / "fleetdeck.yaml"
    fleet.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": cluster.name, "kubeconfig": str(cluster.kubeconfig), "context": cluster.admin_context}],
        "apps": [{"name": namespace, "path": "apps/web", "namespace": namespace},
                 {"name": mine, "path": "apps/web", "namespace": mine}],
    }))
    console = Console(tmp_path, ["console", "--fleet", str(fleet)], size=(80, 24))
    try:
        screen = console.wait_for(lambda s: " argo " in row_of(s, namespace) and " fd " in row_of(s, mine),
                                  "both rows with their owner")
        header = next(line for line in screen.splitlines() if "APP" in line and "CLUSTER" in line)
        assert "OWNER" in header
        console.keys("s")
        screen = console.wait_for(lambda s: "owner argocd: fleetdeck writes exactly" in s and "y Run" in s,
                                  "the sync confirmation")
        assert "write Application" in screen and "set operation.sync{revision:" in screen
        assert "o sync options: none" in screen
        console.keys("o")
        console.wait_for(lambda s: "Argo CD sync options" in s, "the sync options dialog")
        console.keys("createNamespace=true", "Enter")  # misspelt: refused with Argo CD's spelling
        console.wait_for(lambda s: "did you mean CreateNamespace?" in s, "the spelling error")
        console.keys("C-u", "CreateNamespace=true", "Enter")
        console.wait_for(lambda s: "syncOptions: [CreateNamespace=true]" in s and "Press y to run 1 of 1" in s,
                         "the re-planned patch with the option")
        console.keys("c")  # Argo CD's own dry run: written to the Application, nothing applied by Argo CD
        console.wait_for(lambda s: "c its own dry run: on" in s and "Press y to run 1 of 1" in s,
                         "the re-planned patch with Argo CD's dry run")
        console.keys("y")

        def written(_: str) -> bool:
            return bool(cluster.rest().get(apps_path(namespace, namespace)).get("operation"))

        console.wait_for(written, "the operation written to the Application")
    finally:
        console.close()
    operation = cluster.rest().get(apps_path(namespace, namespace))["operation"]
    assert operation["sync"]["revision"] and json.dumps(operation).count("initiatedBy") == 1
    assert operation["sync"]["syncOptions"] == ["CreateNamespace=true"]  # exactly what the dialog showed
    assert operation["sync"]["dryRun"] is True
