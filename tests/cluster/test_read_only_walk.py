"""A seeded random walk of the read-only console against the real control plane: nothing is ever written.

The real engine (``ThreadedEngine`` over ``engine_from_fleet_file(..., read_only=True)``, as ``fleetdeck
console --read-only`` builds it) drives the real app through Textual's pilot, in-process. A config repo holds
three apps on two clusters: ``web`` synced on both, ``api`` drifted on both and paused on ``fd-b``, ``cache``
never synced. Each step presses keys of the active screen (every key its bindings declare, the ones read-only
mode hides too: s, S, p, u, r, R, ctrl+r, space, y, d, ...), moves (arrows, pages, home/end, tab), types random
text into inputs, or runs the palette with a command name typed. ``q`` is pressed only at the end. Meanwhile
every CLI verb runs in read-only mode a few times. Afterwards the audit logs of both apiservers show zero
mutating requests since the walk began (access reviews excepted), the app exited cleanly, and the journal
holds only ``refused`` entries.

``FLEETDECK_WALK_STEPS`` and ``FLEETDECK_WALK_SEED`` change the length and the seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import random
import secrets
import string
import time
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual import events
from textual.command import CommandList, CommandPalette
from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key
from textual.widgets import Input

from core.engine import ThreadedEngine, engine_from_fleet_file
from core.model import AppStatus, FleetSnapshot, SyncStatus
from devcluster import ClusterInfo, audit_events, mutating_events, wait_for_audit_event
from devcluster.api import ApiError
from devcluster.pytest_plugin import make_namespace
from tests.cluster.conftest import app_objects
from tests.cluster.test_cli import run
from tests.engine.conftest import git
from tui.actions import ACTIONS, actions_for
from tui.app import FleetdeckApp, make_app
from tui.screens.error import ErrorModal
from tui.screens.help import HelpScreen

pytestmark = pytest.mark.cluster

ADMIN = "fleetdeck-admin"
STEPS = int(os.environ.get("FLEETDECK_WALK_STEPS", "10000"))
SEED = int(os.environ.get("FLEETDECK_WALK_SEED", "20261207"))
CLI_ROUNDS = int(os.environ.get("FLEETDECK_WALK_CLI_ROUNDS", "2"))
BATCH = 8
"""Keys sent per pilot call (the pilot waits for the screen once per call)."""

MOVES = ("up", "down", "left", "right", "pageup", "pagedown", "home", "end", "tab", "shift+tab")
HIDDEN = ("s", "S", "p", "u", "r", "R", "ctrl+r", "space", "enter", "escape", "d", "D", "h", "y", "n",
          "ctrl+s", "slash", "question_mark", "f1", "colon", "ctrl+p")
"""Keys of every scope, the mutating ones read-only mode leaves unbound included."""
PALETTE_MOVES = ("up", "down", "pageup", "pagedown", "ctrl+home", "ctrl+end", "home", "end", "left", "right")
QUITS = frozenset({"q", "ctrl+q", "ctrl+c"})
PALETTE_KEYS = frozenset({"ctrl+p", "colon"})
PRINTABLE = string.ascii_letters + string.digits + "-_=:./ "
WORDS = ("env=test", "outofsync", "paused", "degraded", "synced", "fd-a", "fd-b", "web", "api", "cache",
         "prod", "healthy", "\u202e", "[bold]x[/]")


def write_app(repo: Path, name: str, objects: list[dict[str, Any]], message: str) -> None:
    """``apps/NAME`` with a kustomization, committed."""
    path = repo / "apps" / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "app.yaml").write_text(yaml.safe_dump_all(objects))
    (path / "kustomization.yaml").write_text(yaml.safe_dump({"resources": ["app.yaml"]}))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def key_event(key: str) -> events.Key:
    """The ``Key`` event ``Pilot.press`` would send for ``key``."""
    if len(key) == 1 and not key.isalnum():
        key = _character_to_key(key)
    char: str | None
    try:
        char = unicodedata.lookup(_get_unicode_name_from_key(REPLACED_KEYS.get(key, key)))
    except KeyError:
        char = key if len(key) == 1 else None
    return events.Key(key, char)


def key_of(char: str) -> str:
    """The Textual key name of a printable character."""
    return "space" if char == " " else char


class Walk:
    """The random walk: chooses and presses keys, counts what it did."""

    def __init__(self, app: FleetdeckApp, pilot: Any, rng: random.Random, rows: list[str]) -> None:
        self.app = app
        self.pilot = pilot
        self.rng = rng
        self.steps = 0
        self.commands = 0
        self.screens: Counter[str] = Counter()
        self.palette: Counter[str] = Counter()
        self.seconds: dict[str, float] = {}
        self.rows = set(rows)
        self.titles = sorted({a.title for a in ACTIONS.values() if a.action != "app.quit"} | self.rows)
        self.queue: list[str] = []
        self.typed: set[str] = set()

    def bound_keys(self) -> list[str]:
        """Every key a binding of the active screen, the focused widget's chain or the app declares."""
        keys: set[str] = set()
        nodes: list[Any] = [self.app, self.app.screen]
        focused = self.app.focused
        if focused is not None:
            nodes.extend(focused.ancestors_with_self)
        for node in nodes:
            keys.update(node._bindings.key_to_bindings)
        return sorted(keys - QUITS)

    async def press(self, *keys: str, each: bool = True) -> None:
        """Press ``keys`` as ``Pilot.press`` does, settling on message queues instead of CPU idleness.

        ``Pilot.press`` waits (up to 1 s, twice per key) for the process's CPU time to stop advancing,
        which never happens while the engine thread reads two clusters on a shared 2-core machine.
        ``each=False`` (text typed into a focused input) settles once, after the last key, as a paste would.
        """
        began = time.monotonic()
        for key in keys:
            await self.app._post_message(key_event(key))
            if each:
                await self.pilot._wait_for_screen()
        await self.pilot._wait_for_screen()
        self.steps += len(keys)
        name = type(self.app.screen).__name__
        self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - began

    async def step(self) -> None:
        """One step: a batch of keys, a run of text into an input, or a palette command."""
        screen = self.app.screen
        self.screens[type(screen).__name__] += 1
        if isinstance(screen, CommandPalette):
            await self.palette_step(screen)
            return
        if isinstance(self.app.focused, Input) and self.rng.random() < 0.5:
            await self.type_text()
            return
        if isinstance(screen, HelpScreen | ErrorModal) and self.rng.random() < 0.1:
            await self.press("q")  # these screens bind q to close; alone in its batch
            return
        pool = [*self.bound_keys(), *MOVES, *HIDDEN]
        batch: list[str] = []
        while len(batch) < BATCH:
            key = self.rng.choice(pool) if self.rng.random() < 0.85 else self.rng.choice(PRINTABLE.replace("q", ""))
            batch.append(key_event(key_of(key)).key)
            if batch[-1] in PALETTE_KEYS:
                break  # what is typed into the palette is chosen by palette_step
        await self.press(*batch)

    async def type_text(self) -> None:
        text = self.rng.choice(WORDS) if self.rng.random() < 0.5 else "".join(
            self.rng.choice(PRINTABLE) for _ in range(self.rng.randint(1, 8)))
        await self.press(*(key_of(c) for c in text), each=False)
        if self.rng.random() < 0.3:
            await self.press(self.rng.choice(("enter", "backspace", "escape", "ctrl+a", "ctrl+k")))

    async def palette_step(self, palette: CommandPalette) -> None:
        """Type a command name (or random text); run it only if it is the highlighted hit, else move
        around the hits and escape."""
        deadline = time.monotonic() + 2.0
        while not (isinstance(self.app.focused, Input) and self.app.focused.screen is palette):
            if time.monotonic() > deadline or self.app.screen is not palette:
                self.palette["not ready"] += 1
                if self.app.screen is palette:
                    await self.press("escape")
                return
            await self.pilot.pause(0.01)
        roll = self.rng.random()
        title = self.next_title() if roll < 0.8 else "".join(
            self.rng.choice(PRINTABLE) for _ in range(self.rng.randint(1, 6)))
        await self.press(*(key_of(c) for c in title), each=False)
        self.commands += 1
        if title in self.offered() and await self.top_hit_is(palette, title):
            await self.press("down")
            if self.highlighted(palette) == title:
                await self.press("enter")
                self.palette[f"ran: {title.split(':')[0]}"] += 1
                return
        self.palette["escaped"] += 1
        if self.rng.random() < 0.3:
            await self.press(*self.rng.choices(PALETTE_MOVES, k=3))
        if self.app.screen is palette:
            await self.press("escape")

    def next_title(self) -> str:
        """Every command title (and row) in turn, each round in a new random order."""
        if not self.queue:
            self.queue = self.rng.sample(self.titles, len(self.titles))
        title = self.queue.pop()
        self.typed.add(title)
        return title

    def offered(self) -> set[str]:
        """The palette titles of the screen below the palette in read-only mode (the rows on the fleet)."""
        below = self.app.screen_stack[-2] if len(self.app.screen_stack) > 1 else self.app.screen
        scope = getattr(below, "SCOPE", "")
        titles = {a.title for a in (*actions_for(scope, read_only=True), *actions_for("global", read_only=True))
                  if a.palette and a.action != "app.quit"}
        return titles | (self.rows if scope == "fleet" else set())

    async def top_hit_is(self, palette: CommandPalette, title: str) -> bool:
        """Wait (briefly) for the search to settle; whether its first hit is ``title``."""
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            found = palette.query(CommandList)
            commands = found.first() if found else None
            if commands is not None and commands.option_count:
                hit = getattr(commands.get_option_at_index(0), "hit", None)
                if getattr(hit, "text", None) == title:
                    return True
            await self.pilot.pause(0.02)
        return False

    def highlighted(self, palette: CommandPalette) -> str | None:
        found = palette.query(CommandList)
        if not found:
            return None
        option = found.first().highlighted_option
        return getattr(getattr(option, "hit", None), "text", None)


