"""A tiny kube-controller-manager for the simulated cluster: workloads get children and status.

Role: one synchronous ``reconcile()`` pass moves every object one step towards its steady state:
Deployments get a ReplicaSet per template (old ones scaled down once the new one is available) and
status with ``Available``/``Progressing`` conditions (``ProgressDeadlineExceeded`` when the new pods
fail); ReplicaSets, StatefulSets, DaemonSets and Jobs get Pods with ownerReferences; Pods get the
status the simulated kubelet reports; Services, Ingresses, PVCs, HPAs and CronJobs get minimal
status. ``SimulatedCluster`` runs passes on every change and every tick, and ``settle()`` runs them
until nothing changes.

Constraint: writes only through ``ObjectStore`` (as the managers ``kube-controller-manager`` and
``kubelet``); never awaits, so a pass is atomic. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from core.live.api import JSON
from core.model import ResourceKey
from core.simulated.event_recorder import record_event
from core.simulated.jsoncopy import json_copy
from core.simulated.objects import rfc3339
from core.simulated.pods import SimulationTiming, is_failing, is_ready, pod_status, safe_hash
from core.simulated.store import ObjectStore

CONTROLLER = "kube-controller-manager"
KUBELET = "kubelet"
_REVISION = "deployment.kubernetes.io/revision"
_POD = ("", "Pod")
_REPLICASET = ("apps", "ReplicaSet")


class Controllers:
    """The simulated controllers of one cluster.

    Args:
        store: the cluster's store.
        timing: delays of the simulation.
        nodes: how many nodes DaemonSets run on.
    """

    def __init__(self, store: ObjectStore, *, timing: SimulationTiming, nodes: int = 3) -> None:
        self.store = store
        self.timing = timing
        self.nodes = tuple(f"node-{i + 1}" for i in range(nodes))
        self._born: dict[str, float] = {}
        self._rollouts: dict[str, float] = {}
        self._restarts: dict[str, int] = {}
        self._names = 0

    def reconcile(self) -> int:
        """One pass over every controller; the number of writes it made."""
        before = self.store.resource_version
        steps: tuple[tuple[tuple[str, str], Callable[[JSON], None]], ...] = (
            (("apps", "Deployment"), self._deployment),
            (_REPLICASET, self._replicaset),
            (("apps", "StatefulSet"), self._statefulset),
            (("apps", "DaemonSet"), self._daemonset),
            (("batch", "Job"), self._job),
            (("batch", "CronJob"), self._cronjob),
            (_POD, self._pod),
            (("", "Service"), self._service),
            (("", "PersistentVolumeClaim"), self._pvc),
            (("networking.k8s.io", "Ingress"), self._ingress),
            (("autoscaling", "HorizontalPodAutoscaler"), self._hpa),
        )
        for group_kind, step in steps:
            for obj in self.store.objects(group_kind):
                if self.store.peek(ResourceKey.of(obj)) is obj:
                    step(obj)
        return self.store.resource_version - before

    def restart(self, pod: ResourceKey) -> None:
        """Count one more container restart for ``pod`` (reported on the next pass)."""
        obj = self.store.peek(pod)
        if obj is not None:
            uid = str(obj["metadata"]["uid"])
            self._restarts[uid] = self._restarts.get(uid, 0) + 1

    def backdate(self, seconds: float) -> None:
        """Pretend every pod and rollout seen so far started ``seconds`` earlier (see ``fast_forward``)."""
        for table in (self._born, self._rollouts):
            for key in table:
                table[key] -= seconds

    # ------------------------------------------------------------------------------------ helpers

    def _now(self) -> float:
        return self.store.clock()

    def _age(self, obj: Mapping[str, Any]) -> float:
        return self._now() - self._born.setdefault(str(obj["metadata"]["uid"]), self._now())

    def _owned(self, group_kind: tuple[str, str], owner: Mapping[str, Any]) -> list[JSON]:
        uid = owner["metadata"]["uid"]
        namespace = owner["metadata"].get("namespace", "")
        return [o for o in self.store.objects(group_kind, namespace)
                if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or ())]

    def _write_status(self, obj: Mapping[str, Any], status: JSON, *, manager: str = CONTROLLER) -> None:
        if obj.get("status") != status:
            self.store.update(ResourceKey.of(obj), {"status": status}, manager=manager, status=True, copy_result=False)

    def _patch(self, obj: Mapping[str, Any], patch: JSON) -> None:
        self.store.update(ResourceKey.of(obj), patch, manager=CONTROLLER, copy_result=False)

    def _create(self, group_kind: tuple[str, str], obj: JSON) -> None:
        resource = self.store.discovery.lookup(*group_kind)
        if resource is not None:
            self.store.create(resource, obj, manager=CONTROLLER, copy_result=False)

    def _delete(self, obj: Mapping[str, Any]) -> None:
        self.store.delete(ResourceKey.of(obj), propagation="Background")

    def _suffix(self, length: int = 5) -> str:
        self._names += 1
        return safe_hash([self.store.cluster, self._names], length)

    def _pod_for(self, owner: Mapping[str, Any], template: Mapping[str, Any], name: str,
                 labels: Mapping[str, str], node: str) -> None:
        meta = template.get("metadata") or {}
        spec = json_copy(dict(template.get("spec") or {}))
        spec.setdefault("nodeName", node)
        spec.setdefault("serviceAccountName", "default")
        pod: JSON = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": owner["metadata"]["namespace"],
                "labels": {**(meta.get("labels") or {}), **labels},
                "ownerReferences": [owner_reference(owner)],
            },
            "spec": spec,
        }
        if meta.get("annotations"):
            pod["metadata"]["annotations"] = dict(meta["annotations"])
        self._create(_POD, pod)

    def _node(self, index: int) -> str:
        return self.nodes[index % len(self.nodes)] if self.nodes else "node-1"

    # ------------------------------------------------------------------------------------ deployments

    def _deployment(self, deployment: JSON) -> None:
        spec = deployment.get("spec") or {}
        if spec.get("paused"):
            return
        template = spec.get("template") or {}
        template_hash = safe_hash(template)
        name = deployment["metadata"]["name"]
        sets = self._owned(_REPLICASET, deployment)
        current = next((rs for rs in sets if rs["metadata"]["name"] == f"{name}-{template_hash}"), None)
        replicas = int(spec.get("replicas", 1))
        revision = _revision(current) if current is not None else 1 + max(map(_revision, sets), default=0)
        if current is None:
            self._create(_REPLICASET, _replicaset_for(deployment, template_hash, revision, replicas))
            record_event(self.store, deployment, type="Normal", reason="ScalingReplicaSet", count=1,
                         source="deployment-controller",
                         message=f"Scaled up replica set {name}-{template_hash} from 0 to {replicas}")
        elif (current.get("spec") or {}).get("replicas") != replicas:
            self._patch(current, {"spec": {"replicas": replicas}})
        if (deployment["metadata"].get("annotations") or {}).get(_REVISION) != str(revision):
            self._patch(deployment, {"metadata": {"annotations": {_REVISION: str(revision)}}})
        self._retire_old_sets(deployment, current, sets)
        self._deployment_status(deployment, template_hash, replicas)

    def _retire_old_sets(self, deployment: JSON, current: JSON | None, sets: list[JSON]) -> None:
        if current is None or not _fully_available(current):
            return
        old = sorted((rs for rs in sets if rs is not current), key=_revision)
        for rs in old:
            if (rs.get("spec") or {}).get("replicas"):
                self._patch(rs, {"spec": {"replicas": 0}})
        limit = int((deployment.get("spec") or {}).get("revisionHistoryLimit", 10))
        for rs in old[: max(0, len(old) - limit)]:
            self._delete(rs)

    def _deployment_status(self, deployment: JSON, template_hash: str, replicas: int) -> None:
        name, uid = deployment["metadata"]["name"], deployment["metadata"]["uid"]
        sets = self._owned(_REPLICASET, deployment)
        current = next((rs for rs in sets if rs["metadata"]["name"] == f"{name}-{template_hash}"), None)
        counts = {field: sum(int((rs.get("status") or {}).get(field, 0)) for rs in sets)
                  for field in ("replicas", "readyReplicas", "availableReplicas")}
        updated = int(((current or {}).get("status") or {}).get("replicas", 0))
        started = self._rollouts.setdefault(f"{uid}/{template_hash}", self._now())
        failing = current is not None and any(is_failing(p) for p in self._owned(_POD, current))
        complete = updated == replicas == counts["replicas"] and counts["availableReplicas"] >= replicas
        rs_name = f"{name}-{template_hash}"
        if failing and self._now() - started >= self.timing.progress_deadline:
            progressing = ("False", "ProgressDeadlineExceeded", f'ReplicaSet "{rs_name}" has timed out progressing.')
        elif complete:
            progressing = ("True", "NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.')
        else:
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        available = (("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
                     if counts["availableReplicas"] >= replicas else
                     ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."))
        status = _omit_zero({
            "observedGeneration": deployment["metadata"].get("generation", 1),
            "replicas": counts["replicas"],
            "updatedReplicas": updated,
            "readyReplicas": counts["readyReplicas"],
            "availableReplicas": counts["availableReplicas"],
            "unavailableReplicas": max(0, replicas - counts["availableReplicas"]),
        })
        status["conditions"] = self._conditions(deployment, {"Available": available, "Progressing": progressing})
        self._write_status(deployment, status)

    def _conditions(self, obj: Mapping[str, Any], wanted: Mapping[str, tuple[str, str, str]]) -> list[JSON]:
        """Conditions with their times kept while status and reason stay the same."""
        old = {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or ()}
        now = rfc3339(self._now())
        out = []
        for kind, (value, reason, message) in wanted.items():
            previous = old.get(kind) or {}
            same_status = previous.get("status") == value
            same_reason = same_status and previous.get("reason") == reason
            out.append({
                "type": kind, "status": value, "reason": reason, "message": message,
                "lastUpdateTime": previous["lastUpdateTime"] if same_reason and "lastUpdateTime" in previous else now,
                "lastTransitionTime": previous["lastTransitionTime"]
                if same_status and "lastTransitionTime" in previous else now,
            })
        return out

    def _replicaset(self, replicaset: JSON) -> None:
        spec = replicaset.get("spec") or {}
        want = int(spec.get("replicas", 1))
        pods = sorted(self._owned(_POD, replicaset), key=lambda p: p["metadata"]["creationTimestamp"])
        name = replicaset["metadata"]["name"]
        for index in range(len(pods), want):
            self._pod_for(replicaset, spec.get("template") or {}, f"{name}-{self._suffix()}", {}, self._node(index))
        for pod in pods[want:]:
            self._delete(pod)
        pods = self._owned(_POD, replicaset)
        ready = sum(1 for p in pods if is_ready(p))
        status = _omit_zero({"replicas": len(pods), "fullyLabeledReplicas": len(pods), "readyReplicas": ready,
                             "availableReplicas": ready})
        status["observedGeneration"] = replicaset["metadata"].get("generation", 1)
        self._write_status(replicaset, status)

    # ------------------------------------------------------------------------------------ other workloads

    def _statefulset(self, statefulset: JSON) -> None:
        spec = statefulset.get("spec") or {}
        name, want = statefulset["metadata"]["name"], int(spec.get("replicas", 1))
        revision = f"{name}-{safe_hash(spec.get('template') or {})}"
        pods = {p["metadata"]["name"]: p for p in self._owned(_POD, statefulset)}
        self._claims_for(statefulset, want)
        outdated = sorted((p for p in pods.values() if _revision_label(p) != revision),
                          key=lambda p: p["metadata"]["name"], reverse=True)
        if outdated and all(is_ready(p) for p in pods.values()):
            self._delete(outdated[0])
        for index in range(want):
            pod_name = f"{name}-{index}"
            if pod_name not in pods:
                labels = {"controller-revision-hash": revision, "statefulset.kubernetes.io/pod-name": pod_name,
                          "apps.kubernetes.io/pod-index": str(index)}
                self._pod_for(statefulset, spec.get("template") or {}, pod_name, labels, self._node(index))
        for pod_name, pod in pods.items():
            if int(pod_name.rpartition("-")[2] or 0) >= want:
                self._delete(pod)
        self._statefulset_status(statefulset, revision, want)

    def _claims_for(self, statefulset: JSON, replicas: int) -> None:
        namespace, name = statefulset["metadata"]["namespace"], statefulset["metadata"]["name"]
        for template in (statefulset.get("spec") or {}).get("volumeClaimTemplates") or ():
            for index in range(replicas):
                claim = f"{template['metadata']['name']}-{name}-{index}"
                if self.store.peek(ResourceKey("", "PersistentVolumeClaim", namespace, claim)) is None:
                    self._create(("", "PersistentVolumeClaim"), {
                        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": {"name": claim, "namespace": namespace,
                                     "labels": dict((template.get("metadata") or {}).get("labels") or {})},
                        "spec": json_copy(template.get("spec") or {}),
                    })

    def _statefulset_status(self, statefulset: JSON, revision: str, want: int) -> None:
        pods = self._owned(_POD, statefulset)
        ready = sum(1 for p in pods if is_ready(p))
        updated = sum(1 for p in pods if _revision_label(p) == revision)
        previous = (statefulset.get("status") or {}).get("currentRevision")
        current = revision if updated == want and ready == want else (previous or revision)
        status = _omit_zero({"replicas": len(pods), "readyReplicas": ready, "availableReplicas": ready,
                             "currentReplicas": updated if current == revision else len(pods) - updated,
                             "updatedReplicas": updated})
        status.update(observedGeneration=statefulset["metadata"].get("generation", 1), currentRevision=current,
                      updateRevision=revision, collisionCount=0)
        self._write_status(statefulset, status)

    def _daemonset(self, daemonset: JSON) -> None:
        spec = daemonset.get("spec") or {}
        name = daemonset["metadata"]["name"]
        revision = safe_hash(spec.get("template") or {})
        pods = {(p.get("spec") or {}).get("nodeName"): p for p in self._owned(_POD, daemonset)}
        for index, node in enumerate(self.nodes):
            pod = pods.get(node)
            if pod is not None and _revision_label(pod) != revision:
                self._delete(pod)
                pod = None
            if pod is None:
                self._pod_for(daemonset, spec.get("template") or {}, f"{name}-{safe_hash([name, node, revision], 5)}",
                              {"controller-revision-hash": revision}, self._node(index))
        pods_now = self._owned(_POD, daemonset)
        ready = sum(1 for p in pods_now if is_ready(p))
        status = _omit_zero({
            "currentNumberScheduled": len(pods_now), "desiredNumberScheduled": len(self.nodes),
            "numberReady": ready, "numberAvailable": ready,
            "updatedNumberScheduled": sum(1 for p in pods_now if _revision_label(p) == revision),
            "numberUnavailable": len(self.nodes) - ready,
        })
        status.update(observedGeneration=daemonset["metadata"].get("generation", 1), numberMisscheduled=0)
        self._write_status(daemonset, status)

    def _job(self, job: JSON) -> None:
        spec = job.get("spec") or {}
        if spec.get("suspend"):
            return
        name, completions = job["metadata"]["name"], int(spec.get("completions", 1))
        pods = self._owned(_POD, job)
        if not pods and not (job.get("status") or {}).get("conditions"):
            labels = {"batch.kubernetes.io/job-name": name, "job-name": name,
                      "batch.kubernetes.io/controller-uid": job["metadata"]["uid"]}
            for index in range(completions):
                self._pod_for(job, spec.get("template") or {}, f"{name}-{self._suffix()}", labels, self._node(index))
            pods = self._owned(_POD, job)
        self._job_status(job, pods, completions)

    def _job_status(self, job: JSON, pods: list[JSON], completions: int) -> None:
        phases = [(p.get("status") or {}).get("phase") for p in pods]
        succeeded, failed = phases.count("Succeeded"), phases.count("Failed")
        status = _omit_zero({"active": len(pods) - succeeded - failed, "succeeded": succeeded, "failed": failed,
                             "ready": sum(1 for p in pods if is_ready(p))})
        status["startTime"] = job["metadata"]["creationTimestamp"]
        old = job.get("status") or {}
        if succeeded >= completions:
            status["conditions"] = self._conditions(job, {
                "SuccessCriteriaMet": ("True", "CompletionsReached", "Reached expected number of succeeded pods"),
                "Complete": ("True", "CompletionsReached", "Reached expected number of succeeded pods")})
            status["completionTime"] = old.get("completionTime") or rfc3339(self._now())
        elif failed and self._age(job) >= self.timing.progress_deadline:
            status["conditions"] = self._conditions(job, {
                "FailureTarget": ("True", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                "Failed": ("True", "BackoffLimitExceeded", "Job has reached the specified backoff limit")})
        self._write_status(job, status)

    def _cronjob(self, cronjob: JSON) -> None:
        status = dict(cronjob.get("status") or {})
        if not status.get("lastScheduleTime") and self._age(cronjob) >= self.timing.ready_delay:
            status["lastScheduleTime"] = status["lastSuccessfulTime"] = rfc3339(self._now())
        self._write_status(cronjob, status)

    def _pod(self, pod: JSON) -> None:
        uid = str(pod["metadata"]["uid"])
        self._age(pod)
        status = pod_status(pod, born=self._born[uid], now=self._now(), timing=self.timing,
                            restarts=self._restarts.get(uid, 0), pod_ip=_pod_ip(uid))
        self._write_status(pod, status, manager=KUBELET)
        self._pod_events(pod, status)

    def _pod_events(self, pod: JSON, status: Mapping[str, Any]) -> None:
        """The kubelet's Warnings about a failing container (what ``kubectl describe pod`` lists)."""
        name = pod["metadata"]["name"]
        for container in status.get("containerStatuses") or ():
            waiting = (container.get("state") or {}).get("waiting") or {}
            image = container.get("image", "")
            if waiting.get("reason") == "CrashLoopBackOff":
                record_event(self.store, pod, type="Warning", reason="BackOff", source=KUBELET,
                             message=f"Back-off restarting failed container {container.get('name')} in pod {name}",
                             count=max(1, int(container.get("restartCount") or 1)))
            elif waiting.get("reason") == "ImagePullBackOff":
                record_event(self.store, pod, type="Warning", reason="Failed", source=KUBELET, count=1,
                             message=f'Failed to pull image "{image}": manifest unknown')
                record_event(self.store, pod, type="Warning", reason="BackOff", source=KUBELET, count=1,
                             message=f'Back-off pulling image "{image}"')

    # ------------------------------------------------------------------------------------ networking, storage

    def _service(self, service: JSON) -> None:
        is_lb = (service.get("spec") or {}).get("type") == "LoadBalancer"
        ingress = [{"ip": _public_ip(service), "ipMode": "VIP"}] if is_lb else []
        self._write_status(service, {"loadBalancer": {"ingress": ingress} if ingress else {}})

    def _ingress(self, ingress: JSON) -> None:
        self._write_status(ingress, {"loadBalancer": {"ingress": [{"ip": _public_ip(ingress)}]}})

    def _pvc(self, claim: JSON) -> None:
        spec = claim.get("spec") or {}
        if not spec.get("volumeName"):
            self._patch(claim, {"spec": {"volumeName": f"pvc-{claim['metadata']['uid']}"}})
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        self._write_status(claim, {"phase": "Bound", "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
                                   "capacity": {"storage": storage}})

    def _hpa(self, hpa: JSON) -> None:
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        group = str(ref.get("apiVersion", "apps/v1")).rpartition("/")[0]
        target = self.store.peek(ResourceKey(group, str(ref.get("kind", "")), hpa["metadata"]["namespace"],
                                             str(ref.get("name", ""))))
        low, high = int(spec.get("minReplicas", 1)), int(spec.get("maxReplicas", 1))
        current = int(((target or {}).get("spec") or {}).get("replicas", 1))
        desired = min(max(current, low), high)
        if target is not None and desired != current:
            self._patch(target, {"spec": {"replicas": desired}})
        self._write_status(hpa, {
            "currentReplicas": current, "desiredReplicas": desired, "currentMetrics": [],
            "conditions": self._conditions(hpa, {
                "AbleToScale": ("True", "ReadyForNewScale", "recommended size matches current size"),
                "ScalingActive": ("True", "ValidMetricFound", "the HPA was able to successfully calculate a "
                                  "replica count from cpu resource utilization (percentage of request)"),
                "ScalingLimited": ("False", "DesiredWithinRange", "the desired count is within the acceptable range"),
            }),
        })


