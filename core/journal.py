"""The operator journal: an append-only, fsynced, hash-chained JSON-lines file on the bastion.

Every action an operator takes (sync, rollback, pause, resume, prune) and every refused attempt is
recorded here, *before* the action is acknowledged: when the record cannot be written the action is
refused with ``JournalError``. Each line carries the SHA-256 of the previous line (``prev``) and of its
own content (``hash``), so ``verify`` detects an edited, removed, reordered or torn line. A small head
file next to the journal (``<name>.head``) holds the last sequence number and hash; it is also the
``fcntl`` lock that serializes appends from several fleetdeck processes on one bastion, and it lets
``verify`` notice lines cut off the end.

A head next to the journal can be deleted together with the lines it would expose, so every append also
writes an *anchor*, a second head in another directory: ``$XDG_CACHE_HOME/fleetdeck/journal-anchors/
<digest of the journal's absolute path>.head`` (``~/.cache`` when unset). ``verify`` and every append check
both: a journal shorter than either head, or whose entry at a head's sequence number has another hash,
is reported ("truncated: the anchor records N entries …") and appends are refused. A missing head or
anchor proves nothing by itself (caches get wiped) and is not an error. Files are 0600, directories 0700.

``unfinished`` lists operations that were journalled ``started`` and never ``succeeded``, ``failed``
or ``refused`` (a crash, a kill, or still running elsewhere); ``verify`` carries them too.

Constraint: only allow-listed detail fields are stored (revision, dry_run, prune, resources, reason,
operation, lease); manifests, patches and secret values never are. This module imports only the
standard library and ``core.errors``/``core.files``; it does no network I/O.
"""

from __future__ import annotations

import asyncio
import fcntl
import getpass
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal

from core.errors import JournalError
from core.files import private_dir

Result = Literal["started", "succeeded", "failed", "refused"]
RESULTS: Final = frozenset({"started", "succeeded", "failed", "refused"})
GENESIS: Final = "0" * 64
"""``prev`` of the first entry."""
DETAIL_KEYS: Final = frozenset({"revision", "dry_run", "prune", "resources", "reason", "operation", "lease",
                                "synced_revision", "non_descendant", "acknowledged", "hooks", "takeovers",
                                "force_conflicts", "owner", "patches"})
"""The only detail fields ever written (the Argo CD audit-trail model: allow-list, never manifests). ``patches``
are the merge patches written to a controller's object (``cluster: Kind ns/name: {json}``): controller fields
(operation, sync policy, fleetdeck's annotations), never an app's objects."""
MAX_RESOURCES: Final = 500
MAX_TEXT: Final = 2000
_TAIL_CHUNK: Final = 65536


TERMINAL_RESULTS: Final = frozenset({"succeeded", "failed", "refused"})
ANCHORS_ENV: Final = "FLEETDECK_JOURNAL_ANCHORS"


def default_path() -> Path:
    """``$XDG_STATE_HOME/fleetdeck/journal.jsonl`` (``~/.local/state`` when the variable is unset)."""
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "fleetdeck" / "journal.jsonl"


# ---------------------------------------------------------------------------------------------- identity


@dataclass(frozen=True, slots=True)
class OperatorIdentity:
    """Who acts: the OS user on the bastion, where they came from over SSH, and their kube user."""

    os_user: str
    host: str
    pid: int
    ssh_client: str = ""
    """The client address from ``SSH_CLIENT``/``SSH_CONNECTION`` (empty for a local session)."""
    kube_user: str = ""
    """The authenticated Kubernetes user (SelfSubjectReview), when known."""

    @property
    def holder(self) -> str:
        """Lease holder identity: ``<os_user>@<host>:<pid>``."""
        return f"{self.os_user}@{self.host}:{self.pid}"

    @property
    def by(self) -> str:
        """Short attribution for history and control state: ``alice@bastion`` (``as <kube user>``)."""
        base = f"{self.os_user}@{self.host}"
        return f"{base} as {self.kube_user}" if self.kube_user else base

    def with_kube_user(self, kube_user: str) -> OperatorIdentity:
        """A copy naming ``kube_user``."""
        return OperatorIdentity(self.os_user, self.host, self.pid, self.ssh_client, kube_user)

    def as_json(self) -> dict[str, str]:
        """The journal's ``who`` field."""
        return {"os_user": self.os_user, "ssh_client": self.ssh_client, "kube_user": self.kube_user}


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def _ssh_client(env: Mapping[str, str]) -> str:
    for name in ("SSH_CLIENT", "SSH_CONNECTION"):
        parts = env.get(name, "").split()
        if parts:
            return f"{parts[0]}:{parts[1]}" if len(parts) > 1 else parts[0]
    return ""


