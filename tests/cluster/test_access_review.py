"""Read-only credentials, verified (fault S2): the start-up access review asks the real API server what the
credentials could change, and a read-only console or verb whose credentials could write says so loudly,
naming each power (exec into pods, the kubelet proxy, writes)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from core.live.access_review import NODE_PROXY, POD_EXEC, Review, reviews_for, write_powers
from core.live.kube import KubeClient
from core.live.kubeconfig import load_kubeconfig
from devcluster import ClusterInfo
from tests.cluster.conftest import fleet_file
from tests.cluster.test_cli import run

pytestmark = pytest.mark.cluster


def client(cluster: ClusterInfo, context: str) -> KubeClient:
    return KubeClient(cluster=cluster.name, context=load_kubeconfig(cluster.kubeconfig).context(context))


@pytest_asyncio.fixture
async def admin(cluster: ClusterInfo) -> AsyncIterator[KubeClient]:
    api = client(cluster, cluster.admin_context)
    yield api
    await api.close()


@pytest_asyncio.fixture
async def viewer(cluster: ClusterInfo) -> AsyncIterator[KubeClient]:
    api = client(cluster, cluster.viewer_context)
    yield api
    await api.close()


def test_older_servers_are_also_asked_about_websocket_exec() -> None:
    """``get pods/exec`` opens a WebSocket exec before Kubernetes 1.35: asked of older (and unknown) servers."""
    get_exec = Review("get", POD_EXEC)
    assert get_exec in reviews_for("v1.34.2") and get_exec in reviews_for("")
    assert get_exec not in reviews_for("v1.36.3") and Review("create", POD_EXEC) in reviews_for("v1.36.3")
    assert {Review("get", NODE_PROXY), Review("create", NODE_PROXY)} <= set(reviews_for("v1.36.3"))


async def test_admin_may_everything_and_the_viewer_nothing(admin: KubeClient, viewer: KubeClient) -> None:
    """The real server's answers: the admin could write, exec and reach the kubelet; the viewer none of it;
    every question was a review (nothing else was sent)."""
    powers = await write_powers(admin, "v1.34.0")
    assert powers.may_write and not powers.unknown
    assert powers.describe() == ("create, patch, delete configmaps; create, patch, delete secrets; "
                                 "create, patch, delete deployments; create, get pods/exec; get, create nodes/proxy")
    quiet = await write_powers(viewer, "v1.36.3")
    assert not quiet.may_write and not quiet.unknown and quiet.describe() == ""
    assert viewer.counters["review"] == len(reviews_for("v1.36.3"))
    assert viewer.request_count(("apply", "delete", "create")) == 0


def test_read_only_status_warns_when_the_credentials_could_write(tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                                                 namespace: str) -> None:
    """``fleetdeck --read-only status`` with admin credentials names what they could do, in the text output
    and as a fleet condition in JSON (a warning: the exit code stays the app's); with the viewer's
    credentials nothing is said (the viewer may not list the app's Secret, which is exit 2 on its own)."""
    admin_fleet = fleet_file(tmp_path, repo, cluster, namespace)
    text = run(tmp_path, "--read-only", "status", "--fleet", str(admin_fleet))
    assert text.returncode == 1, text.stdout + text.stderr  # the app is out of sync: exit 1, not 2
    assert "fleet: CredentialsCanWrite: read-only, but the credentials for" in text.stderr
    assert "could create, patch, delete configmaps; create, patch, delete secrets; create, patch, delete " \
           "deployments; create pods/exec; get, create nodes/proxy: fleetdeck refuses every change" in text.stderr
    result = run(tmp_path, "status", "--read-only", "--fleet", str(admin_fleet), "-o", "json")
    conditions = json.loads(result.stdout)["conditions"]
    warning = next(c for c in conditions if c["type"] == "CredentialsCanWrite")
    assert warning["severity"] == "warning"
    for power in ("create, patch, delete secrets", "pods/exec", "nodes/proxy"):
        assert power in warning["message"], warning

    viewer_fleet = fleet_file(tmp_path, repo, cluster, namespace, viewer=True)
    quiet = run(tmp_path, "--read-only", "status", "--fleet", str(viewer_fleet), "-o", "json")
    assert quiet.returncode == 2, quiet.stdout + quiet.stderr  # the viewer may not list Secrets: Degraded
    assert all(c["type"] != "CredentialsCanWrite" for c in json.loads(quiet.stdout)["conditions"])
