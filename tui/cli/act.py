"""Verbs that change a cluster: ``sync``, ``rollback``, ``pause``, ``resume``.

Each one passes the read-only wall (``tui.cli.wall``) before anything else, prints the plan it will run,
asks (unless ``--yes``), and exits 1 when any resource failed, dry runs included.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

import click

from core.sanitize import clean
from tui.cli.common import complete_app, targets, with_engine
from tui.cli.options import Exit, fail, global_options, output_format, verb
from tui.cli.root import main
from tui.cli.wall import changes, check_clusters

RESULT_FORMATS = ("table", "json", "yaml")


def parse_duration(text: str | None) -> float | None:
    """``90s``, ``15m``, ``2h``, ``1d`` (or a bare number of seconds) to seconds."""
    import re

    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise click.BadParameter(f"expected a duration such as 30m, 2h or 1d, got {text!r}", param_hint="--for")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def print_plan(plan: Any) -> None:
    """The plan, step by step, as it will run."""
    verb_text = "dry run of " if plan.dry_run else ""
    click.echo(f"{verb_text}{plan.kind} {plan.app} on {plan.cluster} to {plan.revision[:8]}"
               f"{' (prune)' if plan.prune else ''}:")
    if plan.owner.value != "fleetdeck":
        print_patches(plan)
    phase = None
    for step in plan.steps:
        if plan.phased and step.phase is not phase:
            phase = step.phase
            when = " (only if the sync fails)" if phase.value == "SyncFail" else ""
            click.echo(f"  phase {phase.value}{when}:")
        reason = f"  ({clean(step.reason)})" if step.reason else ""
        click.echo(f"  wave {step.wave:>2}  {step.action.value:<14} {clean(str(step.key))}{reason}")
    for warning in plan.warnings:
        click.echo(f"  warning: {clean(warning)}")
    if plan.non_descendant:
        click.echo(f"  WARNING, history is replaced: {clean(plan.non_descendant)}")
        if plan.non_descendant_allowed:
            click.echo("  acknowledged with --allow-non-descendant")
        elif not plan.dry_run:
            click.echo("  this sync runs only with --allow-non-descendant")
    if plan.takeovers:
        click.echo(f"  WARNING, this sync {plan.takeover_summary}:")
        for takeover in plan.takeovers[:20]:
            click.echo(f"    {clean(takeover.key.short)} {clean(takeover.display_path)} "
                       f"(owned by {clean(takeover.manager)})")
        if len(plan.takeovers) > 20:
            click.echo(f"    … {len(plan.takeovers) - 20} more")
        if plan.takeovers_allowed:
            click.echo("  confirmed with --force-conflicts")
        elif not plan.dry_run:
            click.echo("  this sync runs only with --force-conflicts")
    if plan.blocked:
        click.echo(f"  blocked: {clean(plan.blocked)}")
        click.echo("  nothing was changed: a blocked plan does not run (the steps above are what it would do)")


def print_patches(plan: Any) -> None:
    """A controller-owned app's plan: the writes to the controller's objects, exactly as sent, then
    fleetdeck's own comparison (what the controller is expected to change)."""
    dry = " (through the server's dry run: nothing is stored)" if plan.dry_run else ""
    click.echo(f"  owner {plan.owner.value}: fleetdeck writes exactly these patches{dry}:")
    for patch in plan.patches:
        click.echo(f"  write {clean(patch.cluster)}: {clean(str(patch))}")
        click.echo(f"        {clean(patch.text, max_length=2000)}")
    if plan.steps:
        click.echo(f"  expected changes ({plan.owner.value} applies them; fleetdeck's own comparison):")


