"""Fixtures for engine tests: a real Git config repo, a fleet file and simulated clusters."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.engine import FleetEngine, make_engine
from core.journal import Journal
from core.settings import EngineSettings, WatchSettings
from core.simulated.simulated_cluster import SimulatedCluster, SimulationTiming

WEB: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                                   "ports": [{"containerPort": 80}]}]}}},
}
CONFIG: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config"}, "data": {"mode": "blue"}}


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity."""
    env = {"GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com", "GIT_COMMITTER_NAME": "Ada",
           "GIT_COMMITTER_EMAIL": "ada@example.com", "PATH": "/usr/bin:/bin", "HOME": str(repo)}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def write_app(repo: Path, objects: list[dict[str, Any]], message: str) -> str:
    """Replace ``apps/web`` with ``objects`` and commit; returns the SHA."""
    app = repo / "apps" / "web"
    app.mkdir(parents=True, exist_ok=True)
    for old in app.glob("*.yaml"):
        old.unlink()
    for obj in objects:
        (app / f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml").write_text(yaml.safe_dump(obj))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


StartEngine = Callable[..., Awaitable[FleetEngine]]
"""The ``started`` fixture: ``await started(read_only=...)`` is a started, ready engine."""


@dataclass
class Fleet:
    """A config repo, its fleet file and the simulated clusters."""

    repo: Path
    fleet_file: Path
    clusters: dict[str, SimulatedCluster]
    journal: Path
    tmp: Path

    def engine(self, *, read_only: bool = False) -> FleetEngine:
        """A fresh engine over the simulated clusters."""
        settings = EngineSettings(watch=WatchSettings(backoff_initial=0.05, backoff_max=0.2, unreachable_after=0.5),
                                  publish_interval=0.01)
        return make_engine(self.fleet_file, read_only=read_only, clients=self.clusters, settings=settings,
                           journal=Journal(self.journal), cache=self.tmp / "cache")


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    """Two simulated clusters and a repo with one app ``web`` (a Deployment and a ConfigMap)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write_app(repo, [WEB, CONFIG], "web: first version")
    fleet_file = tmp_path / "fleetdeck.yaml"
    fleet_file.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main"},
        "clusters": [{"name": "dev", "labels": {"env": "dev"}}, {"name": "prod", "labels": {"env": "prod"}}],
        "apps": [{"name": "web", "path": "apps/web", "namespace": "web"}],
    }))
    clusters = {name: SimulatedCluster(name, timing=SimulationTiming.instant()) for name in ("dev", "prod")}
    return Fleet(repo, fleet_file, clusters, tmp_path / "journal.jsonl", tmp_path)


@pytest.fixture
async def started(fleet: Fleet) -> AsyncIterator[StartEngine]:
    """Start engines over the fleet (stopped at the end)."""
    engines: list[FleetEngine] = []

    async def start(**kwargs: bool) -> FleetEngine:
        engine = fleet.engine(**kwargs)
        await engine.start()
        await engine.wait_ready(timeout=10)
        engines.append(engine)
        return engine

    yield start
    for engine in engines:
        await engine.stop()
    for cluster in fleet.clusters.values():
        await cluster.close()
