"""The real console on a raw pty: bytes written at a given row-update rate, and an idle console's cost.

``uv run python -m bench.console_bench [--rate R] [--seconds S] [--idle-seconds S] [--still] [--idle-only] [--quick]``.
The console
is ``fleetdeck demo``'s (the demo fleet on simulated clusters, the demo's own live changes off) run by this
module in a child process on a 120×36 pseudo-terminal with nothing in between (as
``tests/tui/test_pty_output.py``); instead of the demo's change every 4 s, the child edits ConfigMaps of the
demo's apps at ``rate`` changes/s (each change toggles one app's row between OutOfSync and Synced), so the
console has ``rate`` row updates/s to show. The parent reads every byte the console writes:

* **churn**: after the first screen and 3 s of settling, bytes/s over ``seconds`` (target ≤ 30 kB/s at
  100 row updates/s), frames (synchronized-update blocks, ``ESC[?2026h``) and the child's CPU share
  (``/proc/PID/stat`` user+system, engine thread included);
* **idle**: the same console with no change at all, after the first screen and 10 s of settling: the child's
  CPU share over ``idle_seconds`` (target ≤ 1 % of a core) and the bytes and frames written (target: none).
  The demo fleet is not still by itself (a crash-looping pod restarts, its simulated clusters' controllers
  tick); ``--still`` measures a fleet where nothing changes: the clusters' controllers stop after seeding
  (``demo_engine(still=True)``), so what is left is the console's and the engine's own work (Git polls,
  watch bookmarks, ages turning a minute);
* **churn_raw**, the baseline of the same run: the churn again with ``FLEETDECK_RAW_OUTPUT=1``, Textual's
  own output without the console's screen model (``tui/terminal_output.py``); ``churn_vs_raw`` is the ratio.

Frames: Textual marks a frame with a synchronized update only when the terminal answers that it supports
one, which this pty does not, so ``frames`` stays 0 here; ``writes`` counts the bursts of output (reads
separated by 20 ms or more of silence), one per frame on an idle console.

Writes ``bench/results/console.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import platform
import pty
import select
import signal
import struct
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

FRAME = b"\x1b[?2026h"
"""Textual wraps each frame it writes in a synchronized update (begin marker)."""


# ------------------------------------------------------------------------------------ the child


def child(rate: float, *, still: bool = False) -> None:
    """The demo console, with ``rate`` ConfigMap edits per second instead of the demo's live changes
    (``still``: and its simulated clusters' controllers stopped after seeding)."""
    from core.aio import create_guarded_task
    from core.demo import demo_engine
    from core.demo.demo_fleet import DemoState
    from core.engine import ThreadedEngine
    from core.model import ResourceKey
    from tui.cli.console import run_console

    async def churn(engine: Any) -> None:
        demo = engine.demo
        maps: list[tuple[Any, ResourceKey, str, str]] = []
        for target in demo.targets:
            if target.state is DemoState.RENDER_ERROR:
                continue
            cluster = demo.clusters[target.cluster]
            for config in cluster.objects("", "ConfigMap", target.namespace):
                if config.get("data") and config["metadata"].get("labels", {}).get("fleetdeck.io/app"):
                    name = sorted(config["data"])[0]
                    maps.append((cluster, ResourceKey.of(config), name, config["data"][name]))
                    break
        loop = asyncio.get_running_loop()
        start, made = loop.time(), 0
        drifted: set[ResourceKey] = set()
        while maps:
            due = int((loop.time() - start) * rate)
            while made < due:
                cluster, key, name, value = maps[made % len(maps)]
                drift = key not in drifted
                cluster.update_as("kubectl-edit", key, {"data": {name: f"{value}-edited" if drift else value}})
                (drifted.add if drift else drifted.discard)(key)
                made += 1
            await asyncio.sleep(0.01)

    tasks: list[asyncio.Task[None]] = []

    def factory() -> Any:
        engine = demo_engine(None, live_changes=False, render_cache=True, still=still)
        if rate > 0:
            started = engine.start

            async def start() -> None:
                await started()
                tasks.append(create_guarded_task(churn(engine), name="bench:churn"))

            engine.start = start  # type: ignore[method-assign]
        return engine

    run_console(ThreadedEngine(factory), read_only=False, mouse=False)


# ------------------------------------------------------------------------------------ the parent


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def console(rate: float, seconds: float, settle: float, *, raw: bool = False, still: bool = False) -> dict[str, Any]:
    """Run the child console in a pty; figures over ``seconds`` after the first screen and ``settle``.
    ``raw``: without the console's screen model (Textual's own output); ``still``: the demo's clusters still."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {k: v for k, v in os.environ.items()
               if k not in ("COLORTERM", "NO_COLOR") and not k.startswith("FLEETDECK_")}
        env.update({"TERM": "xterm-256color", "XDG_CACHE_HOME": str(tmp / "xdg"),
                    "XDG_STATE_HOME": str(tmp / "state"), "FLEETDECK_JOURNAL": str(tmp / "journal.jsonl")})
        if raw:
            env["FLEETDECK_RAW_OUTPUT"] = "1"
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(sys.executable, [sys.executable, "-m", "bench.console_bench", "--child", str(rate),
                                       *(["--still"] if still else [])], env)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
        os.kill(pid, signal.SIGWINCH)

        bursts = [0]

        def read_for(span: float, stop: bytes = b"") -> bytes:
            out, until, last = bytearray(), time.monotonic() + span, 0.0
            while time.monotonic() < until and not (stop and stop in out):
                if select.select([fd], [], [], 0.1)[0]:
                    try:
                        out += os.read(fd, 65536)
                    except OSError:
                        break
                    now = time.monotonic()
                    bursts[0] += now - last >= 0.02
                    last = now
            return bytes(out)

        reaped = False
        try:
            start = time.monotonic()
            first = read_for(120, stop=b"OutOfSync")
            if b"OutOfSync" not in first:
                raise RuntimeError(f"no first screen: {first[-500:]!r}")
            first_s = time.monotonic() - start
            read_for(settle)
            cpu0, wall0, bursts[0] = _cpu_seconds(pid), time.monotonic(), 0
            steady = read_for(seconds)
            writes = bursts[0]
            cpu, wall = _cpu_seconds(pid) - cpu0, time.monotonic() - wall0
            os.write(fd, b"q")
            read_for(20, stop=b"\x1b[?1049l")
            _, status = os.waitpid(pid, 0)
            reaped = True
        finally:
            if not reaped:  # only our own child, by its pid
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            os.close(fd)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    name = ("churn" if rate else "idle-still" if still else "idle") + ("-raw" if raw else "")
    (out / f"console-{name}.bin").write_bytes(steady)  # what was written, to read
    return {"rate": rate, "still": still, "seconds": round(wall, 1), "first_screen_s": round(first_s, 2), "bytes": len(steady),
            "bytes_per_s": round(len(steady) / wall), "frames": steady.count(FRAME),
            "frames_per_s": round(steady.count(FRAME) / wall, 2), "writes": writes, "cpu_share": round(cpu / wall, 4),
            "exit_code": os.waitstatus_to_exitcode(status)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.console_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="row updates per second (churn)")
    parser.add_argument("--seconds", type=float, default=20.0, help="churn window")
    parser.add_argument("--idle-seconds", type=float, default=120.0, help="idle window")
    parser.add_argument("--quick", action="store_true", help="3 s windows")
    parser.add_argument("--still", action="store_true",
                        help="idle on a still fleet (the simulated clusters' controllers stopped after seeding)")
    parser.add_argument("--idle-only", action="store_true", help="measure idle only (no churn window)")
    parser.add_argument("--churn-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child, still=args.still)
        return 0
    if args.quick:
        args.seconds = args.idle_seconds = 3.0
    load = [round(x, 2) for x in os.getloadavg()]
    churn = None if args.idle_only else console(args.rate, args.seconds, settle=3.0)
    raw = None if args.idle_only else console(args.rate, args.seconds, settle=3.0, raw=True)
    result: dict[str, Any] = {
        "churn": churn,
        "churn_raw": raw,
        "churn_vs_raw": round(churn["bytes_per_s"] / max(1, raw["bytes_per_s"]), 3) if churn and raw else None,
        "idle": None if args.churn_only else console(0.0, args.idle_seconds, settle=3.0 if args.quick else 10.0,
                                                     still=args.still),
        "loadavg_before": load, "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "machine": f"{platform.machine()} {os.cpu_count()} CPU, Python {platform.python_version()}",
        "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "console.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
