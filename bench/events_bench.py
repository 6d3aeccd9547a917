"""The events store under a storm: ``uv run python -m bench.events_bench [--events N]``.

Feeds N core/v1 Events of one namespace (each distinct, one second apart) into an ``EventStore`` with the
default cap, then summarizes one app's events as the console and ``fleetdeck events`` do. Prints the ingest
rate, the events kept, the memory the store holds (tracemalloc) and the time of one summary.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from typing import Any

from core.live.event_feed import EventStore
from core.model import ResourceKey
from core.reconcile.event_summary import summarize


def event(i: int) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_767_225_600 + i))
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"web-{i % 50}.{i}", "namespace": "web", "uid": f"u{i}"},
            "involvedObject": {"kind": "Pod", "namespace": "web", "name": f"web-{i % 50}"},
            "type": "Warning" if i % 3 == 0 else "Normal", "reason": "BackOff" if i % 3 == 0 else "Pulled",
            "message": f"Back-off restarting failed container web in pod web-{i % 50} ({i % 7})", "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "source": {"component": "kubelet"}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    raw = [event(i) for i in range(args.events)]
    store = EventStore()
    began = time.perf_counter()
    for obj in raw:
        store.upsert(obj)
    ingest = time.perf_counter() - began
    tracemalloc.start()  # measured apart: tracing slows every allocation down
    traced = EventStore()
    for obj in raw:
        traced.upsert(obj)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    keys = [ResourceKey("", "Pod", "web", f"web-{i}") for i in range(50)]
    began = time.perf_counter()
    lines, omitted = summarize(store.events(["web"]), keys)
    summary = time.perf_counter() - began
    print(f"{args.events} events: {args.events / ingest:,.0f} events/s ingested; {len(store)} kept "
          f"(cap {store.cap}, {store.dropped} dropped); store holds {held / 1024:,.0f} KiB; "
          f"summary of one app: {summary * 1000:.1f} ms, {len(lines)} lines shown, {omitted} left out")


if __name__ == "__main__":
    main()
