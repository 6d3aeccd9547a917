"""``tui.terminal_output.ScreenDiff``: what the console writes shows the same cells as Textual's own output.

Every check feeds the same frames to two terminal emulators (``pyte``): one gets Textual's bytes as they are,
the other what ``ScreenDiff`` makes of them, and every cell must match after every write (character,
colours, bold, italic, underline, blink, reverse, strike; a blank's foreground and glyph attributes are not
compared: they do not show). Frames are random (hypothesis) or Textual's real output from a pty
(``tests/tui/test_pty_output.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyte
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from textual import events
from textual.drivers.linux_driver import LinuxDriver
from textual.geometry import Size

from tests.tui.fakes import FakeEngine
from tui.app import make_app
from tui.driver import RAW_OUTPUT_ENV, DiffingDriver
from tui.terminal_output import DEFAULT, ScreenDiff, Style, parse_sgr, sgr_change

WIDTH, HEIGHT = 40, 8

Segment = tuple[str, Style]


def textual_sgr(style: Style) -> str:
    """A style as Textual writes it: every attribute and colour, from the reset state."""
    return ";".join([*(str(a) for a in sorted(style[0])), *(c for c in style[1:] if c)])


def textual_line(x: int, y: int, segments: Sequence[Segment]) -> str:
    """One chop as Textual's ``ChopsUpdate`` writes it: a move, then ``ESC[style m text ESC[0m`` per segment."""
    out = [f"\x1b[{y + 1};{x + 1}H"]
    for text, style in segments:
        sgr = textual_sgr(style)
        out.append(f"\x1b[{sgr}m{text}\x1b[0m" if sgr else text)
    return "".join(out)


def cells(screen: pyte.Screen, known: ScreenDiff) -> list[list[tuple[object, ...]]]:
    """Every cell as it shows: a blank that is not reversed, underlined or struck shows its background only.
    Cells the model does not know are left out: the halves of wide characters a write broke (the terminal
    blanks them, pyte keeps them) and cells never written; the next write there draws them."""
    rows = []
    for y in range(screen.lines):
        row: list[tuple[object, ...]] = []
        for x in range(screen.columns):
            c = screen.buffer[y][x]
            if known.cell(x, y) is None:
                row.append(("?",))
            elif c.data == " " and not (c.reverse or c.underscore or c.strikethrough):
                row.append((" ", c.bg))
            else:
                row.append((c.data, c.fg, c.bg, c.bold, c.italics, c.underscore, c.blink, c.reverse,
                            c.strikethrough))
        rows.append(row)
    return rows


class Pair:
    """Two emulators: Textual's bytes into one, ``ScreenDiff``'s into the other."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        self.raw, self.diffed = pyte.Screen(width, height), pyte.Screen(width, height)
        self._raw, self._diffed = pyte.Stream(self.raw), pyte.Stream(self.diffed)
        self.diff = ScreenDiff(width, height)
        self.bytes_in = self.bytes_out = 0

    def write(self, data: str) -> str:
        out = self.diff.write(data)
        self._raw.feed(data)
        self._diffed.feed(out)
        self.bytes_in += len(data.encode())
        self.bytes_out += len(out.encode())
        assert cells(self.raw, self.diff) == cells(self.diffed, self.diff), (data, out)
        assert (self.raw.cursor.x, self.raw.cursor.y) == (self.diffed.cursor.x, self.diffed.cursor.y) or not (
            data.endswith("H")), (data, out)
        return out


# ------------------------------------------------------------------------------------ SGR changes

ATTRS = st.frozensets(st.sampled_from([1, 2, 3, 4, 5, 7, 8, 9, 21, 53]), max_size=4)
COLOURS = st.one_of(
    st.none(), st.sampled_from(["31", "37", "92"]), st.integers(0, 255).map(lambda n: f"38;5;{n}"),
    st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)).map(
        lambda c: "38;2;{};{};{}".format(*c)),
)
STYLES = st.builds(lambda a, fg, bg: (a, fg, None if bg is None else "4" + bg[1:]), ATTRS, COLOURS, COLOURS)


@given(STYLES, STYLES)
def test_an_sgr_change_leads_from_any_style_to_any_other(old: Style, new: Style) -> None:
    change = sgr_change(old, new)
    after = parse_sgr(change[2:-1], old) if change else old
    assert after == new
    if old == new:
        assert change == ""
    elif new == DEFAULT:
        assert change == "\x1b[0m"
    else:
        assert len(change) <= len(f"\x1b[0;{textual_sgr(new)}m")


def test_sgr_changes_are_short_and_textual_styles_parse() -> None:
    plain: Style = (frozenset(), "38;5;253", "48;5;233")
    warning: Style = (frozenset({1}), "38;5;214", "48;5;233")
    assert sgr_change(plain, warning) == "\x1b[1;38;5;214m"
    assert sgr_change(warning, plain) == "\x1b[22;38;5;253m"
    assert sgr_change(plain, plain) == ""
    assert sgr_change(warning, DEFAULT) == "\x1b[0m"
    # bold off keeps dim: 22 clears both, so dim comes back
    assert parse_sgr(sgr_change((frozenset({1, 2}), None, None), (frozenset({2}), None, None))[2:-1],
                     (frozenset({1, 2}), None, None)) == (frozenset({2}), None, None)
    assert parse_sgr("1;38;5;214;48;5;233", DEFAULT) == warning
    assert parse_sgr("0", warning) == DEFAULT and parse_sgr("", warning) == DEFAULT


# ------------------------------------------------------------------------------------ frames

PYTE_ATTRS = st.frozensets(st.sampled_from([1, 3, 4, 5, 7, 9]), max_size=3)
"""Attributes pyte tracks (it ignores dim, conceal, double underline, overline)."""
PYTE_STYLES = st.builds(lambda a, fg, bg: (a, fg, bg), PYTE_ATTRS,
                        st.sampled_from([None, "31", "38;5;253", "38;5;231", "38;2;10;20;30"]),
                        st.sampled_from([None, "44", "48;5;233", "48;5;17"]))
CHARS = st.sampled_from([*"ab  -✓♥●", "漢", "字"])
"""Narrow ASCII, blanks, narrow symbols the fleet table uses, and wide CJK characters."""


@st.composite
def chops(draw: st.DrawFn) -> str:
    """One or more Textual-like chops: segments from a start cell, never past the right edge."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        y = draw(st.integers(0, HEIGHT - 1))
        x = draw(st.integers(0, WIDTH - 1))
        segments: list[Segment] = []
        room = WIDTH - x
        for _ in range(draw(st.integers(1, 6))):
            text = ""
            for char in draw(st.lists(CHARS, min_size=1, max_size=8)):
                cells_needed = 2 if char in "漢字" else 1
                if cells_needed > room:
                    break
                text += char
                room -= cells_needed
            if not text:
                break
            segments.append((text, draw(PYTE_STYLES)))
        if segments:
            out.append(textual_line(x, y, segments))
    return "".join(out) + f"\x1b[{draw(st.integers(1, HEIGHT))};{draw(st.integers(1, WIDTH))}H"


