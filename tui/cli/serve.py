"""``fleetdeck serve``: the console in a browser, through textual-serve.

textual-serve starts one console process per browser tab and relays its screen and keys over a websocket.
It has **no authentication**: whoever can open the page drives a console with the operator's kubeconfig
credentials. So the server binds 127.0.0.1 by default and refuses any address that is not loopback unless
``--allow-remote`` says the operator has put something in front of it (reach it through an SSH tunnel,
``ssh -L 8000:127.0.0.1:8000 bastion``, instead).

Every console it starts gets exactly this invocation's global options (``--fleet`` as an absolute path,
``--read-only``, ``--as``/``--as-group``, ``-v``, ``--memory-limit``) and ``--mouse``, each argument quoted
for the shell textual-serve runs it through (:func:`served_command`); the fleet file and the impersonation
rule are checked here first, so a bad invocation fails once, not in every tab.
"""

from __future__ import annotations

import ipaddress
import shlex
import sys
from pathlib import Path

import click

from core.errors import FleetdeckError
from tui.cli.options import Exit, Options, current, exit_code_of, fail, global_options, reject_unused
from tui.cli.root import main

NO_AUTH = ("textual-serve has no authentication: anyone who can reach the port drives a console with your "
           "cluster credentials")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``localhost`` counts; any other name does not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def fleetdeck_executable() -> list[str]:
    """How to start this same fleetdeck: the ``fleetdeck`` script this process runs (or the one installed beside
    its interpreter), else the interpreter importing the command line."""
    for candidate in (Path(sys.argv[0]), Path(sys.executable).with_name("fleetdeck")):
        if candidate.name == "fleetdeck" and candidate.is_file():
            return [str(candidate.resolve())]
    return [sys.executable, "-c", "import sys; from tui.cli import main; sys.exit(main(prog_name='fleetdeck'))"]


def served_command(options: Options, *, fleet_file: Path, read_only: bool, mouse: bool) -> str:
    """The shell command textual-serve runs for each browser tab: this interpreter's ``fleetdeck console``
    with the same global options, every argument quoted."""
    argv = [*fleetdeck_executable(), "console"]
    argv += ["--fleet", str(fleet_file.resolve())]
    if read_only:
        argv.append("--read-only")
    if options.as_user is not None:
        argv += ["--as", options.as_user]
    for group in options.as_groups:
        argv += ["--as-group", group]
    if options.verbose:
        argv.append("-" + "v" * options.verbose)
    if options.memory_limit is not None:
        argv += ["--memory-limit", str(options.memory_limit)]
    argv.append("--mouse" if mouse else "--no-mouse")
    return shlex.join(argv)


@main.command()
@global_options()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; only loopback unless --allow-remote.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--allow-remote", is_flag=True, default=False,
              help="Allow an address that is not loopback (there is no authentication: put a proxy with one in "
                   "front).")
@click.option("--mouse/--no-mouse", default=True, help="Mouse in the browser (on by default).")
def serve(host: str, port: int, allow_remote: bool, mouse: bool) -> None:
    """Serve the console in a web browser (textual-serve), on 127.0.0.1 only by default."""
    from core.desired.fleet_file import find_fleet_file, load_fleet
    from core.engine import check_impersonation

    reject_unused()
    if not is_loopback(host) and not allow_remote:
        fail(f"refusing to serve on {host}: {NO_AUTH}", Exit.ERROR,
             hint="keep the default 127.0.0.1 and reach it through an SSH tunnel (ssh -L 8000:127.0.0.1:8000 "
                  "HOST), or pass --allow-remote behind a proxy that authenticates")
    options = current()
    try:
        fleet_file = find_fleet_file(options.fleet)
        fleet = load_fleet(fleet_file)
        read_only = options.read_only or fleet.read_only
        check_impersonation(read_only, options.impersonate)
    except FleetdeckError as exc:
        fail(exc.message, exit_code_of(exc), exc.hint)
    if not is_loopback(host):
        click.echo(f"warning: serving on {host}: {NO_AUTH}", err=True)
    from textual_serve.server import Server

    command = served_command(options, fleet_file=fleet_file, read_only=read_only, mouse=mouse)
    title = "fleetdeck (read-only)" if read_only else "fleetdeck"
    try:
        Server(command, host=host, port=port, title=title).serve()
    except OSError as exc:  # the port is taken, the address is not ours
        fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}", Exit.ERROR)
