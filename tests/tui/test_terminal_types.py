"""Row R4, the TERM part: ``TERM=dumb``, ``vt100``, ``xterm`` (8 colours), ``xterm-256color`` without
``COLORTERM`` (the SSH default) and ``screen-256color``. Every screen of the walk renders and the states
still read as words, so no status is conveyed by colour alone whatever the terminal can show."""

from __future__ import annotations

import pytest

from tests.tui.conftest import AppFactory
from tests.tui.fakes import FakeEngine
from tests.tui.helpers import settle
from tests.tui.screen import screen_text
from tests.tui.test_environments import walk


@pytest.mark.parametrize("term", ["dumb", "vt100", "xterm", "xterm-256color", "screen-256color"])
async def test_every_terminal_type_renders_states_in_words(engine: FakeEngine, build_app: AppFactory,
                                                           monkeypatch: pytest.MonkeyPatch, term: str) -> None:
    monkeypatch.setenv("TERM", term)
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    app = build_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "OutOfSync" in text and "Degraded" in text, text
        screens = await walk(pilot)
        assert "blocked: cluster edge-ap is unreachable" in screens[-1]
