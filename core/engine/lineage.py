"""Whether the revision an app would be synced to descends from the revision last synced on its cluster.

A sync of a revision that does not descend from the one running (the branch was force-pushed, or the synced
revision no longer exists in the repository) silently replaces history: the plan says so and the run needs
an explicit acknowledgement (``core.engine.actions``), automated syncs wait for an operator, and the row
carries the message (``AppStatus.non_descendant``).

Evaluation is synchronous and free of I/O, so rows read verdicts through ``known_or_start_check``: a miss starts one Git
check per (synced, desired) pair and marks the waiting targets dirty when it lands. Plans ``check``
(awaited), so a plan is never built on a verdict that is not known yet.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from core.desired.repo import ConfigRepo, Lineage
from core.errors import GitError

log = logging.getLogger(__name__)

MAX_PAIRS = 1024
"""Verdicts kept (oldest dropped first); one per (synced, desired) pair ever seen."""
RETRY_FAILED_AFTER = 30.0
"""Seconds before a row's failed check (a Git error) is tried again in the background."""


def describe(lineage: Lineage, cluster: str) -> str:
    """The operator's message for a revision that does not descend from the synced one ("" when it does)."""
    if lineage.descends:
        return ""
    new, old = lineage.new[:8], lineage.old[:8]
    head = f"{new} does not descend from {old}, the revision last synced on {cluster}"
    if lineage.error:
        return f"cannot check that {new} descends from {old}, the revision last synced on {cluster}: {lineage.error}"
    if not lineage.old_exists:
        return f"{head}: {old} no longer exists in the config repo (force-pushed away?)"
    if not lineage.added:
        return f"{head}: the branch was moved back (force-push?); syncing drops {lineage.dropped} commit(s)"
    return (f"{head} (force-push?): {lineage.dropped} commit(s) synced there are not in it, "
            f"{lineage.added} are new")


def dropped_summary(lineage: Lineage, cluster: str) -> str:
    """The commits synced on ``cluster`` that the new revision leaves behind, newest first ("" when none
    are known): ``synced on prod, not in 4f9d2c1e: 0badc0de web: 3 replicas; 1a2b3c4d web: 2 (and 3 more)``."""
    if lineage.descends or not lineage.dropped_commits:
        return ""
    shown = "; ".join(f"{c.short} {c.subject}" for c in lineage.dropped_commits)
    more = lineage.dropped - len(lineage.dropped_commits)
    return f"synced on {cluster}, not in {lineage.new[:8]}: {shown}" + (f" (and {more} more)" if more > 0 else "")


class LineageChecks:
    """Cached ancestry verdicts, per (synced revision, desired revision).

    Args:
        repo: the config repository.
        spawn: the engine's task spawner (``FleetEngine.spawn``): the only way tasks are created.
        mark_dirty: marks a target for re-evaluation when its verdict lands.
    """

    def __init__(self, repo: ConfigRepo, spawn: Callable[[Coroutine[Any, Any, None], str], None],
                 mark_dirty: Callable[[tuple[str, str]], None]) -> None:
        self._repo = repo
        self._spawn = spawn
        self._mark_dirty = mark_dirty
        self._known: dict[tuple[str, str], Lineage] = {}
        self._failed_at: dict[tuple[str, str], float] = {}
        self._waiting: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self.started = 0
        """Background checks started so far (a one-shot engine waits for them before reporting)."""

    @property
    def pending(self) -> bool:
        """Whether any background check is still running."""
        return bool(self._waiting)

    def known_or_start_check(self, old: str, new: str, target_id: tuple[str, str]) -> Lineage | None:
        """The verdict if known; else None, and a check is scheduled that marks ``target_id`` dirty."""
        if old == new:
            return Lineage(old, new, descends=True)
        pair = (old, new)
        known = self._known.get(pair)
        retry = known is not None and bool(known.error) and \
            time.monotonic() - self._failed_at.get(pair, 0.0) >= RETRY_FAILED_AFTER
        waiting = self._waiting.get(pair)
        if waiting is not None:
            waiting.add(target_id)
            return known
        if known is not None and not retry:
            return known
        self._waiting[pair] = {target_id}
        self.started += 1
        self._spawn(self._background(pair), f"lineage:{old[:8]}..{new[:8]}")
        return known  # a failure stays shown while it is tried again

    async def check(self, old: str, new: str) -> Lineage:
        """The verdict, from Git if not known (a verdict that could not be computed is computed again).
        A failure is a verdict too: ``descends`` False with ``error`` set, so nothing unverified runs
        unacknowledged."""
        if old == new:
            return Lineage(old, new, descends=True)
        known = self._known.get((old, new))
        if known is not None and not known.error:
            return known
        try:
            lineage = await self._repo.lineage(old, new)
        except GitError as exc:
            log.warning("cannot check that %s descends from %s: %s", new[:8], old[:8], exc)
            lineage = Lineage(old, new, descends=False, error=str(exc))
            self._failed_at[(old, new)] = time.monotonic()
        else:
            self._failed_at.pop((old, new), None)
        if (old, new) not in self._known and len(self._known) >= MAX_PAIRS:
            self._failed_at.pop(next(iter(self._known)), None)
            self._known.pop(next(iter(self._known)))
        self._known[(old, new)] = lineage
        return lineage

    async def _background(self, pair: tuple[str, str]) -> None:
        try:
            await self.check(*pair)
        finally:
            for target_id in self._waiting.pop(pair, set()):
                self._mark_dirty(target_id)