def confirm(question: str, yes: bool) -> None:
    """Ask on a terminal; without one, refuse unless ``--yes`` (exit 3)."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail("confirmation needed but standard input is not a terminal", Exit.REFUSED, "pass --yes to proceed")
    if not click.confirm(question, default=False):
        fail("cancelled", Exit.REFUSED)


def _question(plan: Any, verb_text: str) -> str:
    pruned = [clean(str(s.key)) for s in plan.steps if s.action.value == "pruned"]
    deletes = f"; this DELETES {len(pruned)} object(s): {', '.join(pruned)}" if pruned else ""
    replaces = ""
    if plan.non_descendant and not plan.dry_run:
        replaces = f"; this REPLACES HISTORY: {plan.revision[:8]} does not descend from " \
                   f"{plan.synced_revision[:8] or 'the synced revision'}, synced there"
    takes = f"; this {clean(plan.takeover_summary)}" if plan.takeovers_allowed and not plan.dry_run else ""
    return f"{verb_text} {plan.app} on {plan.cluster}{deletes}{replaces}{takes}?"


async def _run_sync(engine: Any, plan: Any, fmt: str) -> Exit:
    """Run a sync plan and report it. A sync that replaces history without (or with another) acknowledgement
    is refused and journalled by the engine: say why and how to proceed (exit 3). A plan that needs one is
    still handed to the engine, which is what refuses it and writes the journal entry."""
    from core.errors import FieldConflictError, NotAcknowledgedError

    try:
        state = await run_plan(engine, plan)
    except FieldConflictError as exc:
        click.echo(f"error: {clean(exc.message)}", err=True)
        click.echo(f"hint: review who owns them (`fleetdeck diff {plan.app}`), then run "
                   f"`fleetdeck sync {plan.app} --cluster {plan.cluster} --force-conflicts`", err=True)
        return Exit.REFUSED
    except NotAcknowledgedError as exc:
        click.echo(f"error: {clean(exc.message)}", err=True)
        click.echo(f"hint: review the change (`fleetdeck diff {plan.app}`, `fleetdeck history {plan.app}`), "
                   f"then run `fleetdeck sync {plan.app} --cluster {plan.cluster} --allow-non-descendant`",
                   err=True)
        return Exit.REFUSED
    code = report_result(state, fmt)
    if code is Exit.PROBLEM and not plan.dry_run and plan.synced_revision:
        click.echo(f"hint: to put back what ran before, roll back to {plan.synced_revision[:12]}: "
                   f"`fleetdeck rollback {plan.app} {plan.synced_revision[:12]} --cluster {plan.cluster}` "
                   "(it shows its plan and asks first)", err=True)
    return code


async def run_plan(engine: Any, plan: Any) -> Any:
    """Run a confirmed plan, with a progress line on a terminal; the final state."""
    final = None
    async for state in engine.execute_plan(plan):
        final = state
        if sys.stderr.isatty():
            done = sum(1 for e in state.entries if e.action.value != "pending")
            click.echo(f"\r  {state.phase.value}: {done}/{len(state.entries)} resources", nl=False, err=True)
    if sys.stderr.isatty():
        click.echo("", err=True)
    return final


def report_result(state: Any, fmt: str) -> Exit:
    """Print an operation's result; exit 1 when it failed or any resource failed."""
    from tui import output

    failed = any(e.action.value == "failed" for e in state.entries)
    if fmt != "table":
        click.echo(output.dump(state, fmt))
    else:
        for entry in state.entries:
            msg = f"  {clean(entry.message)}" if entry.message else ""
            hook = f"{entry.phase.value} hook " if entry.hook else ""
            click.echo(f"  {entry.action.value:<14} {hook}{clean(str(entry.key))}{msg}")
        click.echo(f"{state.phase.value}: {clean(state.message) or state.summary}")
    return Exit.OK if state.phase.successful and not failed else Exit.PROBLEM


@main.command()
@click.argument("app", shell_complete=complete_app)
@click.option("--cluster", "-c", default=None)
@click.option("--all-clusters", is_flag=True, help="Sync the app on every cluster it targets.")
@click.option("--dry-run", is_flag=True, help="Send the whole plan through the server's dry run; write nothing.")
@click.option("--prune", is_flag=True, help="Delete objects the app owns that are no longer in Git.")
@click.option("--resource", "resources", multiple=True, metavar="KIND/NS/NAME", help="Sync only these.")
@click.option("--force-replace", is_flag=True, help="Delete and recreate objects whose immutable fields changed.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--allow-non-descendant", is_flag=True,
              help="Sync even though the revision does not descend from the one synced on the cluster "
                   "(the branch was force-pushed, or the synced revision is gone from the repo).")
@click.option("--force-conflicts", is_flag=True,
              help="Take over fields another field manager owns (the plan lists them); without it such a "
                   "sync is refused (exit 3), as kubectl's server-side apply.")
