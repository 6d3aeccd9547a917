"""``fleetdeck events`` against a real kube-apiserver: the Events of an app's objects and of their children.

No controller runs on the test clusters, so the test plays kube-controller-manager and the kubelet itself:
after a sync it creates a ReplicaSet owned by the app's Deployment, a Pod owned by that ReplicaSet, and
Events about them through the API (core/v1 and events.k8s.io/v1), plus events about objects that are not
the app's. The real ``fleetdeck events`` command must show the app's events only, Warnings first, identical
ones folded with their counts summed, a hostile message inert, and the same as JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from devcluster import ClusterInfo
from tests.cluster.conftest import app_objects, commit, fleet_file
from tests.cluster.test_cli import run

pytestmark = pytest.mark.cluster

HOSTILE = "pull failed\x1b]0;pwned\x07 \u202eevil\x9b2J"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _time(minutes_ago: float) -> str:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def core_event(namespace: str, name: str, involved: dict[str, Any], *, type: str, reason: str, message: str,
               count: int, minutes_ago: float) -> dict[str, Any]:
    meta = involved["metadata"]
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {"apiVersion": involved["apiVersion"], "kind": involved["kind"],
                               "namespace": meta.get("namespace", namespace), "name": meta["name"],
                               "uid": meta.get("uid", "")},
            "type": type, "reason": reason, "message": message, "count": count,
            "firstTimestamp": _time(minutes_ago + 30), "lastTimestamp": _time(minutes_ago),
            "source": {"component": "kubelet"}}


def app_pod(rest: Any, namespace: str, deployment: dict[str, Any]) -> dict[str, Any]:
    """A Pod of the app's Deployment through a ReplicaSet: the one kube-controller-manager made when it runs,
    else one made here the way it would (owner references Deployment → ReplicaSet → Pod)."""
    ns = f"/api/v1/namespaces/{namespace}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sets = {rs["metadata"]["uid"]: rs for rs in
                rest.get(f"/apis/apps/v1/namespaces/{namespace}/replicasets")["items"]
                if any(r.get("uid") == deployment["metadata"]["uid"] for r in rs["metadata"].get("ownerReferences", []))}
        for pod in rest.get(f"{ns}/pods")["items"]:
            if any(r.get("uid") in sets for r in pod["metadata"].get("ownerReferences", [])):
                return {**pod, "apiVersion": "v1", "kind": "Pod"}
        time.sleep(0.5)
    owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": deployment["metadata"]["uid"],
             "controller": True}
    template = deployment["spec"]["template"]
    replicaset = rest.request("POST", f"/apis/apps/v1/namespaces/{namespace}/replicasets", body={
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-5d4f", "labels": {"app": "web"}, "ownerReferences": [owner]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template}})
    pod = rest.request("POST", f"{ns}/pods", body={
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-5d4f-x7k2p", "labels": {"app": "web"}, "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d4f",
            "uid": replicaset["metadata"]["uid"], "controller": True}]},
        "spec": template["spec"]})
    return {**pod, "apiVersion": "v1", "kind": "Pod"}


def test_events_of_an_app_and_its_children(tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                           namespace: str) -> None:
    """Warnings first, identical ones folded (counts summed), children's events included, other objects'
    events left out, both Event APIs read, a hostile message inert; the same as JSON."""
    app = namespace
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    synced = run(tmp_path, "sync", app, "--fleet", str(fleet), "--yes")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    rest = cluster.rest()
    ns = f"/api/v1/namespaces/{namespace}"
    deployment = {**rest.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web"), "apiVersion": "apps/v1",
                  "kind": "Deployment"}
    pod = app_pod(rest, namespace, deployment)
    pod_name = pod["metadata"]["name"]
    owner = pod["metadata"]["ownerReferences"][0]
    stranger = {**rest.request("POST", f"{ns}/pods", body={
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "not-the-apps"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}), "apiVersion": "v1", "kind": "Pod"}
    # the kubelet, twice the same back-off (two Event objects: one line, counts summed), and a hostile one
    backoff = f"Back-off restarting failed container web in pod {pod_name}"
    for name, count, ago in ((f"{pod_name}.a1", 4, 3), (f"{pod_name}.a2", 3, 1)):
        rest.request("POST", f"{ns}/events", body=core_event(namespace, name, pod, type="Warning", reason="BackOff",
                                                               message=backoff, count=count, minutes_ago=ago))
    rest.request("POST", f"{ns}/events", body=core_event(namespace, f"{pod_name}.a3", pod, type="Warning",
                                                           reason="Failed", message=HOSTILE, count=1, minutes_ago=2))
    rest.request("POST", f"{ns}/events", body=core_event(namespace, "web.b1", deployment, type="Normal", reason="ScalingReplicaSet",
                                                           message="Scaled up replica set web-5d4f from 0 to 1",
                                                           count=1, minutes_ago=0))
    # events.k8s.io/v1, about the ReplicaSet (the same stored objects as core/v1 Events)
    rest.request("POST", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events", body={
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": f"{owner['name']}.c1"},
        "regarding": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "namespace": namespace, "name": owner["name"],
                      "uid": owner["uid"]},
        "type": "Normal", "reason": "Recorded", "note": f"Recorded by the test: {pod_name}",
        "action": "Create", "reportingController": "replicaset-controller", "reportingInstance": "kcm-1",
        "eventTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
    rest.request("POST", f"{ns}/events", body=core_event(namespace, "not-the-apps.d1", stranger, type="Warning",
                                                           reason="BackOff", message="not this app", count=9,
                                                           minutes_ago=0))

    result = run(tmp_path, "events", app, "--fleet", str(fleet), "-o", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not RAW.search(result.stdout)
    target = json.loads(result.stdout)["targets"][0]
    assert target["listed"] and target["error"] == "" and target["cluster"] == cluster.name
    shown = [(e["type"], e["reason"], e["kind"], e["name"], e["count"]) for e in target["events"]]
    types = [e["type"] for e in target["events"]]
    assert types == sorted(types, key=lambda t: t != "Warning"), "Warnings first"
    mine = [line for line in shown if line[3] == pod_name]
    assert mine[:2] == [("Warning", "BackOff", "Pod", pod_name, 7), ("Warning", "Failed", "Pod", pod_name, 1)], shown
    assert ("Normal", "Recorded", "ReplicaSet", owner["name"], 1) in shown, shown  # events.k8s.io/v1
    assert any(line[1] == "ScalingReplicaSet" and line[2] == "Deployment" for line in shown), shown
    assert all(line[3] != "not-the-apps" for line in shown), "another object's events are not the app's"
    hostile = next(e for e in target["events"] if e["reason"] == "Failed")
    assert hostile["message"] == HOSTILE  # escaped in the bytes, the same string once parsed
    backoff_line = next(e for e in target["events"] if e["reason"] == "BackOff" and e["name"] == pod_name)
    assert backoff_line["message"] == backoff and backoff_line["last_seen"] > backoff_line["first_seen"]

    table = run(tmp_path, "events", app, "--fleet", str(fleet))
    assert table.returncode == 0, table.stdout + table.stderr
    assert not RAW.search(table.stdout) and "\x1b" not in table.stdout
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["CLUSTER", "LAST", "SEEN", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE"]
    backoff_row = next(line for line in lines if "BackOff" in line)
    assert f"Pod/{namespace}/{pod_name}" in backoff_row and " 7 " in backoff_row
    assert lines.index(backoff_row) < next(i for i, line in enumerate(lines) if " Normal " in line)
    assert "evil" in table.stdout and "not this app" not in table.stdout


def test_events_as_the_viewer(tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    """The read-only viewer (``view`` role) may list events: the verb answers (exit 0, no error). (The app
    holds no Secret here: the viewer may not list Secrets, and a one-shot engine waits 30 s for a kind that
    keeps failing before it answers, events or not.)"""
    commit(repo, [o for o in app_objects(namespace) if o["kind"] != "Secret"], "web without its Secret")
    admin = fleet_file(tmp_path, repo, cluster, namespace)
    assert run(tmp_path, "sync", namespace, "--fleet", str(admin), "--yes").returncode == 0
    viewer = fleet_file(tmp_path, repo, cluster, namespace, viewer=True)
    result = run(tmp_path, "events", namespace, "--fleet", str(viewer), "--read-only")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("CLUSTER") and "not readable" not in result.stderr
