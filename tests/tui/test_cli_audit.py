"""``fleetdeck audit journal`` as an auditor runs it: a cut-off tail is found even when the journal's own
head file went with it, and an operation that started and never finished is listed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.journal import Journal, Result, current_identity

FLEETDECK = str(Path(sys.executable).with_name("fleetdeck"))


def audit(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETDECK_")}
    env.update({"FLEETDECK_JOURNAL": str(tmp / "journal.jsonl"), "XDG_CACHE_HOME": str(tmp / "xdg"),
                "XDG_STATE_HOME": str(tmp / "state")})
    return subprocess.run([FLEETDECK, "audit", "journal", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def write(tmp: Path, monkeypatch: pytest.MonkeyPatch, *results: Result) -> Path:
    monkeypatch.delenv("FLEETDECK_JOURNAL_ANCHORS", raising=False)  # anchor where the command looks for it
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp / "xdg"))
    path = tmp / "journal.jsonl"
    journal = Journal(path)
    for i, result in enumerate(results):
        journal.append(who=current_identity(), action="sync", app="web", cluster="prod", result=result,
                       details={"operation": f"op-{i // 2}"})
    return path


def test_intact_journal_and_an_unfinished_operation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, monkeypatch, "started", "succeeded", "started")
    result = audit(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hash chain intact" in result.stdout
    assert "Unfinished operations" in result.stdout and "op-1" in result.stdout
    assert "1 operation(s) started and never finished" in result.stderr
    data = json.loads(audit(tmp_path, "-o", "json").stdout)
    assert [e["details"]["operation"] for e in data["unfinished"]] == ["op-1"]


def test_tail_and_head_removed_together_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, monkeypatch, "started", "succeeded", "started", "succeeded")
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))
    path.with_name(path.name + ".head").unlink(missing_ok=True)
    for head in path.parent.glob("*.head"):
        head.unlink()
    result = audit(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stderr and "truncated" in result.stderr


def test_a_deleted_journal_is_reported_not_called_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, monkeypatch, "started", "succeeded")
    path.unlink()
    for head in path.parent.glob("*.head"):
        head.unlink()
    result = audit(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "truncated" in result.stderr


def test_no_journal_ever_written(tmp_path: Path) -> None:
    result = audit(tmp_path)
    assert result.returncode == 2 and "no journal at" in result.stderr
