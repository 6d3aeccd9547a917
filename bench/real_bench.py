"""real-S: the engine against the real local control plane, each figure against ``kubectl`` doing the same job.

``uv run python -m bench.real_bench [--clusters N] [--apps N] [--pairs N]`` (default 3 clusters × 50 apps ×
20 objects, about 3,000 managed objects; ``--smoke``: 1 cluster × 4 apps, one pair). It starts its own
apiservers on 127.0.0.1 (``devcluster.ControlPlane``), seeds every app with ``kubectl apply --server-side``
as field manager ``fleetdeck`` (the objects as fleetdeck applies them: owner label and tracking annotation),
then measures, wall clock, interleaved candidate/baseline:

* **cold start**: a read-only engine with an empty cache directory, ``start`` → every row evaluated
  (local verdicts), against ``kubectl get -o json`` of the same kinds on every cluster at once;
  also once, not as a ratio, the writer engine until every server-side dry run has answered;
* **drift scan**: after drift is made by another field manager on some objects, every app's evaluation from
  the engine's live cache (verdict memo cleared, so every object is compared again) against
  ``kubectl diff --server-side`` of the same manifests on every cluster at once; the sets of objects each
  calls different must be identical;
* **sync**: a Git change to every object of the first half of the apps on the first cluster, ``plan_sync`` +
  ``execute_plan`` of those apps at once (their objects, ``--apps 50``: 500), against ``kubectl apply
  --server-side`` of as many objects (the other half of the apps, changed the same way).

Writes ``bench/results/real-CxA.json``. Needs the control-plane binaries (``scripts/build-control-plane``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from bench.workloads import git
from core.demo.seeding import prepare_for_apply
from core.engine import make_engine
from core.engine.fleet_engine import FleetEngine
from core.journal import Journal
from core.live.kube import KubeClient
from core.model import OperationPhase, ResourceState, SyncStatus
from core.settings import EngineSettings
from devcluster import ControlPlane, find_binaries

OBJECTS_PER_APP = 20
KINDS = "deployments,services,serviceaccounts,roles,rolebindings,configmaps,secrets"
Verdicts = set[tuple[str, str, str, str]]
"""(cluster, kind, namespace, name) of every object called different."""


def app_objects(app: str, label: str = "a") -> list[dict[str, Any]]:
    """An app's 20 manifests: Deployment, Service, ServiceAccount, Role, RoleBinding, 11 ConfigMaps, 4 Secrets."""
    labels = {"app": app, "tier": label}
    objects: list[dict[str, Any]] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}},
                  "template": {"metadata": {"labels": {"app": app}},
                               "spec": {"serviceAccountName": app,
                                        "containers": [{"name": "web", "image": "registry.example/web:1.0",
                                                        "ports": [{"containerPort": 8080}],
                                                        "env": [{"name": "MODE", "value": "prod"}]}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "labels": labels},
         "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": app, "labels": labels}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": app, "labels": labels},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": app, "labels": labels},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": app},
         "subjects": [{"kind": "ServiceAccount", "name": app}]},
    ]
    objects += [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{app}-config-{i}", "labels": labels},
                 "data": {"settings.yaml": f"app: {app}\nshard: {i}\nlevel: info\n", "feature": "on"}}
                for i in range(11)]
    objects += [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{app}-secret-{i}", "labels": labels},
                 "type": "Opaque", "data": {"token": "c2VjcmV0LXZhbHVl"}} for i in range(4)]
    assert len(objects) == OBJECTS_PER_APP
    return objects


def namespace(app: str) -> str:
    return f"rs-{app}"


def applied(app: str, label: str = "a") -> list[dict[str, Any]]:
    """The app's objects as fleetdeck applies them (namespace set, owner label, tracking annotation)."""
    return [prepare_for_apply(app, dict(o, metadata=dict(o["metadata"], namespace=namespace(app))))
            for o in app_objects(app, label)]


def write_repo(repo: Path, apps: list[str], labels: Mapping[str, str]) -> None:
    for app in apps:
        (repo / app).mkdir(exist_ok=True)
        (repo / app / "all.yaml").write_text(yaml.safe_dump_all(app_objects(app, labels.get(app, "a"))))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "apps")


