"""fleetdeck's own memory budget: how much it may use, how much it uses, and when to shed what it can re-read.

Role: an operator runs fleetdeck during incidents on bastions and in containers with a memory limit; being
killed by the OOM killer (or failing with ``MemoryError`` under ``RLIMIT_AS``) in the middle of an incident
is the worst way to fail. The engine checks its usage against a :class:`MemoryBudget` (``check``: one read
of ``/proc/self/statm``, a few microseconds) at each publish and every second; approaching the budget it
drops what can be read again (cached renders, decoded live objects, event feeds, comparison memos) and
warns with a ``MemoryLimit`` fleet condition (docs/reliability.md, R1). The budget comes from
``--memory-limit`` / ``FLEETDECK_MEMORY_LIMIT``, else from the process's limits (:func:`default_budget`: the
cgroup's ``memory.max`` and ``RLIMIT_AS``), else it is off (docs/decisions.md, "fleetdeck's own memory
budget"). What is measured is always the resident size: the address space is no measure of use, glibc
reserves 64 MiB per thread arena and grows it up to whatever ``RLIMIT_AS`` allows (``fleetdeck status`` has
1.3 GiB of address space under a 2 GB limit and 0.3 GiB under a 400 MB one, with the same resident size).

Constraint: pure standard library, no import of the engine; Linux ``/proc`` and cgroup files, and on other
systems no default budget and no measure (``check`` reports nothing).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

try:
    import resource
except ImportError:  # pragma: no cover - not POSIX
    resource = None  # type: ignore[assignment]

PRESSURE = 0.80
"""Share of a limit from which fleetdeck sheds what it can re-read and warns."""
RELIEF = 0.70
"""Share of a limit under which the warning clears again (below ``PRESSURE``, so it does not flicker)."""
DEFAULT_SHARE = 0.75
"""Share of a cgroup or address-space limit fleetdeck takes as its budget: the rest is for the kustomize,
Helm and Git processes it starts (they count in the same cgroup) and for the interpreter's own overhead."""
UNLIMITED = 1 << 60
"""cgroup v1 writes 'no limit' as a huge number (9223372036854771712); anything above this is no limit."""

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024, "m": 1000**2, "mb": 1000**2,
          "mi": 1024**2, "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit the process must stay under."""

    bytes: int
    """Resident bytes (what a cgroup and the OOM killer count)."""
    source: str
    """Where it came from, said in the warning: ``--memory-limit``, ``cgroup memory.max``, ``RLIMIT_AS``."""


@dataclass(frozen=True, slots=True)
class Usage:
    """One reading against the budget."""

    used: int
    limit: Limit
    share: float
    """``used / limit.bytes`` of the limit closest to being reached."""


def parse_size(text: str) -> int:
    """A size as an operator writes it: ``512M``, ``1.5GiB``, ``800MB``, ``1048576``; ``off``/``0`` is 0.

    ``M`` and ``G`` alone are binary (as ``ulimit``, ``docker --memory`` and Kubernetes' ``Mi`` read them).

    Raises:
        ValueError: not a size.
    """
    lowered = text.strip().lower()
    if lowered in ("off", "none", "0"):
        return 0
    found = _SIZE.match(lowered)
    unit = found.group(2) if found else None
    if found is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size (examples: 512M, 2G, 800MiB, off)")
    factor = 1024 ** " kmg".index(unit) if unit in ("k", "m", "g") else _UNITS[unit]
    return int(float(found.group(1)) * factor)


def human(size: int) -> str:
    """``size`` bytes in MiB (or GiB from 10 GiB on), for messages."""
    if size >= 10 * 1024**3:
        return f"{size / 1024**3:.1f} GiB"
    return f"{size / 1024**2:,.0f} MiB"


