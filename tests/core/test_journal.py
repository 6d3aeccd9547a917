"""The operator journal: hash chain, tamper and truncation detection, durability and locking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import JournalError
from core.journal import (
    GENESIS,
    Journal,
    OperatorIdentity,
    anchor_path,
    current_identity,
    default_path,
    read_entries,
    unfinished,
    verify,
)

ROOT = Path(__file__).resolve().parents[2]
WHO = OperatorIdentity(os_user="alice", host="bastion", pid=42, ssh_client="10.0.0.7:50022", kube_user="alice@corp")


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Anchors go to $XDG_CACHE_HOME: keep each test's in its tmp dir."""
    monkeypatch.delenv("FLEETDECK_JOURNAL_ANCHORS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _fill(journal: Journal, count: int) -> None:
    for index in range(count):
        journal.append(who=WHO, action="sync", app="web", cluster="prod", result="started",
                       details={"revision": f"sha{index}"})


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def test_entries_chain_and_verify(tmp_path: Path) -> None:
    """Each entry's prev is the SHA-256 of the line before; an untouched journal verifies."""
    journal = Journal(tmp_path / "j.jsonl")
    first = journal.append(who=WHO, action="sync", app="web", cluster="prod", result="started")
    second = journal.append(who=WHO, action="sync", app="web", cluster="prod", result="succeeded",
                            message="2 created")
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev == GENESIS
    import hashlib

    assert second.prev == hashlib.sha256(_lines(journal.path)[0]).hexdigest()
    assert verify(journal.path).ok
    assert verify(journal.path).entries == 2
    assert [e.result for e in read_entries(journal.path)] == ["started", "succeeded"]


def test_entry_fields_and_who(tmp_path: Path) -> None:
    """A line holds seq, ts, who (os user, ssh client, kube user), action, app, cluster, result, message."""
    journal = Journal(tmp_path / "j.jsonl", clock=lambda: 1234.5)
    journal.append(who=WHO, action="rollback", app="web", cluster="prod", result="refused",
                   details={"revision": "abc", "dry_run": 0, "prune": 1, "resources": ["Deployment/ns/a"],
                            "reason": "incident"},
                   message="locked by bob")
    data = json.loads(_lines(journal.path)[0])
    assert data["who"] == {"os_user": "alice", "ssh_client": "10.0.0.7:50022", "kube_user": "alice@corp"}
    assert data["ts"] == 1234.5
    assert data["details"] == {"revision": "abc", "dry_run": False, "prune": True,
                               "resources": ["Deployment/ns/a"], "reason": "incident"}
    assert (data["action"], data["result"], data["message"]) == ("rollback", "refused", "locked by bob")


def test_details_are_allow_listed(tmp_path: Path) -> None:
    """Manifests, patches and secret values passed as details never reach the file."""
    journal = Journal(tmp_path / "j.jsonl")
    journal.append(who=WHO, action="sync", result="started",
                   details={"manifest": {"kind": "Secret", "data": {"k": "czNjcjN0"}}, "patch": "x",
                            "token": "s3cr3t", "revision": "abc"})
    text = journal.path.read_text()
    assert "s3cr3t" not in text and "czNjcjN0" not in text and "patch" not in text
    assert json.loads(text)["details"] == {"revision": "abc"}


def test_unknown_result_is_rejected(tmp_path: Path) -> None:
    """Only started/succeeded/failed/refused are results."""
    with pytest.raises(ValueError):
        Journal(tmp_path / "j.jsonl").append(who=WHO, action="sync", result="done")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("edit", "bad_line"),
    [
        pytest.param(lambda ls: [ls[0], ls[1].replace(b"sha1", b"sha9"), *ls[2:]], 2, id="edited-field"),
        pytest.param(lambda ls: [ls[0], *ls[2:]], 2, id="removed-middle-line"),
        pytest.param(lambda ls: ls[1:], 1, id="removed-first-line"),
        pytest.param(lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], 2, id="swapped-lines"),
        pytest.param(lambda ls: [ls[0], b"{not json", *ls[1:]], 2, id="inserted-garbage"),
    ],
)
def test_tampering_is_detected(tmp_path: Path, edit: object, bad_line: int) -> None:
    """An edited, removed, reordered or inserted line breaks the chain at that line."""
    journal = Journal(tmp_path / "j.jsonl")
    _fill(journal, 4)
    lines = edit(_lines(journal.path))  # type: ignore[operator]
    journal.path.write_bytes(b"\n".join(lines) + b"\n")
    result = verify(journal.path)
    assert not result.ok
    assert result.first_bad_line == bad_line
    assert result.entries == bad_line - 1
    assert result.reason


