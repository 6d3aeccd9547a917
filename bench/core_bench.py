"""Benchmarks of the core: drift detection, watch ingest into the cache, memory per cached object."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import orjson

from bench.harness import RatioResult, ratio
from bench.workloads import pairs, pod
from core.engine.gcpolicy import GCPolicy
from core.engine.targets import digest
from core.live.api import APIResource
from core.live.cache import ClusterCache
from core.live.compact import WatchLine, decode_watch_line
from core.live.watch_events import Upserted
from core.reconcile import diff as diff_module
from core.reconcile import fastpath
from core.reconcile.diff import compare
from core.reconcile.jsonpath import thaw
from core.reconcile.normalize import normalize

PODS = APIResource("", "v1", "Pod", "pods", True, frozenset({"list", "watch"}))


def drift_pass(n: int = 1000) -> list[RatioResult]:
    """P2/P4: a full local drift pass against ``==`` over the same normalized projections.

    The pass calls ``compare`` as the engine does (``core/engine/evaluate.py``): with each manifest's
    digest, which the engine computes once per render (``core.engine.targets.digest``) and which keys the
    in-sync kernel's cache of normalized manifests (``core/reconcile/fastpath.py``). The same pass without
    digests (the kernel then keys its cache by the manifest's canonical JSON) is measured too and reported
    in the notes; so is the full comparison alone (``fast=False``, the figure before the kernel).
    """
    data = pairs(n)
    digests = [digest(d) for d, _ in data]
    normalized = [(normalize(d, side="desired", namespace_default="shop"), normalize(lv, side="live"))
                  for d, lv in data]
    calls = {"deepdiff": 0}
    real = diff_module.DeepDiff if hasattr(diff_module, "DeepDiff") else None

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls["deepdiff"] += 1
        assert real is not None
        return real(*args, **kwargs)

    def engine_pass() -> list[Any]:
        return [compare(d, lv, namespace_default="shop", desired_digest=key)
                for (d, lv), key in zip(data, digests, strict=True)]

    if real is not None:
        diff_module.DeepDiff = counting  # type: ignore[attr-defined,assignment]
    try:
        verdicts = engine_pass()
    finally:
        if real is not None:
            diff_module.DeepDiff = real  # type: ignore[attr-defined]
    full = [compare(d, lv, namespace_default="shop", fast=False) for d, lv in data]
    same = sum(1 for a, b in zip(verdicts, full, strict=True) if _same_verdict(a, b))
    drifted = sum(1 for v in verdicts if v.state.value != "Synced")
    decided = fastpath.STATS["decided"]
    engine_pass()
    decided = fastpath.STATS["decided"] - decided

    def baseline() -> list[bool]:
        return [a == b for a, b in normalized]

    no_digest = ratio("drift pass without digests", target=20.0, pairs=5, baseline=baseline,
                      candidate=lambda: [compare(d, lv, namespace_default="shop") for d, lv in data])
    slow = ratio("full comparison alone", target=1000.0, pairs=3, baseline=baseline,
                 candidate=lambda: [compare(d, lv, namespace_default="shop", fast=False) for d, lv in data])
    result = ratio(
        f"drift pass, {n} Deployments (vs ==)",
        candidate=engine_pass,
        baseline=baseline,
        target=20.0,  # docs/performance.md
        notes={"drifted": drifted, "deepdiff_calls": calls["deepdiff"],
               "decided_by_kernel": f"{decided}/{n}", "same_verdicts_as_full": f"{same}/{n}",
               "ratio_without_digests": round(no_digest.ratio, 1),
               "ratio_full_comparison_alone": round(slow.ratio, 1)},
    )
    return [result]


def _same_verdict(a: Any, b: Any) -> bool:
    """Whether two ``ResourceDiff`` values are identical, displayed objects included."""
    return bool(a == b and thaw(a.live) == thaw(b.live) and thaw(a.desired) == thaw(b.desired))


def ingest(n: int = 5000) -> list[RatioResult]:
    """P1/P14: decode watch lines and apply them to the cache, against orjson.loads of the same bytes,
    with the engine's collector policy (``core.engine.gcpolicy``) in force for both. The lines take the
    real client's path: the object stays bytes (``core.live.compact``), only its projection is read."""
    lines = [orjson.dumps({"type": "ADDED", "object": pod(i)}) for i in range(n)]
    GCPolicy().start()

    def candidate() -> None:  # what KubeClient.watch and watching._event do with each line
        cache = ClusterCache("bench")
        for line in lines:
            event = decode_watch_line(line)
            assert isinstance(event, WatchLine)
            cache.apply(Upserted(PODS, compact=event.object))

    def baseline() -> None:
        for line in lines:
            orjson.loads(line)

    return [ratio(f"watch ingest, {n} Pod events (vs orjson.loads)", candidate=candidate, baseline=baseline,
                  target=1.5, notes={"bytes_per_event": sum(map(len, lines)) // n})]


def memory(n: int = 5000) -> dict[str, float]:
    """P11: resident bytes per cached Pod (tracemalloc, deterministic), against its JSON size. Objects arrive
    as dicts (the path of lists; a watch line's object costs the same bytes plus no re-encoding)."""
    lines = [orjson.dumps(pod(i)) for i in range(n)]
    gc.collect()
    tracemalloc.start()
    cache = ClusterCache("bench")
    for line in lines:
        cache.apply(Upserted(resource=PODS, obj=orjson.loads(line)))
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"objects": float(len(cache)), "kib_per_object": current / n / 1024,
            "json_kib_per_object": sum(map(len, lines)) / n / 1024}