async def cli_verbs(tmp: Path, fleet: Path, apps: list[str], sha: str, rounds: int) -> Counter[str]:
    """Every CLI verb in read-only mode, ``rounds`` times; returns exit codes by verb."""
    web, api, _ = apps
    changing = [["sync", web, "--all-clusters", "--yes"], ["sync", api, "-c", "fd-a", "--dry-run"],
                ["sync", api, "-c", "fd-b", "--prune", "--yes"], ["rollback", api, sha, "-c", "fd-a", "--yes"],
                ["rollback", api, "--previous", "-c", "fd-a", "--yes"], ["pause", web, "--all-clusters", "--for", "1h"],
                ["resume", api, "-c", "fd-b"], ["agent", "--once"]]
    looking = [["status", "-o", "json"], ["diff", api], ["history", web], ["events", web], ["audit", "report"]]
    live = tmp / "live.yaml"
    live.write_text(yaml.safe_dump({**app_objects(api)[-1], "status": {"replicas": 2, "readyReplicas": 2}}))
    desired = tmp / "desired.yaml"
    desired.write_text(yaml.safe_dump(app_objects(api, replicas=3)[-1]))
    fleetless = [["audit", "journal"], ["drift", str(desired), str(live)], ["health", str(live)], ["schema"]]
    codes: Counter[str] = Counter()
    for _ in range(rounds):
        for words in changing:
            result = await asyncio.to_thread(run, tmp, "--read-only", "--fleet", str(fleet), *words)
            assert result.returncode == 3, (words, result.stdout + result.stderr)
            assert "refused: read-only mode" in result.stderr, (words, result.stderr)
            codes[f"{words[0]} {result.returncode}"] += 1
        for words in looking:
            result = await asyncio.to_thread(run, tmp, "--read-only", "--fleet", str(fleet), *words)
            assert result.returncode in (0, 1), (words, result.stdout + result.stderr)
            assert "Traceback" not in result.stderr
            codes[f"{words[0]} {result.returncode}"] += 1
        for words in fleetless:
            result = await asyncio.to_thread(run, tmp, "--read-only", *words)
            assert result.returncode in (0, 1), (words, result.stdout + result.stderr)
            assert "Traceback" not in result.stderr
            codes[f"{words[0]} {result.returncode}"] += 1
    return codes


