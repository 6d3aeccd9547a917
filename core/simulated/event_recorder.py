"""Kubernetes Events the simulated controllers and kubelet record, as a real cluster's would.

Role: a failing pod gets the Warnings an operator would see from ``kubectl describe`` (``BackOff`` for a
crash loop, ``Failed``/``BackOff`` for an image that cannot be pulled), a Deployment rollout a Normal
``ScalingReplicaSet``. Events are core/v1 ``Event`` objects in the object's namespace, named
``<object>.<hash>`` like the real recorder's; a repeated event bumps ``count`` and ``lastTimestamp``.

Constraint: writes only through ``ObjectStore``; recording the same count twice writes nothing, so a
controller pass that changes nothing else stays a pass without writes (``settle()`` converges).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.model import ResourceKey
from core.simulated.pods import safe_hash
from core.simulated.store import ObjectStore


def record_event(store: ObjectStore, involved: Mapping[str, Any], *, type: str, reason: str, message: str,
                 source: str, count: int | None = None) -> None:
    """Record (or repeat) an event about ``involved``.

    Args:
        store: the cluster's store.
        involved: the object the event concerns.
        type: ``Normal`` or ``Warning``.
        reason: the short machine reason (``BackOff``).
        message: what happened.
        source: the reporting component (``kubelet``).
        count: the total count to report (a repeat bumps by one when None); an unchanged count writes nothing.
    """
    resource = store.discovery.lookup("", "Event")
    meta = involved.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    if resource is None:
        return
    name = f"{meta.get('name', '')}.{safe_hash([meta.get('uid', ''), reason, message], 12)}"
    key = ResourceKey("", "Event", namespace, name)
    now = store.now()
    existing = store.peek(key)
    if existing is None:
        api_version = str(involved.get("apiVersion") or "v1")
        store.create(resource, {
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {"apiVersion": api_version, "kind": involved.get("kind"), "namespace": namespace,
                               "name": meta.get("name"), "uid": meta.get("uid")},
            "type": type, "reason": reason, "message": message, "source": {"component": source},
            "reportingComponent": source, "count": max(1, count or 1), "firstTimestamp": now, "lastTimestamp": now,
        }, manager=source)
        return
    before = int(existing.get("count") or 1)
    total = before + 1 if count is None else count
    if total != before:
        store.update(key, {"count": total, "lastTimestamp": now}, manager=source)
