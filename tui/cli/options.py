"""The options every verb shares, resolved once, and the exit codes, mapped in one place.

Global options (``--fleet``, ``--read-only``, ``--verbose``, ``--output``) are accepted before the verb
(``fleetdeck --read-only sync web``), after it (``fleetdeck sync web --read-only``) and from the environment
(``FLEETDECK_FLEET``, ``FLEETDECK_READ_ONLY``). Each placement records into one :class:`Options` on the root
context, and verbs read only that: no verb can see a different value from another.
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any, NoReturn, TypeVar

import click

from core.errors import FleetdeckError, LockedError, NotAcknowledgedError, ReadOnlyError
from core.files import private_dir
from core.settings import Impersonation

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class Exit(enum.IntEnum):
    """Exit codes, the same for every verb (README "Exit codes"; docs/cli.md has the table per verb)."""

    OK = 0
    """Success; for status/diff/drift: in sync and healthy."""
    PROBLEM = 1
    """The command worked and found a problem: drift, Degraded or Missing, a failed resource, a broken journal."""
    ERROR = 2
    """The command could not do its job: bad input, unreadable config, unreachable cluster or repo."""
    REFUSED = 3
    """Refused: read-only mode, another operator holds the lock, the operator declined."""
    INTERRUPTED = 130


PROBLEM_HEALTH = ("Degraded", "Missing")
"""Health statuses that make ``status``, ``diff`` and ``health`` exit 1."""

ALL_FORMATS = ("table", "json", "yaml", "text", "markdown")


@dataclass(frozen=True, slots=True)
class Options:
    """The resolved global options of one invocation."""

    fleet: str | None = None
    fleet_flag: bool = False
    """``--fleet`` was written on the command line (not only set in the environment)."""
    read_only: bool = False
    read_only_source: str = ""
    """Where read-only came from: ``--read-only``, ``FLEETDECK_READ_ONLY``."""
    verbose: int = 0
    output: str | None = None
    """``--output`` as given (None: the verb's default)."""
    as_user: str | None = None
    """``--as``: every request is sent as this user (Kubernetes impersonation)."""
    as_groups: tuple[str, ...] = ()
    """``--as-group``, each time it is written."""
    memory_limit: int | None = None
    """``--memory-limit`` in bytes (0: off; None: derived from the cgroup and ``RLIMIT_AS``, ``core.memory``)."""

    @property
    def impersonate(self) -> Impersonation | None:
        """The identity ``--as``/``--as-group`` ask for, None for the kubeconfig's own."""
        return Impersonation(self.as_user, self.as_groups) if self.as_user else None


OPTIONS_KEY = "fleetdeck.options"
"""Where the resolved options live: ``ctx.find_root().meta[OPTIONS_KEY]``."""


def _store(ctx: click.Context, name: str, value: Any, source: click.core.ParameterSource | None) -> None:
    root = ctx.find_root()
    current: Options = root.meta.get(OPTIONS_KEY, Options())
    given = source not in (None, click.core.ParameterSource.DEFAULT)
    if name == "fleet" and value is not None:
        if current.fleet is not None and current.fleet != value:
            raise click.UsageError(f"--fleet given twice with different files: {current.fleet} and {value}")
        current = replace(current, fleet=value,
                          fleet_flag=current.fleet_flag or source is click.core.ParameterSource.COMMANDLINE)
    elif name == "read_only" and value and not current.read_only:
        origin = "FLEETDECK_READ_ONLY" if source is click.core.ParameterSource.ENVIRONMENT else "--read-only"
        current = replace(current, read_only=True, read_only_source=origin)
    elif name == "verbose" and given:
        current = replace(current, verbose=current.verbose + int(value))
    elif name == "as_user" and value is not None:
        if current.as_user is not None and current.as_user != value:
            raise click.UsageError(f"--as given twice: {current.as_user} and {value}")
        current = replace(current, as_user=value)
    elif name == "as_groups" and value:
        current = replace(current, as_groups=tuple(dict.fromkeys((*current.as_groups, *value))))
    elif name == "memory_limit" and value is not None:
        if current.memory_limit is not None and current.memory_limit != value:
            raise click.UsageError("--memory-limit given twice with different sizes")
        current = replace(current, memory_limit=value)
    elif name == "output" and value is not None:
        if current.output is not None and current.output != value:
            raise click.UsageError(f"--output given twice: {current.output} and {value}")
        current = replace(current, output=value)
    root.meta[OPTIONS_KEY] = current


def _callback(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def record(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        _store(ctx, name, value, ctx.get_parameter_source(param.name or name))
        return value

    return record


class MemorySize(click.ParamType[int]):
    """A size as ``core.memory.parse_size`` reads it (``512M``, ``2G``, ``off``)."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        from core.memory import parse_size

        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def global_options(*, output: tuple[str, ...] = (), fleet: bool = True) -> Callable[[F], F]:
    """Attach the global options to a command (or the group); their values go to :func:`current`.

    ``output``: the formats the verb speaks, its default first (none: no ``--output``); ``fleet=False`` for
    verbs that read no fleet file (``drift``, ``health``, ``schema``).
    """

    def decorate(func: F) -> F:
        if fleet:
            func = click.option("--fleet", "-f", "fleet", type=click.Path(dir_okay=False), default=None,
                                envvar="FLEETDECK_FLEET", expose_value=False, callback=_callback("fleet"),
                                help="Fleet file (default: ./fleetdeck.yaml; env FLEETDECK_FLEET).")(func)
        if fleet:
            func = click.option("--as-group", "as_groups", multiple=True, metavar="GROUP", expose_value=False,
                                callback=_callback("as_groups"),
                                help="With --as: impersonate this group too (repeatable).")(func)
            func = click.option("--as", "as_user", default=None, metavar="USER", expose_value=False,
                                callback=_callback("as_user"),
                                help="Send every request as USER (Kubernetes impersonation; not in read-only "
                                     "mode).")(func)
            func = click.option("--memory-limit", "memory_limit", type=MemorySize(), default=None, metavar="SIZE",
                                envvar="FLEETDECK_MEMORY_LIMIT", expose_value=False,
                                callback=_callback("memory_limit"),
                                help="fleetdeck's own memory budget (512M, 2G, off; default: 75% of the cgroup "
                                     "or RLIMIT_AS limit, else off): near it, caches are dropped and a warning "
                                     "shown.")(func)
        func = click.option("--read-only", "read_only", is_flag=True, default=False, envvar="FLEETDECK_READ_ONLY",
                            expose_value=False, callback=_callback("read_only"),
                            help="Audit mode: every change is refused (exit 3), dry runs included.")(func)
        func = click.option("--verbose", "-v", "verbose", count=True, expose_value=False,
                            callback=_callback("verbose"), help="Log more to stderr (-v warnings, -vv debug).")(func)
        if output:
            func = click.option("--output", "-o", "output", type=click.Choice(output), default=None,
                                expose_value=False, callback=_callback("output"),
                                help=f"Output format (default: {output[0]}).")(func)
        return func

    return decorate


def current() -> Options:
    """The options of this invocation, wherever they were written."""
    ctx = click.get_current_context()
    options: Options = ctx.find_root().meta.get(OPTIONS_KEY, Options())
    return options


def output_format(formats: tuple[str, ...]) -> str:
    """The ``--output`` this verb speaks (its first format by default); a usage error for any other."""
    chosen = current().output
    if chosen is None:
        return formats[0]
    if chosen not in formats:
        name = click.get_current_context().info_name
        raise click.UsageError(f"{name} speaks --output {'|'.join(formats)}, not {chosen}")
    return chosen


def reject_unused() -> None:
    """A global option written for a verb that has no use for it is a usage error, never silently ignored."""
    ctx = click.get_current_context()
    names = {p.name for p in ctx.command.params}
    options = current()
    if options.output is not None and "output" not in names:
        raise click.UsageError(f"{ctx.info_name} has no --output")
    if options.fleet_flag and "fleet" not in names:
        raise click.UsageError(f"{ctx.info_name} reads no fleet file: drop --fleet")
    if (options.as_user is not None or options.as_groups) and "as_user" not in names:
        raise click.UsageError(f"{ctx.info_name} talks to no cluster: drop --as/--as-group")
    if options.memory_limit is not None and "memory_limit" not in names \
            and click.get_current_context().find_root().get_parameter_source("memory_limit") \
            is click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError(f"{ctx.info_name} starts no engine: drop --memory-limit")
    if options.as_groups and options.as_user is None:
        raise click.UsageError("--as-group needs --as USER (Kubernetes impersonates a group only with a user)")


# ---------------------------------------------------------------------------------------------- exits


def fail(message: str, code: Exit = Exit.ERROR, hint: str = "") -> NoReturn:
    """Print ``error: message`` (and a hint) to stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    sys.exit(int(code))


def exit_code_of(exc: BaseException) -> Exit:
    """The one mapping from an error to an exit code."""
    if isinstance(exc, KeyboardInterrupt):
        return Exit.INTERRUPTED
    if isinstance(exc, (ReadOnlyError, LockedError, NotAcknowledgedError)):
        return Exit.REFUSED
    return Exit.ERROR


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh loop."""
    import asyncio

    return asyncio.run(coro)


def verb(func: F) -> F:
    """Every verb's wrapper: logging as asked, and fleetdeck errors as a message and an exit code, never a
    traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        reject_unused()
        configure_logging(current().verbose, to_file=False)
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(int(Exit.INTERRUPTED))
        except FleetdeckError as exc:
            fail(exc.message, exit_code_of(exc), exc.hint)

    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------- logging


def log_path() -> str:
    """``$XDG_STATE_HOME/fleetdeck/fleetdeck.log``: where the console logs (never to its own screen)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "fleetdeck", "fleetdeck.log")


def configure_logging(verbose: int, *, to_file: bool) -> None:
    """Headless verbs log errors to stderr (more with -v); the console logs to a private file, since stderr
    is its screen."""
    level = (logging.ERROR, logging.WARNING, logging.DEBUG)[min(verbose, 2)]
    if to_file:
        path = log_path()
        private_dir(os.path.dirname(path))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        handler: logging.Handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
        level = min(level, logging.WARNING)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
