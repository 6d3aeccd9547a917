"""An API error that quotes a secret value, from a real kube-apiserver, is masked where API errors become
fleetdeck errors (``core.live.kube.KubeClient._status_error`` → ``core.live.error_masking``).

kube-apiserver answers a server-side apply whose Secret ``stringData`` value (or a container's ``env``
value) is a number, not a string, with ``.stringData.token: expected string, got
&value.valueUnstructured{Value:918273645501}``: the value, verbatim. (Its own validation redacts some
Secret contents, e.g. an invalid ``.dockerconfigjson``, not this.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from core.errors import ClusterError
from core.live.api import APIResource
from core.live.kube import KubeClient
from devcluster import ClusterInfo
from tests.cluster.conftest import app_objects, commit, fleet_file
from tests.cluster.test_cli import run

pytestmark = pytest.mark.cluster

SECRETS = APIResource(group="", version="v1", kind="Secret", plural="secrets", namespaced=True)
DEPLOY = APIResource(group="apps", version="v1", kind="Deployment", plural="deployments", namespaced=True)
CANARY = 918273645501
"""A number: the typed patch fails on it and the server's message prints it."""


def secret(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-secret", "namespace": namespace},
            "stringData": {"token": CANARY}}


def with_secret_env(objects: list[dict[str, Any]], *, secret_token: bool = True) -> list[dict[str, Any]]:
    """``objects`` with the Deployment given ``DB_PASSWORD: <number>`` (and the Secret's token a number)."""
    out = []
    for obj in objects:
        if obj["kind"] == "Secret" and secret_token:
            obj = {**obj, "stringData": {"token": CANARY}}
        if obj["kind"] == "Deployment":
            container = obj["spec"]["template"]["spec"]["containers"][0]
            container["env"] = [*container["env"], {"name": "DB_PASSWORD", "value": CANARY}]
        out.append(obj)
    return out


async def test_api_error_quoting_a_secret_value_is_masked(api: KubeClient, namespace: str) -> None:
    """The server's 422 for a Secret's ``stringData`` value and for a secret-named ``env`` value quotes the
    value; the ``ClusterError`` fleetdeck raises says ``<masked>`` instead, and keeps the rest."""
    deployment = next(o for o in with_secret_env(app_objects(namespace)) if o["kind"] == "Deployment")
    deployment["metadata"]["namespace"] = namespace
    for resource, body, where in ((SECRETS, secret(namespace), ".stringData.token: expected string"),
                                  (DEPLOY, deployment, 'env[name="DB_PASSWORD"].value: expected string')):
        with pytest.raises(ClusterError) as caught:
            await api.apply(resource, body, field_manager="fleetdeck")
        message = caught.value.message
        assert caught.value.status == 422 and where in message, message
        assert str(CANARY) not in message and "<masked>" in message, message
        assert str(CANARY) not in str(caught.value) and str(CANARY) not in repr(caught.value)


async def test_sync_of_a_rejected_secret_value_leaks_it_nowhere(
        tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    """Git holds the Secret's token as a number: the render refuses it (exit 2) without quoting it. Git then
    holds a DB_PASSWORD env value as a number: the server refuses the Deployment quoting it, and `sync -v`
    fails that object (exit 1) with the server's reason masked. The value appears in no output, log line,
    journal entry or file fleetdeck wrote (but its copies of Git), nor in `status`, `diff` (the server's dry
    run) or `history`."""
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    canary = str(CANARY)
    commit(repo, with_secret_env(app_objects(namespace)), "token as a number")
    blocked = await asyncio.to_thread(run, tmp_path, "-v", "sync", namespace, "--fleet", str(fleet), "--yes")
    assert blocked.returncode == 2, blocked.stdout + blocked.stderr
    assert "stringData.token: the value is read as int, not a string" in blocked.stdout, blocked.stdout
    outputs = [blocked.stdout, blocked.stderr]
    commit(repo, with_secret_env(app_objects(namespace), secret_token=False), "DB_PASSWORD as a number")
    synced = await asyncio.to_thread(run, tmp_path, "-v", "sync", namespace, "--fleet", str(fleet), "--yes")
    assert synced.returncode == 1, synced.stdout + synced.stderr
    assert 'env[name="DB_PASSWORD"].value: expected string, got &value.valueUnstructured{Value:<masked>}' \
        in synced.stdout, synced.stdout
    outputs += [synced.stdout, synced.stderr]
    for verb in (("status", "-o", "json"), ("diff", namespace), ("history", namespace, "-o", "json")):
        result = await asyncio.to_thread(run, tmp_path, "-v", *verb, "--fleet", str(fleet))
        outputs += [result.stdout, result.stderr]
    for text in outputs:
        assert canary not in text, text
    git_copies = tmp_path / "xdg" / "fleetdeck" / "git"  # the mirror and checkouts of Git, which holds the value
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "repo" not in p.relative_to(tmp_path).parts
               and p.name != fleet.name and not p.is_relative_to(git_copies)]
    assert any(p.name == "journal.jsonl" for p in written)
    leaked = [p for p in written if canary.encode() in p.read_bytes()]
    assert leaked == [], leaked