def test_recomputed_hash_still_breaks_the_chain(tmp_path: Path) -> None:
    """Editing a line and fixing its own hash is caught by the next line's prev."""
    import hashlib

    journal = Journal(tmp_path / "j.jsonl")
    _fill(journal, 3)
    lines = _lines(journal.path)
    data = json.loads(lines[0])
    data["action"] = "pause"
    del data["hash"]
    data["hash"] = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    lines[0] = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    journal.path.write_bytes(b"\n".join(lines) + b"\n")
    result = verify(journal.path)
    assert (result.ok, result.first_bad_line) == (False, 2)


def test_truncated_end_is_detected(tmp_path: Path) -> None:
    """Whole lines cut off the end are caught by the head file."""
    journal = Journal(tmp_path / "j.jsonl")
    _fill(journal, 5)
    journal.path.write_bytes(b"\n".join(_lines(journal.path)[:3]) + b"\n")
    result = verify(journal.path)
    assert not result.ok
    assert result.first_bad_line == 4
    assert "truncated" in result.reason


def test_truncated_journal_refuses_appends(tmp_path: Path) -> None:
    """After lines were cut off, the next action is refused instead of papering over the gap."""
    journal = Journal(tmp_path / "j.jsonl")
    _fill(journal, 3)
    journal.path.write_bytes(b"\n".join(_lines(journal.path)[:1]) + b"\n")
    with pytest.raises(JournalError, match="removed or rewritten"):
        _fill(journal, 1)


def test_torn_last_line_is_detected(tmp_path: Path) -> None:
    """A line cut mid-write (no newline) is reported as torn."""
    journal = Journal(tmp_path / "j.jsonl")
    _fill(journal, 3)
    content = journal.path.read_bytes()
    journal.path.write_bytes(content[: len(content) - 20])
    result = verify(journal.path)
    assert (result.ok, result.first_bad_line, result.entries) == (False, 3, 2)
    assert "torn" in result.reason


def test_append_after_a_torn_line_keeps_it_as_evidence(tmp_path: Path) -> None:
    """A later append terminates the torn line rather than overwriting it."""
    journal = Journal(tmp_path / "j.jsonl")
    _fill(journal, 2)
    content = journal.path.read_bytes()
    journal.path.write_bytes(content[: len(content) - 20])
    entry = journal.append(who=WHO, action="sync", result="started")
    assert entry.seq == 3
    assert len(_lines(journal.path)) == 3
    assert verify(journal.path).first_bad_line == 2


def test_fsync_is_called_on_every_append(tmp_path: Path) -> None:
    """Every append fsyncs the journal, the head and the anchor before returning."""
    calls: list[int] = []
    journal = Journal(tmp_path / "j.jsonl", fsync=calls.append)
    journal.append(who=WHO, action="sync", result="started")
    first = len(calls)
    journal.append(who=WHO, action="sync", result="succeeded")
    assert first >= 3  # journal, directory entry, head, anchor
    assert len(calls) - first == 3  # journal, head, anchor


def test_fsync_failure_refuses_the_action(tmp_path: Path) -> None:
    """A failing fsync (disk full on flush) raises JournalError."""

    def failing(fd: int) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(JournalError, match="No space left"):
        Journal(tmp_path / "j.jsonl", fsync=failing).append(who=WHO, action="sync", result="started")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_directory_raises_journal_error(tmp_path: Path) -> None:
    """A read-only journal directory refuses the action with JournalError."""
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        with pytest.raises(JournalError, match="failed to write the operator journal"):
            Journal(directory / "j.jsonl").append(who=WHO, action="sync", result="started")
    finally:
        directory.chmod(0o700)


