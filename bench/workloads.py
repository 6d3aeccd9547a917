"""Synthetic but realistic objects for benchmarks: Deployments and Pods shaped like apiserver output."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "objects"


def deployment_pair() -> tuple[dict[str, Any], dict[str, Any]]:
    """The hand-checked desired manifest and live Deployment used by the reconcile tests."""
    desired = yaml.safe_load((FIXTURES / "deployment-desired.yaml").read_text())
    live = json.loads((FIXTURES / "deployment-live.json").read_text())
    return desired, live


def pairs(n: int, *, drifted_every: int = 100) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``n`` (desired, live) pairs with distinct names; one in ``drifted_every`` has a changed field."""
    desired, live = deployment_pair()
    live["spec"]["replicas"] = desired["spec"]["replicas"]  # the fixture's kubectl-edit drift, undone
    result = []
    for i in range(n):
        d, lv = copy.deepcopy(desired), copy.deepcopy(live)
        d["metadata"]["name"] = lv["metadata"]["name"] = f"web-{i}"
        if drifted_every and i % drifted_every == 0:
            lv["spec"]["replicas"] = int(lv["spec"].get("replicas", 1)) + 3
        result.append((d, lv))
    return result


def pod(i: int, namespace: str = "bench") -> dict[str, Any]:
    """A Running Pod of about 4 KiB, with managedFields, as a watch event carries it."""
    name = f"web-7d4b9c-{i:06d}"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": namespace, "uid": f"00000000-0000-0000-0000-{i:012d}",
            "resourceVersion": str(1000 + i), "creationTimestamp": "2026-12-01T08:00:00Z",
            "labels": {"app": "web", "pod-template-hash": "7d4b9c", "fleetdeck.io/app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c",
                                 "uid": "11111111-1111-1111-1111-111111111111", "controller": True}],
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                               "time": "2026-12-01T08:00:00Z", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}, "f:pod-template-hash": {}}},
                                            "f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}}}}}}],
        },
        "spec": {"containers": [{"name": "web", "image": "registry.example/web:1.4.2",
                                 "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                 "env": [{"name": f"VAR_{k}", "value": "x" * 20} for k in range(8)],
                                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                                 "terminationMessagePath": "/dev/termination-log",
                                 "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
                 "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "nodeName": "kwok-node-0",
                 "serviceAccountName": "default", "schedulerName": "default-scheduler"},
        "status": {"phase": "Running", "podIP": f"10.0.{i // 250 % 250}.{i % 250}",
                   "conditions": [{"type": t, "status": "True", "lastTransitionTime": "2026-12-01T08:00:01Z"}
                                  for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
                   "containerStatuses": [{"name": "web", "ready": True, "restartCount": 0,
                                          "state": {"running": {"startedAt": "2026-12-01T08:00:01Z"}}}]},
    }


def git(repo: Path, *args: str) -> None:
    """Run git in ``repo`` with a fixed identity and no user configuration."""
    env = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@x", "PATH": "/usr/bin:/bin", "HOME": str(repo)}
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def write_fleet(root: Path, clusters: list[str], apps: list[str],
                objects: Callable[[str], list[dict[str, Any]]]) -> Path:
    """A config repo under ``root/repo`` with one directory of ``objects(app)`` per app, committed, and a
    fleet file deploying every app to every (simulated) cluster; the fleet file's path."""
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for name in apps:
        (repo / name).mkdir()
        (repo / name / "all.yaml").write_text(yaml.safe_dump_all(objects(name)))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "fleet")
    fleet = root / "fleetdeck.yaml"
    fleet.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "interval": 3600},
        "clusters": [{"name": c} for c in clusters],
        "apps": [{"name": n, "path": n, "namespace": n} for n in apps],
    }))
    return fleet
