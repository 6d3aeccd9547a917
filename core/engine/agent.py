"""The headless agent: the core watching the fleet and syncing the apps whose policy is automated.

Driven only through ``core.api.FleetEngineAPI``, like the console: start the engine, wait until the
fleet has been seen once, then either decide automated syncs once and wait for the syncs decided
(``once``: cron, a CI job), or keep the engine running until cancelled (its own automation loop syncs
every 2 s, only where this process holds the cluster's automation Lease). ``fleetdeck agent``
(``tui/cli/agent.py``) parses the options and prints; everything else is here.
"""

from __future__ import annotations

from collections.abc import Callable

from core.api import FleetEngineAPI
from core.model import FleetSnapshot


async def run_agent(engine: FleetEngineAPI, *, once: bool,
                    on_ready: Callable[[FleetSnapshot], None] = lambda snapshot: None) -> None:
    """Start ``engine``, report the first settled snapshot to ``on_ready``, sync automated apps (once, or
    until cancelled), and stop the engine whatever happens."""
    await engine.start()
    try:
        on_ready(await engine.wait_ready())
        if once:
            await engine.sync_automated_apps(wait=True)  # stopping must not cancel the syncs it starts
            return
        async for _ in engine.snapshots():  # automation runs inside the engine until interrupted
            pass
    finally:
        await engine.stop()
