"""Row R7, a slow SSH link, simulated: a delaying pty relay between the test and the real console.

The console runs on a pty of its own (``fleetdeck demo``, or the fake engine's churn runner). A relay thread
owns the pty's master side and holds every byte for ``RTT / 2`` in each direction: keys the test types reach
the console 100 ms later, and what the console writes reaches the test 100 ms after it was written (200 ms
of round trip, as over a distant SSH session). The test then asserts that

* each key's effect (open an app, back, open and close help) is visible within ``RTT + KEY_BOUND``;
* at 100 row updates a second on screen the console writes under the 30 kB/s budget (``BYTE_BUDGET``).
"""

from __future__ import annotations

import fcntl
import heapq
import os
import pty
import select
import signal
import struct
import sys
import termios
import threading
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLEETDECK = str(Path(sys.executable).with_name("fleetdeck"))
RTT = 0.2
KEY_BOUND = 1.5
"""Seconds a key's effect may take beyond the round trip (the console's own work on a shared 2-core VM)."""
FLEET_HEADER = b"CLUSTER STATE"
"""A column heading of the fleet table: written when the fleet screen is drawn again, not by a row update."""
BYTE_BUDGET = 30_000
"""Bytes a second the console may write at 100 row updates a second (a quarter of a 1 Mbit/s link)."""