def full_frame(segments: Sequence[Segment]) -> str:
    """A full repaint as Textual's ``LayoutUpdate`` writes it: every line from column 0, joined by newlines."""
    lines = [textual_line(0, y, segments) for y in range(HEIGHT)]
    return "\n".join(lines)


@settings(max_examples=300, deadline=None)
@given(st.lists(chops(), min_size=1, max_size=12))
def test_random_frames_show_the_same_cells(frames: list[str]) -> None:
    pair = Pair()
    for frame in frames:
        pair.write(frame)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(chops(), st.sampled_from(["\x1b[2J", "\x1b[?2026h", "\x1b[?25l", "\x1b[K", "resize",
                                                    "\x1b[?1049h\x1b[H\x1b[2J"])), min_size=1, max_size=15))
def test_clears_and_other_sequences_pass_through_and_the_model_forgets(writes: list[str]) -> None:
    """A clear (or anything the model cannot follow) goes out as it is, and later frames are written in full
    where they touch cells the model no longer knows."""
    pair = Pair()
    for data in writes:
        if data == "resize":  # the same size again: nothing to forget; another size: forget (and refill)
            pair.diff.resize(WIDTH, HEIGHT)
            continue
        pair.write(data)


def test_a_row_update_writes_only_the_cells_that_changed() -> None:
    plain: Style = (frozenset(), "38;5;253", "48;5;233")
    ok: Style = (frozenset(), "38;5;71", "48;5;233")
    bad: Style = (frozenset({1}), "38;5;214", "48;5;233")
    pair = Pair(width=80)
    before = [("  app-00001 c00  ", plain), ("✓ Synced  ", ok), (" ", plain), ("♥ Healthy ", ok), (" ", plain),
              ("4f9d2c1e", plain)]
    after = [("  app-00001 c00  ", plain), ("⇄ OutOfSync", bad), ("♥ Healthy ", ok), (" ", plain),
             ("4f9d2c1e", plain)]
    first = pair.write(textual_line(0, 2, before) + "\x1b[1;1H")
    again = pair.write(textual_line(0, 2, before) + "\x1b[1;1H")
    assert again == "\x1b[1;1H"  # nothing changed: only the cursor's place
    changed = pair.write(textual_line(0, 2, after) + "\x1b[1;1H")
    assert changed.startswith("\x1b[3;18H\x1b[1;38;5;214;48;5;233m⇄ OutOfSync"), changed
    assert "app-00001" not in changed and "4f9d2c1e" not in changed
    assert len(changed) < len(textual_line(0, 2, after)) / 2 < len(first)


