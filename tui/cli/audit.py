"""``audit journal`` and ``audit report``: evidence for auditors."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tui.cli.common import settled_snapshot
from tui.cli.options import Exit, fail, global_options, output_format, verb
from tui.cli.root import main

JOURNAL_FORMATS = ("table", "json", "yaml")
REPORT_FORMATS = ("markdown", "json")


@main.group()
def audit() -> None:
    """Evidence for auditors: the operator journal and a fleet report."""


@audit.command("journal")
@click.option("--path", "journal_path", type=click.Path(dir_okay=False), default=None,
              help="Journal file (default: $FLEETDECK_JOURNAL, else $XDG_STATE_HOME/fleetdeck/journal.jsonl).")
@click.option("--limit", default=50, show_default=True, help="Show the last N entries (0: all).")
@global_options(output=JOURNAL_FORMATS, fleet=False)
@verb
def audit_journal(journal_path: str | None, limit: int) -> None:
    """Verify the journal's hash chain and show its last entries.

    Also lists operations that started and never finished (interrupted, or still running elsewhere).
    Output: table, json, yaml. Exit 0 intact, 1 the chain is broken or truncated (the anchor remembers
    more than the file holds, even when the file is gone), 2 no journal was ever written.
    """
    from core.journal import configured_path, read_entries, verify
    from tui import output

    fmt = output_format(JOURNAL_FORMATS)
    path = Path(journal_path) if journal_path else configured_path()
    result = verify(path)  # a missing journal whose anchor remembers entries is reported as truncated
    if not path.exists() and result.ok:
        fail(f"no journal at {path}", hint="fleetdeck writes it on the first action; pass --path to read another")
    entries = list(read_entries(path, limit=limit or None))
    if fmt != "table":
        click.echo(output.dump({"path": str(path), "verified": result.ok, "entries": result.entries,
                                "first_bad_line": result.first_bad_line, "reason": result.reason,
                                "unfinished": result.unfinished, "last": entries}, fmt))
    else:
        rows = [(e.seq, output.age(e.ts), e.who.get("os_user", ""), e.action, e.app, e.cluster, e.result,
                 e.message) for e in entries]
        click.echo(output.table(("SEQ", "AGE", "WHO", "ACTION", "APP", "CLUSTER", "RESULT", "MESSAGE"), rows))
        if result.unfinished:
            click.echo("")
            click.echo("Unfinished operations (started, never finished: interrupted, or still running elsewhere):")
            click.echo(output.table(
                ("SEQ", "AGE", "WHO", "ACTION", "APP", "CLUSTER", "OPERATION"),
                [(e.seq, output.age(e.ts), e.who.get("os_user", ""), e.action, e.app, e.cluster,
                  e.details.get("operation", "")) for e in result.unfinished]))
        verdict = (f"journal verified: {result.entries} entries, hash chain intact" if result.ok else
                   f"journal BROKEN at line {result.first_bad_line}: {result.reason}")
        click.echo(verdict, err=not result.ok)
    if result.unfinished:
        click.echo(f"warning: {len(result.unfinished)} operation(s) started and never finished", err=True)
    sys.exit(int(Exit.OK if result.ok else Exit.PROBLEM))


@audit.command("report")
@global_options(output=REPORT_FORMATS)
@verb
def audit_report() -> None:
    """A fleet evidence report: desired and live revision, drift with field managers, pauses, history.

    Always read-only. Output: markdown, json.
    """
    from tui import output
    from tui.report import markdown_report, report_data

    fmt = output_format(REPORT_FORMATS)

    data = report_data(settled_snapshot(read_only=True))
    click.echo(output.dump(data, "json") if fmt == "json" else markdown_report(data))