def current_identity(*, kube_user: str = "", env: Mapping[str, str] | None = None) -> OperatorIdentity:
    """The identity of this process.

    Args:
        kube_user: the Kubernetes user, as the cluster reported it.
        env: the environment to read SSH variables from (``os.environ`` unless given; a test seam).
    """
    environ = os.environ if env is None else env
    return OperatorIdentity(
        os_user=_os_user(),
        host=socket.gethostname(),
        pid=os.getpid(),
        ssh_client=_ssh_client(environ),
        kube_user=kube_user,
    )


# ---------------------------------------------------------------------------------------------- entries


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One line of the journal, as written."""

    seq: int
    ts: float
    who: Mapping[str, str]
    action: str
    app: str
    cluster: str
    details: Mapping[str, Any]
    result: str
    message: str
    prev: str
    hash: str


def _canonical(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _text(value: object) -> str:
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def clean_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """Keep only allow-listed detail fields, coerced to plain JSON types and bounded in size."""
    cleaned: dict[str, Any] = {}
    for key, value in details.items():
        if key not in DETAIL_KEYS or value is None:
            continue
        if key in ("dry_run", "prune", "acknowledged", "force_conflicts"):
            cleaned[key] = bool(value)
        elif key in ("resources", "hooks", "takeovers", "patches"):
            items = [str(item) for item in value][:MAX_RESOURCES]
            cleaned[key] = [_text(item) for item in items]
        else:
            cleaned[key] = _text(value)
    return cleaned


def _body(*, seq: int, ts: float, who: OperatorIdentity, action: str, app: str, cluster: str,
          details: Mapping[str, Any], result: str, message: str, prev: str) -> dict[str, Any]:
    return {
        "seq": seq, "ts": ts, "who": who.as_json(), "action": _text(action), "app": _text(app),
        "cluster": _text(cluster), "details": clean_details(details), "result": result,
        "message": _text(message), "prev": prev,
    }


# ---------------------------------------------------------------------------------------------- file access


@dataclass(frozen=True, slots=True)
class _Tail:
    seq: int
    line_hash: str
    """SHA-256 of the last line (without its newline); GENESIS for an empty file."""
    torn: bool
    """The file does not end with a newline: the last write was cut off."""


def _read_tail(fd: int) -> _Tail:
    size = os.fstat(fd).st_size
    if size == 0:
        return _Tail(0, GENESIS, torn=False)
    start = max(0, size - _TAIL_CHUNK)
    chunk = os.pread(fd, size - start, start)
    while start > 0 and chunk.rstrip(b"\n").count(b"\n") == 0:
        start = max(0, start - _TAIL_CHUNK)
        chunk = os.pread(fd, size - start, start)
    torn = not chunk.endswith(b"\n")
    last = chunk.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        seq = int(json.loads(last)["seq"])
    except (ValueError, KeyError, TypeError):
        seq = -1
    return _Tail(seq, _sha256(last), torn=torn)


def _read_head(fd: int) -> tuple[int, str] | None:
    raw = os.pread(fd, 4096, 0)
    if not raw.strip():
        return None
    try:
        data = json.loads(raw)
        return int(data["seq"]), str(data["hash"])
    except (ValueError, KeyError, TypeError):
        return None


def _write_head(fd: int, *, seq: int, line_hash: str, fsync: Callable[[int], None]) -> None:
    payload = json.dumps({"seq": seq, "hash": line_hash}).encode() + b"\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, payload, 0)
    fsync(fd)


def _head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def anchor_path(journal: Path | str) -> Path:
    """Where the anchor of ``journal`` lives: ``$XDG_CACHE_HOME/fleetdeck/journal-anchors/<digest>.head``.

    Another directory than the journal's, keyed by the journal's absolute path, so that deleting the
    journal's own ``.head`` does not delete the record of how long the journal was.
    ``$FLEETDECK_JOURNAL_ANCHORS`` names another directory (the test suite uses a private one).
    """
    key = hashlib.sha256(str(Path(journal).absolute()).encode()).hexdigest()[:24]
    override = os.environ.get(ANCHORS_ENV)
    if override:
        return Path(override) / f"{key}.head"
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "fleetdeck" / "journal-anchors" / f"{key}.head"


def _read_head_file(path: Path) -> tuple[int, str] | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _read_head(fd)
    finally:
        os.close(fd)


def _ensure_dir(directory: Path) -> None:
    """Create a missing directory (and missing parents) 0700; an existing one is left as it is (it may be
    ``/tmp`` or a home directory named by ``--path``)."""
    if not directory.is_dir():
        private_dir(directory)


def _write_anchor(path: Path, *, journal: Path, seq: int, line_hash: str, fsync: Callable[[int], None]) -> None:
    _ensure_dir(path.parent)
    payload = json.dumps({"seq": seq, "hash": line_hash, "journal": str(journal.absolute())}).encode() + b"\n"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, payload, 0)
        fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _locked_head(path: Path) -> Iterator[int]:
    fd = os.open(_head_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def _fsync_dir(directory: Path, fsync: Callable[[int], None]) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------- journal


@dataclass(slots=True)
class Journal:
    """Append-only operator journal at ``path``.

    ``append`` blocks for one ``write`` and two ``fsync`` calls; coroutines use ``record``, which runs
    it in a worker thread. Appends from several processes are serialized by an ``fcntl`` lock.
    """

    path: Path = field(default_factory=default_path)
    fsync: Callable[[int], None] = os.fsync  # injected in tests
    clock: Callable[[], float] = time.time  # injected in tests
    anchor: Path | None = None
    """The second head, in another directory (default ``anchor_path(path)``)."""

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.anchor is None:
            self.anchor = anchor_path(self.path)

    def append(
        self,
        *,
        who: OperatorIdentity,
        action: str,
        app: str = "",
        cluster: str = "",
        result: Result,
        details: Mapping[str, Any] | None = None,
        message: str = "",
    ) -> JournalEntry:
        """Write one entry and fsync it.

        Args:
            who: the operator.
            action: ``sync``, ``rollback``, ``pause``, ``resume``, ``prune``…
            app: the app, when the action concerns one.
            cluster: the cluster, when the action concerns one.
            result: ``started``, ``succeeded``, ``failed`` or ``refused``.
            details: allow-listed details (others are dropped).
            message: a human-readable outcome (an error message, a summary).

        Returns:
            The entry as written.

        Raises:
            JournalError: the entry could not be written durably (unwritable directory, disk full),
                or the journal no longer matches its head (lines were cut off): refuse the action.
        """
        if result not in RESULTS:
            raise ValueError(f"unknown journal result {result!r}")
        try:
            return self._append(who=who, action=action, app=app, cluster=cluster, result=result,
                                details=details or {}, message=message)
        except OSError as exc:
            raise JournalError(
                f"failed to write the operator journal {self.path}: {exc.strerror or exc}",
                title="Journal unavailable",
                hint="free disk space or fix the journal directory's permissions; the action was refused",
            ) from exc

    async def record(
        self,
        *,
        who: OperatorIdentity,
        action: str,
        app: str = "",
        cluster: str = "",
        result: Result,
        details: Mapping[str, Any] | None = None,
        message: str = "",
    ) -> JournalEntry:
        """``append`` in a worker thread, so the event loop never waits on the disk."""
        return await asyncio.to_thread(
            self.append, who=who, action=action, app=app, cluster=cluster, result=result,
            details=details, message=message,
        )

    def _append(self, *, who: OperatorIdentity, action: str, app: str, cluster: str, result: str,
                details: Mapping[str, Any], message: str) -> JournalEntry:
        _ensure_dir(self.path.parent)
        with _locked_head(self.path) as head_fd:
            created = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                return self._append_locked(fd, head_fd, created=created, who=who, action=action,
                                           app=app, cluster=cluster, result=result, details=details,
                                           message=message)
            finally:
                os.close(fd)

    def _append_locked(self, fd: int, head_fd: int, *, created: bool, who: OperatorIdentity,
                       action: str, app: str, cluster: str, result: str, details: Mapping[str, Any],
                       message: str) -> JournalEntry:
        read_fd = os.open(self.path, os.O_RDONLY)
        try:
            tail = _read_tail(read_fd)
        finally:
            os.close(read_fd)
        self._check_head(_read_head(head_fd), tail)
        anchor = self.anchor or anchor_path(self.path)
        self._check_head(_read_head_file(anchor), tail, what=f"its anchor {anchor}")
        seq = tail.seq + 1 if tail.seq >= 0 else _count_lines(self.path) + 1
        body = _body(seq=seq, ts=self.clock(), who=who, action=action,
                     app=app, cluster=cluster, details=details, result=result, message=message,
                     prev=tail.line_hash)
        body["hash"] = _sha256(_canonical(body))
        line = _canonical(body)
        # A torn last line (crash mid-write) is kept, terminated and chained to: verify reports it.
        os.write(fd, (b"\n" if tail.torn else b"") + line + b"\n")
        self.fsync(fd)
        if created:
            _fsync_dir(self.path.parent, self.fsync)
        _write_head(head_fd, seq=body["seq"], line_hash=_sha256(line), fsync=self.fsync)
        _write_anchor(anchor, journal=self.path, seq=body["seq"], line_hash=_sha256(line), fsync=self.fsync)
        return _entry(body)

    def _check_head(self, head: tuple[int, str] | None, tail: _Tail, *, what: str = "its head") -> None:
        if head is None or tail.torn:
            return
        seq, line_hash = head
        if seq > tail.seq or (seq == tail.seq and line_hash != tail.line_hash):
            raise JournalError(
                f"the operator journal {self.path} ends at entry {tail.seq} but {what} records entry "
                f"{seq}: lines were removed or rewritten",
                title="Journal tampered",
                hint=f"keep {self.path}, {_head_path(self.path)} and {self.anchor} as evidence, move them "
                "aside, and restart to begin a new journal",
            )


def _count_lines(path: Path) -> int:
    lines, _ = _split_lines(path.read_bytes())
    return len(lines)


def _entry(body: Mapping[str, Any]) -> JournalEntry:
    return JournalEntry(
        seq=body["seq"], ts=body["ts"], who=dict(body["who"]), action=body["action"], app=body["app"],
        cluster=body["cluster"], details=dict(body["details"]), result=body["result"],
        message=body["message"], prev=body["prev"], hash=body["hash"],
    )


# ---------------------------------------------------------------------------------------------- verify


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of checking a journal's chain."""

    ok: bool
    entries: int
    """Entries that verified before the first problem (all of them when ``ok``)."""
    first_bad_line: int | None = None
    """1-based line number of the first problem (``entries + 1`` for a cut-off end)."""
    reason: str = ""
    unfinished: tuple[JournalEntry, ...] = ()
    """``started`` entries (among those that verified) with no ``succeeded``/``failed``/``refused`` after them."""


