"""Row S1, the console part as a random walk: 300 seeded random key presses (navigation, every screen's
keys, the mutating ones, confirmations) in read-only mode never reach a mutating
engine call. (The same property against a real apiserver's audit log, by an enumerated walk, is
``tests/cluster/test_console_e2e.py::test_read_only_walk_sends_no_mutation``.)"""

from __future__ import annotations

import random
import time

from tests.fixtures.snapshots import fleet_snapshot
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle

KEYS = ["up", "down", "pageup", "pagedown", "home", "end", "enter", "enter", "escape", "space", "tab",
        "s", "p", "u", "R", "S", "P", "d", "D", "h", "m", "v", "g", "y", "Y", "n", "left", "right", "x", "a",
        "r", "1", "2", "f5", "ctrl+r"]
"""The filter box and the palette take typed keys as text; they have their own read-only tests."""
MUTATING = {"execute_plan", "pause", "resume", "plan_sync", "plan_rollback"}
STEPS = 300


async def test_random_key_walk_in_read_only_mode_never_mutates(build_app: AppFactory) -> None:
    engine = FakeEngine([fleet_snapshot(read_only=True)], read_only=True)
    app = build_app(engine)
    rng = random.Random(20261207)
    started = time.perf_counter()
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        for step in range(STEPS):
            await pilot.press(rng.choice(KEYS))
            if step % 50 == 49:
                await settle(pilot)
                assert app.is_running, f"the console exited at step {step}"
        await settle(pilot)
        called = {name for name, _ in engine.calls}
    assert called.isdisjoint(MUTATING), called & MUTATING
    assert engine.runs == []
    assert {"preview", "revisions"} <= called, called  # the walk reached the app, diff and history screens
    print(f"\nS1: {STEPS} random keys in {time.perf_counter() - started:.1f}s; engine calls: {sorted(called)}")
