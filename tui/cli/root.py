"""The ``fleetdeck`` command group: global options, and the console when no verb is given."""

from __future__ import annotations

import click

from core.limits import raise_open_file_limit
from tui.cli.options import ALL_FORMATS, current, global_options


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fleetdeck", prog_name="fleetdeck")
@global_options(output=ALL_FORMATS)
@click.option("--mouse/--no-mouse", default=False, help="Enable mouse tracking (off by default, for SSH).")
@click.pass_context
def main(ctx: click.Context, mouse: bool) -> None:
    """fleetdeck: every GitOps application on every cluster, live, in one terminal.

    Without a command, opens the console on the fleet file (like `fleetdeck console`).
    Try `fleetdeck demo` for a self-contained demo fleet that needs no cluster.

    Global options (--fleet, --read-only, -v, --output) work before or after the command.
    Exit codes: 0 ok, 1 a problem found (drift, Degraded, a failed resource, a broken journal),
    2 the command could not do its job, 3 refused (read-only, locked, declined), 130 interrupted.
    """
    ctx.meta["fleetdeck.mouse"] = mouse
    raise_open_file_limit()  # a watch is a socket: allow what the system allows (docs/reliability.md, K17)
    if ctx.invoked_subcommand is None:
        from tui.cli.console import open_console

        open_console(current(), mouse=mouse)
