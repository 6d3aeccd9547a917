"""The process's open-file limit: raised to what the system allows, and checked against what a fleet needs.

Role: every watch is a long-lived HTTP/1.1 connection (aiohttp has no HTTP/2, so a cluster's watches cannot
share one connection as client-go's do), so a fleet needs about one socket per cluster and watched kind,
plus the Git and kustomize subprocesses' pipes. Distributions start processes with a soft limit of 1,024
open files and a far higher hard limit; like the Go runtime, fleetdeck raises the soft limit to the hard
one at start (:func:`raise_open_file_limit`). When even the hard limit is below the estimate,
:func:`open_file_shortfall` says so in words an operator can act on, before connections start failing
with "Too many open files" one by one (docs/reliability.md, K17).

Constraint: pure standard library; ``resource`` is POSIX-only, and on other systems both functions do
nothing.
"""

from __future__ import annotations

import errno

try:
    import resource
except ImportError:  # pragma: no cover - not POSIX
    resource = None  # type: ignore[assignment]

RESERVED_FILES = 64
"""Open files kept for everything but sockets: the journal, logs, Git and kustomize pipes, the terminal."""
SOCKETS_PER_CLUSTER = 2
"""Besides its watches, a cluster's heartbeat and one list or write in flight."""
RAISE_CAP = 1 << 20
"""Never ask for more than this, even when the hard limit is unlimited."""

OUT_OF_FILES = frozenset({errno.EMFILE, errno.ENFILE})
"""The errors of a process (or a system) out of file descriptors."""


def open_file_limit() -> tuple[int, int]:
    """The soft and hard limits on open files (``(0, 0)`` where unknown)."""
    if resource is None:
        return 0, 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard limit (capped at ``RAISE_CAP``); the soft limit after."""
    if resource is None:
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = RAISE_CAP if hard == resource.RLIM_INFINITY else min(hard, RAISE_CAP)
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            return soft
        return wanted
    return soft


def files_needed(clusters: int, watched_kinds: int) -> int:
    """Open files a fleet of ``clusters`` needs with ``watched_kinds`` watches each."""
    return RESERVED_FILES + clusters * (watched_kinds + SOCKETS_PER_CLUSTER)


def open_file_shortfall(clusters: int, watched_kinds: int, limit: int | None = None) -> str:
    """What to tell the operator when the open-file limit is below the fleet's need; ``""`` when it is not.

    Args:
        clusters: clusters in the fleet.
        watched_kinds: kinds watched per cluster (an estimate before discovery).
        limit: the soft limit (default: the process's).
    """
    soft = open_file_limit()[0] if limit is None else limit
    needed = files_needed(clusters, watched_kinds)
    if soft <= 0 or needed <= soft:
        return ""
    return (f"open-file limit {soft:,} is below the about {needed:,} this fleet needs ({clusters:,} clusters × "
            f"{watched_kinds + SOCKETS_PER_CLUSTER} connections): connections are queued, at most "
            f"{connection_slots(soft):,} open at once, so clusters load more slowly (and a console's watches "
            f"beyond that wait for a slot); raise the hard limit (`ulimit -Hn`, LimitNOFILE= for a service) "
            f"and start again")


def connection_slots(soft: int) -> int:
    """Connections to clusters that fit under the soft limit ``soft`` besides ``RESERVED_FILES``."""
    return max(1, soft - RESERVED_FILES)


def out_of_files(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a process or system out of file descriptors."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in OUT_OF_FILES:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def os_error_text(exc: OSError) -> str:
    """An operating-system error in words, with what to do when the process is out of file descriptors."""
    text = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in OUT_OF_FILES:
        return f"{text} (raise the open-file limit, `ulimit -n`)"
    return text
