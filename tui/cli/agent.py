"""``agent``: the core, headless, syncing apps whose policy is automated."""

from __future__ import annotations

import sys

import click

from core.model import FleetSnapshot
from tui.cli.options import Exit, current, global_options, run_async, verb
from tui.cli.root import main
from tui.cli.wall import changes


@main.command()
@click.option("--once", is_flag=True, help="Reconcile once and exit (for cron or a CI job).")
@global_options()
@verb
@changes("agent")
def agent(once: bool) -> None:
    """Run the core headless: watch the fleet and sync apps whose policy is automated.

    Only the holder of each cluster's automation Lease syncs, so several agents and consoles can run.
    Clusters marked readOnly in the fleet file are watched and never synced.
    """
    from core.engine import engine_from_fleet_file
    from core.engine.agent import run_agent

    def ready(snap: FleetSnapshot) -> None:
        click.echo(f"agent: watching {len(snap.apps)} app targets on {len(snap.clusters)} clusters", err=True)

    async def main_loop() -> Exit:
        await run_agent(engine_from_fleet_file(current().fleet, read_only=False,
                                                        impersonate=current().impersonate,
                                                memory_limit=current().memory_limit), once=once, on_ready=ready)
        return Exit.OK

    sys.exit(int(run_async(main_loop())))
