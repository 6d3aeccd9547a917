"""Benchmark of custom health scripts: ``uv run python -m bench.health_bench [--quick]``.

A Lua port of the built-in Deployment rule, run through ``core.reconcile.health_lua`` on distinct live
Deployments once the script is loaded (compiled on the first call), against the built-in Python rule on
the same objects. Target: ≤ 3× (docs/health-scripts.md).
"""

from __future__ import annotations

import argparse
import os
import sys

from bench.harness import RatioResult, ratio
from bench.workloads import pairs
from core.reconcile.health_lua import HealthScript, LuaHealthChecks
from core.reconcile.health_workloads import deployment_health

DEPLOYMENT_LUA = """
hs = {}
if obj.spec.paused == true then
  hs.status = "Suspended"
  hs.message = "Deployment is paused"
  return hs
end
local status = obj.status or {}
if (obj.metadata.generation or 0) > (status.observedGeneration or 0) then
  hs.status = "Progressing"
  hs.message = "Waiting for rollout to finish: observed deployment generation less then desired generation"
  return hs
end
if status.conditions ~= nil then
  for i, condition in ipairs(status.conditions) do
    if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded" then
      hs.status = "Degraded"
      hs.message = string.format('Deployment "%s" exceeded its progress deadline', obj.metadata.name)
      return hs
    end
  end
end
local updated = status.updatedReplicas or 0
if obj.spec.replicas ~= nil and updated < obj.spec.replicas then
  hs.status = "Progressing"
  hs.message = string.format("Waiting for rollout to finish: %d out of %d new replicas have been updated...",
    updated, obj.spec.replicas)
  return hs
end
if (status.replicas or 0) > updated then
  hs.status = "Progressing"
  hs.message = string.format("Waiting for rollout to finish: %d old replicas are pending termination...",
    status.replicas - updated)
  return hs
end
if (status.availableReplicas or 0) < updated then
  hs.status = "Progressing"
  hs.message = string.format("Waiting for rollout to finish: %d of %d updated replicas are available...",
    status.availableReplicas or 0, updated)
  return hs
end
hs.status = "Healthy"
hs.message = ""
return hs
"""


def lua_vs_builtin(n: int = 1000) -> list[RatioResult]:
    """A Lua health check per Deployment (script loaded once) against the built-in Deployment rule."""
    live = [lv for _, lv in pairs(n)]
    checks = LuaHealthChecks([HealthScript("apps/Deployment", DEPLOYMENT_LUA, "apps/Deployment/health.lua")])
    agree = sum(1 for obj in live
                if (verdict := checks.check(obj)) is not None and verdict.status == deployment_health(obj).status)
    return [ratio(f"Lua health check, {n} Deployments (vs built-in)",
                  candidate=lambda: [checks.check(obj) for obj in live],
                  baseline=lambda: [deployment_health(obj) for obj in live],
                  target=3.0, notes={"same_status": f"{agree}/{n}", "runtime": checks.lua_implementation})]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 when the ratio is over its target."""
    parser = argparse.ArgumentParser(prog="python -m bench.health_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller workload (a smoke run)")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    results = lua_vs_builtin(200 if args.quick else 1000)
    for result in results:
        print(result.line())
        for key, value in result.notes.items():
            print(f"    {key}: {value}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
