"""Time the Flux build of the flux2-kustomize-helm-example corpus (a writable copy): the private tree alone,
and whole renders of each clusters/staging Kustomization with the Flux build and with the path as it is.

    uv run python scripts/flux_timing.py /tmp/corpus
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

from core.desired.flux import make_flux_tree, remove_flux_tree
from core.desired.imported import discover_imported_apps
from core.desired.render import render
from core.desired.spec import ClusterSpec


def _line(what: str, times: list[float]) -> str:
    ordered = sorted(times)
    return f"{what:45} median {statistics.median(ordered):7.2f} ms  p90 {ordered[int(len(ordered) * 0.9)]:7.2f} ms"


async def main(root: Path) -> None:
    apps = {a.name: a for a in discover_imported_apps(root, [ClusterSpec("staging"), ClusterSpec("production")])}
    configs = apps.get("infra-configs") or apps["infra-configs-staging"]
    assert configs.flux is not None
    times: list[float] = []
    for _ in range(200):
        start = time.perf_counter()
        remove_flux_tree(make_flux_tree(root, root / "infrastructure/configs", configs.flux))
        times.append((time.perf_counter() - start) * 1000)
    print(_line("private tree of infrastructure/configs", times))
    for name in ("infra-controllers", "infra-configs", "apps"):
        app = apps.get(name) or apps[f"{name}-staging"]
        (path,) = [p for _, p in app.targets([ClusterSpec("staging")])]
        for label, flux in (("flux build", app.flux), ("path as is", None)):
            times = []
            for _ in range(20):
                start = time.perf_counter()
                await render(root, path, flux=flux)
                times.append((time.perf_counter() - start) * 1000)
            print(_line(f"render {name} ({label})", times))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]).resolve()))
