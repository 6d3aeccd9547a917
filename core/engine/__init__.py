"""The engine: wires the adapters and the pure core into live fleet snapshots and safe actions.

``engine_from_fleet_file`` builds a ``FleetEngine`` for a fleet file (headless verbs run it on their
own loop); ``ThreadedEngine`` runs one on a dedicated thread for the console; ``core.engine.agent.run_agent``
is the headless agent, driving one through ``core.api.FleetEngineAPI``. Inside the package each part gets
the callables it needs from ``FleetEngine`` and never imports it (contract ``engine-parts`` in
``pyproject.toml``; see docs/architecture.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.engine.targets import check_impersonation, loading_snapshot
from core.engine.threaded import ThreadedEngine

if TYPE_CHECKING:
    from core.engine.fleet_engine import FleetEngine
    from core.journal import Journal
    from core.live.api import KubeAPI
    from core.settings import EngineSettings, Impersonation

__all__ = ["FleetEngine", "ThreadedEngine", "cache_dir", "check_impersonation", "engine_from_fleet_file",
           "loading_snapshot", "make_engine"]


def __getattr__(name: str) -> Any:
    """``FleetEngine`` is imported on first use: the console opens its screen while the engine thread imports
    it (about 0.4 s of aiohttp, the Kubernetes client and deepdiff)."""
    if name == "FleetEngine":
        from core.engine.fleet_engine import FleetEngine

        return FleetEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/fleetdeck`` (``~/.cache/fleetdeck``): Git mirrors and rendered trees."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "fleetdeck"


def make_engine(
    fleet_file: Path,
    *,
    read_only: bool,
    clients: Mapping[str, KubeAPI] | None = None,
    settings: EngineSettings | None = None,
    journal: Journal | None = None,
    cache: Path | None = None,
    one_shot: bool = False,
    only_apps: frozenset[str] | None = None,
    impersonate: Impersonation | None = None,
    memory_limit: int | None = None,
) -> FleetEngine:
    """A ``FleetEngine`` for ``fleet_file``; ``impersonate`` sends every request as another identity;
    ``memory_limit`` (bytes, 0 off) replaces the settings' memory budget when given.

    Raises:
        ConfigError: the fleet file is missing or invalid (the message names file, line and field).
    """
    from core.desired.fleet_file import load_fleet
    from core.engine.fleet_engine import FleetEngine
    from core.journal import Journal, configured_path
    from core.settings import default_settings

    fleet = load_fleet(fleet_file)
    base = settings or default_settings()
    if one_shot or base.one_shot:
        base = replace(base, watch=replace(base.watch, list_only=True))
    return FleetEngine(
        fleet, settings=replace(base, read_only=base.read_only or read_only, one_shot=base.one_shot or one_shot,
                                only_apps=only_apps if only_apps is not None else base.only_apps,
                                impersonate=impersonate or base.impersonate,
                                memory_limit=base.memory_limit if memory_limit is None else memory_limit),
        journal=journal or Journal(configured_path()), cache_dir=cache or cache_dir(), clients=clients,
    )


def engine_from_fleet_file(explicit: str | None, *, read_only: bool, one_shot: bool = False,
                           only_apps: frozenset[str] | None = None,
                           impersonate: Impersonation | None = None,
                           memory_limit: int | None = None) -> FleetEngine:
    """The engine for ``--fleet`` (or ``./fleetdeck.yaml``).

    ``one_shot`` is for headless verbs (kinds listed once and no watch, no Git polling or automation, dry
    runs settled before the first snapshot);
    ``only_apps`` limits the engine to these apps' targets (every app when None).
    """
    from core.desired.fleet_file import find_fleet_file

    return make_engine(find_fleet_file(explicit), read_only=read_only, one_shot=one_shot, only_apps=only_apps,
                       impersonate=impersonate, memory_limit=memory_limit)
