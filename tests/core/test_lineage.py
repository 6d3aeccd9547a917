"""``core.engine.lineage``: the operator's message, and the cached, scheduled ancestry checks."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, cast

import pytest

from core.desired.repo import ConfigRepo, Lineage
from core.engine import lineage as lineage_module
from core.engine.lineage import LineageChecks, describe, dropped_summary
from core.errors import GitError
from core.model import Revision

OLD, NEW = "a" * 40, "b" * 40


class StubRepo:
    """``ConfigRepo.lineage`` answering from a table, counting calls (a missing pair is a Git error)."""

    def __init__(self, answers: dict[tuple[str, str], Lineage]) -> None:
        self.answers = answers
        self.calls = 0

    async def lineage(self, old: str, new: str) -> Lineage:
        self.calls += 1
        await asyncio.sleep(0)
        if (old, new) not in self.answers:
            raise GitError("failed to read history of repo: broken")
        return self.answers[(old, new)]


def checks(repo: StubRepo) -> tuple[LineageChecks, list[tuple[str, str]], list[asyncio.Task[None]]]:
    dirty: list[tuple[str, str]] = []
    tasks: list[asyncio.Task[None]] = []

    def spawn(coro: Coroutine[Any, Any, None], name: str) -> None:
        tasks.append(asyncio.ensure_future(coro))

    return LineageChecks(cast(ConfigRepo, repo), spawn, dirty.append), dirty, tasks


def test_dropped_commits_are_named_newest_first() -> None:
    """The plan's warning names the commits left behind, and how many more."""
    commits = (Revision("c" * 40, subject="web: 3 replicas"), Revision("d" * 40, subject="web: 2 replicas"))
    lineage = Lineage(OLD, NEW, descends=False, added=1, dropped=5, dropped_commits=commits)
    assert dropped_summary(lineage, "prod") == ("synced on prod, not in bbbbbbbb: cccccccc web: 3 replicas; "
                                                "dddddddd web: 2 replicas (and 3 more)")
    assert dropped_summary(Lineage(OLD, NEW, descends=False, old_exists=False), "prod") == ""


def test_messages_name_both_revisions_and_the_cluster() -> None:
    """Each case reads as what happened: force-push, branch moved back, synced revision gone, check failed."""
    assert describe(Lineage(OLD, NEW, descends=True), "prod") == ""
    forced = describe(Lineage(OLD, NEW, descends=False, added=1, dropped=3), "prod")
    assert forced == ("bbbbbbbb does not descend from aaaaaaaa, the revision last synced on prod (force-push?): "
                      "3 commit(s) synced there are not in it, 1 are new")
    assert "moved back" in describe(Lineage(OLD, NEW, descends=False, added=0, dropped=2), "prod")
    gone = describe(Lineage(OLD, NEW, descends=False, old_exists=False), "prod")
    assert "aaaaaaaa no longer exists in the config repo" in gone
    failed = describe(Lineage(OLD, NEW, descends=False, error="boom"), "prod")
    assert failed.startswith("cannot check that bbbbbbbb descends from aaaaaaaa") and "boom" in failed


async def test_peek_schedules_one_check_per_pair_and_marks_waiting_targets() -> None:
    """A miss schedules one Git check however many targets ask; when it lands each target is marked dirty
    and the verdict is served from the cache."""
    repo = StubRepo({(OLD, NEW): Lineage(OLD, NEW, descends=False, added=1, dropped=1)})
    lineage, dirty, tasks = checks(repo)
    assert lineage.known_or_start_check(OLD, OLD, ("web", "dev")) is not None  # same revision: no Git at all
    assert lineage.known_or_start_check(OLD, NEW, ("web", "dev")) is None
    assert lineage.known_or_start_check(OLD, NEW, ("web", "prod")) is None
    assert lineage.pending and lineage.started == 1 and len(tasks) == 1
    await asyncio.gather(*tasks)
    assert sorted(dirty) == [("web", "dev"), ("web", "prod")] and not lineage.pending
    known = lineage.known_or_start_check(OLD, NEW, ("web", "dev"))
    assert known is not None and not known.descends
    assert (await lineage.check(OLD, NEW)).added == 1
    assert repo.calls == 1


async def test_a_failed_check_is_not_a_descendant_and_is_retried_by_plans() -> None:
    """A Git failure never reads as "descends": the row gets the error once (no check loop), and a plan
    asks Git again."""
    repo = StubRepo({})
    lineage, dirty, tasks = checks(repo)
    assert lineage.known_or_start_check(OLD, NEW, ("web", "dev")) is None
    await asyncio.gather(*tasks)
    failed = lineage.known_or_start_check(OLD, NEW, ("web", "dev"))
    assert failed is not None and not failed.descends and "broken" in failed.error
    assert len(tasks) == 1 and repo.calls == 1 and dirty == [("web", "dev")]  # peeking again schedules nothing
    again = await lineage.check(OLD, NEW)
    assert again.error and repo.calls == 2


async def test_a_failed_check_is_retried_for_rows_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    """After ``RETRY_FAILED_AFTER`` a row's failed check runs again (the failure stays shown meanwhile)."""
    repo = StubRepo({})
    lineage, _, tasks = checks(repo)
    lineage.known_or_start_check(OLD, NEW, ("web", "dev"))
    await asyncio.gather(*tasks)
    monkeypatch.setattr(lineage_module, "RETRY_FAILED_AFTER", 0.0)
    repo.answers[(OLD, NEW)] = Lineage(OLD, NEW, descends=True)
    shown = lineage.known_or_start_check(OLD, NEW, ("web", "dev"))
    assert shown is not None and shown.error and len(tasks) == 2
    await asyncio.gather(*tasks)
    healed = lineage.known_or_start_check(OLD, NEW, ("web", "dev"))
    assert healed is not None and healed.descends and len(tasks) == 2