def test_full_disk_raises_journal_error(tmp_path: Path) -> None:
    """/dev/full (ENOSPC on every write) refuses the action with JournalError."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    journal = Journal(tmp_path / "j.jsonl")
    journal.path.symlink_to("/dev/full")
    with pytest.raises(JournalError):
        journal.append(who=WHO, action="sync", result="started")


def test_missing_journal_verifies_as_empty(tmp_path: Path) -> None:
    """No journal yet is an intact, empty journal."""
    assert verify(tmp_path / "none.jsonl").ok
    assert read_entries(tmp_path / "none.jsonl") == ()


_WRITER = """
import sys
from pathlib import Path
from core.journal import Journal, OperatorIdentity
journal = Journal(Path(sys.argv[1]))
who = OperatorIdentity(os_user=sys.argv[2], host="bastion", pid=0)
for index in range(int(sys.argv[3])):
    journal.append(who=who, action="sync", app="web", cluster="prod", result="started",
                   details={"revision": str(index)})
"""


def test_concurrent_appends_from_two_processes_keep_the_chain(tmp_path: Path) -> None:
    """Two processes appending at once produce one valid chain holding every entry."""
    path = tmp_path / "j.jsonl"
    count = 150
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), who, str(count)], cwd=ROOT)
        for who in ("alice", "bob")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    result = verify(path)
    assert result.ok, result.reason
    assert result.entries == 2 * count
    users = [e.who["os_user"] for e in read_entries(path)]
    assert users.count("alice") == users.count("bob") == count


def test_identity_reads_ssh_variables() -> None:
    """SSH_CLIENT (or SSH_CONNECTION) gives the operator's client address."""
    who = current_identity(kube_user="k", env={"SSH_CONNECTION": "192.0.2.1 51000 10.0.0.1 22"})
    assert who.ssh_client == "192.0.2.1:51000"
    assert who.kube_user == "k"
    assert who.holder == f"{who.os_user}@{who.host}:{who.pid}"
    assert current_identity(env={}).ssh_client == ""


def test_default_path_honours_xdg_state_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The default journal lives under $XDG_STATE_HOME/fleetdeck."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_path() == tmp_path / "fleetdeck" / "journal.jsonl"


