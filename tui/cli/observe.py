"""Verbs that look and never change anything: ``status``, ``diff``, ``history``.

``status`` and ``diff`` ask the API server for its verdict (a server-side apply dry run per object) when the
credentials may write and the mode is not read-only; otherwise, or when a dry run fails, they compare
locally and say so ("approximate"), in text and in JSON.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from core.sanitize import clean
from tui.cli.common import complete_app, settled_snapshot, targets, with_engine
from tui.cli.options import PROBLEM_HEALTH, Exit, fail, global_options, output_format, verb
from tui.cli.root import main

OBSERVE_FORMATS = ("table", "json", "yaml")


def row_exit(row: Any) -> Exit:
    """One app target's contribution to the exit code of ``status`` and ``diff``."""
    if row.stale or row.sync.value == "Unknown":
        return Exit.ERROR
    if row.sync.value == "OutOfSync" or row.health.status.value in PROBLEM_HEALTH:
        return Exit.PROBLEM
    return Exit.OK


def fleet_exit(snap: Any, rows: list[Any]) -> Exit:
    """``status`` and ``diff``: 2 when a cluster, the repo or apps defined in it cannot be read (a fleet
    condition of severity error), else 1 on drift or a Degraded/Missing app."""
    code = max((row_exit(r) for r in rows), default=Exit.OK)
    clusters = {r.cluster for r in rows}
    if any(c.connection.value in ("Unreachable", "Connecting") for c in snap.clusters
           if c.name in clusters or not rows):
        code = Exit.ERROR
    if snap.repo.error or any(c.severity.value == "error" for c in snap.conditions):
        code = Exit.ERROR  # the repo, or apps in it, could not be read
    return code


def echo_fleet_conditions(snap: Any) -> None:
    """``fleet: TYPE: message`` on stderr for each fleet condition (``status`` and ``diff``: the reason an
    exit code 2 from ``fleet_exit`` has when no cluster or repo error explains it)."""
    for condition in snap.conditions:
        click.echo(f"fleet: {condition.type}: {clean(condition.message)}", err=True)


def echo_impersonation(snap: Any, clusters: Any = None) -> None:
    """``as: requests to CLUSTER are sent as USER`` on stderr for each cluster (of ``clusters``, default
    all) whose requests are impersonated: who the API server sees is never left unsaid."""
    for c in snap.clusters:
        if c.impersonating and (clusters is None or c.name in clusters):
            click.echo(f"as: requests to {clean(c.name)} are sent as {clean(c.impersonating)} (impersonation)",
                       err=True)


def _cluster_record(c: Any) -> dict[str, Any]:
    return {"name": c.name, "connection": c.connection.value, "server": c.server, "message": c.message,
            "since": c.since, "read_only": c.read_only, "impersonating": c.impersonating, "listing": c.listing}


@main.command()
@click.option("--app", "app_filter", default=None, help="Only this app.")
@click.option("--cluster", "-c", "cluster_filter", default=None, help="Only this cluster.")
@global_options(output=OBSERVE_FORMATS)
@verb
def status(app_filter: str | None, cluster_filter: str | None) -> None:
    """One row per app and cluster: sync, health, revision, drift, connection.

    REVISION is what runs on the cluster (the last synced revision) and, when Git wants another one,
    `running → desired`. Output: table, json, yaml. Exit 0 all in sync and healthy, 1 drift or a
    Degraded/Missing app, 2 a cluster or the repo could not be read.
    """
    from tui import output

    fmt = output_format(OBSERVE_FORMATS)

    snap = settled_snapshot(only_app=app_filter)
    echo_impersonation(snap)
    apps = [a for a in snap.apps if app_filter in (None, a.app) and cluster_filter in (None, a.cluster)]
    if app_filter and not apps:
        fail(f"no app {app_filter!r}" + (f" on cluster {cluster_filter!r}" if cluster_filter else "")
             + " in the fleet")
    if fmt == "table":
        click.echo(output.table(output.STATUS_HEADERS, output.status_rows(apps)))
        for cluster in snap.clusters:
            if cluster.connection.value != "Connected" or cluster.listing:
                click.echo(f"cluster {cluster.name}: {cluster.connection.value} {output.age(cluster.since)}"
                           f" {clean(cluster.message)}".rstrip()
                           + (f" ({clean(cluster.listing)})" if cluster.listing else ""), err=True)
        if snap.repo.error:
            click.echo(f"repo: {clean(snap.repo.error)}", err=True)
        echo_fleet_conditions(snap)
        if any(a.approximate for a in apps):
            click.echo("~ compared locally (approximate): read-only mode, or the server's dry run was not "
                       "available", err=True)
    else:
        data = {"apps": [output.status_record(a) for a in apps],
                "clusters": [_cluster_record(c) for c in snap.clusters],
                "repo": output.to_data(snap.repo), "read_only": snap.read_only,
                "conditions": [output.condition_record(c) for c in snap.conditions]}
        click.echo(output.dump(data, fmt))
    sys.exit(int(fleet_exit(snap, apps)))


