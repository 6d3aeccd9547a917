"""The engine's side of fleetdeck's memory budget: check it, shed what can be re-read, say so.

Role: ``FleetEngine`` owns one :class:`MemoryGuard`, checks it at each publish and every
``EngineSettings.memory_check_interval`` seconds, and adds its ``MemoryLimit`` condition to every snapshot
(the pattern of the ``OpenFileLimit`` warning, ``core.limits``). Approaching the budget
(``core.memory.PRESSURE``) the guard calls the engine's ``shed(pressed)``: the engine drops its caches of
things it can read again (renders, decoded live objects, comparison memos, event feeds) and keeps no new
ones until usage is back under ``core.memory.RELIEF``. Live objects in their compact form, the desired
state of each target, dry-run verdicts and operations are never dropped: every row and every plan is
computed from complete data, only more slowly (docs/reliability.md, R1).

Constraint: no I/O beyond ``/proc/self/statm``; the costly part (dropping the caches and ``malloc_trim``)
runs when pressure begins and at most every ``RELEASE_EVERY`` seconds while it lasts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from core.memory import MemoryBudget, human, release_free_memory
from core.model import Condition, Severity

RELEASE_EVERY = 10.0
"""Seconds between two sheddings (caches, event feeds, ``malloc_trim``) while under pressure."""

log = logging.getLogger(__name__)


class MemoryGuard:
    """Checks the budget and sheds on pressure.

    Args:
        budget: the limits (an empty budget checks nothing).
        shed: called with True when pressure begins (and every ``RELEASE_EVERY`` seconds while it lasts: drop
            everything re-readable, keep nothing new) and with False when it ends (keep caches again).
        monotonic: the clock for ``RELEASE_EVERY`` (injected in tests).
    """

    def __init__(self, budget: MemoryBudget, shed: Callable[[bool], None], *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget
        self._shed = shed
        self._monotonic = monotonic
        self._released_at = 0.0
        self.sheds = 0
        """Times the engine was asked to drop its caches (for tests and metrics)."""
        self.freed = 0
        """Bytes of resident memory the last shedding gave back (for tests and metrics)."""
        self.shed_seconds = 0.0
        """How long the last shedding (dropping the caches, ``malloc_trim``) held the engine's loop."""

    @property
    def active(self) -> bool:
        """Whether there is a budget to check."""
        return bool(self.budget.limits)

    def check(self) -> bool:
        """Measure now, shed or stop shedding as the budget says; whether pressure began or ended."""
        if not self.active:
            return False
        was = self.budget.pressed
        self.budget.check()
        now = self.budget.pressed
        if now and (not was or self._monotonic() - self._released_at >= RELEASE_EVERY):
            self._released_at = self._monotonic()
            self.sheds += 1
            before = self.budget.last.used if self.budget.last else 0
            began = time.perf_counter()
            self._shed(True)
            release_free_memory()
            self.shed_seconds = time.perf_counter() - began
            self.budget.check()  # what is left after shedding is what the warning says
            self.freed = before - (self.budget.last.used if self.budget.last else 0)
            if not was:
                log.warning("memory budget: %s", self.budget.message())
        elif was and not now:
            self._shed(False)
            last = self.budget.last
            log.info("memory budget: back to %s", human(last.used) if last else "normal")
        return was != now

    def conditions(self) -> list[Condition]:
        """The ``MemoryLimit`` fleet warning while under pressure, else nothing."""
        message = self.budget.message()
        return [Condition("MemoryLimit", message, Severity.WARNING)] if message else []
