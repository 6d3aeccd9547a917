"""What the engine-backed verbs share: running a one-shot engine, finding an app's targets, reading input."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from tui.cli.options import OPTIONS_KEY, Exit, current, fail, run_async

T = TypeVar("T")


async def _with_engine(body: Callable[[Any], Awaitable[T]], *, read_only: bool,
                       only_apps: frozenset[str] | None) -> T:
    from core.engine import engine_from_fleet_file

    engine = engine_from_fleet_file(current().fleet, read_only=read_only, one_shot=True, only_apps=only_apps,
                                    impersonate=current().impersonate, memory_limit=current().memory_limit)
    await engine.start()
    try:
        await engine.wait_ready()
        return await body(engine)
    finally:
        await engine.stop()


def with_engine(body: Callable[[Any], Awaitable[T]], *, only_app: str | None = None,
                read_only: bool | None = None) -> T:
    """Start a one-shot engine on the resolved fleet file, wait for a settled snapshot, run ``body``."""
    ro = current().read_only if read_only is None else read_only
    only = frozenset({only_app}) if only_app else None
    return run_async(_with_engine(body, read_only=ro, only_apps=only))


def settled_snapshot(*, only_app: str | None = None, read_only: bool | None = None) -> Any:
    """The fleet's settled snapshot from a one-shot engine (see :func:`with_engine`)."""

    async def snapshot(engine: Any) -> Any:
        return engine.snapshot

    return with_engine(snapshot, only_app=only_app, read_only=read_only)


def targets(snap: Any, app: str, cluster: str | None, *, all_clusters: bool) -> list[Any]:
    """The rows of ``app`` (on ``cluster``); a clear error when there is none or the choice is ambiguous."""
    rows = [a for a in snap.apps if a.app == app and cluster in (None, a.cluster)]
    if not rows:
        known = sorted({a.app for a in snap.apps})
        fail(f"no app {app!r}" + (f" on cluster {cluster!r}" if cluster else "") + " in the fleet",
             hint=f"apps: {', '.join(known[:20])}" if known else "see `fleetdeck status`")
    if len(rows) > 1 and not all_clusters and cluster is None:
        names = ", ".join(r.cluster for r in rows)
        fail(f"app {app!r} runs on several clusters ({names})", hint="pass --cluster NAME or --all-clusters")
    return rows


def read_input(name: str) -> str:
    """A file's text, or stdin for ``-``; exit 2 with the reason when it cannot be read."""
    try:
        if name == "-":
            return sys.stdin.read()
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {name}: {exc}", Exit.ERROR)


def complete_app(ctx: Any, param: Any, incomplete: str) -> list[Any]:
    """Shell completion of APP: the app names of the fleet file (``--fleet`` as typed so far, else the
    default); nothing when it cannot be read (completion must never print an error)."""
    from click.shell_completion import CompletionItem

    from core.desired.fleet_file import find_fleet_file, load_fleet
    from core.errors import FleetdeckError

    recorded = ctx.find_root().meta.get(OPTIONS_KEY)
    explicit = (recorded.fleet if recorded is not None else None) or os.environ.get("FLEETDECK_FLEET")
    try:
        fleet = load_fleet(find_fleet_file(explicit))
    except (FleetdeckError, OSError):
        return []
    return [CompletionItem(app.name) for app in fleet.apps if app.name.startswith(incomplete)]
