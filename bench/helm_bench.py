"""What a Helm chart render costs: helm running, the content cache, the render cache; and for a Flux
HelmRelease whose chart comes from an HTTP chart repository on 127.0.0.1: the first render (index, download,
extraction, helm), a new revision with the chart cached, and the render cache.

    uv run python -m bench.helm_bench [--chart DIR] [--runs N] [--release-only]

Needs the helm built by ``scripts/build-helm`` (or ``TEST_ASSET_HELM``). The chart defaults to the
``argocd-example-apps/helm-guestbook`` copy of the shared corpus beside the repository; it is copied into a
temporary directory, never written in place. Prints medians; figures are in ``docs/helm.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from core.desired.helm import OUTPUTS, Capabilities
from core.desired.render import Renderer, render
from core.desired.repo import ConfigRepo
from core.desired.spec import HelmOptions, RepoSpec
from devcluster.binaries import REPO_ROOT, find_helm

DEFAULT_CHART = REPO_ROOT.parent / "shared" / "corpus" / "argocd-example-apps" / "helm-guestbook"
CAPABILITIES = Capabilities("v1.36.3", tuple(sorted(f"g{i}.example/v1{k}" for i in range(60) for k in ("", "/Kind"))))


async def _capabilities() -> Capabilities:
    return CAPABILITIES


def _ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:.3f} ms, max {max(samples) * 1000:.3f} ms (n={len(samples)})"


async def measure(chart: Path, helm: str, runs: int, base: Path) -> None:
    """Print the three costs for ``chart``."""
    options = HelmOptions(release_name="gb", value_files=("bench-values.yaml",))
    cold: list[float] = []
    warm: list[float] = []
    for i in range(runs):
        tree = base / f"cold{i}"
        shutil.copytree(chart, tree / "chart")
        (tree / "chart" / "bench-values.yaml").write_text(f"replicaCount: {i + 1}\n", encoding="utf-8")
        start = time.perf_counter()
        await render(tree, "chart", namespace="ns", helm=options, helm_bin=helm)
        cold.append(time.perf_counter() - start)
        again = base / f"warm{i}"
        shutil.copytree(tree, again)
        start = time.perf_counter()
        await render(again, "chart", namespace="ns", helm=options, helm_bin=helm)
        warm.append(time.perf_counter() - start)
    print(f"helm template runs:                         {_ms(cold)}")
    print(f"content cache (same chart, new tree):       {_ms(warm)}")

    work = base / "repo"
    shutil.copytree(chart, work / "chart")
    (work / "chart" / "bench-values.yaml").write_text("replicaCount: 2\n", encoding="utf-8")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-q", "-m", "chart"]):
        subprocess.run(["git", *args], cwd=work, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, check=True, capture_output=True,
                         text=True).stdout.strip()
    repo = ConfigRepo(RepoSpec(url=str(work)), base / "cache")
    await repo.fetch()
    renderer = Renderer(helm=helm)
    await renderer.render_app(repo, sha, path="chart", namespace="ns", helm=options, capabilities=_capabilities)
    hits: list[float] = []
    for _ in range(runs * 20):
        start = time.perf_counter()
        await renderer.render_app(repo, sha, path="chart", namespace="ns", helm=options, capabilities=_capabilities)
        hits.append(time.perf_counter() - start)
    print(f"render cache (same revision, 120 API versions): {_ms(hits)}; helm ran {renderer.builds} time(s)")


RELEASE_FILES = {
    "clusters/bench/apps.yaml": """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec: {path: ./apps, prune: true, sourceRef: {kind: GitRepository, name: flux-system}}
""",
    "apps/release.yaml": """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: podinfo, namespace: podinfo}
spec: {url: URL}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: podinfo, namespace: podinfo}
spec:
  chart: {spec: {chart: podinfo, version: ">=1.0.0", sourceRef: {kind: HelmRepository, name: podinfo}}}
  values: {replicaCount: REPLICAS, redis: {enabled: true}}