def _check_line(raw: bytes, *, number: int, prev: str) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        return f"line {number} is not valid JSON"
    if not isinstance(data, dict) or not isinstance(data.get("hash"), str):
        return f"line {number} is not a journal entry"
    if data.get("seq") != number:
        return f"line {number} has sequence number {data.get('seq')!r} (lines removed or reordered)"
    if data.get("prev") != prev:
        return f"line {number} does not chain to the line before it (a line was edited, removed or inserted)"
    claimed = data.pop("hash")
    if _sha256(_canonical(data)) != claimed:
        return f"line {number} was edited after it was written (hash mismatch)"
    if _canonical({**data, "hash": claimed}) != raw:
        return f"line {number} was re-serialized after it was written"
    return ""


def _split_lines(content: bytes) -> tuple[list[bytes], bool]:
    torn = bool(content) and not content.endswith(b"\n")
    lines = content.split(b"\n")
    if not torn:
        lines = lines[:-1]
    return lines, torn


def verify(path: Path | str, *, anchor: Path | str | None = None) -> VerifyResult:
    """Check every line's hash and chain, sequence numbers, a torn end, the head file and the anchor.

    Args:
        path: the journal file.
        anchor: its anchor (default ``anchor_path(path)``, where ``Journal`` writes it).

    Returns:
        ``VerifyResult(ok=True, entries=n)`` for an intact journal (a missing file is an empty, intact
        journal); otherwise the first bad line and why. Either way ``unfinished`` lists the operations
        started and never ended among the entries that verified.
    """
    journal = Path(path)
    content = journal.read_bytes() if journal.exists() else b""
    lines, torn = _split_lines(content)
    prev = GENESIS
    hashes: list[str] = []
    for number, raw in enumerate(lines, start=1):
        if torn and number == len(lines):
            return _with_unfinished(VerifyResult(False, number - 1, number,
                                                 f"line {number} is incomplete (torn write)"), lines)
        reason = _check_line(raw, number=number, prev=prev)
        if reason:
            return _with_unfinished(VerifyResult(False, number - 1, number, reason), lines)
        prev = _sha256(raw)
        hashes.append(prev)
    heads = (("head", _head_path(journal)), ("anchor", Path(anchor) if anchor is not None else anchor_path(journal)))
    for name, head_path in heads:
        problem = _check_against(name, head_path, hashes)
        if problem is not None:
            return _with_unfinished(problem, lines)
    return _with_unfinished(VerifyResult(True, len(lines)), lines)


