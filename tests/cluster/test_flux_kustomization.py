"""A Flux Kustomization synced by fleetdeck against a real kube-apiserver: patches, a generated kustomization,
and post-build substitution from a ConfigMap and a Secret that live in the cluster.

The Secret's value reaches the cluster (as Flux would apply it) but no fleetdeck output: ``status -o json``
and ``diff`` are read whole and must not contain it.
"""

from __future__ import annotations

import base64
import json
import secrets
import textwrap
from pathlib import Path

import pytest
import yaml

from devcluster import ClusterInfo
from tests.cluster.test_cli import run
from tests.engine.conftest import git

pytestmark = pytest.mark.cluster


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))


def _flux_repo(tmp_path: Path, cluster: ClusterInfo, namespace: str) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    _write(repo, {
        # No kustomization.yaml: Flux (and fleetdeck) generate one listing every manifest.
        "apps/web/settings.yaml": """\
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: settings}
            data:
              greeting: "${greeting}"
              replicas: "count-${replicas:=1}"
              literal: "$${not_a_variable}"
            """,
        "apps/web/credentials.yaml": """\
            apiVersion: v1
            kind: Secret
            metadata: {name: api}
            stringData:
              token: "${token}"
            """,
        "apps/web/raw.yaml": """\
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: raw
              annotations: {kustomize.toolkit.fluxcd.io/substitute: disabled}
            data: {template: "${greeting}"}
            """,
        f"clusters/{cluster.name}/web.yaml": f"""\
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata: {{name: {namespace}, namespace: {namespace}}}
            spec:
              interval: 10m
              path: ./apps/web
              prune: true
              sourceRef: {{kind: GitRepository, name: flux-system}}
              targetNamespace: {namespace}
              nameSuffix: -stg
              dependsOn: [{{name: infra}}]
              patches:
                - patch: |
                    apiVersion: v1
                    kind: ConfigMap
                    metadata:
                      name: settings
                      labels: {{patched: strategic}}
                - patch: |
                    - op: add
                      path: /data/tier
                      value: "${{tier}}"
                  target: {{kind: ConfigMap, name: settings}}
              postBuild:
                substitute: {{tier: gold}}
                substituteFrom:
                  - {{kind: ConfigMap, name: web-vars}}
                  - {{kind: Secret, name: web-creds}}
                  - {{kind: ConfigMap, name: not-there, optional: true}}
            """,
    })
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "web via Flux")
    return repo


def _fleet(tmp_path: Path, repo: Path, cluster: ClusterInfo) -> Path:
    path = tmp_path / "fleetdeck.yaml"
    path.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": cluster.name, "kubeconfig": str(cluster.kubeconfig), "context": cluster.admin_context}],
        "import": {"flux": True},
        "apps": [],
    }))
    return path


def _create(cluster: ClusterInfo, namespace: str, kind: str, name: str, data: dict[str, str]) -> None:
    plural = "secrets" if kind == "Secret" else "configmaps"
    body = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()} if kind == "Secret" else data}
    cluster.rest().request("POST", f"/api/v1/namespaces/{namespace}/{plural}", body=body)


def test_flux_kustomization_with_patches_and_substitution_from_the_cluster(
    tmp_path: Path, cluster: ClusterInfo, namespace: str
) -> None:
    """The app imported from the Kustomization syncs what kustomize-controller would apply: suffixed names in
    the target namespace, both patches, variables from inline values, a ConfigMap and a Secret of the cluster;
    the opted-out object and the ``$${…}`` escape stay literal; the Secret's value is in no output and in no
    file fleetdeck wrote (journal, cache, state)."""
    token = f"tok-{secrets.token_hex(12)}"
    repo = _flux_repo(tmp_path, cluster, namespace)
    fleet = _fleet(tmp_path, repo, cluster)
    app = namespace

    missing = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json")
    row = json.loads(missing.stdout)["apps"][0]
    assert row["sync"] == "Unknown" and "ConfigMap/web-vars" in json.dumps(row["conditions"])
    assert row["depends_on"] == ["infra"]
    refused = run(tmp_path, "sync", app, "--fleet", str(fleet), "--yes")
    assert refused.returncode != 0, refused.stdout + refused.stderr  # a doubt about the values: nothing synced
    listed = cluster.rest().get(f"/api/v1/namespaces/{namespace}/configmaps")["items"]
    assert [i["metadata"]["name"] for i in listed if i["metadata"]["name"] != "kube-root-ca.crt"] == []

    _create(cluster, namespace, "ConfigMap", "web-vars", {"greeting": "hello", "replicas": "3"})
    _create(cluster, namespace, "Secret", "web-creds", {"token": token})

    before = run(tmp_path, "diff", app, "--fleet", str(fleet))
    assert before.returncode == 1, before.stdout + before.stderr
    synced = run(tmp_path, "sync", app, "--fleet", str(fleet), "--yes")
    assert synced.returncode == 0, synced.stdout + synced.stderr

    settings = cluster.rest().get(f"/api/v1/namespaces/{namespace}/configmaps/settings-stg")
    assert settings["data"] == {"greeting": "hello", "replicas": "count-3", "literal": "${not_a_variable}", "tier": "gold"}
    assert settings["metadata"]["labels"]["patched"] == "strategic"
    raw = cluster.rest().get(f"/api/v1/namespaces/{namespace}/configmaps/raw-stg")
    assert raw["data"] == {"template": "${greeting}"}
    secret = cluster.rest().get(f"/api/v1/namespaces/{namespace}/secrets/api-stg")
    assert base64.b64decode(secret["data"]["token"]).decode() == token

    status = run(tmp_path, "status", "--fleet", str(fleet), "-o", "json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["apps"][0]["sync"] == "Synced"
    after = run(tmp_path, "diff", app, "--fleet", str(fleet))
    assert after.returncode == 0, after.stdout + after.stderr
    for result in (missing, refused, before, synced, status, after):
        assert token not in result.stdout + result.stderr
    on_disk = [f for where in ("journal.jsonl", "xdg", "state") for f in [tmp_path / where, *(tmp_path / where).rglob("*")]
               if f.is_file() and token.encode() in f.read_bytes()]
    assert on_disk == []  # neither the journal nor the cache or state directories hold the Secret's value
