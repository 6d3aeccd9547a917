"""Make the demo fleet move: drift, pod restarts and rollouts at random, reproducibly.

Role: ``live_changes`` is a long-running coroutine (the engine, or the demo's owner, runs it as a
guarded task) that every few seconds makes one change a real fleet sees all the time: someone
``kubectl edit``s a replica count or a ConfigMap value (drift on a field fleetdeck owns), a pod's
container restarts, a pod is deleted and replaced, or a Deployment is restarted (a new ReplicaSet
rolls out). ``apply_live_change`` makes one such change and says what it did.

Constraint: writes only to the demo's simulated clusters, through their fault knobs; deterministic for
a given seed and fleet state. No wall-clock reads except the clusters' own clocks.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from core.demo.demo_fleet import DemoFleet, DemoState, DemoTarget
from core.model import ResourceKey
from core.simulated.simulated_cluster import SimulatedCluster

log = logging.getLogger(__name__)

_KINDS: tuple[tuple[str, int], ...] = (
    ("restart-pod", 3),
    ("replace-pod", 2),
    ("rollout", 2),
    ("drift-config", 1),
    ("drift-replicas", 1),
)
"""Change kinds and their weights."""


async def live_changes(
    demo: DemoFleet,
    *,
    interval: float = 4.0,
    steps: int | None = None,
    seed: int | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,  # injected in tests
) -> None:
    """Make one change every ``interval`` seconds, forever (or ``steps`` times).

    Args:
        demo: the demo fleet.
        interval: seconds between changes.
        steps: stop after this many changes (None: run until cancelled).
        seed: random seed (default: ``demo.seed``).
        sleep: how to wait between changes.
    """
    rng = random.Random(demo.seed if seed is None else seed)
    made = 0
    while steps is None or made < steps:
        await sleep(interval)
        description = apply_live_change(demo, rng)
        log.info("demo: %s", description)
        made += 1


def apply_live_change(demo: DemoFleet, rng: random.Random) -> str:
    """Make one random change to the demo fleet; what it did (``prod-eu: restarted pod web/web-…``)."""
    kinds, weights = zip(*_KINDS, strict=True)
    kind = rng.choices(kinds, weights=weights)[0]
    targets = [t for t in demo.targets if t.state is not DemoState.RENDER_ERROR]
    target = rng.choice(targets)
    cluster = demo.clusters[target.cluster]
    return f"{target.cluster}: {_CHANGES[kind](cluster, target, rng)}"


def _deployments(cluster: SimulatedCluster, target: DemoTarget) -> list[ResourceKey]:
    return [ResourceKey.of(d) for d in cluster.objects("apps", "Deployment", target.namespace)]


def _restart_pod(cluster: SimulatedCluster, target: DemoTarget, rng: random.Random) -> str:
    pods = cluster.objects("", "Pod", target.namespace)
    if not pods:
        return f"no pod to restart in {target.namespace}"
    key = ResourceKey.of(rng.choice(pods))
    cluster.restart_pod(key)
    return f"container of pod {key.namespace}/{key.name} restarted"


def _replace_pod(cluster: SimulatedCluster, target: DemoTarget, rng: random.Random) -> str:
    pods = [p for p in cluster.objects("", "Pod", target.namespace) if p["metadata"].get("ownerReferences")]
    if not pods:
        return f"no pod to replace in {target.namespace}"
    key = ResourceKey.of(rng.choice(pods))
    cluster.delete_as("kubectl", key)
    return f"pod {key.namespace}/{key.name} deleted (its controller replaces it)"


def _rollout(cluster: SimulatedCluster, target: DemoTarget, rng: random.Random) -> str:
    deployments = _deployments(cluster, target)
    if not deployments:
        return f"no deployment to restart in {target.namespace}"
    key = rng.choice(deployments)
    stamp = cluster.store.now()
    cluster.update_as("kubectl-rollout", key, {"spec": {"template": {"metadata": {
        "annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}})
    return f"kubectl rollout restart deployment/{key.name} -n {key.namespace}"


def _drift_config(cluster: SimulatedCluster, target: DemoTarget, rng: random.Random) -> str:
    maps = [c for c in cluster.objects("", "ConfigMap", target.namespace) if c.get("data")]
    if not maps:
        return f"no ConfigMap to edit in {target.namespace}"
    config = rng.choice(maps)
    name = rng.choice(sorted(config["data"]))
    value = f"{config['data'][name]}-edited"
    cluster.update_as("kubectl-edit", ResourceKey.of(config), {"data": {name: value}})
    return f"kubectl edit configmap/{config['metadata']['name']}: {name}={value}"


def _drift_replicas(cluster: SimulatedCluster, target: DemoTarget, rng: random.Random) -> str:
    autoscaled = {h["spec"]["scaleTargetRef"]["name"]
                  for h in cluster.objects("autoscaling", "HorizontalPodAutoscaler", target.namespace)}
    deployments = [k for k in _deployments(cluster, target) if k.name not in autoscaled]
    if not deployments:
        return f"no deployment to scale in {target.namespace}"
    key = rng.choice(deployments)
    live = cluster.get_object(key) or {}
    current = int((live.get("spec") or {}).get("replicas", 1))
    replicas = current + rng.choice((1, 2)) if current < 6 else max(1, current - 3)
    cluster.update_as("kubectl-edit", key, {"spec": {"replicas": replicas}})
    return f"kubectl scale deployment/{key.name} -n {key.namespace} --replicas={replicas}"


_CHANGES: dict[str, Callable[[SimulatedCluster, DemoTarget, random.Random], str]] = {
    "restart-pod": _restart_pod,
    "replace-pod": _replace_pod,
    "rollout": _rollout,
    "drift-config": _drift_config,
    "drift-replicas": _drift_replicas,
}
