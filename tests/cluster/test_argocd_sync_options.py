"""``fleetdeck sync --sync-option KEY=VALUE`` and ``--controller-dry-run`` against a real kube-apiserver holding
Argo CD's real ``Application`` CRD (``/work/shared/corpus/crds/application-crd.yaml``).

Argo CD's controller cannot be built here (its ``gitops-engine`` module does not build on this proxy): as in
``test_argocd_owner.py`` the test plays the controller's part (writes ``status``, clears ``operation``). What
is checked is fleetdeck's side, all real: the ``fleetdeck`` command in a subprocess, the apiserver's audit log
(the admin's writes), the Application before and after (after = before ⊕ the patch the plan printed) and the
journal. An app fleetdeck owns (the fleet file's override) refuses both options with a blocked plan (exit 2,
nothing sent); the Flux side of the refusal is in ``test_flux_helm_rollback.py`` (real helm-controller).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from devcluster import ClusterInfo
from tests.cluster.test_argocd_owner import (
    admin_writes,
    apps_path,
    argocd_crd,
    comparable,
    create_application,
    journal,
    merged,
    now,
    owned_fleet,
    play_controller,
    without_lease,
)
from tests.cluster.test_cli import run

pytestmark = pytest.mark.cluster
__all__ = ["argocd_crd"]  # the module fixture, used by name


def printed_patch(stdout: str) -> dict[str, Any]:
    """The one patch body the plan printed (the line under ``write CLUSTER: …``)."""
    lines = stdout.splitlines()
    bodies = [lines[i + 1].strip() for i, line in enumerate(lines) if line.strip().startswith("write ")]
    assert len(bodies) == 1, stdout
    patch: dict[str, Any] = json.loads(bodies[0])
    return patch


def test_sync_options_and_argocds_own_dry_run_reach_the_application(
        argocd_crd: None, tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    """``--sync-option`` (repeatable) lands in ``operation.sync.syncOptions`` and ``--controller-dry-run`` in
    ``operation.sync.dryRun``, each written as exactly the patch the plan printed; ``--dry-run`` with options
    sends that patch through the API server's dry run only. Options Argo CD does not document are a usage
    error before any engine starts (exit 2, no request)."""
    app = namespace
    create_application(cluster, namespace, repo)
    fleet = owned_fleet(tmp_path, repo, cluster, namespace)
    rest = cluster.rest()
    options = ["CreateNamespace=true", "ServerSideApply=true", "Replace=true"]
    flags = [arg for o in options for arg in ("--sync-option", o)]

    # not Argo CD's documented spelling, a resource-only option, not KEY=VALUE: usage errors, nothing sent
    since = now()
    for bad, expected in (("createNamespace=true", "did you mean CreateNamespace"),
                          ("CreateNamespace=yes", "CreateNamespace=true"),
                          ("Force=true", "resource's argocd.argoproj.io/sync-options"),
                          ("ServerSideApply", "KEY=VALUE")):
        result = run(tmp_path, "sync", app, "--sync-option", bad, "--yes", "--fleet", str(fleet))
        assert result.returncode == 2, (bad, result.stdout + result.stderr)
        assert expected in result.stderr, (bad, result.stderr)
    time.sleep(1.0)
    assert admin_writes(cluster, since) == []

    def act(*args: str) -> tuple[str, list[tuple[str, str]], dict[str, Any], dict[str, Any]]:
        before = rest.get(apps_path(namespace, app))
        began = now()
        result = run(tmp_path, *args, "--fleet", str(fleet))
        assert result.returncode == 0, result.stdout + result.stderr
        time.sleep(1.0)  # the audit event of the last request may trail its response
        return result.stdout, admin_writes(cluster, began), before, rest.get(apps_path(namespace, app))

    out, writes, before, after = act("sync", app, *flags, "--dry-run")
    assert printed_patch(out)["operation"]["sync"]["syncOptions"] == options
    assert writes == [("patch dry-run", f"applications/{app}")]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    out, writes, before, after = act("sync", app, *flags, "--yes")
    planned = printed_patch(out)
    assert planned["operation"]["sync"]["syncOptions"] == options and "dryRun" not in planned["operation"]["sync"]
    assert "syncOptions: [CreateNamespace=true, ServerSideApply=true, Replace=true]" in out  # the summary line
    assert without_lease(writes) == [("patch", f"applications/{app}")]
    assert comparable(after) == comparable(merged(before, planned))
    assert after["operation"]["sync"]["syncOptions"] == options
    play_controller(cluster, namespace, repo, operation="Succeeded")

    out, writes, before, after = act("sync", app, "--controller-dry-run", "--sync-option", "ApplyOutOfSyncOnly=true",
                                     "--yes")
    planned = printed_patch(out)
    assert planned["operation"]["sync"]["dryRun"] is True
    assert planned["operation"]["sync"]["syncOptions"] == ["ApplyOutOfSyncOnly=true"]
    assert "runs this sync as its own dry run" in out
    assert without_lease(writes) == [("patch", f"applications/{app}")]  # stored: Argo CD runs it
    assert comparable(after) == comparable(merged(before, planned))
    assert after["operation"]["sync"]["dryRun"] is True

    syncs = [e for e in journal(tmp_path) if e.get("app") == app and e["action"] == "sync"
             and e["result"] == "succeeded"]
    assert len(syncs) == 3
    assert [e["details"]["dry_run"] for e in syncs] == [True, False, False]  # fleetdeck's own dry run only
    assert '"syncOptions":["CreateNamespace=true","ServerSideApply=true","Replace=true"]' in \
        syncs[1]["details"]["patches"][0]
    assert '"dryRun":true' in syncs[2]["details"]["patches"][0]


def test_a_fleetdeck_owned_app_refuses_argocds_options(
        argocd_crd: None, tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    """The same app, owned by fleetdeck (the fleet file's override): ``--sync-option`` and
    ``--controller-dry-run`` block the plan (exit 2) with the reason, and nothing at all is written, not even
    through the dry run: fleetdeck's own sync has no such options, and ignoring them would sync something
    other than what was asked."""
    app = namespace
    create_application(cluster, namespace, repo)
    fleet = owned_fleet(tmp_path, repo, cluster, namespace, owner="fleetdeck")
    since = now()
    for args in (("--sync-option", "CreateNamespace=true", "--yes"), ("--controller-dry-run", "--yes"),
                 ("--sync-option", "ServerSideApply=true", "--dry-run")):
        result = run(tmp_path, "sync", app, *args, "--fleet", str(fleet))
        assert result.returncode == 2, (args, result.stdout + result.stderr)
        assert "blocked: " in result.stdout and "is owned by fleetdeck" in result.stdout, result.stdout
        assert "nothing was changed" in result.stdout
    time.sleep(1.0)
    assert admin_writes(cluster, since) == []
