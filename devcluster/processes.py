"""Start, inspect and stop the control-plane processes, strictly by PID and process group.

Every process is started in its own session (``start_new_session=True``), so its PID is also its
process-group id and terminal signals (Ctrl-C) do not reach it. Stopping sends SIGTERM to that
group, waits, then SIGKILLs it. Before signalling a PID that came from a state file, the process's
command line is compared with the recorded one so that a recycled PID is never signalled. Nothing
here ever looks processes up by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

TERM_TIMEOUT = 15.0


@dataclass(slots=True)
class ProcessRecord:
    """One started process, as recorded in the state file."""

    role: str
    """``etcd``, ``kube-apiserver``, ``kube-controller-manager``, ``kube-scheduler`` or ``kwok``."""
    cluster: str
    """Cluster name, or ``""`` for the shared etcd."""
    argv: list[str]
    log: str
    port: int
    pid: int = 0
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment variables given to the process."""

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ProcessRecord:
        """Rebuild a record from :meth:`to_dict` output."""
        return cls(**data)  # type: ignore[arg-type]


_children: dict[int, subprocess.Popen[bytes]] = {}
"""Popen objects of processes started by this Python process (so they can be reaped)."""


def spawn(record: ProcessRecord) -> ProcessRecord:
    """Start ``record.argv`` in a new session with output appended to ``record.log``.

    Args:
        record: what to start; ``record.pid`` is set on return.

    Returns:
        The same record, with its PID.
    """
    Path(record.log).parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **record.env}
    with open(record.log, "ab") as log:
        proc = subprocess.Popen(
            record.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            close_fds=True,
        )
    _children[proc.pid] = proc
    record.pid = proc.pid
    return record


def _proc_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def proc_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` from /proc (``Z`` for a zombie), or ``None`` if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _reap(pid: int) -> None:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        _children.pop(pid, None)


def is_ours(record: ProcessRecord) -> bool:
    """Whether ``record.pid`` is alive and still runs the recorded command (not a recycled PID)."""
    if record.pid <= 0:
        return False
    _reap(record.pid)
    if proc_state(record.pid) in (None, "Z", "X"):
        return False
    cmdline = _proc_cmdline(record.pid)
    return cmdline is not None and bool(cmdline) and cmdline[0] == record.argv[0]


def signal_group(record: ProcessRecord, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group of ``record`` (its PID, thanks to ``start_new_session``)."""
    if not is_ours(record):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(record.pid, sig)


def _wait_dead(record: ProcessRecord, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_ours(record):
            return True
        time.sleep(0.1)
    return not is_ours(record)


def stop(record: ProcessRecord, *, timeout: float = TERM_TIMEOUT) -> None:
    """Stop one recorded process group: SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if not is_ours(record):
        return
    signal_group(record, signal.SIGTERM)
    if _wait_dead(record, timeout):
        return
    signal_group(record, signal.SIGKILL)
    _wait_dead(record, 5.0)


def exit_code(record: ProcessRecord) -> int | None:
    """Exit code if this Python process started ``record`` and it has exited, else ``None``."""
    child = _children.get(record.pid)
    return None if child is None else child.poll()


def rss_kib(pid: int) -> int | None:
    """Resident set size of ``pid`` in KiB (from /proc), or ``None`` when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def log_tail(record: ProcessRecord, *, lines: int = 25) -> str:
    """The last ``lines`` lines of the process's log file (for error messages)."""
    try:
        text = Path(record.log).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def stop_all(records: list[ProcessRecord]) -> None:
    """SIGTERM a set of process groups together, then SIGKILL whatever is left."""
    alive = [r for r in records if is_ours(r)]
    for record in alive:
        signal_group(record, signal.SIGTERM)
    deadline = time.monotonic() + TERM_TIMEOUT
    while time.monotonic() < deadline and any(is_ours(r) for r in alive):
        time.sleep(0.1)
    for record in alive:
        stop(record, timeout=1.0)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (for tests that check teardown)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return proc_state(pid) not in (None, "Z", "X")
