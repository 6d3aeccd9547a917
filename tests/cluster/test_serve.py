"""R9 (textual-serve) with the real command, a real browser protocol and a real kube-apiserver:
``fleetdeck serve`` is started as a process on a free loopback port, an aiohttp websocket client speaks
textual-serve's protocol to ``/ws`` (as the page's JavaScript does: binary frames of terminal output, JSON
``["stdin", KEYS]`` frames for keys), and the console each connection starts is judged by its screen, its
command line and the apiserver's audit log:

* ``--read-only``: the served console shows the read-only banner and the app; its command line carries
  ``--read-only``; the sync keys open no confirmation and the audit log has no write in the app's namespace,
  while the same keys in a console served without ``--read-only`` do sync (the keys do reach the app).
* ``--as USER --as-group G``: the banner says every request is impersonated, and the audit log shows the
  served console's requests arriving as that user and group.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest

from devcluster import ClusterInfo, audit_events, mutating_events
from tests.cluster.conftest import fleet_file
from tests.cluster.test_cli import FLEETDECK

pytestmark = pytest.mark.cluster

TERMINAL = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
"""Escape sequences of the terminal output, removed to read the screen's words."""
REVIEWS = ("selfsubjectaccessreviews", "selfsubjectreviews")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from ``/proc/PID/task/*/children``)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            direct = [int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            continue
        for child in direct:
            found += [child, *children(child)]
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


@contextmanager
def served(tmp: Path, *args: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``fleetdeck serve --port PORT ARGS`` running (its port and process); stopped, with every console it
    started, at the end (each by its pid)."""
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FLEETDECK_")},
           "FLEETDECK_JOURNAL": str(tmp / "journal.jsonl"), "XDG_CACHE_HOME": str(tmp / "xdg"),
           "XDG_STATE_HOME": str(tmp / "state")}
    log = (tmp / f"serve-{port}.log").open("wb")
    server = subprocess.Popen([FLEETDECK, "serve", "--port", str(port), *args], stdout=log, stderr=subprocess.STDOUT,
                              env=env)
    try:
        yield port, server
    finally:
        started = children(server.pid)
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        for pid in started:
            if "console" in cmdline(pid):  # a console its server did not stop (the pid still runs one)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        log.close()


class WebConsole:
    """A browser tab on ``fleetdeck serve``: textual-serve's websocket protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.text = ""

    async def wait_for(self, check: Callable[[str], bool], what: str, timeout: float = 60) -> None:
        """Read output until ``check(all words so far)`` holds."""
        deadline = time.monotonic() + timeout
        while not check(self.text):
            left = deadline - time.monotonic()
            blocked = sorted({line.strip(" █") for line in self.text.splitlines() if "blocked:" in line})
            assert left > 0, (f"timed out waiting for {what}; blocked plans: {blocked}; the screen's words end "
                              f"with:\n{self.text[-3000:]}")
            try:
                message = await self.ws.receive(timeout=min(left, 1.0))
            except TimeoutError:
                continue
            if message.type == aiohttp.WSMsgType.BINARY:
                self.text += TERMINAL.sub("", message.data.decode("utf-8", "replace"))
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                raise AssertionError(f"the console closed while waiting for {what}:\n{self.text[-3000:]}")

    async def keys(self, *keys: str) -> None:
        for key in keys:
            await self.ws.send_json(["stdin", key])
            await asyncio.sleep(0.3)

    async def settle(self, seconds: float) -> None:
        """Keep reading output for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = await self.ws.receive(timeout=left)
            except TimeoutError:
                return
            if message.type == aiohttp.WSMsgType.BINARY:
                self.text += TERMINAL.sub("", message.data.decode("utf-8", "replace"))


async def with_tab(port: int, body: Callable[[WebConsole], object]) -> None:
    """Open a tab on the server at ``port`` (retrying while it starts), run ``body``, close the tab."""
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 30
        while True:
            try:
                ws = await session.ws_connect(f"http://127.0.0.1:{port}/ws?width=140&height=40")
                break
            except aiohttp.ClientError:
                assert time.monotonic() < deadline, "fleetdeck serve never accepted a connection"
                await asyncio.sleep(0.2)
        try:
            result = body(WebConsole(ws))
            if asyncio.iscoroutine(result):
                await result
        finally:
            await ws.close()


def writes_in(cluster: ClusterInfo, namespace: str, since: dt.datetime) -> list[str]:
    """Mutating requests touching the app's namespace since ``since`` (access reviews excepted)."""
    events = mutating_events(audit_events(cluster, since=since))
    return [f"{e.get('verb')} {(e.get('objectRef') or {}).get('resource')}" for e in events
            if (e.get("objectRef") or {}).get("resource") not in REVIEWS
            and namespace in ((e.get("objectRef") or {}).get("namespace"), (e.get("objectRef") or {}).get("name"))]


def test_served_read_only_console_refuses_writes_and_a_writable_one_syncs(
        tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    app = namespace[:20]
    since = dt.datetime.now(dt.UTC)
    with served(tmp_path, "--fleet", str(fleet), "--read-only") as (port, server):
        async def read_only(tab: WebConsole) -> None:
            await tab.wait_for(lambda s: "READ-ONLY AUDIT MODE" in s and app in s and "OutOfSync" in s,
                               "the read-only banner and the app, not yet synced")
            consoles = [cmdline(pid) for pid in children(server.pid)]
            console = next(c for c in consoles if "console" in c)
            assert console[console.index("console"):] == ["console", "--fleet", str(fleet.resolve()), "--read-only",
                                                          "--mouse", ""], console
            await tab.keys("s", "y", "Enter", "p", "y", "r")
            await tab.settle(3)
            assert "Press y" not in tab.text  # no sync confirmation: the read-only console has no action keys
            assert app in tab.text

        asyncio.run(with_tab(port, read_only))
    time.sleep(1)
    assert writes_in(cluster, namespace, since) == []

    with served(tmp_path, "--fleet", str(fleet)) as (port, _):
        async def writable(tab: WebConsole) -> None:
            await tab.wait_for(lambda s: app in s and "OutOfSync" in s, "the app, not yet synced")
            assert "READ-ONLY" not in tab.text
            await tab.keys("s")
            await tab.wait_for(lambda s: "Press y" in s, "the sync confirmation")
            await tab.keys("y")
            await tab.wait_for(lambda s: "succeeded" in s.lower() or "Synced" in s.split("OutOfSync")[-1],
                               "the sync's result")

        asyncio.run(with_tab(port, writable))
    time.sleep(1)
    assert any(w.startswith(("create", "patch")) for w in writes_in(cluster, namespace, since))


def test_served_console_impersonates_as_asked(tmp_path: Path, repo: Path, cluster: ClusterInfo,
                                              namespace: str) -> None:
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    user = f"serve-{namespace[-8:]}"
    since = dt.datetime.now(dt.UTC)
    with served(tmp_path, "--fleet", str(fleet), "--as", user, "--as-group", "auditors") as (port, server):
        async def impersonated(tab: WebConsole) -> None:
            await tab.wait_for(lambda s: f"AS {user}" in s and "impersonated" in s, "the impersonation banner")
            console = next(c for c in (cmdline(pid) for pid in children(server.pid)) if "console" in c)
            assert console[console.index("console"):] == [
                "console", "--fleet", str(fleet.resolve()), "--as", user, "--as-group", "auditors", "--mouse", ""]

        asyncio.run(with_tab(port, impersonated))
    time.sleep(1)
    seen = [e for e in audit_events(cluster, since=since) if (e.get("impersonatedUser") or {}).get("username") == user]
    assert seen, "no request arrived as the impersonated user"
    assert all("auditors" in (e.get("impersonatedUser") or {}).get("groups", []) for e in seen)
