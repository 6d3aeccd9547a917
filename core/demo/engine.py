"""``demo_engine``: a ``FleetEngine`` over the demo fleet, for ``fleetdeck demo``.

Role: build the demo (repo and seeded simulated clusters) in a directory, then an engine whose
clients are the simulated clusters, whose journal and caches live in that directory, and which runs
``live_changes`` while it runs. Everything the demo writes stays in its directory.

Constraint: the factory is synchronous and blocking (git, kustomize): ``ThreadedEngine`` calls it
on the engine thread before the engine starts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.aio import create_guarded_task, stop_tasks
from core.demo.changes import live_changes
from core.demo.demo_fleet import DemoFleet, build_demo
from core.demo.render_cache import DemoRenderStore
from core.desired.render import Renderer
from core.engine import cache_dir
from core.engine.fleet_engine import FleetEngine
from core.journal import Journal
from core.settings import EngineSettings, default_settings


class DemoEngine(FleetEngine):
    """A ``FleetEngine`` that also owns the demo: its live changes, its clusters and its directory.

    Args:
        demo: the built demo fleet.
        live: run ``live_changes`` while the engine runs.
        scratch: a directory to delete on ``stop`` (the temporary demo directory), if any.
        store: the demo's render store (``core.demo.render_cache``), if any.
        **engine: ``FleetEngine``'s keyword arguments.
    """

    def __init__(self, demo: DemoFleet, *, live: bool, scratch: Path | None = None,
                 store: DemoRenderStore | None = None, **engine: Any) -> None:
        super().__init__(demo.fleet, **engine)
        if store is not None:  # the demo's renders by content, shared with the seeding and with earlier runs
            self.renderer = Renderer(self.settings.git, store=store)
        self.demo = demo
        self._live = live
        self._scratch = scratch
        self._changes: asyncio.Task[Any] | None = None

    async def start(self) -> None:
        """Start the engine, then the live changes."""
        await super().start()
        if self._live and not self.read_only:
            self._changes = create_guarded_task(live_changes(self.demo), name="demo:live-changes")

    async def stop(self) -> None:
        """Stop the live changes, the engine and the simulated clusters; remove a temporary directory."""
        if self._changes is not None:
            await stop_tasks([self._changes])
        await super().stop()
        await self.demo.close()
        if self._scratch is not None:
            await asyncio.to_thread(shutil.rmtree, self._scratch, ignore_errors=True)


def demo_engine(
    directory: str | os.PathLike[str] | None,
    *,
    read_only: bool = False,
    live_changes: bool = True,
    settings: EngineSettings | None = None,
    render_cache: bool = False,
    still: bool = False,
) -> DemoEngine:
    """Build the demo in ``directory`` (default: a temporary one, removed on stop) and its engine.

    Args:
        directory: an empty or new directory for the repo (``config/``), journal and caches.
        read_only: never change the simulated clusters (live changes are off too).
        live_changes: make the fleet change by itself every few seconds.
        settings: engine settings (default settings otherwise).
        render_cache: keep the demo's kustomize renders by content in ``$XDG_CACHE_HOME/fleetdeck/demo-renders``
            and use those of earlier runs (``core.demo.render_cache``).
        still: the simulated clusters' controllers stop after seeding (with ``live_changes=False``, a fleet
            where nothing changes by itself: ``bench/console_bench.py --still`` measures an idle console on it).

    Raises:
        DemoError: the directory is not empty, or git is missing.
    """
    scratch = None if directory is not None else Path(tempfile.mkdtemp(prefix="fleetdeck-demo-"))
    root = Path(directory) if directory is not None else scratch
    assert root is not None
    store = DemoRenderStore(cache_dir() / "demo-renders") if render_cache else None
    demo = build_demo(root, recent=True, store=store, controllers=not still)
    base = settings or default_settings()
    return DemoEngine(
        demo, live=live_changes, scratch=scratch, store=store,
        settings=replace(base, read_only=base.read_only or read_only),
        journal=Journal(root / "journal.jsonl"), cache_dir=root / "cache", clients=demo.clusters,
    )
