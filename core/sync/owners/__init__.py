"""Owner backends: the drivers of controller owners, by owner (docs/owners.md).

``fleetdeck`` has no driver: its actions are the engine's own path. A driver registers here by owner; the
engine's dispatch point (``core.engine.owned``) looks the row's owner up in ``DRIVERS``.
"""

from __future__ import annotations

from core.model import Owner
from core.sync.owners.argocd import ArgoCDDriver
from core.sync.owners.base import ControllerDriver, PauseRequest, Refused, SyncRequest, run_controller_action
from core.sync.owners.flux import FluxDriver

DRIVERS: dict[Owner, ControllerDriver] = {Owner.ARGOCD: ArgoCDDriver(), Owner.FLUX: FluxDriver()}
"""The controller drivers by owner (Flux registers ``Owner.FLUX`` here)."""

__all__ = ["DRIVERS", "ControllerDriver", "PauseRequest", "Refused", "SyncRequest", "run_controller_action"]
