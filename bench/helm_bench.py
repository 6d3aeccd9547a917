"""What a Helm chart render costs: helm running, the content cache, the render cache.

    uv run python -m bench.helm_bench [--chart DIR] [--runs N]

Needs the helm built by ``scripts/build-helm`` (or ``TEST_ASSET_HELM``). The chart defaults to the
``argocd-example-apps/helm-guestbook`` copy of the shared corpus beside the repository; it is copied into a
temporary directory, never written in place. Prints medians; figures are in ``docs/helm.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from core.desired.helm import Capabilities
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


def main() -> None:
    """Parse arguments and measure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", type=Path, default=DEFAULT_CHART)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    helm = str(find_helm(allow_build=False))
    with tempfile.TemporaryDirectory(prefix="fleetdeck-helm-bench-") as base:
        asyncio.run(measure(args.chart, helm, args.runs, Path(base)))


if __name__ == "__main__":
    main()