def test_blanks_take_the_current_foreground() -> None:
    """A blank between two words of the same colour needs no escape when the blank's own colour differs."""
    pair = Pair()
    out = pair.write(textual_line(0, 0, [("fd", (frozenset({1}), "38;5;231", "48;5;233")),
                                         ("   ", (frozenset(), "38;5;253", "48;5;233")),
                                         ("2h", (frozenset({1}), "38;5;231", "48;5;233"))]))
    assert out == "\x1b[1;1H\x1b[1;38;5;231;48;5;233mfd   2h\x1b[0m"


def test_a_full_repaint_is_written_in_full_even_when_nothing_changed() -> None:
    """Textual's full repaint (resize, new screen) repairs a terminal something else wrote to."""
    pair = Pair()
    frame = full_frame([("x" * WIDTH, (frozenset(), "31", None))])
    pair.write(frame)
    assert pair.write(frame).count("x") == WIDTH * HEIGHT
    partial = textual_line(0, 0, [("x" * WIDTH, (frozenset(), "31", None))])
    assert "x" not in pair.write(partial)


def test_a_new_size_forgets_the_screen() -> None:
    diff = ScreenDiff(WIDTH, HEIGHT)
    line = textual_line(0, 0, [("abc", DEFAULT)])
    diff.write(line)
    assert "abc" not in diff.write(line)
    diff.resize(WIDTH + 1, HEIGHT)
    assert "abc" in diff.write(line)
    diff.forget()
    assert "abc" in diff.write(line)


def test_what_the_model_cannot_follow_passes_through_unchanged() -> None:
    diff = ScreenDiff(WIDTH, HEIGHT)
    line = textual_line(0, 0, [("abc", DEFAULT)])
    diff.write(line)
    for data in ("\x1b[2J", "\x1b[?1049h", "\x1b[3;1Ha\tb", "\x1b[3;1Ha\u0301", "\x1b[1;39Habcd", "\x1b[58;5;3m",
                 "\x1b]8;;http://x\x1b\\"):
        assert diff.write(data) == data
        assert "abc" in diff.write(line), data  # forgotten: written again in full
        diff.write(line)
    passed = diff.passed_through
    for harmless in ("\x1b[?2026h", "\x1b[?2026l", "\x1b[?25l", "\x1b[?1004h", "\x1b[?2004h", "\x1b]2;title\x07"):
        assert diff.write(harmless) == harmless
        assert "abc" not in diff.write(line), harmless  # the screen is unchanged: still known
    assert diff.passed_through == passed + 6


def test_wide_characters_overwritten_by_halves() -> None:
    """A wide character partly overwritten, by a narrow one or by another wide one a cell over."""
    pair = Pair()
    style: Style = (frozenset(), "31", None)
    pair.write(textual_line(0, 0, [("漢字ab漢", style)]))
    pair.write(textual_line(1, 0, [("x", style)]))  # the right half of 漢: the terminal blanks its left half
    pair.write(textual_line(0, 0, [("a漢字b", style)]))
    pair.write(textual_line(3, 0, [("字", style)]))
    pair.write(textual_line(0, 0, [("漢字ab漢", style)]))


# ------------------------------------------------------------------------------------ the driver


def test_the_console_writes_through_the_screen_model_unless_raw_output_is_asked_for(
        monkeypatch: pytest.MonkeyPatch, engine: FakeEngine) -> None:
    app = make_app(engine)
    assert app.get_driver_class() is DiffingDriver
    monkeypatch.setenv(RAW_OUTPUT_ENV, "1")
    assert app.get_driver_class() is LinuxDriver


class _Writer:
    def __init__(self) -> None:
        self.written: list[str] = []

    def write(self, data: str) -> None:
        self.written.append(data)


async def test_the_driver_writes_what_changed_and_forgets_on_a_new_size_and_a_resize_event(
        monkeypatch: pytest.MonkeyPatch, engine: FakeEngine) -> None:
    app = make_app(engine)
    driver = DiffingDriver(app, mouse=False)
    size = [WIDTH, HEIGHT]
    monkeypatch.setattr(driver, "_get_terminal_size", lambda: tuple(size))
    writer = _Writer()
    driver._writer_thread = writer  # type: ignore[assignment]
    line = textual_line(0, 0, [("abc", (frozenset({1}), "31", None))])
    driver.write(line)
    driver.write(line)
    driver.write("\x1b[?2026h")
    assert writer.written == ["\x1b[1;1H\x1b[1;31mabc\x1b[0m", "\x1b[?2026h"]  # the same line again: nothing
    size[0] += 1
    driver.write(line)
    assert writer.written[-1] == "\x1b[1;1H\x1b[1;31mabc\x1b[0m"  # another size: the screen is forgotten
    driver.write(line)
    app._driver = driver
    app.on_resize(events.Resize(Size(*size), Size(*size)))
    driver.write(line)
    assert len(writer.written) == 4 and writer.written[-1] == "\x1b[1;1H\x1b[1;31mabc\x1b[0m"
    assert driver.bytes_in == 5 * len(line) + len("\x1b[?2026h")