def _check_against(name: str, head_path: Path, hashes: Sequence[str]) -> VerifyResult | None:
    """A problem when the head at ``head_path`` records more entries, or another hash, than the journal has."""
    head = _read_head_file(head_path)
    if head is None:
        return None
    seq, line_hash = head
    entries = len(hashes)
    if seq > entries:
        return VerifyResult(False, entries, entries + 1,
                            f"truncated: the {name} records {seq} entries (last hash {line_hash[:12]}) but the "
                            f"journal ends at {entries}")
    if seq >= 1 and hashes[seq - 1] != line_hash:
        if seq == entries:
            return VerifyResult(False, entries - 1, entries,
                                f"the last line (entry {entries}) was rewritten: the {name} records hash "
                                f"{line_hash[:12]}")
        return VerifyResult(False, seq - 1, seq, f"entry {seq} was rewritten: the {name} records hash {line_hash[:12]}")
    return None


def _with_unfinished(result: VerifyResult, lines: Sequence[bytes]) -> VerifyResult:
    entries = _parse(lines[: result.entries])
    return replace(result, unfinished=tuple(_unfinished(entries)))


def _parse(lines: Sequence[bytes]) -> list[JournalEntry]:
    entries: list[JournalEntry] = []
    for raw in lines:
        try:
            entries.append(_entry(json.loads(raw)))
        except (ValueError, KeyError, TypeError):
            continue
    return entries


