"""Impersonation (fault S7): ``fleetdeck --as USER [--as-group G]…`` sends every request as that identity,
says so wherever it acts, is disabled in read-only mode, and the API server's audit log records both the
real and the impersonated identity. Driven through the real ``fleetdeck`` command against a real apiserver."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from devcluster import ClusterInfo, audit_events, mutating_events
from tests.cluster.conftest import fleet_file
from tests.cluster.test_cli import run

pytestmark = pytest.mark.cluster

ADMIN = "fleetdeck-admin"
VIEWER = "fleetdeck-viewer"


def impersonated(event: dict[str, Any]) -> dict[str, Any]:
    value = event.get("impersonatedUser")
    return value if isinstance(value, dict) else {}


def test_every_request_is_sent_as_the_impersonated_identity(tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                                           namespace: str) -> None:
    """``status --as fleetdeck-viewer --as-group G1 --as-group G2`` with the admin's kubeconfig: the JSON and
    the text say who the cluster sees; every request in the audit log is the admin's, impersonating the
    viewer with both groups (one header each)."""
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    since = dt.datetime.now(dt.UTC)
    result = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json",
                 "--as", VIEWER, "--as-group", "system:authenticated", "--as-group", "auditors")
    # The viewer may not list Secrets (the app has one): the cluster is Degraded, exit 2, as for the viewer's
    # own credentials; the admin's own identity would list them.
    assert result.returncode == 2, result.stdout + result.stderr
    record = json.loads(result.stdout)["clusters"][0]
    assert record["impersonating"] == f"{VIEWER} (groups system:authenticated, auditors)"
    assert "secrets is forbidden: User \\\"fleetdeck-viewer\\\"" in json.dumps(record["message"]) \
        or 'User "fleetdeck-viewer"' in record["message"]
    assert f"as: requests to {cluster.name} are sent as {VIEWER} (groups system:authenticated, auditors)" \
        in result.stderr

    ours = [e for e in audit_events(cluster, since=since)
            if impersonated(e) and e["user"]["username"] == ADMIN]
    assert ours, "no impersonated request in the audit log"
    for event in ours:
        assert impersonated(event)["username"] == VIEWER
        assert set(impersonated(event)["groups"]) >= {"system:authenticated", "auditors"}
    lists = [e for e in ours if e["verb"] == "list"]
    assert lists, "the verb listed nothing as the impersonated user"


def test_a_sync_as_another_identity_lands_under_both_names(tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                                           namespace: str) -> None:
    """``sync --as release-bot --as-group system:masters`` with the admin's kubeconfig: the verb says the
    sync is sent as that identity before the plan, the objects land, and every write in the audit log is
    the admin impersonating release-bot. As the viewer instead, the sync is blocked before any write (the
    viewer cannot see the app's Secret, so the live state is not current)."""
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    since = dt.datetime.now(dt.UTC)
    viewer = run(tmp_path, "--as", VIEWER, "sync", namespace, "--fleet", str(fleet), "--yes")
    assert viewer.returncode == 2, viewer.stdout + viewer.stderr
    assert f"as: sync on {cluster.name} is sent as {VIEWER} (impersonation)" in viewer.stderr
    assert "blocked: cluster fd-a is degraded" in viewer.stdout
    assert not mutating_events(audit_events(cluster, since=since), user=ADMIN)

    bot = run(tmp_path, "sync", namespace, "--fleet", str(fleet), "--yes",
              "--as", "release-bot", "--as-group", "system:masters")
    assert bot.returncode == 0, bot.stdout + bot.stderr
    assert f"as: sync on {cluster.name} is sent as release-bot (groups system:masters) (impersonation)" \
        in bot.stderr
    writes = [e for e in mutating_events(audit_events(cluster, since=since), user=ADMIN)
              if (e.get("objectRef") or {}).get("namespace") == namespace]
    assert len(writes) >= 5, bot.stdout
    for event in writes:
        assert impersonated(event)["username"] == "release-bot", event
        assert "system:masters" in impersonated(event)["groups"]
    assert (tmp_path / "journal.jsonl").read_text().count("release-bot") >= 1


@pytest.mark.parametrize(("args", "message"), [
    (["--read-only", "--as", VIEWER, "status"], "impersonation (--as) is disabled in read-only mode"),
    (["status", "--as", VIEWER, "--read-only"], "impersonation (--as) is disabled in read-only mode"),
    (["--as", VIEWER, "drift", "a.yaml", "b.yaml"], "drift talks to no cluster: drop --as/--as-group"),
    (["status", "--as-group", "ops"], "--as-group needs --as USER"),
    (["--as", "a", "status", "--as", "b"], "--as given twice: a and b"),
])
def test_impersonation_misuse_is_an_error_before_any_request(tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                                             namespace: str, args: list[str], message: str) -> None:
    """Impersonation in read-only mode, on a verb that talks to no cluster, a group without a user or two
    users: exit 2 with the reason, and the API server sees no impersonated request."""
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    since = dt.datetime.now(dt.UTC)
    result = run(tmp_path, *args, env={"FLEETDECK_FLEET": str(fleet)})
    assert result.returncode == 2 and message in result.stderr, result.stdout + result.stderr
    assert not [e for e in audit_events(cluster, since=since)
                if impersonated(e) and e["user"]["username"] == ADMIN]
