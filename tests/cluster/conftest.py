"""Shared pieces of the cluster tests: a realistic app, its config repo and fleet files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from core.engine import FleetEngine, make_engine
from core.journal import Journal
from core.live.kube import KubeClient
from core.settings import EngineSettings, WatchSettings
from devcluster import ClusterInfo
from tests.cluster.sync_support import kube
from tests.engine.conftest import git


@pytest_asyncio.fixture
async def api(cluster: ClusterInfo) -> AsyncIterator[KubeClient]:
    """fleetdeck's client for the first cluster, as fleetdeck-admin."""
    async with kube(cluster) as client:
        yield client


def app_objects(namespace: str, *, replicas: int = 2, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """A realistic app with defaults left to the server: Deployment, Service, ConfigMap, SA, Secret."""
    env = {"MODE": "blue", "LOG": "info"} if env is None else env
    container = {"name": "web", "image": "registry.example/web:1.0", "ports": [{"containerPort": 8080}],
                 "env": [{"name": k, "value": v} for k, v in env.items()],
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config"}, "data": {"a": "1"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-secret"}, "stringData": {"token": "s3cr3t"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
         "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"serviceAccountName": "web", "containers": [container]}}}},
    ]


def commit(repo: Path, objects: list[dict[str, Any]], message: str) -> None:
    """Write ``apps/web/app.yaml`` (plus a kustomization) and commit."""
    app = repo / "apps" / "web"
    app.mkdir(parents=True, exist_ok=True)
    (app / "app.yaml").write_text(yaml.safe_dump_all(objects))
    (app / "kustomization.yaml").write_text(yaml.safe_dump({"resources": ["app.yaml"]}))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path, namespace: str) -> Path:
    """A config repo holding the app at its first version."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    commit(path, app_objects(namespace), "web 1.0")
    return path


def fleet_file(tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str, *, viewer: bool = False) -> Path:
    """A fleet file for one app (named after the test's namespace, so shared state never mixes) on ``cluster``."""
    path = tmp_path / ("viewer.yaml" if viewer else "fleetdeck.yaml")
    context = cluster.viewer_context if viewer else cluster.admin_context
    path.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": cluster.name, "kubeconfig": str(cluster.kubeconfig), "context": context,
                      "labels": {"env": "test"}}],
        "apps": [{"name": namespace, "path": "apps/web", "namespace": namespace}],
    }))
    return path


StartEngine = Callable[..., Awaitable[FleetEngine]]
"""The ``engines`` fixture: ``await engines(fleet_file, read_only=...)`` is a started, ready engine."""


@pytest_asyncio.fixture
async def engines(tmp_path: Path) -> AsyncIterator[StartEngine]:
    """Start engines on fleet files (quick reconnects, fast publishing); all are stopped at the end."""
    started: list[FleetEngine] = []

    async def start(path: Path, *, read_only: bool = False) -> FleetEngine:
        settings = EngineSettings(watch=WatchSettings(backoff_initial=0.2, backoff_max=1.0, unreachable_after=2.0),
                                  publish_interval=0.05)
        engine = make_engine(path, read_only=read_only, settings=settings,
                             journal=Journal(tmp_path / f"journal-{len(started)}.jsonl"),
                             cache=tmp_path / f"cache-{len(started)}")
        await engine.start()
        started.append(engine)
        await engine.wait_ready(timeout=60)
        return engine

    yield start
    for engine in started:
        await engine.stop()