@click.option("--sync-option", "sync_options", multiple=True, metavar="KEY=VALUE",
              help="Argo CD sync option for this sync (operation.sync.syncOptions), repeatable: CreateNamespace=true, "
                   "ServerSideApply=true, Replace=true… (Argo CD's documented set). Only for an app an Argo CD "
                   "Application owns; any other app's plan is blocked (exit 2).")
@click.option("--controller-dry-run", is_flag=True,
              help="Ask Argo CD for its own dry run (operation.sync.dryRun: true): the Application's operation is "
                   "written and Argo CD applies nothing. Not --dry-run, which writes nothing at all. Only for an "
                   "app an Argo CD Application owns.")
@global_options(output=RESULT_FORMATS)
@verb
@changes("sync")
def sync(app: str, cluster: str | None, all_clusters: bool, dry_run: bool, prune: bool,
         resources: tuple[str, ...], sync_options: tuple[str, ...], controller_dry_run: bool, force_replace: bool,
         yes: bool, allow_non_descendant: bool, force_conflicts: bool) -> None:
    """Sync APP: show the plan, ask, apply.

    A revision that does not descend from the one last synced on the cluster (a force-push) replaces
    history: the plan says so and the sync runs only with --allow-non-descendant. Fields another field
    manager owns that the sync would set are listed with their manager, and the sync runs only with
    --force-conflicts (a dry run shows them and needs neither flag).

    Output (the result): table, json, yaml. Exit 0 succeeded, 1 a resource failed (dry runs too),
    2 the plan is blocked (also: --sync-option or --controller-dry-run for an app Argo CD does not own)
    or the cluster cannot be read, 3 refused (read-only, locked, declined, history replaced without
    --allow-non-descendant, fields of another manager without --force-conflicts).
    """
    from core.controller_options import check_sync_options
    from core.model import ResourceKey

    fmt = output_format(RESULT_FORMATS)
    try:
        keys = [ResourceKey.parse(r) for r in resources]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--resource") from exc
    try:
        options = check_sync_options(sync_options)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--sync-option") from exc

    async def body(engine: Any) -> Exit:
        rows = targets(engine.snapshot, app, cluster, all_clusters=all_clusters)
        check_clusters("sync", app, engine.snapshot, [r.cluster for r in rows])
        code = Exit.OK
        for row in rows:
            if row.control.paused:
                click.echo(f"note: {app} is paused on {row.cluster}"
                           f"{': ' + clean(row.control.reason) if row.control.reason else ''};"
                           " a manual sync still applies (the pause only stops automated syncs)")
            plan = await engine.plan_sync(app, row.cluster, prune=prune, dry_run=dry_run,
                                          resources=keys, force_replace=force_replace,
                                          allow_non_descendant=allow_non_descendant,
                                          force_conflicts=force_conflicts, sync_options=options,
                                          controller_dry_run=controller_dry_run)
            print_plan(plan)
            if plan.blocked:
                code = max(code, Exit.ERROR)
                continue
            if not (plan.needs_acknowledgement or plan.needs_takeover_confirmation):  # the engine refuses it
                confirm(_question(plan, "Dry-run" if dry_run else "Sync"), yes or dry_run)
            code = max(code, await _run_sync(engine, plan, fmt))
        return code

    sys.exit(int(with_engine(body, only_app=app)))


def previous_revision(target: Any) -> str:
    """The revision of the newest recorded successful sync that differs from what runs now."""
    current = target.synced_revision
    for entry in sorted(target.history, key=lambda h: (h.at, h.id), reverse=True):
        if entry.revision != current and entry.result == "Succeeded":
            return str(entry.revision)
    fail(f"no earlier successful sync is recorded for {target.app} on {target.cluster}",
         hint="give a REVISION (see `fleetdeck history APP`)")


