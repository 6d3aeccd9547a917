"""``fleetdeck history`` and the audit report: recorded syncs say what started them, newest first.

The engine is replaced by the fixture fleet's row for web on prod-us (``with_engine`` returns the target
and Git's revisions), so the verb's own output is what is checked, in every format it speaks.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from click.testing import CliRunner

from core.model import HistoryEntry, SyncTrigger
from tests.fixtures.snapshots import NOW, OLDER, REVISIONS, fleet_snapshot
from tui.cli import main


@pytest.fixture
def web_prod_us(monkeypatch: pytest.MonkeyPatch) -> Any:
    """web on prod-us with the fixture's history plus a rollback to OLDER five minutes ago, stored oldest
    first as the state ConfigMap holds it."""
    row = fleet_snapshot().app("web", "prod-us")
    assert row is not None
    rollback = HistoryEntry(5, OLDER.sha, "rollback", "bob", NOW - 300, "Succeeded", "2 configured",
                            trigger=SyncTrigger.MANUAL)
    row = replace(row, history=(*row.history, rollback))
    monkeypatch.setattr("tui.cli.observe.with_engine", lambda body, only_app: (row, REVISIONS))
    monkeypatch.setattr("tui.output.time.time", lambda: NOW)
    return row


def run(*args: str) -> Any:
    result = CliRunner().invoke(main, ["history", "web", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_table_lists_kinds_newest_first(web_prod_us: Any) -> None:
    """The syncs table names manual, automated and self-heal syncs and the rollback, newest first."""
    out = run()
    lines = out.split("\n\n")[1].splitlines()
    assert lines[0].split() == ["#", "KIND", "REVISION", "BY", "AGE", "RESULT", "CHANGES"]
    kind = slice(lines[0].index("KIND"), lines[0].index("REVISION"))
    kinds = [(line.split()[0], line[kind].strip()) for line in lines[1:]]
    assert kinds == [("5", "rollback"), ("4", "self-heal sync"), ("3", "manual sync"), ("2", "automated sync"),
                     ("1", "manual sync")]
    assert "5m" in lines[1] and "10m" in lines[2]


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_machine_output_has_trigger_and_label_newest_first(web_prod_us: Any, fmt: str) -> None:
    """JSON and YAML carry ``trigger`` and ``label`` per sync, newest first."""
    import yaml

    out = run("-o", fmt)
    data = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert [(s["id"], s["trigger"], s["label"]) for s in data["syncs"]] == [
        (5, "manual", "rollback"), (4, "self-heal", "self-heal sync"), (3, "manual", "manual sync"),
        (2, "automated", "automated sync"), (1, "manual", "manual sync")]
    assert [r["sha"] for r in data["revisions"]] == [r.sha for r in REVISIONS]


def test_audit_report_lists_recent_syncs_newest_first_with_their_kind() -> None:
    """The evidence report's five most recent syncs per row are newest first and say what started them."""
    from tui.report import markdown_report, report_data

    data = report_data(fleet_snapshot())
    web = next(a for a in data["apps"] if (a["app"], a["cluster"]) == ("web", "prod-us"))
    assert [(h["id"], h["trigger"], h["label"]) for h in web["history"]] == [
        (4, "self-heal", "self-heal sync"), (3, "manual", "manual sync"), (2, "automated", "automated sync"),
        (1, "manual", "manual sync")]
    markdown = markdown_report(data)
    assert "| web | prod-us | 4 | self-heal sync | 4f9d2c1e | dana |" in markdown