def owner_reference(owner: Mapping[str, Any]) -> JSON:
    """A controller ownerReference to ``owner``."""
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def _replicaset_for(deployment: JSON, template_hash: str, revision: int, replicas: int) -> JSON:
    spec = deployment["spec"]
    template = json_copy(spec.get("template") or {})
    template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = template_hash
    selector = json_copy(spec.get("selector") or {})
    selector.setdefault("matchLabels", {})["pod-template-hash"] = template_hash
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{deployment['metadata']['name']}-{template_hash}",
            "namespace": deployment["metadata"]["namespace"],
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {_REVISION: str(revision), "deployment.kubernetes.io/desired-replicas": str(replicas)},
            "ownerReferences": [owner_reference(deployment)],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
    }


def _revision(replicaset: Mapping[str, Any]) -> int:
    value = ((replicaset.get("metadata") or {}).get("annotations") or {}).get(_REVISION, "0")
    return int(value) if str(value).isdigit() else 0


def _revision_label(pod: Mapping[str, Any]) -> str:
    return str(((pod.get("metadata") or {}).get("labels") or {}).get("controller-revision-hash", ""))


def _fully_available(replicaset: Mapping[str, Any]) -> bool:
    want = int((replicaset.get("spec") or {}).get("replicas", 1))
    return int((replicaset.get("status") or {}).get("availableReplicas", 0)) >= want


def _omit_zero(values: Mapping[str, int]) -> JSON:
    """Status counters as the API serializes them: zero values are omitted."""
    return {k: v for k, v in values.items() if v}


def _pod_ip(uid: str) -> str:
    number = int(safe_hash(uid, 4).encode().hex(), 16)
    return f"10.244.{number % 250}.{number // 250 % 250 + 1}"


def _public_ip(obj: Mapping[str, Any]) -> str:
    number = int(safe_hash(obj["metadata"]["uid"], 2).encode().hex(), 16)
    return f"203.0.113.{number % 250 + 1}"

