"""``demo_preview``: every row of the demo fleet, loading, without building the demo.

Role: what ``fleetdeck demo`` shows on its first frame while the engine thread builds the repo and the
simulated clusters. It needs only the generated fleet file (``core.demo.apps``) and the real loader, so
the console's first frame does not wait for the simulated clusters' modules to import.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from core.demo.apps import fleet_text, states
from core.desired.fleet_file import FleetConfig, load_fleet
from core.engine.targets import loading_snapshot
from core.model import FleetSnapshot

FLEET_FILE = "fleetdeck.yaml"
"""The fleet file's name in the demo repo (``core.demo.repo.FLEET_FILE``)."""


def demo_fleet_config() -> FleetConfig:
    """The demo's fleet file as of the branch head, loaded with the real loader, without creating the repo."""
    with tempfile.TemporaryDirectory(prefix="fleetdeck-demo-") as scratch:
        path = Path(scratch) / FLEET_FILE
        path.write_text(fleet_text(states()[-1]), encoding="utf-8")
        return load_fleet(path)


def demo_preview(*, read_only: bool = False, clock: Callable[[], float] = time.time) -> FleetSnapshot:
    """What the console shows while the demo is built: every row of the demo fleet, loading."""
    return loading_snapshot(demo_fleet_config(), read_only=read_only, taken_at=clock())
