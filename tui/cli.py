"""The ``fleetdeck`` command line: the console, the demo, and headless verbs for scripts and CI.

Exit codes are the same for every verb:

* 0: success (and, for ``diff``/``drift``, in sync);
* 1: the command worked and found a problem: drift, a failed resource, a broken journal;
* 2: the command could not do its job: bad input, unreadable config, unreachable cluster or repo;
* 3: refused: read-only mode, another operator holds the lock, or the operator declined;
* 130: interrupted.

Textual is imported only by the verbs that open the console, so scripted verbs start fast.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from core.errors import FleetdeckError, LockedError, ReadOnlyError
from core.sanitize import clean
from tui import output

EXIT_OK, EXIT_PROBLEM, EXIT_ERROR, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
T = TypeVar("T")

output_option = click.option(
    "--output", "-o", "fmt", type=click.Choice(output.FORMATS), default="table", show_default=True,
    help="Output format.",
)
fleet_option = click.option(
    "--fleet", "-f", "fleet", type=click.Path(dir_okay=False), default=None,
    help="Fleet file (default: ./fleetdeck.yaml).", envvar="FLEETDECK_FLEET",
)
read_only_option = click.option(
    "--read-only", is_flag=True, default=False, envvar="FLEETDECK_READ_ONLY",
    help="Audit mode: the core refuses every change, dry runs included.",
)


def fail(message: str, code: int = EXIT_ERROR, hint: str = "") -> None:
    """Print ``error: message`` (and a hint) to stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    sys.exit(code)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``; turn fleetdeck errors into a message and an exit code (never a traceback)."""
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except (ReadOnlyError, LockedError) as exc:
        fail(exc.message, EXIT_REFUSED, exc.hint)
    except FleetdeckError as exc:
        fail(exc.message, EXIT_ERROR, exc.hint)
    raise AssertionError("unreachable")


def handle_errors(func: Callable[..., T]) -> Callable[..., T]:
    """Report fleetdeck errors raised outside ``run_async`` (config loading) cleanly."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except FleetdeckError as exc:
            fail(exc.message, EXIT_ERROR, exc.hint)
            raise

    return wrapper


def log_path() -> str:
    """``$XDG_STATE_HOME/fleetdeck/fleetdeck.log``: where the console logs (never to its own screen)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "fleetdeck", "fleetdeck.log")


def configure_logging(verbose: int, *, to_file: bool) -> None:
    """Headless verbs log errors to stderr (more with -v); the console logs to a file, since stderr is
    its screen."""
    level = (logging.ERROR, logging.WARNING, logging.DEBUG)[min(verbose, 2)]
    if to_file:
        path = log_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
        level = min(level, logging.WARNING)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def parse_duration(text: str | None) -> float | None:
    """``90s``, ``15m``, ``2h``, ``1d`` (or a bare number of seconds) to seconds."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise click.BadParameter(f"expected a duration such as 30m, 2h or 1d, got {text!r}")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fleetdeck", prog_name="fleetdeck")
@fleet_option
@read_only_option
@click.option("--mouse/--no-mouse", default=False, help="Enable mouse tracking (off by default, for SSH).")
@click.option("--verbose", "-v", count=True, help="Log more (-v warnings, -vv debug) to stderr or the console log.")
@click.pass_context
def main(ctx: click.Context, fleet: str | None, read_only: bool, mouse: bool, verbose: int) -> None:
    """fleetdeck: every GitOps application on every cluster, live, in one terminal.

    Without a command, opens the console on the fleet file (like `fleetdeck console`).
    Try `fleetdeck demo` for a self-contained demo fleet that needs no cluster.
    """
    ctx.obj = {"fleet": fleet, "read_only": read_only, "mouse": mouse}
    interactive = ctx.invoked_subcommand in (None, "console", "demo")
    configure_logging(verbose, to_file=interactive)
    if ctx.invoked_subcommand is None:
        ctx.invoke(console, fleet=fleet, read_only=read_only, mouse=mouse)