class Kubectl:
    """The control plane's own kubectl (v1.36), one context per cluster."""

    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.binary, self.kubeconfig = str(binary), str(kubeconfig)

    def argv(self, cluster: str, *args: str) -> list[str]:
        return [self.binary, "--kubeconfig", self.kubeconfig, "--context", cluster, *args]

    def run(self, cluster: str, *args: str, ok: tuple[int, ...] = (0,)) -> str:
        result = subprocess.run(self.argv(cluster, *args), capture_output=True, text=True, timeout=600,
                                stdin=subprocess.DEVNULL)
        if result.returncode not in ok:
            raise RuntimeError(f"kubectl {' '.join(args[:3])} on {cluster} exited {result.returncode}: "
                               f"{result.stderr[-1500:]}")
        return result.stdout

    def each(self, clusters: list[str], *args: str, ok: tuple[int, ...] = (0,),
             per_cluster: Callable[[str], list[str]] | None = None) -> dict[str, str]:
        """The same command on every cluster at once (as the engine talks to them at once); stdout by cluster."""
        procs = {c: subprocess.Popen(self.argv(c, *args, *(per_cluster(c) if per_cluster else [])),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     text=True) for c in clusters}
        out = {}
        for c, p in procs.items():
            stdout, stderr = p.communicate(timeout=600)
            if p.returncode not in ok:
                raise RuntimeError(f"kubectl {' '.join(args[:3])} on {c} exited {p.returncode}: {stderr[-1500:]}")
            out[c] = stdout
        return out


def diff_verdicts(outputs: Mapping[str, str]) -> Verdicts:
    """The objects ``kubectl diff`` shows, from its ``diff -u -N …/LIVE-…/apps.v1.Deployment.ns.name`` lines."""
    found: Verdicts = set()
    for cluster, text in outputs.items():
        for line in text.splitlines():
            if not line.startswith("diff "):
                continue
            tokens = line.split()[-1].rsplit("/", 1)[-1].split(".")
            i = next(i for i, t in enumerate(tokens) if t[:1].isupper())
            found.add((cluster, tokens[i], tokens[i + 1], ".".join(tokens[i + 2:])))
    return found


def engine_verdicts(engine: FleetEngine) -> Verdicts:
    """The managed objects the engine calls different (OutOfSync or Missing), evaluated now."""
    found: Verdicts = set()
    for target in engine.targets.values():
        row = engine.evaluate_target(target)
        for r in row.resources:
            if r.managed and r.state in (ResourceState.OUT_OF_SYNC, ResourceState.MISSING):
                found.add((target.cluster.name, r.key.kind, r.key.namespace or "", r.key.name))
    return found


def fully_evaluated(engine: FleetEngine, rows: int) -> bool:
    snapshot = engine.snapshot
    return len(snapshot.apps) == rows and all(
        not row.loading and row.revision is not None and row.resources and row.sync is not SyncStatus.UNKNOWN
        for row in snapshot.apps)


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(0.02)


async def dry_runs_settled(engine: FleetEngine, timeout: float) -> None:
    """Every server-side dry run asked for has answered and nothing new was asked for in 0.5 s."""
    deadline = time.perf_counter() + timeout
    quiet_since, started = time.perf_counter(), -1
    while time.perf_counter() < deadline:
        now_started = engine._dry_runs_started  # the bench reads the engine's counter
        if engine._dry_runs or now_started != started:
            started, quiet_since = now_started, time.perf_counter()
        elif time.perf_counter() - quiet_since > 0.5:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("dry runs did not settle")


def pairs_of(n: int, candidate: Callable[[], float], baseline: Callable[[], float]) -> dict[str, Any]:
    """``n`` interleaved pairs (baseline first); medians and the median of per-pair ratios."""
    cand, base = [], []
    for _ in range(n):
        base.append(baseline())
        cand.append(candidate())
    ratios = [c / b for c, b in zip(cand, base, strict=True)]
    return {"candidate_s": round(statistics.median(cand), 4), "baseline_s": round(statistics.median(base), 4),
            "ratio": round(statistics.median(ratios), 3), "ratios": [round(r, 3) for r in ratios],
            "candidate_all_s": [round(c, 4) for c in cand], "baseline_all_s": [round(b, 4) for b in base]}