@main.command()
@click.argument("app", shell_complete=complete_app)
@click.argument("revision", required=False)
@click.option("--previous", is_flag=True, help="Roll back to the newest recorded sync before the current one.")
@click.option("--cluster", "-c", default=None)
@click.option("--yes", "-y", is_flag=True)
@global_options(output=RESULT_FORMATS)
@verb
@changes("rollback")
def rollback(app: str, revision: str | None, previous: bool, cluster: str | None, yes: bool) -> None:
    """Roll APP back to REVISION (or --previous): preview, then pin and pause in one step, then sync.

    Output (the result): table, json, yaml. Exit codes as `sync`.
    """
    if bool(revision) == previous:
        raise click.UsageError("give a REVISION or --previous (not both)")
    fmt = output_format(RESULT_FORMATS)

    async def body(engine: Any) -> Exit:
        target = targets(engine.snapshot, app, cluster, all_clusters=False)[0]
        check_clusters("rollback", app, engine.snapshot, [target.cluster])
        sha = revision or previous_revision(target)
        plan = await engine.plan_rollback(app, target.cluster, sha)
        print_plan(plan)
        if plan.blocked:
            return Exit.ERROR
        confirm(f"Roll back {app} on {target.cluster} to {plan.revision[:8]} (pins and pauses it)?", yes)
        return report_result(await run_plan(engine, plan), fmt)

    sys.exit(int(with_engine(body, only_app=app)))


@main.command()
@click.argument("app", shell_complete=complete_app)
@click.option("--cluster", "-c", default=None)
@click.option("--all-clusters", is_flag=True)
@click.option("--reason", default="", help="Why (shown to every operator).")
@click.option("--for", "duration", default=None, help="Expire after this long (30m, 2h, 1d).")
@global_options(output=RESULT_FORMATS)
@verb
@changes("pause")
def pause(app: str, cluster: str | None, all_clusters: bool, reason: str, duration: str | None) -> None:
    """Stop automated syncs of APP (drift and health keep updating; manual syncs still work).

    Output: table, json, yaml.
    """
    expires = parse_duration(duration)

    async def one(engine: Any, target: str) -> dict[str, Any]:
        await engine.pause(app, target, reason=reason, expires_in=expires)
        return {"app": app, "cluster": target, "paused": True, "reason": reason, "expires_in": expires}

    _control("pause", app, cluster, all_clusters, one,
             lambda d: f"paused {app} on {d['cluster']}" + (f" for {duration}" if duration else ""))


@main.command()
@click.argument("app", shell_complete=complete_app)
@click.option("--cluster", "-c", default=None)
@click.option("--all-clusters", is_flag=True)
@global_options(output=RESULT_FORMATS)
@verb
@changes("resume")
def resume(app: str, cluster: str | None, all_clusters: bool) -> None:
    """Clear a pause and any rollback pin of APP.

    Output: table, json, yaml.
    """

    async def one(engine: Any, target: str) -> dict[str, Any]:
        await engine.resume(app, target)
        return {"app": app, "cluster": target, "paused": False}

    _control("resume", app, cluster, all_clusters, one, lambda d: f"resumed {app} on {d['cluster']}")


def _control(action: str, app: str, cluster: str | None, all_clusters: bool,
             one: Callable[[Any, str], Awaitable[dict[str, Any]]], line: Callable[[dict[str, Any]], str]) -> None:
    """Pause or resume ``app`` on its target clusters (after the per-cluster read-only check) and report it."""
    from tui import output

    fmt = output_format(RESULT_FORMATS)

    async def body(engine: Any) -> list[dict[str, Any]]:
        rows = targets(engine.snapshot, app, cluster, all_clusters=all_clusters)
        check_clusters(action, app, engine.snapshot, [r.cluster for r in rows])
        done = []
        for row in rows:
            item = await one(engine, row.cluster)
            item["owner"] = row.owner.value
            item["owner_object"] = str(row.controller) if row.controller is not None else None
            item["generated_by"] = row.controller_status.generated_by if row.controller_status else ""
            done.append(item)
        return done

    done = with_engine(body, only_app=app)
    if fmt != "table":
        click.echo(output.dump(done, fmt))
    else:
        for item in done:
            through = f" through {item['owner']} ({clean(item['owner_object'])})" if item["owner_object"] else ""
            click.echo(line(item) + through)
            if item["generated_by"]:
                click.echo(f"note: the Application is generated by {clean(item['generated_by'])}: fleetdeck refuses "
                           "an action its ApplicationSet would undo when it can read the ApplicationSet (its CRD "
                           "served in that cluster); otherwise make sure the ApplicationSet lets spec.syncPolicy "
                           "and fleetdeck.io/* annotations differ (docs/owners.md)", err=True)
