"""One-shot verbs against the real local control plane: ``uv run python -m bench.cli_bench [--pairs N]``.

Each fleetdeck verb is timed against the kubectl command that does the same job on the same rendered
manifests, interleaved, as a median of per-pair wall-clock ratios (``bench/harness.py``):

* ``fleetdeck diff APP`` against ``kubectl diff --server-side`` of the app's manifests (target ≤ 1.5×);
* ``fleetdeck status`` of a 4-app fleet against one ``kubectl diff --server-side`` of all of them (≤ 2×);
* ``fleetdeck sync APP --yes`` against ``kubectl apply --server-side`` (≤ 1.5×);
* ``fleetdeck --help`` in absolute seconds (≤ 0.25 s).

Needs the control-plane binaries (``scripts/build-control-plane``) and ``kubectl`` on PATH. Not part of
the test command: it starts its own cluster and takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from bench.harness import RatioResult, ratio
from devcluster import ControlPlane, find_binaries

APPS = 4
FLEETDECK = str(Path(sys.executable).with_name("fleetdeck"))


def app_objects(name: str, label: str) -> list[dict[str, Any]]:
    """A realistic app: ServiceAccount, ConfigMap, Service, Deployment."""
    labels = {"app": name, "tier": label}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-config", "labels": labels},
         "data": {"mode": "blue"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
         "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"serviceAccountName": name, "containers": [
                                   {"name": "web", "image": "registry.example/web:1.0"}]}}}},
    ]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@example.invalid",
                    *args], check=True, capture_output=True)


def write_apps(repo: Path, label: str) -> None:
    for i in range(APPS):
        app = repo / "apps" / f"app{i}"
        app.mkdir(parents=True, exist_ok=True)
        (app / "app.yaml").write_text(yaml.safe_dump_all(app_objects(f"app{i}", label)))
        (app / "kustomization.yaml").write_text(yaml.safe_dump({"resources": ["app.yaml"]}))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"apps: tier {label}")


def rendered(repo: Path, namespace: str, app: str, out: Path) -> Path:
    """The app's manifests as fleetdeck applies them, for kubectl."""
    docs = list(yaml.safe_load_all(subprocess.run(["kubectl", "kustomize", str(repo / "apps" / app)],
                                                  check=True, capture_output=True, text=True).stdout))
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
    out.write_text(yaml.safe_dump_all(docs))
    return out


def run(args: list[str], env: dict[str, str], ok: tuple[int, ...] = (0, 1)) -> None:
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    if result.returncode not in ok:
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}: {result.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli_bench", description=__doc__)
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fleetdeck-cli-bench-") as tmp_name:
        tmp = Path(tmp_name)
        plane = ControlPlane(tmp / "plane", names=("fd-bench",), binaries=find_binaries())
        plane.start()
        try:
            return _bench(tmp, plane, args.pairs)
        finally:
            plane.stop()


def _bench(tmp: Path, plane: ControlPlane, pairs: int) -> int:
    cluster = plane.clusters["fd-bench"]
    repo = tmp / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write_apps(repo, "a")
    fleet = tmp / "fleetdeck.yaml"
    fleet.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": "fd-bench", "kubeconfig": str(cluster.kubeconfig), "context": cluster.admin_context}],
        "apps": [{"name": f"app{i}", "path": f"apps/app{i}", "namespace": f"bench-{i}"} for i in range(APPS)],
    }))
    # as installed by pip: bytecode compiled once (some shells set PYTHONDONTWRITEBYTECODE, which would make
    # every run compile ~550 modules, about 1 s, and measure the compiler rather than fleetdeck)
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(root / "core"), str(root / "tui"),
                    *sys.path[1:]], capture_output=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""})
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("FLEETDECK_", "PYTHONDONTWRITEBYTECODE"))},
           "FLEETDECK_JOURNAL": str(tmp / "journal.jsonl"), "XDG_CACHE_HOME": str(tmp / "xdg"),
           "XDG_STATE_HOME": str(tmp / "state")}
    kubectl = ["kubectl", "--kubeconfig", str(cluster.kubeconfig), "--context", cluster.admin_context]
    fd = [FLEETDECK, "--fleet", str(fleet)]
    for i in range(APPS):
        run([*fd, "sync", f"app{i}", "--yes"], env, ok=(0,))
    write_apps(repo, "b")  # one label changed in Git: every app drifts by a little
    files = [rendered(repo, f"bench-{i}", f"app{i}", tmp / f"app{i}.yaml") for i in range(APPS)]
    every = [arg for f in files for arg in ("-f", str(f))]
    results: list[RatioResult] = [
        ratio("fleetdeck diff APP vs kubectl diff --server-side", target=1.5, pairs=pairs, cpu=False,
              candidate=lambda: run([*fd, "diff", "app0"], env),
              baseline=lambda: run([*kubectl, "diff", "--server-side", "--force-conflicts", "-f", str(files[0])], env)),
        ratio(f"fleetdeck status ({APPS} apps) vs kubectl diff --server-side of all", target=2.0, pairs=pairs,
              cpu=False, candidate=lambda: run([*fd, "status"], env),
              baseline=lambda: run([*kubectl, "diff", "--server-side", "--force-conflicts", *every], env)),
    ]
    flip = iter(range(10_000))

    def fleetdeck_sync() -> None:
        write_apps(repo, f"f{next(flip)}")  # outside the timing would be fairer; the commit is ~10 ms
        run([*fd, "sync", "app1", "--yes"], env, ok=(0,))

    def kubectl_apply() -> None:
        doc = rendered(repo, "bench-2", "app2", tmp / "apply.yaml")
        run([*kubectl, "apply", "--server-side", "--force-conflicts", "--field-manager", "bench", "-f", str(doc)], env, ok=(0,))

    results.append(ratio("fleetdeck sync APP vs kubectl apply --server-side", target=1.5, pairs=pairs, cpu=False,
                         candidate=fleetdeck_sync, baseline=kubectl_apply))
    helps = []
    for _ in range(7):
        start = time.perf_counter()
        run([FLEETDECK, "--help"], env, ok=(0,))
        helps.append(time.perf_counter() - start)
    help_s = statistics.median(helps)
    for result in results:
        print(result.line())
    print(f"fleetdeck --help: {help_s:.3f} s (target ≤ 0.25 s)")
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    (out / "cli.json").write_text(json.dumps({"ratios": [asdict(r) for r in results], "help_s": help_s},
                                             indent=2, default=str))
    return 0 if all(r.ok for r in results) and help_s <= 0.25 else 1


if __name__ == "__main__":
    sys.exit(main())
