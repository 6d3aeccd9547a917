"""The demo fleet: a generated config repo and pre-seeded simulated clusters, for ``fleetdeck demo``.

Role: the top layer of the core (it may import anything in ``core``, never the console).

* ``create_demo_repo(dir)``: a real Git repo with several commits of Kustomize apps and ``fleetdeck.yaml``.
* ``build_demo(dir)``: that repo plus four ``SimulatedCluster``s seeded into a story (``SCENARIOS``).
* ``live_changes(demo)``: a coroutine that keeps the fleet moving (drift, restarts, rollouts).
* ``demo_engine(dir)``: a ``FleetEngine`` over all of it (what the ``demo`` command runs).
* ``demo_preview()``: every row of the demo fleet, loading, for the console while ``demo_engine`` builds.

Constraint: ``build_demo`` and ``demo_engine`` block (git and kustomize subprocesses, about a second or
two); nothing here touches a real cluster or the network.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from core.demo.changes import apply_live_change, live_changes
from core.demo.demo_fleet import (
    SCENARIOS,
    DemoFleet,
    DemoState,
    DemoTarget,
    Scenario,
    build_demo,
    demo_fleet_config,
    demo_preview,
)
from core.demo.repo import DemoError, create_demo_repo
from core.demo.seeding import seed_paused

if TYPE_CHECKING:
    from core.demo.engine import DemoEngine

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


def demo_engine(
    directory: str | os.PathLike[str] | None, *, read_only: bool = False, live_changes: bool = True,
    render_cache: bool = False, still: bool = False,
) -> DemoEngine:
    """See ``core.demo.engine.demo_engine`` (imported lazily: the engine is only needed by the CLI)."""
    from core.demo.engine import demo_engine as build

    return build(directory, read_only=read_only, live_changes=live_changes, render_cache=render_cache, still=still)
