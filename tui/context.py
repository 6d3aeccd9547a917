"""ConsoleContext: what every screen needs from the app, passed explicitly at construction.

The engine (only through ``FleetEngineAPI``), the read-only flag, the injected clock, the glyph set and
the external diff command. Screens get it in their constructor instead of reaching into the app, so a
test can build any screen with a fake engine and a frozen clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.api import FleetEngineAPI
from tui.glyphs import Glyphs


@dataclass(frozen=True, slots=True)
class ConsoleContext:
    """Shared, immutable configuration of one console session."""

    engine: FleetEngineAPI
    read_only: bool
    """True in the audit mode: no mutating action is offered, bound or sent."""
    clock: Callable[[], float]
    """Unix time now; injected in tests so ages are deterministic."""
    glyphs: Glyphs
    diff_command: str | None = None
    """``$FLEETDECK_DIFF``: an external diff program run on two temporary files."""
    cursor_blink: bool = True
    """Off in snapshot tests, so screenshots are deterministic."""