@main.command()
@fleet_option
@read_only_option
@click.option("--mouse/--no-mouse", default=False, help="Enable mouse tracking (off by default, for SSH).")
@handle_errors
def console(fleet: str | None, read_only: bool, mouse: bool) -> None:
    """Open the fleet console."""
    from core.desired.fleet import find_fleet_file, load_fleet
    from core.engine import ThreadedEngine, engine_from_fleet_file

    outer = click.get_current_context().find_root().obj or {}
    fleet = fleet or outer.get("fleet")
    read_only = read_only or bool(outer.get("read_only"))
    mouse = mouse or bool(outer.get("mouse"))
    load_fleet(find_fleet_file(fleet))  # a missing or invalid fleet file is an error here, not in the console
    engine = ThreadedEngine(lambda: engine_from_fleet_file(fleet, read_only=read_only))
    _run_console(engine, read_only=read_only, mouse=mouse)


@main.command()
@read_only_option
@click.option("--mouse/--no-mouse", default=False, help="Enable mouse tracking.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Where to create the demo repo (default: a temporary directory).")
@click.option("--live-changes/--no-live-changes", default=True, help="Make the demo fleet change over time.")
@handle_errors
def demo(read_only: bool, mouse: bool, directory: str | None, live_changes: bool) -> None:
    """Open the console on a self-contained demo fleet (no cluster, no network)."""
    from core.demo import demo_engine
    from core.engine import ThreadedEngine

    engine = ThreadedEngine(lambda: demo_engine(directory, read_only=read_only, live_changes=live_changes))
    _run_console(engine, read_only=read_only, mouse=mouse)


def _run_console(engine: Any, *, read_only: bool, mouse: bool) -> None:
    from tui.app import make_app

    app = make_app(engine, read_only=read_only, mouse=mouse)
    app.run(mouse=mouse)
    if getattr(app, "return_code", 0):
        sys.exit(app.return_code)


# ---------------------------------------------------------------------------------------------- headless


async def _snapshot_of(engine: Any) -> Any:
    return engine.snapshot


async def _with_engine(fleet: str | None, read_only: bool, body: Callable[[Any], Awaitable[T]]) -> T:
    from core.engine import engine_from_fleet_file

    engine = engine_from_fleet_file(fleet, read_only=read_only)
    await engine.start()
    try:
        await engine.wait_ready()
        return await body(engine)
    finally:
        await engine.stop()


@main.command()
@fleet_option
@output_option
@click.option("--app", "app_filter", default=None, help="Only this app.")
@click.option("--cluster", "cluster_filter", default=None, help="Only this cluster.")
@handle_errors
def status(fleet: str | None, fmt: str, app_filter: str | None, cluster_filter: str | None) -> None:
    """One row per app and cluster: sync, health, revision, drift, connection."""
    snap = run_async(_with_engine(fleet, True, _snapshot_of))
    apps = [a for a in snap.apps if (app_filter in (None, a.app)) and (cluster_filter in (None, a.cluster))]
    if fmt == "table":
        click.echo(output.table(output.STATUS_HEADERS, output.status_rows(apps)))
        for cluster in snap.clusters:
            if cluster.connection.value != "Connected":
                click.echo(f"cluster {cluster.name}: {cluster.connection.value} {output.age(cluster.since)}"
                           f" {clean(cluster.message)}", err=True)
    else:
        data = {"apps": [output.status_record(a) for a in apps],
                "clusters": [{"name": c.name, "connection": c.connection.value, "server": c.server,
                              "message": c.message, "since": c.since} for c in snap.clusters],
                "repo": output.to_data(snap.repo)}
        click.echo(output.dump(data, fmt))