""",
}


def _commit(work: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text, encoding="utf-8")
    for args in (["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-q",
                                 "--allow-empty", "-m", message]):
        subprocess.run(["git", *args], cwd=work, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, check=True, capture_output=True,
                          text=True).stdout.strip()


async def measure_release(helm: str, runs: int, base: Path) -> None:
    """Print what a Flux HelmRelease render costs, its chart on a local HTTP chart repository."""
    from core.desired.helm_release import discover_releases
    from core.desired.imported import discover_imported_apps
    from core.desired.spec import AppSpec, ClusterSpec
    from tests.fixtures.chart_servers import HelmRepoServer, podinfo_chart

    server = HelmRepoServer(base / "served")
    server.directory.mkdir()
    with server.running():
        server.publish(Path(helm), base / "helm-home", [podinfo_chart(base / "src", "6.5.1")])
        work = base / "release-repo"
        work.mkdir()
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=work, check=True)
        release = RELEASE_FILES["apps/release.yaml"].replace("URL", server.url)
        shas = [_commit(work, {**RELEASE_FILES, "apps/release.yaml": release.replace("REPLICAS", str(i + 1))},
                        f"r{i}") for i in range(runs)]
        untouched = [_commit(work, {"README.md": f"note {i}\n"}, f"readme {i}") for i in range(runs)]
        repo = ConfigRepo(RepoSpec(url=str(work)), base / "release-cache")
        await repo.fetch()
        clusters = [ClusterSpec("bench")]
        renderer = Renderer(helm=helm)

        async def objects(app: AppSpec, path: str) -> tuple[dict[str, object], ...]:
            return (await renderer.render_app(repo, shas[0], path=path, namespace=app.namespace,
                                              helm=app.helm_options())).objects

        tree = await repo.materialize(shas[0])
        (app,) = await discover_releases(discover_imported_apps(tree, clusters, argocd=False), clusters, objects)
        cold: list[float] = []
        for i in range(runs):  # each in a fresh chart cache: index, download, digest, extraction, helm
            os.environ["FLEETDECK_CHART_CACHE"] = str(base / f"charts{i}")
            OUTPUTS.entries.clear()
            OUTPUTS.size = 0
            fresh = Renderer(helm=helm)
            start = time.perf_counter()
            await fresh.render_app(repo, shas[0], path=app.path, namespace=app.namespace, helm=app.helm_options(),
                                   release=app.release, capabilities=_capabilities)
            cold.append(time.perf_counter() - start)
        new_revision: list[float] = []
        for sha in shas:  # the chart cached on disk: the index is read again, helm runs (values differ)
            start = time.perf_counter()
            await renderer.render_app(repo, sha, path=app.path, namespace=app.namespace, helm=app.helm_options(),
                                      release=app.release, capabilities=_capabilities)
            new_revision.append(time.perf_counter() - start)
        unchanged: list[float] = []
        for sha in untouched:  # a commit not touching the release: index read, chart and helm output cached
            start = time.perf_counter()
            await renderer.render_app(repo, sha, path=app.path, namespace=app.namespace, helm=app.helm_options(),
                                      release=app.release, capabilities=_capabilities)
            unchanged.append(time.perf_counter() - start)
        hits: list[float] = []
        for _ in range(runs * 20):
            start = time.perf_counter()
            await renderer.render_app(repo, untouched[-1], path=app.path, namespace=app.namespace,
                                      helm=app.helm_options(), release=app.release, capabilities=_capabilities)
            hits.append(time.perf_counter() - start)
        print(f"HelmRelease first render (fetch + helm):    {_ms(cold)}")
        print(f"HelmRelease new revision, chart cached:     {_ms(new_revision)}")
        print(f"HelmRelease new revision, release untouched: {_ms(unchanged)}")
        print(f"HelmRelease render cache (same revision):   {_ms(hits)}; "
              f"chart repository asked {len(server.requests)} time(s)")


def main() -> None:
    """Parse arguments and measure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", type=Path, default=DEFAULT_CHART)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--release-only", action="store_true", help="measure the Flux HelmRelease render only")
    args = parser.parse_args()
    helm = str(find_helm(allow_build=False))
    with tempfile.TemporaryDirectory(prefix="fleetdeck-helm-bench-") as base:
        if not args.release_only:
            asyncio.run(measure(args.chart, helm, args.runs, Path(base)))
        asyncio.run(measure_release(helm, args.runs, Path(base)))


if __name__ == "__main__":
    main()
