"""``console`` and ``demo``: the verbs that open the Textual console (the only ones that import it)."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from core.errors import FleetdeckError
from tui.cli.options import (
    Options,
    configure_logging,
    current,
    exit_code_of,
    fail,
    global_options,
    reject_unused,
)
from tui.cli.root import main

NO_CURSOR_TERMS = frozenset({"", "dumb", "unknown"})
"""``TERM`` values of terminals that cannot move the cursor: the console would draw once and then freeze."""


WEB_DRIVER = "textual.drivers.web_driver:"
"""What textual-serve sets ``TEXTUAL_DRIVER`` to in each console it starts."""


def require_terminal() -> None:
    """Exit 2 with what to do instead when the console cannot be drawn here (``TERM=dumb``, a pipe)."""
    term = os.environ.get("TERM", "")
    if os.environ.get("TEXTUAL_DRIVER", "").startswith(WEB_DRIVER):
        return  # served to a browser (`fleetdeck serve`): the pipes carry the web driver's packets
    if term in NO_CURSOR_TERMS:
        problem = f"TERM={term or '(unset)'} cannot move the cursor"
    elif not (sys.stdin.isatty() and sys.stdout.isatty()):
        problem = "its input and output must be a terminal, not a pipe or a file"
    else:
        return
    fail(f"the console needs a terminal: {problem}", hint="set TERM (for example TERM=xterm-256color), or use "
         "`fleetdeck status`, `diff`, `events` and `history` (with `-o json` for scripts)")


def _mouse(flag: bool) -> bool:
    return flag or bool(click.get_current_context().find_root().meta.get("fleetdeck.mouse"))


def open_console(options: Options, *, mouse: bool) -> None:
    """Open the console on the fleet file of ``options``."""
    from core.desired.fleet_file import find_fleet_file, load_fleet
    from core.engine import ThreadedEngine, check_impersonation, engine_from_fleet_file, loading_snapshot

    configure_logging(options.verbose, to_file=True)
    try:
        fleet = load_fleet(find_fleet_file(options.fleet))  # a bad fleet file is an error here, not in the console
        read_only = options.read_only or fleet.read_only
        check_impersonation(read_only, options.impersonate)
    except FleetdeckError as exc:
        fail(exc.message, exit_code_of(exc), exc.hint)
    require_terminal()
    engine = ThreadedEngine(lambda: engine_from_fleet_file(options.fleet, read_only=read_only,
                                                           impersonate=options.impersonate,
                                                           memory_limit=options.memory_limit),
                            read_only=read_only, placeholder=loading_snapshot(fleet, read_only=read_only))
    run_console(engine, read_only=read_only, mouse=mouse)


@main.command()
@global_options()
@click.option("--mouse/--no-mouse", default=False, help="Enable mouse tracking (off by default, for SSH).")
def console(mouse: bool) -> None:
    """Open the fleet console."""
    reject_unused()
    open_console(current(), mouse=_mouse(mouse))


@main.command()
@global_options(fleet=False)
@click.option("--mouse/--no-mouse", default=False, help="Enable mouse tracking.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Where to create the demo repo (default: a temporary directory).")
@click.option("--live-changes/--no-live-changes", default=True, help="Make the demo fleet change over time.")
def demo(mouse: bool, directory: str | None, live_changes: bool) -> None:
    """Open the console on a self-contained demo fleet (no cluster, no network)."""
    from core.demo import demo_engine, demo_preview
    from core.engine import ThreadedEngine

    reject_unused()
    require_terminal()
    options = current()
    configure_logging(options.verbose, to_file=True)
    read_only = options.read_only
    engine = ThreadedEngine(lambda: demo_engine(directory, read_only=read_only, live_changes=live_changes,
                                                render_cache=True),
                            read_only=read_only, placeholder=demo_preview(read_only=read_only))
    run_console(engine, read_only=read_only, mouse=_mouse(mouse))


def run_console(engine: Any, *, read_only: bool, mouse: bool) -> None:
    """Run the Textual app until it exits; its return code becomes the process's."""
    from tui.app import make_app

    app = make_app(engine, read_only=read_only, mouse=mouse)
    app.run(mouse=mouse)
    if getattr(app, "return_code", 0):
        sys.exit(app.return_code)