def wait_settled(snapshot: FleetSnapshot | None, apps: list[str]) -> bool:
    """Every target of every app is in the snapshot with a known sync state."""
    if snapshot is None:
        return False
    rows = [s for s in snapshot.apps if s.app in apps]
    return len(rows) == 5 and all(s.sync is not SyncStatus.UNKNOWN for s in rows)


async def test_read_only_random_walk(tmp_path: Path, clusters: list[ClusterInfo],
                                     monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """10,000 random steps over every screen, key and palette command, plus the CLI verbs: zero writes."""
    first, second = clusters
    token = secrets.token_hex(3)
    apps = [f"walk-web-{token}", f"walk-api-{token}", f"walk-cache-{token}"]
    created: list[tuple[ClusterInfo, str]] = []
    for cluster in (first, second):
        for app in apps[:2]:
            created.append((cluster, make_namespace(cluster, app)))
    created.append((first, make_namespace(first, apps[2])))
    try:
        await walk_the_fleet(tmp_path, first, second, apps, monkeypatch, caplog)
    finally:
        for cluster, name in created:
            with contextlib.suppress(ApiError):
                cluster.rest().delete(f"/api/v1/namespaces/{name}")


async def walk_the_fleet(tmp_path: Path, first: ClusterInfo, second: ClusterInfo, apps: list[str],
                         monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    web, api, cache = apps
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for app in apps:
        write_app(repo, app, app_objects(app), f"{app} 1.0")
    fleet = tmp_path / "fleetdeck.yaml"
    fleet.write_text(yaml.safe_dump({
        "repo": {"url": str(repo), "branch": "main", "interval": 3600},
        "clusters": [{"name": c.name, "kubeconfig": str(c.kubeconfig), "context": c.admin_context,
                      "labels": {"env": "test" if c is first else "prod"}} for c in (first, second)],
        "apps": [{"name": web, "path": f"apps/{web}", "namespace": web},
                 {"name": api, "path": f"apps/{api}", "namespace": api},
                 {"name": cache, "path": f"apps/{cache}", "namespace": cache, "clusters": [first.name]}],
    }))
    # The fleet before the walk, made with a writable CLI: web synced, api synced then drifted and paused on b.
    for words in (["sync", web, "--all-clusters", "--yes"], ["sync", api, "--all-clusters", "--yes"],
                  ["sync", cache, "--dry-run"]):
        result = await asyncio.to_thread(run, tmp_path, *words, "--fleet", str(fleet))
        assert result.returncode == 0, result.stdout + result.stderr
    write_app(repo, api, app_objects(api, replicas=3), f"{api}: 3 replicas")
    paused = await asyncio.to_thread(run, tmp_path, "pause", api, "--cluster", second.name, "--reason",
                                     "walk freeze", "--for", "2h", "--fleet", str(fleet))
    assert paused.returncode == 0, paused.stdout + paused.stderr
    history = await asyncio.to_thread(run, tmp_path, "history", api, "--fleet", str(fleet), "-o", "json")
    sha = json.loads(history.stdout)["revisions"][1]["sha"]

    for name, value in (("FLEETDECK_JOURNAL", tmp_path / "journal.jsonl"), ("XDG_CACHE_HOME", tmp_path / "xdg"),
                        ("XDG_STATE_HOME", tmp_path / "state")):
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("FLEETDECK_DIFF", raising=False)
    monkeypatch.delenv("FLEETDECK_READ_ONLY", raising=False)

    caplog.set_level(logging.WARNING)
    since = dt.datetime.now(dt.UTC)
    started = time.monotonic()
    engine = ThreadedEngine(lambda: engine_from_fleet_file(str(fleet), read_only=True), read_only=True)
    console = make_app(engine, read_only=True, cursor_blink=False)
    rng = random.Random(SEED)
    async with console.run_test(size=(120, 36)) as pilot:
        deadline = time.monotonic() + 90
        while not wait_settled(console.snapshot, apps):
            assert time.monotonic() < deadline, f"the fleet never settled: {console.snapshot}"
            await pilot.pause(0.2)
        snapshot = console.snapshot
        assert snapshot is not None
        rows: dict[tuple[str, str], AppStatus] = {(s.app, s.cluster): s for s in snapshot.apps}
        assert rows[(web, first.name)].sync is SyncStatus.SYNCED and rows[(web, second.name)].sync is SyncStatus.SYNCED
        assert rows[(api, first.name)].sync is SyncStatus.OUT_OF_SYNC
        assert rows[(api, second.name)].control.paused and not rows[(api, first.name)].control.paused
        assert rows[(cache, first.name)].sync is SyncStatus.OUT_OF_SYNC
        settled = time.monotonic() - started
        walk = Walk(console, pilot, rng, [f"open: {s.app} on {s.cluster}" for s in snapshot.apps])
        cli = asyncio.create_task(cli_verbs(tmp_path, fleet, apps, sha, rounds=CLI_ROUNDS))
        walk_started = time.monotonic()
        while walk.steps < STEPS:
            await walk.step()
            assert console.is_running, f"the console stopped at step {walk.steps}"
        walk_seconds = time.monotonic() - walk_started
        codes = await cli
        for _ in range(20):  # back to the fleet, out of the filter box, then the one q of the walk
            if len(console.screen_stack) == 1 and not isinstance(console.focused, Input):
                break
            await pilot.press("escape")
        await pilot.press("q")
        for _ in range(100):
            if console.return_code is not None:
                break
            await pilot.pause(0.05)
    assert console.return_code == 0, console.return_code
    assert console._exception is None, console._exception

    marker = since.strftime("walk-marker-%H%M%S")
    writes: dict[str, list[dict[str, Any]]] = {}
    reads: dict[str, int] = {}
    for cluster in (first, second):
        with contextlib.suppress(ApiError):  # not found: the last request, wait for it in the log
            cluster.rest().get(f"/api/v1/namespaces/{web}/configmaps/{marker}")
        await asyncio.to_thread(
            wait_for_audit_event, cluster,
            lambda e: e.get("verb") == "get" and (e.get("objectRef") or {}).get("name") == marker,
            since=since, timeout=20)
        events = audit_events(cluster, since=since)
        writes[cluster.name] = mutating_events(events, user=ADMIN)
        reads[cluster.name] = len([e for e in events if e.get("user", {}).get("username") == ADMIN]) - 1
    journal = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    during = [e for e in journal if e["ts"] >= since.timestamp()]

    print(f"\nread-only walk: seed {SEED}, {walk.steps} steps ({walk.commands} typed into the palette) in {walk_seconds:.1f} s "
          f"= {walk.steps / walk_seconds:.0f} steps/s; console settled in {settled:.1f} s; "
          f"total {time.monotonic() - started:.1f} s")
    print(f"screens: {dict(walk.screens)}")
    print(f"palette: {dict(walk.palette)}; {len(walk.typed)} of {len(walk.titles)} command names typed")
    print(f"seconds by screen after the keys: { {k: round(v, 1) for k, v in walk.seconds.items()} }")
    print(f"CLI: {dict(codes)}")
    for name in reads:
        print(f"{name}: {reads[name]} reads, {len(writes[name])} mutating requests by {ADMIN} (reviews excepted)")
    print(f"journal during the walk: {Counter(e['result'] for e in during)}")
    logged = [f"{r.levelname} {r.name}: {r.getMessage()[:200]}" for r in caplog.records]
    print(f"log records at WARNING or above: {len(logged)}", *logged[:20], sep="\n  ")

    reachable = {"FleetScreen", "AppScreen", "DiffScreen", "HistoryScreen", "HelpScreen", "ConsolePalette"}
    assert reachable <= set(walk.screens), walk.screens
    assert not {"ConfirmSyncModal", "ConfirmModal", "PauseModal"} & set(walk.screens), walk.screens
    if STEPS >= 10_000:
        assert walk.typed == set(walk.titles), set(walk.titles) - walk.typed  # every command name typed
    assert [r for r in logged if not r.startswith("WARNING")] == []  # no error, no logged exception
    for name in reads:
        assert writes[name] == [], [(e.get("verb"), e.get("requestURI")) for e in writes[name]]
        assert reads[name] > 20, name  # the console (and the CLI) did read this cluster
    assert [e for e in during if e["result"] != "refused"] == []
    assert len(during) == sum(n for verb, n in codes.items() if verb.endswith(" 3"))  # one per refused verb
