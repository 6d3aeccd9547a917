"""Verbs that need no cluster and no fleet: ``drift``, ``health``, ``schema``."""

from __future__ import annotations

import sys
from typing import Any

import click

from core.sanitize import clean
from tui.cli.common import read_input
from tui.cli.options import PROBLEM_HEALTH, Exit, global_options, output_format, verb
from tui.cli.root import main

TEXT_FORMATS = ("text", "json", "yaml")


def _short(value: Any) -> str:
    from tui import output

    return clean(output.dump(value, "json").replace("\n", " "), max_length=60)


@main.command()
@click.argument("desired", type=click.Path(dir_okay=False, allow_dash=True))
@click.argument("live", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--namespace", "-n", default="default", show_default=True,
              help="Namespace for a desired manifest that names none (as kubectl).")
@global_options(output=TEXT_FORMATS, fleet=False)
@verb
def drift(desired: str, live: str, namespace: str) -> None:
    """Compare a DESIRED manifest with a LIVE object (kubectl get -o yaml), offline.

    Output: text, json, yaml. Exit 0 in sync, 1 drift, 2 invalid input.
    """
    from core.offline import drift_report
    from tui import output

    fmt = output_format(TEXT_FORMATS)
    report = drift_report(read_input(desired), read_input(live), namespace=namespace,
                          desired_name=desired, live_name=live)
    if fmt != "text":
        click.echo(output.dump(report, fmt))
    else:
        click.echo("in sync" if report["in_sync"] else f"{len(report['changes'])} field(s) drifted (approximate):")
        for change in report["changes"]:
            who = f"  [{change['manager']} {change['time'] or ''}]".rstrip() if change["manager"] else ""
            click.echo(f"  {clean(change['path'])}: live={_short(change['live'])} "
                       f"desired={_short(change['desired'])}{clean(who)}")
    sys.exit(int(Exit.OK if report["in_sync"] else Exit.PROBLEM))


@main.command()
@click.argument("live", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--customizations", "customizations", multiple=True, type=click.Path(exists=False),
              help="Argo CD health scripts: a resource_customizations directory or an argocd-cm file "
                   "(repeatable; also env FLEETDECK_RESOURCE_CUSTOMIZATIONS).")
@global_options(output=TEXT_FORMATS, fleet=False)
@verb
def health(live: str, customizations: tuple[str, ...]) -> None:
    """The health of a LIVE object file (or - for stdin).

    Text output: ``Status: message  [source]``, the source naming the rule that judged it (see
    docs/health.md). Output: text, json, yaml. Exit 0 Healthy, Progressing, Suspended, Unknown or no rule;
    1 Degraded or Missing (an empty input: the object does not exist); 2 invalid input.
    """
    from core.offline import health_report
    from tui import output

    fmt = output_format(TEXT_FORMATS)
    report = health_report(read_input(live), name=live, customizations=customizations)
    if fmt != "text":
        click.echo(output.dump(report, fmt))
    else:
        message = f": {clean(report['message'])}" if report["message"] else ""
        source = f"  [{clean(report['source'])}]" if report["source"] else ""
        click.echo(f"{report['status']}{message}{source}")
    sys.exit(int(Exit.PROBLEM if report["status"] in PROBLEM_HEALTH else Exit.OK))


@main.command()
@global_options(fleet=False)
@verb
def schema() -> None:
    """Print the JSON Schema of the fleet file (for editor completion)."""
    from core.desired.fleet_file import fleet_schema
    from tui import output

    click.echo(output.dump(fleet_schema(), "json"))


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@global_options(fleet=False)
@verb
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (verbs, options, and app names from the fleet file).

    bash: `eval "$(fleetdeck completion bash)"` in ~/.bashrc; zsh: the same with zsh in ~/.zshrc;
    fish: `fleetdeck completion fish > ~/.config/fish/completions/fleetdeck.fish`.
    """
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None  # the choice above lists only shells click knows
    click.echo(completer(main, {}, "fleetdeck", "_FLEETDECK_COMPLETE").source())
