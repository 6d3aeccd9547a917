"""One fleet, three owners, one screen: a cluster under Flux (the REAL source- and kustomize-controller on
``flux_plane``), and a cluster where an Argo CD ``Application`` owns one app and fleetdeck another. The real
console shows every row with its owner; the real command line pauses, resumes and syncs each app through its
owner, and each effect is read back where it lands (the Kustomization, the Application, fleetdeck's own state
and objects) and in the journal.

Argo CD's controller cannot be built here (docs/owners.md): the test writes the Application's ``status`` as
Argo CD's API documents it (``tests.cluster.test_argocd_owner.play_controller``). Rollback through each owner
is tested per owner (``test_argocd_owner.py``, ``test_flux_owner.py``, ``test_cli.py``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import ClusterInfo
from tests.cluster.test_argocd_owner import AUTOMATED, application, apps_path, argocd_crd, play_controller
from tests.cluster.test_cli import run
from tests.cluster.test_console_e2e import Console
from tests.cluster.test_flux_controllers import wait_for
from tests.cluster.test_flux_owner import FluxApp, app

pytestmark = [pytest.mark.cluster, pytest.mark.tmux,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]

__all__ = ["app", "argocd_crd"]


def mixed_fleet(flux: FluxApp, cluster: ClusterInfo, argo_app: str, fd_app: str) -> Path:
    """The Flux cluster (its Kustomization imported from the repo) and ``cluster`` with two declared apps."""
    path = flux.tmp / "mixed.yaml"
    flux_cluster = flux.flux.cluster
    path.write_text(yaml.safe_dump({
        "repo": {"url": str(flux.git.bare), "branch": "main", "interval": 3600},
        "clusters": [
            {"name": flux_cluster.name, "kubeconfig": str(flux_cluster.kubeconfig),
             "context": flux_cluster.admin_context},
            {"name": cluster.name, "kubeconfig": str(cluster.kubeconfig), "context": cluster.admin_context}],
        "import": {"flux": True},
        "apps": [{"name": argo_app, "path": "apps/web", "namespace": argo_app, "clusters": [cluster.name]},
                 {"name": fd_app, "path": "apps/web", "namespace": fd_app, "clusters": [cluster.name]}],
    }))
    return path


def rows(tmp: Path, fleet: Path) -> dict[str, dict[str, Any]]:
    result = run(tmp, "status", "--fleet", str(fleet), "-o", "json")
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return {r["app"]: r for r in json.loads(result.stdout)["apps"]}


def line_of(screen: str, app: str) -> str:
    return next((line for line in screen.splitlines() if app[:10] in line and "fd-" in line), "")


def test_one_screen_shows_every_owner_and_each_acts_through_its_owner(
        app: FluxApp, argocd_crd: None, cluster: ClusterInfo, namespace: str) -> None:
    argo_app, fd_app = namespace, f"x{namespace[:7]}-fd"
    cluster.rest().request("POST", apps_path(argo_app), body=application(argo_app, app.git.bare))
    play_controller(cluster, argo_app, app.git.bare, operation="Succeeded")
    fleet = mixed_fleet(app, cluster, argo_app, fd_app)

    # every row with its owner, from status …
    found = wait_for("three rows with their owners",
                     lambda: r if {app.ns, argo_app, fd_app} <= set(r := rows(app.tmp, fleet)) else None)
    assert (found[app.ns]["owner"], found[argo_app]["owner"], found[fd_app]["owner"]) == \
           ("flux", "argocd", "fleetdeck"), found
    assert found[app.ns]["cluster"] == app.flux.cluster.name and found[argo_app]["cluster"] == cluster.name

    # … and on one screen of the real console
    console = Console(app.tmp, ["console", "--fleet", str(fleet)])
    try:
        screen = console.wait_for(lambda s: " flux " in line_of(s, app.ns) and " argo " in line_of(s, argo_app)
                                  and " fd " in line_of(s, fd_app), "every row with its owner")
        assert "OWNER" in next(line for line in screen.splitlines() if "APP" in line and "CLUSTER" in line)
    finally:
        console.close()

    # pause through each owner: Flux suspends, Argo CD's auto-sync is off, fleetdeck's own state says paused
    for name in (app.ns, argo_app, fd_app):
        paused = run(app.tmp, "pause", name, "--fleet", str(fleet), "--reason", "mixed fleet freeze")
        assert paused.returncode == 0, paused.stdout + paused.stderr
    assert app.ks()["spec"]["suspend"] is True
    argo = cluster.rest().get(apps_path(argo_app, argo_app))
    assert "automated" not in argo["spec"].get("syncPolicy", {}), argo["spec"]
    now = rows(app.tmp, fleet)
    assert all(now[n]["paused"] for n in (app.ns, argo_app, fd_app)), now
    assert app.ks()["metadata"]["annotations"]["fleetdeck.io/pause-reason"] == "mixed fleet freeze"
    assert argo["metadata"]["annotations"]["fleetdeck.io/pause-reason"] == "mixed fleet freeze"

    # resume through each owner restores exactly what was there
    for name in (app.ns, argo_app, fd_app):
        resumed = run(app.tmp, "resume", name, "--fleet", str(fleet))
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert app.ks()["spec"]["suspend"] is False
    argo = cluster.rest().get(apps_path(argo_app, argo_app))
    assert argo["spec"]["syncPolicy"]["automated"] == AUTOMATED
    now = rows(app.tmp, fleet)
    assert not any(now[n]["paused"] for n in (app.ns, argo_app, fd_app)), now

    # sync through each owner: Flux applies a new commit, Argo CD gets its operation, fleetdeck applies itself
    head = app.commit("teal", "mixed fleet change")
    for name in (app.ns, argo_app, fd_app):
        synced = run(app.tmp, "sync", name, "--fleet", str(fleet), "--yes")
        assert synced.returncode == 0, synced.stdout + synced.stderr
    wait_for("Flux applied the new commit", lambda: app.colour() == "teal", timeout=90)
    assert app.applied().endswith(head)
    operation = cluster.rest().get(apps_path(argo_app, argo_app)).get("operation") or {}
    assert operation.get("sync", {}).get("revision") == head, operation
    mine = cluster.rest().get(f"/api/v1/namespaces/{fd_app}/configmaps/settings")
    assert mine["data"]["colour"] == "teal"

    journal = [json.loads(line) for line in (app.tmp / "journal.jsonl").read_text().splitlines() if line.strip()]
    done = {(e["app"], e["action"]) for e in journal if e["result"] == "succeeded"}
    for name in (app.ns, argo_app, fd_app):
        assert {(name, "pause"), (name, "resume"), (name, "sync")} <= done, (name, done)
    cluster.rest().delete(f"/api/v1/namespaces/{fd_app}")