class DelayingRelay:
    """The master side of a pty, with every byte delayed ``delay`` seconds in each direction."""

    def __init__(self, fd: int, delay: float) -> None:
        self.fd, self.delay = fd, delay
        self._to_console: list[tuple[float, int, bytes]] = []
        self._from_console: list[tuple[float, bytes]] = []
        self._received = bytearray()
        self._lock = threading.Lock()
        self._seq = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def send(self, data: bytes) -> float:
        """Type ``data``: it reaches the console ``delay`` later. The time it was typed."""
        now = time.monotonic()
        with self._lock:
            self._seq += 1
            heapq.heappush(self._to_console, (now + self.delay, self._seq, data))
        return now

    def output(self) -> bytes:
        """Everything the console wrote that has crossed the link so far."""
        now = time.monotonic()
        with self._lock:
            while self._from_console and self._from_console[0][0] <= now:
                self._received += self._from_console.pop(0)[1]
            return bytes(self._received)

    def wait_for(self, marker: bytes, *, after: int, timeout: float) -> float:
        """Poll until ``marker`` is in the output past offset ``after``; the time it crossed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.output()[after:]:
                return time.monotonic()
            time.sleep(0.005)
        raise AssertionError(f"{marker!r} did not arrive within {timeout}s; last output: {self.output()[-1500:]!r}")

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                due = []
                while self._to_console and self._to_console[0][0] <= now:
                    due.append(heapq.heappop(self._to_console)[2])
            for data in due:
                os.write(self.fd, data)
            if select.select([self.fd], [], [], 0.002)[0]:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    return
                with self._lock:
                    self._from_console.append((time.monotonic() + self.delay, data))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Console:
    """A program on a pty of its own behind a ``DelayingRelay``; ``close`` quits it with ``q``."""

    def __init__(self, argv: Sequence[str], tmp: Path, *, delay: float, size: tuple[int, int] = (120, 36)) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "NO_COLOR") and
               not k.startswith("FLEETDECK_")}
        env.update({"TERM": "xterm-256color", "XDG_CACHE_HOME": str(tmp / "xdg"),
                    "XDG_STATE_HOME": str(tmp / "state"), "FLEETDECK_JOURNAL": str(tmp / "journal.jsonl"),
                    "PYTHONPATH": str(ROOT)})
        self.pid, fd = pty.fork()
        if self.pid == 0:  # the child: the console on the pty
            os.chdir(ROOT)
            os.execve(argv[0], list(argv), env)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        os.kill(self.pid, signal.SIGWINCH)
        self.fd = fd
        self.relay = DelayingRelay(fd, delay)

    def key(self, data: bytes, marker: bytes, *, timeout: float = 30) -> float:
        """Type ``data`` and wait for ``marker`` in what the console writes after it; the seconds it took."""
        after = len(self.relay.output())
        typed = self.relay.send(data)
        return self.relay.wait_for(marker, after=after, timeout=timeout) - typed

    def quit(self) -> int:
        """Press ``q`` and wait for the console to end; its exit code."""
        self.relay.send(b"q")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pid = 0
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        raise AssertionError("the console did not quit")

    def close(self) -> None:
        self.relay.close()
        if self.pid:  # only our own child, by its pid
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


def test_keys_take_effect_within_rtt_plus_a_bound_over_a_200ms_link(tmp_path: Path) -> None:
    """The real ``fleetdeck demo`` over 200 ms of round trip: Enter opens an app, Esc goes back, ``?`` opens
    help, ``q`` closes it, three times each; every effect is visible within RTT + 1.5 s."""
    console = Console([FLEETDECK, "demo"], tmp_path, delay=RTT / 2)
    try:
        console.relay.wait_for(b"OutOfSync", after=0, timeout=90)
        time.sleep(1)
        latencies: dict[str, list[float]] = {"open app": [], "back": [], "help": [], "close help": []}
        for _ in range(3):
            latencies["open app"].append(console.key(b"\r", b"namespace"))
            time.sleep(0.5)
            latencies["back"].append(console.key(b"\x1b", FLEET_HEADER))
            time.sleep(0.5)
            latencies["help"].append(console.key(b"?", b"fleetdeck keys"))
            time.sleep(0.5)
            latencies["close help"].append(console.key(b"q", FLEET_HEADER))
            time.sleep(0.5)
        print("\nR7: over 200 ms RTT, key → effect seen: " + "; ".join(
            f"{what} {', '.join(f'{x * 1000:.0f}' for x in xs)} ms" for what, xs in latencies.items()))
        for what, xs in latencies.items():
            assert all(RTT <= x <= RTT + KEY_BOUND for x in xs), (what, xs)
        assert console.quit() == 0
    finally:
        console.close()


def churn_rate(tmp: Path, first: int) -> tuple[float, float]:
    """The console on ``tests.fixtures.churn`` (rows ``first``.. changing, -1: spread over the fleet) over the
    200 ms link: (bytes written a second over 10 s, row updates published a second). A key still takes
    effect within RTT + 1.5 s, and the console quits cleanly."""
    count = tmp / "count"
    console = Console([sys.executable, "-m", "tests.fixtures.churn", str(count), str(first)], tmp, delay=RTT / 2)
    try:
        console.relay.wait_for(b"app-00000", after=0, timeout=90)
        time.sleep(2)
        before, updates_before = len(console.relay.output()), count.read_text().split()
        time.sleep(10)
        written, updates_after = len(console.relay.output()) - before, count.read_text().split()
        updates = int(updates_after[0]) - int(updates_before[0])
        seconds = float(updates_after[1]) - float(updates_before[1])
        assert console.key(b"?", b"fleetdeck keys") <= RTT + KEY_BOUND
        console.key(b"q", FLEET_HEADER)
        assert console.quit() == 0
    finally:
        console.close()
    rate = written / 10
    where = "on screen" if first >= 0 else "over the 400-row fleet"
    print(f"\nR7: {updates / seconds:.0f} row updates/s {where}: the console wrote {written:,} bytes in 10 s, "
          f"{rate:,.0f} bytes/s ({rate / BYTE_BUDGET:.0%} of the 30 kB/s budget, {rate / 125_000:.1%} of 1 Mbit/s)")
    assert updates / seconds >= 90, (updates, seconds)
    return rate, updates / seconds


def test_byte_rate_at_100_row_updates_a_second_stays_under_budget(tmp_path: Path) -> None:
    """100 row updates a second over the 400-row fleet (about 8 a second on screen, as a busy fleet changes):
    the console writes under 30 kB/s over the 200 ms link."""
    rate, _ = churn_rate(tmp_path, -1)
    assert 0 < rate < BYTE_BUDGET, rate


def test_byte_rate_with_every_update_on_screen_stays_under_budget(tmp_path: Path) -> None:
    """The worst case: all 100 updates a second land on the 30 rows on screen."""
    rate, _ = churn_rate(tmp_path, 0)
    assert rate < BYTE_BUDGET, rate