def _unfinished(entries: Sequence[JournalEntry]) -> list[JournalEntry]:
    """``started`` entries without a later terminal entry of the same operation.

    An operation is matched by its ``operation`` detail and action; entries without an operation id
    (pause, resume…) by action, app and cluster, oldest first.
    """
    open_ops: dict[tuple[str, str], JournalEntry] = {}
    open_plain: dict[tuple[str, str, str], list[JournalEntry]] = {}
    for entry in entries:
        op = str(entry.details.get("operation") or "")
        if entry.result == "started":
            if op:
                open_ops[(entry.action, op)] = entry
            else:
                open_plain.setdefault((entry.action, entry.app, entry.cluster), []).append(entry)
        elif entry.result in TERMINAL_RESULTS:
            if op:
                open_ops.pop((entry.action, op), None)
            else:
                pending = open_plain.get((entry.action, entry.app, entry.cluster))
                if pending:
                    pending.pop(0)
    left = list(open_ops.values()) + [e for pending in open_plain.values() for e in pending]
    return sorted(left, key=lambda e: e.seq)


def unfinished(path: Path | str) -> list[JournalEntry]:
    """Operations journalled ``started`` that never ``succeeded``, ``failed`` or were ``refused``.

    They were interrupted (the process crashed or was killed) or are still running in another process;
    the console and ``audit journal`` show them so an interrupted sync is never silently forgotten.
    """
    return _unfinished(read_entries(path))


def read_entries(path: Path | str, *, limit: int | None = None) -> Sequence[JournalEntry]:
    """The journal's entries, oldest first (the last ``limit`` when given); unparsable lines skipped."""
    journal = Path(path)
    if not journal.exists():
        return ()
    lines, _ = _split_lines(journal.read_bytes())
    return tuple(_parse(lines[-limit:] if limit else lines))


def configured_path() -> Path:
    """The journal every command uses: ``$FLEETDECK_JOURNAL``, else :func:`default_path`."""
    explicit = os.environ.get("FLEETDECK_JOURNAL")
    return Path(explicit) if explicit else default_path()
