"""The read-only wall: every verb that can change a cluster passes here before it does anything else.

A verb marked with :func:`changes` is refused (exit 3, the reason on stderr, a ``refused`` entry in the
operator journal) when read-only comes from any source: ``--read-only`` wherever it was written,
``FLEETDECK_READ_ONLY``, the fleet file's ``readOnly``, or the ``readOnly`` of a cluster the verb targets.
The first three are checked before the fleet is even loaded into an engine (so nothing is fetched,
resolved or sent); the per-cluster check runs as soon as the verb knows its targets, before any plan.
``CHANGING`` lists every changing verb; a test walks it and every other verb, so a new verb must be
classified to pass.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, TypeVar

import click

from core.errors import FleetdeckError
from core.sanitize import clean
from tui.cli.options import Exit, current, fail

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

CHANGING: set[str] = set()
"""Names of the verbs that can change a cluster (filled by :func:`changes`)."""


def refuse(action: str, app: str, reason: str, *, clusters: Iterable[str] = ("",)) -> NoReturn:
    """Journal a refused attempt of ``action`` and exit 3 with the reason."""
    from core.journal import Journal, configured_path, current_identity

    journal = Journal(configured_path())
    for cluster in clusters:
        try:
            journal.append(who=current_identity(), action=action, app=app, cluster=cluster, result="refused",
                           message=reason)
        except FleetdeckError as exc:
            click.echo(f"warning: the refusal could not be journalled: {exc.message}", err=True)
            break
    where = f" {app}" if app else ""
    fail(f"{action}{where} refused: {reason}", Exit.REFUSED,
         "read-only mode refuses every change, dry runs included; to act, lift it where the reason above says it"
         " was set")


def global_refusal() -> str:
    """Why every change is refused before the engine starts ('' when changes are allowed)."""
    options = current()
    if options.read_only:
        return f"read-only mode ({options.read_only_source})"
    from core.desired.fleet_file import find_fleet_file, load_fleet

    fleet_path = find_fleet_file(options.fleet)
    if load_fleet(fleet_path).read_only:
        return f"read-only mode (readOnly: true in {fleet_path})"
    return ""


def check_clusters(action: str, app: str, snapshot: Any, clusters: Iterable[str]) -> None:
    """Refuse when any targeted cluster is read-only (its ``readOnly`` in the fleet file); otherwise say,
    before anything is planned, which targeted clusters are acted on as an impersonated identity."""
    wanted = set(clusters)
    read_only = sorted(c.name for c in snapshot.clusters if c.name in wanted and c.read_only)
    if read_only:
        refuse(action, app, f"read-only mode (cluster {', '.join(read_only)} is readOnly in the fleet file)",
               clusters=read_only)
    for c in snapshot.clusters:
        if c.impersonating and c.name in wanted:
            click.echo(f"as: {action} on {clean(c.name)} is sent as {clean(c.impersonating)} (impersonation)",
                       err=True)


def changes(action: str) -> Callable[[F], F]:
    """Mark a verb as changing: it is refused first in read-only mode. Put it under ``@verb``."""
    CHANGING.add(action)

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            reason = global_refusal()
            if reason:
                refuse(action, str(kwargs.get("app") or ""), reason)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
