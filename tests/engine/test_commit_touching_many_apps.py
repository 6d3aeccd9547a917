"""One commit changes 1,000 apps (docs/reliability.md, G5): every row reaches the new revision, each app is
rendered once, and the screen shows progress while it happens (a snapshot saying how many renders are in
flight, then rows moving to the new revision a batch at a time) rather than freezing until the last one.

Simulated cluster (the renders, not the cluster, are under test), real Git repository.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.engine import make_engine
from core.journal import Journal
from core.model import FleetSnapshot
from core.settings import EngineSettings
from core.simulated.simulated_cluster import SimulatedCluster, SimulationTiming

APPS = 1000


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
                   check=True, capture_output=True)


def _objects(app: str, image: str) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{app}-config"}, "data": {"k": "v"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}},
                  "template": {"metadata": {"labels": {"app": app}},
                               "spec": {"containers": [{"name": app, "image": image}]}}}},
    ]


def _write(repo: Path, names: list[str], image: str, message: str) -> None:
    for name in names:
        (repo / name).mkdir(exist_ok=True)
        (repo / name / "all.yaml").write_text(yaml.safe_dump_all(_objects(name, image)))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)


def _on_new_revision(snap: FleetSnapshot) -> int:
    return sum(1 for a in snap.apps if a.revision is not None and a.revision.subject == "every app: nginx 1.28")


async def test_a_commit_touching_a_thousand_apps_renders_each_once_with_progress(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    names = [f"app{i:04d}" for i in range(APPS)]
    _write(repo, names, "nginx:1.27", "every app")
    fleet = tmp_path / "fleetdeck.yaml"
    fleet.write_text(yaml.safe_dump({"repo": {"url": str(repo), "interval": 3600}, "clusters": [{"name": "c1"}],
                                     "apps": [{"name": n, "path": n, "namespace": n} for n in names]}))
    cluster = SimulatedCluster("c1", timing=SimulationTiming.instant())
    engine = make_engine(fleet, read_only=True, clients={"c1": cluster},
                         settings=EngineSettings(publish_interval=0.02), journal=Journal(tmp_path / "j.jsonl"),
                         cache=tmp_path / "cache")
    await engine.start()
    try:
        await engine.wait_ready(timeout=300)
        _write(repo, names, "nginx:1.28", "every app: nginx 1.28")
        builds = engine.renderer.builds
        seen: list[tuple[int, int]] = []  # (renders in flight, rows on the new revision) per snapshot

        async def watch() -> None:
            async for snap in engine.snapshots():
                assert snap.repo is not None
                seen.append((snap.repo.rendering, _on_new_revision(snap)))
                if seen[-1] == (0, APPS):
                    return

        watcher = asyncio.create_task(watch())
        await engine.refresh()
        await asyncio.wait_for(watcher, timeout=300)
    finally:
        await engine.stop()
        await cluster.close()
    assert engine.renderer.builds - builds == APPS  # each app rendered once, none twice
    assert any(rendering > 0 for rendering, _ in seen), seen[:5]  # the header could say "rendering N apps"
    partial = {done for _, done in seen if 0 < done < APPS}
    assert len(partial) >= 2, sorted(partial)  # rows moved in batches, the screen was never frozen to the end
    assert seen[-1] == (0, APPS)


def _write_kustomize(repo: Path, names: list[str], tag: str, message: str) -> None:
    """Each app a kustomization over its manifests, the image tag set by kustomize's ``images`` (what a
    release commit bumps in every overlay)."""
    for name in names:
        (repo / name).mkdir(exist_ok=True)
        (repo / name / "all.yaml").write_text(yaml.safe_dump_all(_objects(name, "nginx:latest")))
        (repo / name / "kustomization.yaml").write_text(yaml.safe_dump({
            "resources": ["all.yaml"], "commonLabels": {"team": "web"},
            "images": [{"name": "nginx", "newTag": tag}]}))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)


@pytest.mark.slow
async def test_a_commit_touching_a_thousand_kustomize_apps(tmp_path: Path) -> None:
    """The same with 1,000 kustomize apps (``kubectl kustomize`` per app, at most one per CPU): each rendered
    once, rows move in batches, and the time from the fetch to every row on the new revision is printed
    (docs/reliability.md, G5)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    names = [f"app{i:04d}" for i in range(APPS)]
    _write_kustomize(repo, names, "1.27", "every app")
    fleet = tmp_path / "fleetdeck.yaml"
    fleet.write_text(yaml.safe_dump({"repo": {"url": str(repo), "interval": 3600}, "clusters": [{"name": "c1"}],
                                     "apps": [{"name": n, "path": n, "namespace": n} for n in names]}))
    cluster = SimulatedCluster("c1", timing=SimulationTiming.instant())
    engine = make_engine(fleet, read_only=True, clients={"c1": cluster},
                         settings=EngineSettings(publish_interval=0.02), journal=Journal(tmp_path / "j.jsonl"),
                         cache=tmp_path / "cache")
    await engine.start()
    try:
        await engine.wait_ready(timeout=900)
        async with asyncio.timeout(900):  # every app rendered at the first commit before the second one
            while any(a.revision is None for a in engine.snapshot.apps) or (
                    engine.snapshot.repo is not None and engine.snapshot.repo.rendering):
                await asyncio.sleep(0.5)
        _write_kustomize(repo, names, "1.28", "every app: nginx 1.28")
        builds = engine.renderer.builds
        seen: list[tuple[float, int, int]] = []  # (seconds since the refresh, renders in flight, rows on the new revision)

        async def watch() -> None:
            async for snap in engine.snapshots():
                assert snap.repo is not None
                seen.append((time.monotonic() - refreshed, snap.repo.rendering, _on_new_revision(snap)))
                if seen[-1][1:] == (0, APPS):
                    return

        refreshed = time.monotonic()
        watcher = asyncio.create_task(watch())
        await engine.refresh()
        await asyncio.wait_for(watcher, timeout=900)
        image = next(iter(engine.desired.values())).objects
    finally:
        await engine.stop()
        await cluster.close()
    assert engine.renderer.builds - builds == APPS  # each app rendered once, none twice
    assert any("nginx:1.28" in str(obj) for obj in image.values())  # kustomize's images transformer ran
    partial = {done for _, _, done in seen if 0 < done < APPS}
    assert len(partial) >= 2, sorted(partial)
    first = next(t for t, _, done in seen if done > 0)
    print(f"\nG5 kustomize: {APPS} apps; after the commit the first row moved at "
          f"{first:.1f} s and every row was on the new revision {seen[-1][0]:.1f} s after the refresh "
          f"({APPS / seen[-1][0]:.0f} renders/s, {os.cpu_count()} CPUs)")