@main.command()
@click.argument("app")
@fleet_option
@click.option("--cluster", "-c", default=None, help="Only this cluster (default: every cluster the app targets).")
@read_only_option
@handle_errors
def diff(app: str, fleet: str | None, cluster: str | None, read_only: bool) -> None:
    """Unified diff of desired vs live for APP (exit 1 when there is drift, 0 in sync, 2 on error)."""
    snap = run_async(_with_engine(fleet, read_only, _snapshot_of))
    rows = _targets(snap, app, cluster, True)
    drifted = False
    for row in rows:
        if row.sync.value == "Unknown":
            for cond in row.conditions:
                click.echo(f"# {row.cluster}: {cond.type}: {clean(cond.message)}", err=True)
            fail(f"cannot compare {app} on {row.cluster}: state unknown")
        text = output.app_diff_text(row)
        if text:
            drifted = True
            click.echo(text)
    sys.exit(EXIT_PROBLEM if drifted else EXIT_OK)


@main.command()
@click.argument("desired", type=click.Path(dir_okay=False, allow_dash=True))
@click.argument("live", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--namespace", "-n", default="default", show_default=True,
              help="Namespace for a desired manifest that names none (as kubectl).")
@click.option("--output", "-o", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def drift(desired: str, live: str, namespace: str, fmt: str) -> None:
    """Compare a DESIRED manifest with a LIVE object (kubectl get -o yaml), offline.

    Exit 0 in sync, 1 drift, 2 invalid input.
    """
    from core.offline import drift_report

    try:
        report = drift_report(_read_input(desired), _read_input(live), namespace=namespace,
                              desired_name=desired, live_name=live)
    except FleetdeckError as exc:
        fail(exc.message, EXIT_ERROR, exc.hint)
    if fmt == "json":
        click.echo(output.dump(report, "json"))
    else:
        click.echo("in sync" if report["in_sync"] else f"{len(report['changes'])} field(s) drifted (approximate):")
        for change in report["changes"]:
            who = f"  [{change['manager']} {change['time'] or ''}]".rstrip() if change["manager"] else ""
            click.echo(f"  {change['path']}: live={_short(change['live'])} desired={_short(change['desired'])}{who}")
    sys.exit(EXIT_OK if report["in_sync"] else EXIT_PROBLEM)


@main.command()
@click.argument("live", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--output", "-o", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def health(live: str, fmt: str) -> None:
    """The health of a LIVE object file (or - for stdin)."""
    from core.offline import health_report

    try:
        report = health_report(_read_input(live), name=live)
    except FleetdeckError as exc:
        fail(exc.message, EXIT_ERROR, exc.hint)
    if fmt == "json":
        click.echo(output.dump(report, "json"))
    else:
        click.echo(f"{report['status']}" + (f": {clean(report['message'])}" if report["message"] else ""))


def _read_input(name: str) -> str:
    try:
        if name == "-":
            return sys.stdin.read()
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {name}: {exc}")
        raise


def _short(value: Any) -> str:
    text = clean(output.dump(value, "json").replace("\n", " "), max_length=60)
    return text


@main.command()
@click.argument("app")
@fleet_option
@click.option("--cluster", "-c", default=None, help="Cluster whose path template to use (default: the first).")
@click.option("--limit", default=20, show_default=True)
@output_option
@handle_errors
def history(app: str, fleet: str | None, cluster: str | None, limit: int, fmt: str) -> None:
    """Git revisions that changed APP's rendered output, newest first, and its recorded syncs."""

    async def body(engine: Any) -> Any:
        target = _pick_target(engine.snapshot, app, cluster)
        revisions = await engine.revisions(app, target.cluster, limit=limit)
        return target, revisions

    target, revisions = run_async(_with_engine(fleet, True, body))
    if fmt != "table":
        click.echo(output.dump({"app": app, "cluster": target.cluster, "revisions": revisions,
                                "syncs": target.history}, fmt))
        return
    click.echo(output.table(("REVISION", "AGE", "AUTHOR", "SUBJECT"),
                            [(r.short, output.age(r.committed_at), r.author, r.subject) for r in revisions]))
    if target.history:
        click.echo("")
        click.echo(output.table(("#", "KIND", "REVISION", "BY", "AGE", "RESULT", "CHANGES"),
                                [(h.id, h.kind, h.revision[:8], h.by, output.age(h.at), h.result, h.summary)
                                 for h in target.history]))


def _pick_target(snap: Any, app: str, cluster: str | None) -> Any:
    return _targets(snap, app, cluster, True)[0]


def _targets(snap: Any, app: str, cluster: str | None, all_clusters: bool) -> list[Any]:
    rows = [a for a in snap.apps if a.app == app and cluster in (None, a.cluster)]
    if not rows:
        fail(f"no app {app!r}" + (f" on cluster {cluster!r}" if cluster else "") + " in the fleet")
    if len(rows) > 1 and not all_clusters and cluster is None:
        names = ", ".join(r.cluster for r in rows)
        fail(f"app {app!r} runs on several clusters ({names})", hint="pass --cluster NAME or --all-clusters")
    return rows


def _print_plan(plan: Any) -> None:
    verb = "dry run of " if plan.dry_run else ""
    click.echo(f"{verb}{plan.kind} {plan.app} on {plan.cluster} to {plan.revision[:8]}"
               f"{' (prune)' if plan.prune else ''}:")
    for step in plan.steps:
        reason = f"  ({clean(step.reason)})" if step.reason else ""
        click.echo(f"  wave {step.wave:>2}  {step.action.value:<14} {clean(str(step.key))}{reason}")
    for warning in plan.warnings:
        click.echo(f"  warning: {clean(warning)}")
    if plan.blocked:
        click.echo(f"  blocked: {clean(plan.blocked)}")


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        fail("confirmation needed but standard input is not a terminal", EXIT_REFUSED, "pass --yes to proceed")
    if not click.confirm(question, default=False):
        fail("cancelled", EXIT_REFUSED)


async def _run_plan(engine: Any, plan: Any) -> Any:
    final = None
    async for state in engine.run(plan):
        final = state
        if sys.stderr.isatty():
            done = sum(1 for e in state.entries if e.action.value != "pending")
            click.echo(f"\r  {state.phase.value}: {done}/{len(state.entries)} resources", nl=False, err=True)
    if sys.stderr.isatty():
        click.echo("", err=True)
    return final


def _report_result(state: Any, fmt: str) -> int:
    if fmt != "table":
        click.echo(output.dump(state, fmt))
    else:
        for entry in state.entries:
            msg = f"  {clean(entry.message)}" if entry.message else ""
            click.echo(f"  {entry.action.value:<14} {clean(str(entry.key))}{msg}")
        click.echo(f"{state.phase.value}: {clean(state.message) or state.summary}")
    return EXIT_OK if state.phase.successful else EXIT_PROBLEM


@main.command()
@click.argument("app")
@fleet_option
@click.option("--cluster", "-c", default=None)
@click.option("--all-clusters", is_flag=True, help="Sync the app on every cluster it targets.")
@click.option("--dry-run", is_flag=True, help="Send the whole plan through the server's dry run; write nothing.")
@click.option("--prune", is_flag=True, help="Delete objects the app owns that are no longer in Git.")
@click.option("--resource", "resources", multiple=True, metavar="KIND/NS/NAME", help="Sync only these.")
@click.option("--force-replace", is_flag=True, help="Delete and recreate objects whose immutable fields changed.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@read_only_option
@output_option
@handle_errors
def sync(app: str, fleet: str | None, cluster: str | None, all_clusters: bool, dry_run: bool, prune: bool,
         resources: tuple[str, ...], force_replace: bool, yes: bool, read_only: bool, fmt: str) -> None:
    """Sync APP: show the plan, ask, apply (exit 1 when any resource failed)."""
    from core.model import ResourceKey

    try:
        keys = [ResourceKey.parse(r) for r in resources]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--resource") from exc

    async def body(engine: Any) -> int:
        code = EXIT_OK
        for target in _targets(engine.snapshot, app, cluster, all_clusters):
            plan = await engine.plan_sync(app, target.cluster, prune=prune, dry_run=dry_run,
                                          resources=keys, force_replace=force_replace)
            _print_plan(plan)
            if plan.blocked:
                code = max(code, EXIT_ERROR)
                continue
            _confirm(f"{'Dry-run' if dry_run else 'Sync'} {app} on {target.cluster}?", yes or dry_run)
            state = await _run_plan(engine, plan)
            code = max(code, _report_result(state, fmt))
        return code

    sys.exit(run_async(_with_engine(fleet, read_only, body)))


@main.command()
@click.argument("app")
@click.argument("revision", required=False)
@fleet_option
@click.option("--previous", is_flag=True, help="Roll back to the sync recorded before the current one.")
@click.option("--cluster", "-c", default=None)
@click.option("--yes", "-y", is_flag=True)
@read_only_option
@output_option
@handle_errors
def rollback(app: str, revision: str | None, fleet: str | None, previous: bool, cluster: str | None,
             yes: bool, read_only: bool, fmt: str) -> None:
    """Roll APP back to REVISION (or --previous): preview, then pin and pause in one step, then sync."""
    if bool(revision) == previous:
        raise click.UsageError("give a REVISION or --previous (not both)")

    async def body(engine: Any) -> int:
        target = _targets(engine.snapshot, app, cluster, False)[0]
        sha = revision or _previous_revision(target)
        plan = await engine.plan_rollback(app, target.cluster, sha)
        _print_plan(plan)
        if plan.blocked:
            return EXIT_ERROR
        _confirm(f"Roll back {app} on {target.cluster} to {plan.revision[:8]} (pins and pauses it)?", yes)
        return _report_result(await _run_plan(engine, plan), fmt)

    sys.exit(run_async(_with_engine(fleet, read_only, body)))


def _previous_revision(target: Any) -> str:
    current = target.synced_revision
    for entry in target.history:
        if entry.revision != current and entry.result == "Succeeded":
            return str(entry.revision)
    fail(f"no earlier successful sync is recorded for {target.app} on {target.cluster}",
         hint="give a REVISION (see `fleetdeck history APP`)")
    raise AssertionError("unreachable")


@main.command()
@click.argument("app")
@fleet_option
@click.option("--cluster", "-c", default=None)
@click.option("--all-clusters", is_flag=True)
@click.option("--reason", default="", help="Why (shown to every operator).")
@click.option("--for", "duration", default=None, help="Expire after this long (30m, 2h, 1d).")
@read_only_option
@handle_errors
def pause(app: str, fleet: str | None, cluster: str | None, all_clusters: bool, reason: str,
          duration: str | None, read_only: bool) -> None:
    """Stop automated syncs of APP (drift and health keep updating; manual syncs still work)."""
    expires = parse_duration(duration)

    async def body(engine: Any) -> int:
        for target in _targets(engine.snapshot, app, cluster, all_clusters):
            await engine.pause(app, target.cluster, reason=reason, expires_in=expires)
            click.echo(f"paused {app} on {target.cluster}" + (f" for {duration}" if duration else ""))
        return EXIT_OK

    sys.exit(run_async(_with_engine(fleet, read_only, body)))


@main.command()
@click.argument("app")
@fleet_option
@click.option("--cluster", "-c", default=None)
@click.option("--all-clusters", is_flag=True)
@read_only_option
@handle_errors
def resume(app: str, fleet: str | None, cluster: str | None, all_clusters: bool, read_only: bool) -> None:
    """Clear a pause and any rollback pin of APP."""

    async def body(engine: Any) -> int:
        for target in _targets(engine.snapshot, app, cluster, all_clusters):
            await engine.resume(app, target.cluster)
            click.echo(f"resumed {app} on {target.cluster}")
        return EXIT_OK

    sys.exit(run_async(_with_engine(fleet, read_only, body)))


@main.command()
def schema() -> None:
    """Print the JSON Schema of the fleet file (for editor completion)."""
    from core.desired.fleet import fleet_schema

    click.echo(output.dump(fleet_schema(), "json"))


# ---------------------------------------------------------------------------------------------- audit


@main.group()
def audit() -> None:
    """Evidence for auditors: the operator journal and a fleet report."""


@audit.command("journal")
@click.option("--path", "journal_path", type=click.Path(dir_okay=False), default=None,
              help="Journal file (default: $XDG_STATE_HOME/fleetdeck/journal.jsonl).", envvar="FLEETDECK_JOURNAL")
@click.option("--limit", default=50, show_default=True, help="Show the last N entries (0: all).")
@output_option
def audit_journal(journal_path: str | None, limit: int, fmt: str) -> None:
    """Verify the journal's hash chain and show its last entries (exit 1 when the chain is broken)."""
    from core.journal import default_path, read_entries, verify

    path = Path(journal_path) if journal_path else default_path()
    if not path.exists():
        fail(f"no journal at {path}", hint="fleetdeck writes it on the first action; pass --path to read another")
    result = verify(path)
    entries = list(read_entries(path, limit=limit or None))
    if fmt != "table":
        click.echo(output.dump({"path": str(path), "verified": result.ok, "entries": result.entries,
                                "first_bad_line": result.first_bad_line, "reason": result.reason,
                                "last": entries}, fmt))
    else:
        rows = [(e.seq, output.age(e.ts), e.who.get("os_user", ""), e.action, e.app, e.cluster, e.result,
                 e.message) for e in entries]
        click.echo(output.table(("SEQ", "AGE", "WHO", "ACTION", "APP", "CLUSTER", "RESULT", "MESSAGE"), rows))
        verdict = (f"journal verified: {result.entries} entries, hash chain intact" if result.ok else
                   f"journal BROKEN at line {result.first_bad_line}: {result.reason}")
        click.echo(verdict, err=not result.ok)
    sys.exit(EXIT_OK if result.ok else EXIT_PROBLEM)


@audit.command("report")
@fleet_option
@click.option("--output", "-o", "fmt", type=click.Choice(["markdown", "json"]), default="markdown",
              show_default=True)
@handle_errors
def audit_report(fleet: str | None, fmt: str) -> None:
    """A fleet evidence report: desired and live revision, drift with field managers, pauses, history."""
    from tui.report import markdown_report, report_data

    snap = run_async(_with_engine(fleet, True, _snapshot_of))
    data = report_data(snap)
    click.echo(output.dump(data, "json") if fmt == "json" else markdown_report(data))


@main.command()
@fleet_option
@click.option("--once", is_flag=True, help="Reconcile once and exit (for cron or a CI job).")
@handle_errors
def agent(fleet: str | None, once: bool) -> None:
    """Run the core headless: watch the fleet and sync apps whose policy is automated.

    Only the holder of each cluster's automation Lease syncs, so several agents and consoles can run.
    """
    from core.engine import engine_from_fleet_file

    async def main_loop() -> int:
        engine = engine_from_fleet_file(fleet, read_only=False)
        await engine.start()
        try:
            snap = await engine.wait_ready()
            click.echo(f"agent: watching {len(snap.apps)} app targets on {len(snap.clusters)} clusters", err=True)
            if once:
                await engine.actions.automation_pass()
                return EXIT_OK
            async for _ in engine.snapshots():  # automation runs inside the engine until interrupted
                pass
            return EXIT_OK
        finally:
            await engine.stop()

    sys.exit(run_async(main_loop()))