def test_journal_directory_that_cannot_exist_raises_journal_error(tmp_path: Path) -> None:
    """A journal path under a regular file (not creatable even by root) refuses the action."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(JournalError, match="failed to write the operator journal"):
        Journal(blocker / "sub" / "j.jsonl").append(who=WHO, action="sync", result="started")


# ---------------------------------------------------------------------------------------------- anchor


def test_removing_the_last_line_and_the_head_is_caught_by_the_anchor(tmp_path: Path) -> None:
    """The anchor, in another directory, still records how long the journal was."""
    journal = Journal(tmp_path / "state" / "j.jsonl")
    _fill(journal, 3)
    assert journal.anchor == anchor_path(journal.path)
    assert journal.anchor.parent != journal.path.parent
    last_hash = json.loads(_lines(journal.anchor)[0])["hash"]
    journal.path.write_bytes(b"\n".join(_lines(journal.path)[:2]) + b"\n")
    (tmp_path / "state" / "j.jsonl.head").unlink()

    result = verify(journal.path)
    assert (result.ok, result.entries, result.first_bad_line) == (False, 2, 3)
    assert result.reason == (f"truncated: the anchor records 3 entries (last hash {last_hash[:12]}) "
                             "but the journal ends at 2")
    with pytest.raises(JournalError, match=r"its anchor .* records entry 3"):
        _fill(journal, 1)


def test_removing_the_journal_and_its_head_is_caught_by_the_anchor(tmp_path: Path) -> None:
    """Deleting everything next to the journal leaves an anchor that says entries existed."""
    journal = Journal(tmp_path / "j.jsonl")
    _fill(journal, 2)
    journal.path.unlink()
    (tmp_path / "j.jsonl.head").unlink()
    result = verify(journal.path)
    assert not result.ok and result.reason.startswith("truncated: the anchor records 2 entries")


def test_rewritten_entry_at_the_anchor_is_detected(tmp_path: Path) -> None:
    """A consistently re-chained journal still disagrees with the hash the anchor recorded."""
    journal = Journal(tmp_path / "j.jsonl")
    _fill(journal, 2)
    (tmp_path / "j.jsonl.head").unlink()
    lines = _lines(journal.path)
    journal.path.write_bytes(lines[0] + b"\n")  # drop entry 2 ...
    _fill(Journal(journal.path, anchor=tmp_path / "other.head"), 1)  # ... and write a different entry 2
    result = verify(journal.path)
    assert not result.ok and "the anchor records hash" in result.reason


def test_missing_anchor_proves_nothing(tmp_path: Path) -> None:
    """A wiped cache (no anchor) is not an error: the journal and its head still verify."""
    journal = Journal(tmp_path / "j.jsonl")
    _fill(journal, 2)
    assert journal.anchor is not None
    journal.anchor.unlink()
    assert verify(journal.path).ok
    _fill(journal, 1)
    assert verify(journal.path).entries == 3


def test_journal_files_are_private(tmp_path: Path) -> None:
    """Journal, head and anchor are 0600 and their directories 0700, whatever the umask."""
    old = os.umask(0)
    try:
        journal = Journal(tmp_path / "state" / "fleetdeck" / "j.jsonl")
        _fill(journal, 1)
    finally:
        os.umask(old)
    assert journal.anchor is not None
    for path in (journal.path, tmp_path / "state" / "fleetdeck" / "j.jsonl.head", journal.anchor):
        assert path.stat().st_mode & 0o777 == 0o600, path
    for directory in (journal.path.parent, journal.anchor.parent):
        assert directory.stat().st_mode & 0o777 == 0o700, directory


# ---------------------------------------------------------------------------------------------- unfinished


def test_started_operations_that_never_ended_are_listed(tmp_path: Path) -> None:
    """Matched by operation id (and action); id-less entries by action, app and cluster."""
    journal = Journal(tmp_path / "j.jsonl")

    def add(action: str, result: str, op: str = "", app: str = "web") -> None:
        journal.append(who=WHO, action=action, app=app, cluster="prod", result=result,  # type: ignore[arg-type]
                       details={"operation": op} if op else {})

    add("sync", "started", "op-1")
    add("sync", "succeeded", "op-1")
    add("sync", "started", "op-2")  # killed mid-sync
    add("lock-takeover", "succeeded", "op-3")
    add("sync", "started", "op-3")
    add("sync", "failed", "op-3")
    add("rollback", "started", "op-4")
    add("rollback", "refused", "op-4")
    add("pause", "started")
    add("pause", "succeeded")
    add("resume", "started", app="api")  # never ended

    left = unfinished(journal.path)
    assert [(e.action, e.details.get("operation", ""), e.app) for e in left] == [
        ("sync", "op-2", "web"), ("resume", "", "api")]
    result = verify(journal.path)
    assert result.ok and result.unfinished == tuple(left)


def test_unfinished_covers_only_verified_entries(tmp_path: Path) -> None:
    """After a tampered line, only the entries before it count."""
    journal = Journal(tmp_path / "j.jsonl")
    journal.append(who=WHO, action="sync", result="started", details={"operation": "op-1"})
    journal.append(who=WHO, action="sync", result="succeeded", details={"operation": "op-1"})
    lines = _lines(journal.path)
    journal.path.write_bytes(lines[0] + b"\n" + lines[1].replace(b"succeeded", b"failed") + b"\n")
    result = verify(journal.path)
    assert not result.ok
    assert [e.seq for e in result.unfinished] == [1]


def test_anchor_directory_follows_xdg_cache_home_or_the_override(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    """$XDG_CACHE_HOME/fleetdeck/journal-anchors by default; $FLEETDECK_JOURNAL_ANCHORS when set."""
    anchor = anchor_path(tmp_path / "j.jsonl")
    assert anchor.parent == tmp_path / "cache" / "fleetdeck" / "journal-anchors"
    assert anchor != anchor_path(tmp_path / "other.jsonl")
    monkeypatch.setenv("FLEETDECK_JOURNAL_ANCHORS", str(tmp_path / "anchors"))
    assert anchor_path(tmp_path / "j.jsonl") == tmp_path / "anchors" / anchor.name


def test_an_existing_directory_is_left_as_it_is(tmp_path: Path) -> None:
    """A journal put in an existing shared directory does not narrow that directory."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    _fill(Journal(shared / "j.jsonl"), 1)
    assert shared.stat().st_mode & 0o777 == 0o755
    assert (shared / "j.jsonl").stat().st_mode & 0o777 == 0o600