@main.command()
@click.argument("app", shell_complete=complete_app)
@click.option("--cluster", "-c", default=None, help="Only this cluster (default: every cluster the app targets).")
@global_options(output=OBSERVE_FORMATS)
@verb
def diff(app: str, cluster: str | None) -> None:
    """What a sync of APP would change: live against what the apply would produce.

    Output: table (a unified diff, `-` live, `+` after the sync), json, yaml. Exit 0 in sync and
    healthy, 1 drift or a Degraded/Missing app, 2 the cluster or the repo could not be read.
    """
    from tui import output

    fmt = output_format(OBSERVE_FORMATS)

    snap = settled_snapshot(only_app=app)
    echo_impersonation(snap)
    rows = targets(snap, app, cluster, all_clusters=True)
    code = fleet_exit(snap, rows)
    if fmt != "table":
        click.echo(output.dump({"app": app, "targets": [output.diff_record(r) for r in rows],
                                "conditions": [output.condition_record(c) for c in snap.conditions]}, fmt))
        sys.exit(int(code))
    echo_fleet_conditions(snap)
    for row in rows:
        if row_exit(row) is Exit.ERROR:
            for cond in row.conditions:
                click.echo(f"# {row.cluster}: {cond.type}: {clean(cond.message)}", err=True)
            click.echo(f"error: cannot compare {app} on {row.cluster}: "
                       f"{'cluster unreachable (last known state)' if row.stale else 'state unknown'}", err=True)
            continue
        text = output.app_diff_text(row)
        if text:
            click.echo(text)
    sys.exit(int(code))


@main.command()
@click.argument("app", shell_complete=complete_app)
@click.option("--cluster", "-c", default=None, help="Cluster whose path template to use (default: the first).")
@click.option("--limit", default=20, show_default=True)
@global_options(output=OBSERVE_FORMATS)
@verb
def history(app: str, cluster: str | None, limit: int) -> None:
    """Git revisions that changed APP's rendered output, and its recorded syncs and rollbacks (manual,
    automated or self-heal), newest first.

    Output: table, json, yaml.
    """
    from core.model import newest_first
    from tui import output

    fmt = output_format(OBSERVE_FORMATS)

    async def body(engine: Any) -> Any:
        target = targets(engine.snapshot, app, cluster, all_clusters=True)[0]
        revisions = await engine.revisions(app, target.cluster, limit=limit)
        return target, revisions

    target, revisions = with_engine(body, only_app=app)
    syncs = newest_first(target.history)
    if fmt != "table":
        click.echo(output.dump({"app": app, "cluster": target.cluster, "revisions": revisions,
                                "syncs": [{**output.to_data(h), "label": h.label} for h in syncs]}, fmt))
        return
    click.echo(output.table(("REVISION", "AGE", "AUTHOR", "SUBJECT"),
                            [(r.short, output.age(r.committed_at), r.author, r.subject) for r in revisions]))
    if syncs:
        click.echo("")
        click.echo(output.table(("#", "KIND", "REVISION", "BY", "AGE", "RESULT", "CHANGES"),
                                [(h.id, h.label, h.revision[:8], h.by, output.age(h.at), h.result, h.summary)
                                 for h in syncs]))
