"""Row S9: random strings (any code point, controls, C1, bidi, escape sequences spliced in) through the
sanitizer and into the console. Property: what reaches the terminal holds no ESC, no C1 control (CSI is
0x9b), no BEL and no bidi override that came from the data; ``safe`` never raises and never parses markup."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from core.model import AppName, Health, HealthStatus
from core.sanitize import clean, has_unsafe
from tests.fixtures.snapshots import hostile_snapshot
from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle
from tests.tui.screen import terminal_bytes
from tui.formatting import safe, safe_block

SEQUENCES = ["\x1b]52;c;ZXZpbA==\x07", "\x1b[2J", "\x1b]0;title\x1b\\", "\x9b31m", "\x1bP+q\x1b\\", "\r",
             "\u202e", "\u2066", "[link=http://x]", "[/]", "[bold", "\x00", "\x7f", "\ud800"]
HOSTILE_TEXT = st.lists(st.one_of(st.text(max_size=20), st.sampled_from(SEQUENCES)), max_size=12).map("".join)
FORBIDDEN = ["\x1b", "\x07", "\x9b", "\u202e", "\u2066"]


@settings(max_examples=2000, deadline=None)
@given(HOSTILE_TEXT)
def test_clean_and_safe_leave_nothing_a_terminal_interprets(text: str) -> None:
    for cleaned in (clean(text), clean(text, keep_newlines=True), safe(text).plain, safe_block(text).plain):
        assert not has_unsafe(cleaned.replace("\n", "")), repr(cleaned)
        assert not any(ch in cleaned for ch in FORBIDDEN), repr(cleaned)
    console = Console(force_terminal=True, color_system="truecolor", width=120, record=True)
    with console.capture() as capture:
        console.print(safe(text, "bold"))
    out = capture.get()
    assert "\x1b]" not in out and "\x07" not in out and "\x9b" not in out, repr(out)



@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=HOSTILE_TEXT, message=HOSTILE_TEXT)
async def test_console_output_of_random_names_and_messages_is_inert(
    build_app: AppFactory, name: str, message: str
) -> None:
    snap = hostile_snapshot()
    row = replace(snap.apps[0], app=AppName("app" + name), health=Health(HealthStatus.DEGRADED, message))
    app = build_app(FakeEngine([replace(snap, apps=(row,))]))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        raw = terminal_bytes(app)
    data_escapes = [s for s in ("\x1b]", "\x07", "\x9b", "\u202e", "\u2066", "\x1b[2J") if s in raw]
    assert data_escapes == [], data_escapes
