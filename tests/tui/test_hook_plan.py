"""How a plan with hooks is shown: phase headings in run order on the command line (``sync --dry-run``)
and in the confirmation screen, hook names from Git printed inert."""

from __future__ import annotations

import pytest

from core.model import AppName, ClusterName, PlanStep, ResourceKey, SyncAction, SyncPhase, SyncPlan
from tui.cli.act import print_plan
from tui.glyphs import UNICODE
from tui.screens.confirm import plan_block

HOSTILE = "evil\x1b]0;owned\x07\x1b[2J"
STEPS = (
    PlanStep(ResourceKey("batch", "Job", "gb", "before"), SyncAction.CREATED, 0,
             "PreSync hook (argocd); delete policy HookSucceeded", SyncPhase.PRE_SYNC, hook=True),
    PlanStep(ResourceKey("apps", "Deployment", "gb", "guestbook-ui"), SyncAction.CREATED, 0),
    PlanStep(ResourceKey("batch", "Job", "gb", "after"), SyncAction.CREATED, 0,
             "PostSync hook (argocd); delete policy HookSucceeded", SyncPhase.POST_SYNC, hook=True),
    PlanStep(ResourceKey("batch", "Job", "gb", HOSTILE), SyncAction.CREATED, 2,
             f"SyncFail hook {HOSTILE}", SyncPhase.SYNC_FAIL, hook=True),
)
PLAN = SyncPlan(app=AppName("pre-post-sync"), cluster=ClusterName("dev"), revision="c" * 40, steps=STEPS,
                dry_run=True)


def test_dry_run_output_shows_phases_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    """``fleetdeck sync --dry-run``: one heading per phase, PreSync → Sync → PostSync → SyncFail, inert names."""
    print_plan(PLAN)
    out = capsys.readouterr().out
    headings = [line.strip() for line in out.splitlines() if line.strip().startswith("phase ")]
    assert headings == ["phase PreSync:", "phase Sync:", "phase PostSync:",
                        "phase SyncFail (only if the sync fails):"]
    assert out.index("/before") < out.index("guestbook-ui") < out.index("/after")
    assert "\x1b" not in out and "\x07" not in out


def test_plan_without_hooks_has_no_phase_headings(capsys: pytest.CaptureFixture[str]) -> None:
    """Plans without hooks print exactly as before."""
    print_plan(SyncPlan(app=AppName("a"), cluster=ClusterName("c"), revision="d" * 40, steps=STEPS[1:2]))
    assert "phase" not in capsys.readouterr().out


def test_confirmation_shows_phase_headings() -> None:
    """The confirmation screen's plan block: headings in run order, hook names inert."""
    lines = [line.plain for line in plan_block(PLAN, UNICODE)]
    headings = [line.strip() for line in lines if line.strip() in
                ("PreSync", "Sync", "PostSync", "SyncFail (only if the sync fails)")]
    assert headings == ["PreSync", "Sync", "PostSync", "SyncFail (only if the sync fails)"]
    assert not any("\x1b" in line or "\x07" in line for line in lines)
