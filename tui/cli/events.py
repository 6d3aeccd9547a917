"""``events``: the Kubernetes Events of an app's objects and of the objects they own. Looks, never changes.

A one-shot, read-only engine (no dry run is sent: the verb needs none) lists the events of each targeted
cluster once (no watch), keeps those of the app's
resources and of their children (Deployment → ReplicaSet → Pod), folds identical ones into one line with
the counts summed, and prints Warnings first, then newest first (at most 50 lines per cluster; see
docs/events.md).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from core.sanitize import clean
from tui.cli.common import complete_app, targets, with_engine
from tui.cli.options import Exit, global_options, output_format, verb
from tui.cli.root import main

EVENT_FORMATS = ("table", "json", "yaml")


def events_exit(snap: Any, found: list[Any]) -> Exit:
    """0 when every targeted cluster's events were read; 2 when a cluster cannot be read or its events are
    not readable (no permission)."""
    clusters = {f.cluster for f in found}
    if any(c.connection.value in ("Unreachable", "Connecting") for c in snap.clusters if c.name in clusters):
        return Exit.ERROR
    if any(f.error or not f.listed for f in found):
        return Exit.ERROR
    return Exit.OK


@main.command()
@click.argument("app", shell_complete=complete_app)
@click.option("--cluster", "-c", default=None, help="Only this cluster (default: every cluster the app targets).")
@global_options(output=EVENT_FORMATS)
@verb
def events(app: str, cluster: str | None) -> None:
    """Why APP is unhealthy: the Kubernetes Events of its objects and of the objects they own.

    Warnings first, then newest first; identical events (type, reason, message, object) are one line with
    their counts summed. Output: table, json, yaml. Exit 0 the events were read, 2 a cluster or its events
    could not be read (unreachable, or no permission to list events).
    """
    from tui import output

    fmt = output_format(EVENT_FORMATS)

    async def body(engine: Any) -> tuple[Any, list[Any]]:
        rows = targets(engine.snapshot, app, cluster, all_clusters=True)
        return engine.snapshot, [await engine.app_events(app, row.cluster) for row in rows]

    # read-only: the events need no server-side dry run, so none is sent (and nothing can be written)
    snap, found = with_engine(body, only_app=app, read_only=True)
    code = events_exit(snap, found)
    if fmt != "table":
        click.echo(output.dump({"app": app, "targets": [output.event_record(f) for f in found]}, fmt))
        sys.exit(int(code))
    click.echo(output.table(output.EVENT_HEADERS, output.event_rows(found)))
    for f in found:
        if f.error:
            click.echo(f"cluster {f.cluster}: {clean(f.error)}", err=True)
        elif not f.listed:
            click.echo(f"cluster {f.cluster}: events not listed (cluster unreachable?)", err=True)
        elif not f.events:
            click.echo(f"cluster {f.cluster}: no events for {app}", err=True)
        if f.omitted:
            click.echo(f"cluster {f.cluster}: {f.omitted} older line(s) left out", err=True)
    sys.exit(int(code))
