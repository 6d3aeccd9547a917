"""The demo fleet: a generated config repo and pre-seeded simulated clusters, for ``fleetdeck demo``.

Role: the top layer of the core (it may import anything in ``core``, never the console).

* ``create_demo_repo(dir)``: a real Git repo with several commits of Kustomize apps and ``fleetdeck.yaml``.
* ``build_demo(dir)``: that repo plus four ``SimulatedCluster``s seeded into a story (``SCENARIOS``).
* ``live_changes(demo)``: a coroutine that keeps the fleet moving (drift, restarts, rollouts).
* ``demo_engine(dir)``: a ``FleetEngine`` over all of it (what the ``demo`` command runs).
* ``demo_preview()``: every row of the demo fleet, loading, for the console while ``demo_engine`` builds.

Constraint: ``build_demo`` and ``demo_engine`` block (git and kustomize subprocesses, about a second or
two); nothing here touches a real cluster or the network. Only ``demo_preview`` and ``demo_fleet_config``
are imported with the package: the rest is imported on first use (``__getattr__``), so the console's first
frame does not wait for the simulated clusters' modules.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from core.demo.preview import demo_fleet_config, demo_preview

if TYPE_CHECKING:
    from core.demo.changes import apply_live_change, live_changes
    from core.demo.demo_fleet import SCENARIOS, DemoFleet, DemoState, DemoTarget, Scenario, build_demo
    from core.demo.engine import DemoEngine
    from core.demo.repo import DemoError, create_demo_repo
    from core.demo.seeding import seed_paused

__all__ = [
    "SCENARIOS",
    "DemoError",
    "DemoFleet",
    "DemoState",
    "DemoTarget",
    "Scenario",
    "apply_live_change",
    "build_demo",
    "create_demo_repo",
    "demo_engine",
    "demo_fleet_config",
    "demo_preview",
    "live_changes",
    "seed_paused",
]

_LAZY = {
    "apply_live_change": "core.demo.changes", "live_changes": "core.demo.changes",
    "SCENARIOS": "core.demo.demo_fleet", "DemoFleet": "core.demo.demo_fleet", "DemoState": "core.demo.demo_fleet",
    "DemoTarget": "core.demo.demo_fleet", "Scenario": "core.demo.demo_fleet", "build_demo": "core.demo.demo_fleet",
    "DemoError": "core.demo.repo", "create_demo_repo": "core.demo.repo", "seed_paused": "core.demo.seeding",
}


def __getattr__(name: str) -> Any:
    """The demo's other names, imported on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def demo_engine(
    directory: str | os.PathLike[str] | None, *, read_only: bool = False, live_changes: bool = True,
    render_cache: bool = False, still: bool = False,
) -> DemoEngine:
    """See ``core.demo.engine.demo_engine`` (imported lazily: the engine is only needed by the CLI)."""
    from core.demo.engine import demo_engine as build

    return build(directory, read_only=read_only, live_changes=live_changes, render_cache=render_cache, still=still)
