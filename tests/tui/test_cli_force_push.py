"""`fleetdeck sync` on a revision that does not descend from the synced one: what the plan and the
terminal question say (the refusal itself runs against a real apiserver in tests/cluster/test_force_push.py)."""

from __future__ import annotations

import dataclasses

import pytest

from core.model import AppName, ClusterName, SyncPlan
from tui.cli.act import _question, print_plan

MESSAGE = "bbbbbbbb does not descend from aaaaaaaa, the revision last synced on prod (force-push?)"
PLAN = SyncPlan(app=AppName("web"), cluster=ClusterName("prod"), revision="b" * 40, steps=(),
                synced_revision="a" * 40, non_descendant=MESSAGE)


def test_plan_prints_the_warning_and_what_it_takes(capsys: pytest.CaptureFixture[str]) -> None:
    """Unacknowledged: the warning and the option; acknowledged: said so; a dry run needs nothing."""
    print_plan(PLAN)
    out = capsys.readouterr().out
    assert f"WARNING, history is replaced: {MESSAGE}" in out
    assert "this sync runs only with --allow-non-descendant" in out
    print_plan(dataclasses.replace(PLAN, non_descendant_allowed=True))
    assert "acknowledged with --allow-non-descendant" in capsys.readouterr().out
    print_plan(dataclasses.replace(PLAN, dry_run=True))
    out = capsys.readouterr().out
    assert "history is replaced" in out and "--allow-non-descendant" not in out


def test_terminal_question_says_history_is_replaced() -> None:
    """The question asked on a terminal (with the option, without --yes) names both revisions."""
    question = _question(dataclasses.replace(PLAN, non_descendant_allowed=True), "Sync")
    assert question == "Sync web on prod; this REPLACES HISTORY: bbbbbbbb does not descend from aaaaaaaa, " \
                       "synced there?"
    plain = dataclasses.replace(PLAN, non_descendant="", synced_revision="")
    assert _question(plain, "Sync") == "Sync web on prod?"


def test_dropped_commit_subjects_are_printed_inert(capsys: pytest.CaptureFixture[str]) -> None:
    """Commit subjects come from Git (untrusted): the plan prints them without escape sequences."""
    hostile = "synced on prod, not in bbbbbbbb: cccccccc \x1b]0;owned\x07 fix\x1b[2J"
    print_plan(dataclasses.replace(PLAN, warnings=(hostile,)))
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "cccccccc" in out and "fix" in out
