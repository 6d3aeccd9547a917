"""Flux post-build substitution per destination cluster, through the engine over simulated clusters: each
cluster's ConfigMap and Secret give that cluster's desired state; a missing source is that target's error."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path

import yaml

from core.engine.fleet_engine import FleetEngine
from core.simulated.simulated_cluster import SimulatedCluster
from tests.engine.conftest import Fleet, git

KUSTOMIZATION = textwrap.dedent("""\
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata: {name: web, namespace: flux-system}
    spec:
      path: ./apps/web
      sourceRef: {kind: GitRepository, name: flux-system}
      targetNamespace: web
      dependsOn: [{name: infra}]
      postBuild:
        substitute: {app: web}
        substituteFrom:
          - {kind: ConfigMap, name: cluster-vars}
          - {kind: Secret, name: cluster-secrets}
    """)


def _flux_fleet(fleet: Fleet) -> None:
    for old in (fleet.repo / "apps" / "web").glob("*.yaml"):
        old.unlink()
    (fleet.repo / "apps" / "web" / "config.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {region: '${region}', app: '${app}'}\n")
    (fleet.repo / "apps" / "web" / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {password: '${password}'}\n")
    (fleet.repo / "platform").mkdir()
    (fleet.repo / "platform" / "web.yaml").write_text(KUSTOMIZATION)
    git(fleet.repo, "add", "-A")
    git(fleet.repo, "commit", "-q", "-m", "web as a Flux Kustomization")
    config = yaml.safe_load(fleet.fleet_file.read_text())
    config.update({"apps": [], "import": {"flux": True}})
    fleet.fleet_file.write_text(yaml.safe_dump(config))


def _seed(cluster: SimulatedCluster, region: str, password: str) -> None:
    cluster.seed_apply({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "cluster-vars", "namespace": "flux-system"}, "data": {"region": region}})
    cluster.seed_apply({"apiVersion": "v1", "kind": "Secret",
                        "metadata": {"name": "cluster-secrets", "namespace": "flux-system"},
                        "data": {"password": base64.b64encode(password.encode()).decode()}})


def _settings(engine: FleetEngine, cluster: str) -> dict[str, str]:
    desired = engine.desired[("web", cluster)]
    assert not desired.error, desired.error
    (obj,) = [o for k, o in desired.objects.items() if k.kind == "ConfigMap"]
    return dict(obj["data"])


async def test_each_cluster_renders_with_its_own_values(fleet: Fleet, tmp_path: Path) -> None:
    """dev and prod get their own region; a cluster without the sources has an error naming the ConfigMap and
    no desired objects (Unknown, nothing to sync); a changed value is picked up at the next refresh; no
    Secret value is in the snapshot."""
    _flux_fleet(fleet)
    _seed(fleet.clusters["dev"], "eu-dev", "dev-pass-1")
    engine = fleet.engine()
    await engine.start()
    try:
        await engine.wait_ready(timeout=10)
        assert _settings(engine, "dev") == {"region": "eu-dev", "app": "web"}
        missing = engine.desired[("web", "prod")]
        assert missing.error and "ConfigMap/cluster-vars" in missing.error and not missing.objects
        row = next(a for a in engine.snapshot.apps if a.id == ("web", "prod"))
        assert row.sync.value == "Unknown" and row.depends_on == ("infra",)

        _seed(fleet.clusters["prod"], "us-prod", "prod-pass-2")
        await engine.refresh()
        assert _settings(engine, "prod") == {"region": "us-prod", "app": "web"}
        assert _settings(engine, "dev") == {"region": "eu-dev", "app": "web"}
        _seed(fleet.clusters["dev"], "eu-dev-2", "dev-pass-1")  # a value changed in the cluster: the next poll sees it
        await engine.refresh()
        assert _settings(engine, "dev") == {"region": "eu-dev-2", "app": "web"}
        text = repr(engine.snapshot)
        assert "prod-pass-2" not in text and "dev-pass-1" not in text
    finally:
        await engine.stop()
        for cluster in fleet.clusters.values():
            await cluster.close()