def statm() -> tuple[int, int]:
    """``(address space, resident)`` of this process in bytes; ``(0, 0)`` where ``/proc`` is not there."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            fields = handle.read().split()
        return int(fields[0]) * _PAGE, int(fields[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0, 0


def cgroup_memory_limit(root: Path = Path("/sys/fs/cgroup"), proc: Path = Path("/proc/self/cgroup")) -> int:
    """The memory limit of this process's cgroup (v2 ``memory.max`` or v1 ``memory.limit_in_bytes``, the
    smallest on the way up to the root); 0 when there is none or it cannot be read."""
    candidates: list[Path] = []
    try:
        lines = proc.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers, path = parts[1], parts[2].strip("/")
        if controllers == "":  # v2 unified hierarchy
            base, name = root, "memory.max"
        elif "memory" in controllers.split(","):
            base, name = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        here = base / path if path else base
        while True:
            candidates.append(here / name)
            if here == base:
                break
            here = here.parent
    limits = []
    for file in candidates:
        try:
            text = file.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < UNLIMITED:
            limits.append(int(text))
    return min(limits, default=0)


def address_space_limit() -> int:
    """The soft ``RLIMIT_AS`` in bytes; 0 when unlimited or unknown."""
    if resource is None:
        return 0
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return 0 if soft == resource.RLIM_INFINITY or soft <= 0 else soft


def default_budget() -> tuple[Limit, ...]:
    """The budget when none is asked for: ``DEFAULT_SHARE`` of the cgroup's memory limit and of ``RLIMIT_AS``
    (both against the resident size); none at all (off) when neither is set."""
    limits = []
    cgroup = cgroup_memory_limit()
    if cgroup:
        limits.append(Limit(int(cgroup * DEFAULT_SHARE), f"{DEFAULT_SHARE:.0%} of the cgroup's memory.max"))
    space = address_space_limit()
    if space:
        limits.append(Limit(int(space * DEFAULT_SHARE), f"{DEFAULT_SHARE:.0%} of RLIMIT_AS"))
    return tuple(limits)


def budget_for(setting: int | None, source: str = "--memory-limit") -> tuple[Limit, ...]:
    """The budget for a setting: None is :func:`default_budget`, 0 is off, else that many bytes of RSS."""
    if setting is None:
        return default_budget()
    if setting <= 0:
        return ()
    return (Limit(setting, source),)


class MemoryBudget:
    """The limits this process keeps under, and whether it is under pressure now (with hysteresis).

    Args:
        limits: what to stay under (empty: the budget is off and ``check`` measures nothing).
        measure: the resident size in bytes (injected in tests).
    """

    def __init__(self, limits: tuple[Limit, ...], *, measure: Callable[[], int] | None = None) -> None:
        self.limits = limits
        self._measure = measure or (lambda: statm()[1])
        self.pressed = False
        """Approaching a limit (from ``PRESSURE`` until usage is back under ``RELIEF``)."""
        self.last: Usage | None = None
        self.peak = 0
        """The highest resident size seen by ``check``."""

    def check(self) -> Usage | None:
        """Read usage now and update ``pressed``; the reading of the limit closest to being reached."""
        if not self.limits:
            return None
        used = self._measure()
        self.peak = max(self.peak, used)
        worst: Usage | None = None
        for limit in self.limits:
            if used <= 0:
                continue
            usage = Usage(used, limit, used / limit.bytes)
            if worst is None or usage.share > worst.share:
                worst = usage
        self.last = worst
        if worst is not None:
            if worst.share >= PRESSURE:
                self.pressed = True
            elif worst.share < RELIEF:
                self.pressed = False
        return worst

    def message(self) -> str:
        """The warning while pressed (``""`` otherwise): how much of what, and what fleetdeck did."""
        usage = self.last
        if not self.pressed or usage is None:
            return ""
        over = "over" if usage.share >= 1.0 else "near"
        return (f"resident memory {human(usage.used)} is {over} fleetdeck's {human(usage.limit.bytes)} budget "
                f"({usage.limit.source}): cached renders, decoded objects and event feeds are dropped and read "
                f"again when needed (slower); nothing is acted on without them. Raise it with --memory-limit "
                f"or FLEETDECK_MEMORY_LIMIT, or watch fewer apps")


_LIBC: ctypes.CDLL | None = None


def release_free_memory() -> None:
    """Give freed heap pages back to the system (glibc ``malloc_trim``), so a shed cache shows in the resident
    size. No garbage collection: what is shed (decoded JSON, rendered bytes) holds no cycles and is freed by
    reference counting at once, while a full collection walks every tracked object of the engine (hundreds of
    milliseconds with a large fleet's desired states)."""
    global _LIBC
    if _LIBC is None:
        for name in ("libc.so.6", ctypes.util.find_library("c")):
            if not name:
                continue
            try:
                _LIBC = ctypes.CDLL(name)
                break
            except OSError:
                continue
        else:
            return
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is not None:
        trim(0)