class Bench:
    def __init__(self, tmp: Path, plane: ControlPlane, kubectl: Kubectl, clusters: list[str], apps: list[str],
                 qps: float | None) -> None:
        self.tmp, self.plane, self.kubectl, self.clusters, self.apps = tmp, plane, kubectl, clusters, apps
        self.qps = qps
        self.repo = tmp / "repo"
        self.fleet = tmp / "fleetdeck.yaml"
        self.rows = len(clusters) * len(apps)
        self.runs = 0

    def setup(self) -> float:
        self.repo.mkdir()
        git(self.repo, "init", "-q", "-b", "main")
        write_repo(self.repo, self.apps, {})
        info = self.plane.clusters
        self.fleet.write_text(yaml.safe_dump({
            "repo": {"url": str(self.repo), "branch": "main", "interval": 3600},
            "clusters": [{"name": c, "kubeconfig": str(info[c].kubeconfig), "context": info[c].admin_context}
                         for c in self.clusters],
            "apps": [{"name": a, "path": a, "namespace": namespace(a)} for a in self.apps],
        }))
        seed = self.tmp / "seed.yaml"
        docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace(a)}} for a in self.apps]
        seed.write_text(yaml.safe_dump_all(docs + [o for a in self.apps for o in applied(a)]))
        start = time.perf_counter()
        self.kubectl.each(self.clusters, "apply", "--server-side", "--field-manager", "fleetdeck", "-f", str(seed))
        return time.perf_counter() - start

    def engine(self, *, read_only: bool) -> FleetEngine:
        self.runs += 1
        root = self.tmp / f"run{self.runs}"
        root.mkdir()
        settings = EngineSettings(publish_interval=0.05)
        if self.qps is not None:  # --qps: the client-side rate limit (0: none, as kubectl's applies measured here)
            settings = replace(settings, watch=replace(settings.watch, qps=self.qps, burst=max(100, int(self.qps * 2))))
        return make_engine(self.fleet, read_only=read_only, settings=settings,
                           journal=Journal(root / "journal.jsonl"), cache=root / "cache")

    # ---------------------------------------------------------------- cold start

    async def _cold(self) -> float:
        start = time.perf_counter()
        engine = self.engine(read_only=True)
        await engine.start()
        await engine.wait_ready(timeout=300)
        await until(lambda: fully_evaluated(engine, self.rows), 300, "cold start")
        elapsed = time.perf_counter() - start
        await engine.stop()
        return elapsed

    def cold_start(self, pairs: int) -> dict[str, Any]:
        def baseline() -> float:
            start = time.perf_counter()
            self.kubectl.each(self.clusters, "get", KINDS, "-A", "-o", "json")
            return time.perf_counter() - start

        return pairs_of(pairs, lambda: asyncio.run(self._cold()), baseline)

    # ---------------------------------------------------------------- writer engine: drift scan, sync

    async def writer(self, pairs: int, sync_pairs: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        start = time.perf_counter()
        engine = self.engine(read_only=False)
        await engine.start()
        await engine.wait_ready(timeout=300)
        await until(lambda: fully_evaluated(engine, self.rows), 300, "writer cold start")
        out["writer_evaluated_s"] = round(time.perf_counter() - start, 3)
        await dry_runs_settled(engine, 600)
        out["writer_dry_runs_settled_s"] = round(time.perf_counter() - start, 3)
        out["dry_runs"] = engine._dry_runs_started
        try:
            out["drift"] = await self._drift(engine, pairs)
            out["sync"] = await self._sync(engine, sync_pairs)
        finally:
            await engine.stop()
        return out

    def _manifests(self, engine: FleetEngine) -> dict[str, Path]:
        files = {}
        for c in self.clusters:
            docs = [prepare_for_apply(a, obj) for a in self.apps
                    for obj in engine.desired[(a, c)].objects.values()]
            files[c] = self.tmp / f"desired-{c}.yaml"
            files[c].write_text(yaml.safe_dump_all(docs))
        return files

    async def _drift(self, engine: FleetEngine, pairs: int) -> dict[str, Any]:
        drifted = 0
        for c in self.clusters:  # one app in five on each cluster: a ConfigMap value and the replicas
            for a in self.apps[::5]:
                ns = namespace(a)
                self.kubectl.run(c, "-n", ns, "patch", "configmap", f"{a}-config-3", "--field-manager", "kubectl-edit",
                                 "--type", "merge", "-p", '{"data":{"feature":"off"}}')
                self.kubectl.run(c, "-n", ns, "scale", "deployment", a, "--replicas", "2")
                drifted += 2
        expected = drifted
        await until(lambda: len(engine_verdicts(engine)) >= expected, 120, "the drift seen by the engine")
        await dry_runs_settled(engine, 300)
        files = self._manifests(engine)

        def kubectl_diff() -> Verdicts:
            return diff_verdicts(self.kubectl.each(
                self.clusters, "diff", "--server-side", "--force-conflicts", "--field-manager", "fleetdeck",
                ok=(0, 1), per_cluster=lambda c: ["-f", str(files[c])]))

        def scan() -> Verdicts:
            engine.verdicts.clear()  # every object compared again, from the live cache
            return engine_verdicts(engine)

        seen: dict[str, Verdicts] = {}

        def timed(name: str, fn: Callable[[], Verdicts]) -> Callable[[], float]:
            def run() -> float:
                start = time.perf_counter()
                seen[name] = fn()
                return time.perf_counter() - start
            return run

        result = pairs_of(pairs, timed("engine", scan), timed("kubectl", kubectl_diff))
        memo_start = time.perf_counter()
        engine_verdicts(engine)  # as the engine re-evaluates: the verdict memo kept
        result["memo_scan_s"] = round(time.perf_counter() - memo_start, 4)
        result["speedup"] = round(1 / result["ratio"], 1)
        result["objects"] = self.rows * OBJECTS_PER_APP
        result["drifted_made"] = drifted
        result["engine_different"] = len(seen["engine"])
        result["kubectl_different"] = len(seen["kubectl"])
        result["identical_verdicts"] = seen["engine"] == seen["kubectl"]
        if not result["identical_verdicts"]:
            result["only_engine"] = sorted(map(list, seen["engine"] - seen["kubectl"]))[:20]
            result["only_kubectl"] = sorted(map(list, seen["kubectl"] - seen["engine"]))[:20]
        return result

    async def _sync(self, engine: FleetEngine, pairs: int) -> dict[str, Any]:
        cluster = self.clusters[0]
        half = len(self.apps) // 2
        mine, theirs = self.apps[:half], self.apps[half:2 * half]
        labels: dict[str, str] = {}
        steps: list[int] = []
        requests: list[dict[str, int]] = []
        """Per candidate run: the requests the engine's client sent to the cluster during the sync, per verb
        (the sync's and the engine's own drift dry runs, of which ``engine_dry_runs_scheduled`` were scheduled)."""

        async def fleetdeck_sync(label: str) -> float:
            labels.update({a: label for a in mine})
            write_repo(self.repo, self.apps, labels)
            await engine.refresh()
            await until(lambda: all(all(r.state is ResourceState.OUT_OF_SYNC for r in engine.evaluate_target(
                engine.target(a, cluster)).resources if r.managed) for a in mine), 120, "the Git change rendered")
            client = engine.clusters[cluster].raw
            assert isinstance(client, KubeClient)
            sent, engine_dry_runs = dict(client.counters), engine._dry_runs_started
            start = time.perf_counter()

            async def one(app: str) -> None:
                plan = await engine.plan_sync(app, cluster, force_conflicts=True)  # as kubectl --force-conflicts
                steps.append(len(plan.steps))
                last = None
                async for state in engine.execute_plan(plan):
                    last = state
                if last is None or last.phase is not OperationPhase.SUCCEEDED:
                    raise RuntimeError(f"sync of {app}: {last}")
            await asyncio.gather(*(one(a) for a in mine))
            elapsed = time.perf_counter() - start
            requests.append({verb: n - sent.get(verb, 0) for verb, n in client.counters.items()
                             if verb != "watch" and n - sent.get(verb, 0)}
                            | {"engine_dry_runs_scheduled": engine._dry_runs_started - engine_dry_runs})
            return elapsed

        def kubectl_apply(label: str) -> float:
            doc = self.tmp / "apply.yaml"
            doc.write_text(yaml.safe_dump_all([o for a in theirs for o in applied(a, label)]))
            start = time.perf_counter()
            self.kubectl.run(cluster, "apply", "--server-side", "--force-conflicts", "--field-manager", "fleetdeck",
                             "-f", str(doc))
            return time.perf_counter() - start

        cand, base = [], []
        for i in range(pairs):
            base.append(kubectl_apply(f"k{i}"))
            cand.append(await fleetdeck_sync(f"s{i}"))
        ratios = [c / b for c, b in zip(cand, base, strict=True)]
        return {"objects": half * OBJECTS_PER_APP, "apps": half, "cluster": cluster,
                "candidate_s": round(statistics.median(cand), 3), "baseline_s": round(statistics.median(base), 3),
                "ratio": round(statistics.median(ratios), 3), "ratios": [round(r, 3) for r in ratios],
                "candidate_all_s": [round(c, 3) for c in cand], "baseline_all_s": [round(b, 3) for b in base],
                "plan_steps_per_app": statistics.median(steps) if steps else 0, "requests": requests}


def run(clusters_n: int, apps_n: int, pairs: int, sync_pairs: int, qps: float | None = None) -> dict[str, Any]:
    clusters = [f"rs{i}" for i in range(clusters_n)]
    apps = [f"app{i:03d}" for i in range(apps_n)]
    result: dict[str, Any] = {"clusters": clusters_n, "apps": apps_n, "objects": clusters_n * apps_n * OBJECTS_PER_APP,
                              "loadavg_before": [round(x, 2) for x in os.getloadavg()],
                              "machine": f"{platform.machine()} {os.cpu_count()} CPU, Python {platform.python_version()}",
                              "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                              "engine_qps": "default (50/s, burst 100)" if qps is None else qps}
    with tempfile.TemporaryDirectory(prefix="fleetdeck-real-bench-") as tmp_name:
        tmp = Path(tmp_name)
        binaries = find_binaries(allow_build=False)
        plane = ControlPlane(tmp / "plane", names=tuple(clusters), binaries=binaries)
        start = time.perf_counter()
        plane.start()
        try:
            result["control_plane_start_s"] = round(time.perf_counter() - start, 1)
            bench = Bench(tmp, plane, Kubectl(binaries.kubectl, plane.kubeconfig), clusters, apps, qps)
            result["seed_s"] = round(bench.setup(), 1)
            import core.engine.fleet_engine  # noqa: F401  # imports once, not timed
            result["cold_start"] = bench.cold_start(pairs)
            result.update(asyncio.run(bench.writer(pairs, sync_pairs)))
        finally:
            plane.stop()
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


def main(argv: list[str] | None = None, out: Callable[[str], object] = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.real_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--qps", type=float, default=None,
                        help="the engine's client-side rate limit per cluster (default: its setting, 50/s; 0: none)")
    parser.add_argument("--smoke", action="store_true", help="1 cluster × 4 apps, one pair")
    args = parser.parse_args(argv)
    if args.smoke:
        args.clusters, args.apps, args.pairs = 1, 4, 1
    result = run(args.clusters, args.apps, args.pairs, args.pairs, args.qps)
    out(json.dumps(result, indent=2))
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"real-{args.clusters}x{args.apps}.json").write_text(json.dumps(result, indent=2))
    drift, sync = result["drift"], result["sync"]
    return 0 if drift["identical_verdicts"] and drift["speedup"] >= 10 and sync["ratio"] <= 1.2 else 1


if __name__ == "__main__":
    sys.exit(main())

