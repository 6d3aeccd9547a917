"""What the console writes to its terminal: only the cells that changed, with the shortest colour changes.

Textual repaints a widget's region line by line and writes each styled segment as a full SGR sequence and a
reset (``ESC[38;5;253;48;5;233m text ESC[0m``): a fleet row whose sync and health changed rewrites its whole
120-cell line, about 460 bytes, half of them colour escapes. Over a slow SSH link (row R7 of
docs/reliability.md: ≤ 30 kB/s at 100 row updates a second) that is the cost that matters.

``ScreenDiff`` sits between Textual and the terminal (``tui.driver``). It keeps a model of what the terminal
shows (a character and a style per cell) and turns each frame Textual writes into

* the cells that differ from the model only, a cursor move before each run of changed cells (runs closer
  than ``MERGE_GAP`` cells are joined: rewriting a few unchanged cells is cheaper than a move);
* SGR sequences that change only what differs from the previous cell's style (``ESC[1;38;5;214m``, not a
  reset and the whole style again), and none between cells of the same style;
* blanks drawn in whatever foreground is current: a space shows its background only (unless it is
  reversed, underlined, struck or overlined), so a blank between two coloured words needs no escape.

What the terminal shows is the same cell for cell (``tests/tui/test_terminal_output.py`` feeds random and
real frames to a terminal emulator both ways and compares every cell). Nothing is held back or delayed:
each write becomes one write, at once.

Whatever the model cannot follow is passed through unchanged and makes the model forget the screen (every
cell unknown, so the next frames are written in full): any escape sequence other than cursor moves and SGR
in a frame, a control character other than ``\\n`` and ``\\r``, a zero-width character, text past the
right edge, and the alternate screen or a clear. A frame that covers every cell of the screen (Textual's
full repaint: on resize, on a new screen) is written in full too, so a repaint still repairs a terminal
that something else wrote to. The driver also makes it forget on a resize and when the console is
suspended or resumed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rich.cells import get_character_cell_size

Style = tuple[frozenset[int], str | None, str | None]
"""A cell's style: SGR attribute codes (bold 1, dim 2, italic 3, underline 4, …), foreground, background
(each the SGR parameters that set it, ``"38;5;231"``, or ``None`` for the terminal's default)."""
Cell = tuple[str, Style]
"""A cell: its character (``""`` for the right half of a wide character) and style."""

DEFAULT: Style = (frozenset(), None, None)
MERGE_GAP = 4
"""Unchanged cells between two changed runs of one line that are rewritten rather than jumped over."""
SHOWN_ON_BLANKS = frozenset({4, 7, 9, 21, 51, 52, 53})
"""Attributes visible on a blank cell: underline, reverse, strike, double underline, framed, encircled,
overline. The others (bold, dim, italic, blink, conceal) and the foreground change only a glyph."""
_ATTRIBUTES = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 21, 51, 52, 53})
_OFF = {22: (1, 2), 23: (3,), 24: (4, 21), 25: (5, 6), 27: (7,), 28: (8,), 29: (9,), 54: (51, 52), 55: (53,)}
_OFF_CODE = {1: 22, 2: 22, 3: 23, 4: 24, 21: 24, 5: 25, 6: 25, 7: 27, 8: 28, 9: 29, 51: 54, 52: 54, 53: 55}

_TOKEN = re.compile(
    r"\x1b\[([0-9;]*)m([^\x00-\x1f\x7f\x1b]+)\x1b\[0?m"  # a segment as Textual writes it: style, text, reset
    r"|\x1b\[([0-9;]*)([Hm])|\x1b|[\x00-\x1f\x7f]|[^\x00-\x1f\x7f\x1b]+"
)
_HARMLESS = re.compile(
    r"(?:\x1b\[\?(?:25|1000|1002|1003|1004|1006|1015|1016|2004|2026|2048)[hl]"
    r"|\x1b\[\?(?:2026|2048)\$p|\x1b\[>\d*u|\x1b\[<u|\x1b\](?:0|2);[^\x07\x1b]*(?:\x07|\x1b\\))+"
)
"""Writes that leave the screen as it is: cursor visibility, mouse, focus and paste reporting, synchronized
update markers and queries, the keyboard protocol, the window title."""


class Unsupported(Exception):
    """A write the model cannot follow: it is passed through as it is and the model forgets the screen."""


_SGR_CACHE: dict[tuple[str, Style], Style] = {}


def parse_sgr(params: str, style: Style) -> Style:
    """``style`` after ``ESC[params m`` (cached: Textual writes the same few styles over and over, and equal
    styles are then the same object)."""
    key = (params, style)
    cached = _SGR_CACHE.get(key)
    if cached is None:
        if len(_SGR_CACHE) > 4096:
            _SGR_CACHE.clear()
        cached = _SGR_CACHE[key] = _parse_sgr(params, style)
    return cached


def _parse_sgr(params: str, style: Style) -> Style:
    attrs, fg, bg = set(style[0]), style[1], style[2]
    codes = [int(p) if p else 0 for p in params.split(";")]
    index = 0
    while index < len(codes):
        code = codes[index]
        index += 1
        if code == 0:
            attrs, fg, bg = set(), None, None
        elif code in _ATTRIBUTES:
            attrs.add(code)
        elif code in _OFF:
            attrs.difference_update(_OFF[code])
        elif 30 <= code <= 37 or 90 <= code <= 97:
            fg = str(code)
        elif 40 <= code <= 47 or 100 <= code <= 107:
            bg = str(code)
        elif code == 39:
            fg = None
        elif code == 49:
            bg = None
        elif code in (38, 48):
            kind = codes[index] if index < len(codes) else -1
            size = {5: 2, 2: 4}.get(kind)
            if size is None or index + size > len(codes):
                raise Unsupported(f"colour {params!r}")
            value = ";".join(str(c) for c in (code, *codes[index:index + size]))
            index += size
            if code == 38:
                fg = value
            else:
                bg = value
        else:
            raise Unsupported(f"SGR {code}")
    return frozenset(attrs), fg, bg


def _params(style: Style) -> list[str]:
    attrs, fg, bg = style
    return [*(str(a) for a in sorted(attrs)), *((fg,) if fg else ()), *((bg,) if bg else ())]


def sgr_change(old: Style, new: Style) -> str:
    """The shortest SGR sequence that turns ``old`` into ``new`` (``""`` when they are the same)."""
    if old == new:
        return ""
    if new == DEFAULT:
        return "\x1b[0m"
    reset = "\x1b[0;" + ";".join(_params(new)) + "m"
    codes: list[str] = []
    removed = old[0] - new[0]
    off = sorted({_OFF_CODE[a] for a in removed})
    codes += (str(c) for c in off)
    cleared = {a for c in off for a in _OFF[c]}
    codes += (str(a) for a in sorted(new[0] - (old[0] - cleared)))
    if new[1] != old[1]:
        codes.append(new[1] or "39")
    if new[2] != old[2]:
        codes.append(new[2] or "49")
    change = "\x1b[" + ";".join(codes) + "m"
    return change if len(change) < len(reset) else reset


def _on_blank(style: Style) -> bool:
    """Whether a blank in ``style`` shows only its background (so its foreground and glyph attributes are
    free)."""
    return not style[0] & SHOWN_ON_BLANKS


def _seen(cell: Cell | None) -> object:
    """What a cell looks like: a blank's foreground and glyph attributes do not show."""
    if cell is not None and cell[0] == " " and _on_blank(cell[1]):
        return " ", cell[1][2]
    return cell


def _half(cell: Cell | None) -> bool:
    """Whether ``cell`` is the right half of a wide character."""
    return cell is not None and not cell[0]


def _drop_broken_halves(line: list[Cell | None]) -> None:
    """Forget the halves of wide characters whose other half was overwritten: the terminal blanks them, and
    what it shows there is not worth guessing (the next write of those cells draws them)."""
    for x, cell in enumerate(line):
        if cell is None:
            continue
        if not cell[0]:
            left = line[x - 1] if x else None
            if left is None or not left[0] or get_character_cell_size(left[0][0]) != 2:
                line[x] = None
        elif not cell[0].isascii() and get_character_cell_size(cell[0][0]) == 2 and not _half(
                line[x + 1] if x + 1 < len(line) else None):
            line[x] = None


@dataclass
class _Frame:
    """The cells one write puts on each line it touches."""

    lines: dict[int, dict[int, Cell]] = field(default_factory=dict)


class ScreenDiff:
    """The terminal's screen as last written, and the rewriting of each new write against it."""

    def __init__(self, width: int = 0, height: int = 0) -> None:
        self.width, self.height = width, height
        self._cells: list[list[Cell | None]] = []
        self.forget()
        self.passed_through = 0
        """Writes passed through as they were (for tests and ``FLEETDECK_OUTPUT_STATS``)."""

    def forget(self) -> None:
        """Make every cell unknown: the next writes go out in full."""
        self._cells = [[None] * self.width for _ in range(self.height)]

    def cell(self, x: int, y: int) -> Cell | None:
        """What the terminal shows at (x, y) as far as the model knows (``None``: unknown)."""
        return self._cells[y][x]

    def resize(self, width: int, height: int) -> None:
        """The terminal has a new size: forget the screen if it changed."""
        if (width, height) != (self.width, self.height):
            self.width, self.height = width, height
            self.forget()

    # ------------------------------------------------------------------ in

    def write(self, data: str) -> str:
        """What to write to the terminal instead of ``data``."""
        if not data:
            return data
        try:
            frame, cursor = self._parse(data)
        except Unsupported:
            self.passed_through += 1
            if not _HARMLESS.fullmatch(data):
                self.forget()
            return data
        if not frame.lines:
            return data if cursor is None else self._move(cursor)
        return self._render(frame, cursor)

    def _parse(self, data: str) -> tuple[_Frame, tuple[int, int] | None]:
        """The cells ``data`` writes, and where it leaves the cursor (``None``: no move at its end)."""
        frame = _Frame()
        x = y = -1  # unknown until the first move
        style = DEFAULT
        cursor: tuple[int, int] | None = None
        width, height = self.width, self.height
        for match in _TOKEN.finditer(data):
            segment, text, params, final = match.group(1, 2, 3, 4)
            if text is not None:  # a styled segment, then the reset
                token, put, style = text, parse_sgr(segment, style), DEFAULT
            elif final == "H":
                row, _, col = params.partition(";")
                y, x = (int(row) if row else 1) - 1, (int(col) if col else 1) - 1
                if not (0 <= x < width and 0 <= y < height):
                    raise Unsupported("move off the screen")
                cursor = (x, y)
                continue
            elif final == "m":
                style = parse_sgr(params, style)
                continue
            else:
                token, put = match.group(), style
                if token == "\n":
                    if y < 0 or y + 1 >= height:
                        raise Unsupported("newline at the bottom")
                    x, y, cursor = 0, y + 1, None
                    continue
                if token == "\r":
                    if y < 0:
                        raise Unsupported("carriage return before a move")
                    x, cursor = 0, None
                    continue
                if token[0] < " " or token == "\x7f":
                    raise Unsupported(f"control {token!r}")
            if y < 0:
                raise Unsupported("text before a move")
            line = frame.lines.setdefault(y, {})
            if token.isascii():
                if x + len(token) > width:
                    raise Unsupported("text past the right edge")
                line.update(zip(range(x, x + len(token)), [(char, put) for char in token], strict=True))
                x += len(token)
            else:
                for char in token:
                    cells = get_character_cell_size(char)
                    if cells <= 0 or x + cells > width:
                        raise Unsupported("zero-width character or text past the right edge")
                    line[x] = (char, put)
                    if cells == 2:
                        line[x + 1] = ("", put)
                    x += cells
            cursor = None
        return frame, cursor

    # ------------------------------------------------------------------ out

    def _render(self, frame: _Frame, cursor: tuple[int, int] | None) -> str:
        full = len(frame.lines) == self.height and all(len(line) == self.width for line in frame.lines.values())
        out: list[str] = []
        style = DEFAULT
        for y in sorted(frame.lines):
            written = frame.lines[y]
            old = self._cells[y]
            new = list(old)
            for x, put in written.items():
                new[x] = put
            if any(c is not None and not (c[0] and c[0].isascii()) for c in (*written.values(), *old)):
                _drop_broken_halves(new)
            changed = [x for x in sorted(written) if (now := new[x]) is not None and (
                full or (now != old[x] and _seen(old[x]) != _seen(now)))]
            for start, end in self._runs(changed, old, new):
                moved = False
                for x in range(start, end):
                    shown = new[x]
                    if shown is None:  # runs cover known cells only; never write where nothing is known
                        moved = False
                        continue
                    char, cell_style = shown
                    if not char:
                        continue  # the right half of a wide character: written with its left half
                    if not moved:
                        out.append(f"\x1b[{y + 1};{x + 1}H")
                        moved = True
                    if cell_style is not style:
                        if char == " " and not cell_style[0] & SHOWN_ON_BLANKS:
                            if cell_style[2] != style[2] or style[0] & SHOWN_ON_BLANKS:
                                blank = (style[0] - SHOWN_ON_BLANKS, style[1], cell_style[2])
                                out.append(sgr_change(style, blank))
                                style = blank
                        else:
                            out.append(sgr_change(style, cell_style))
                            style = cell_style
                    out.append(char)
            self._cells[y] = new
        out.append(sgr_change(style, DEFAULT))
        if cursor is not None:
            out.append(self._move(cursor))
        return "".join(out)

    def _runs(self, changed: list[int], old: list[Cell | None], new: list[Cell | None]) -> list[tuple[int, int]]:
        """Runs ``[start, end)`` covering ``changed`` (known cells), joined across gaps of at most
        ``MERGE_GAP`` known cells and widened to whole wide characters: a wide character's other half, and
        the cell next to a changed cell that held the other half of an old wide character (writing over
        one half of a wide character blanks the other in the terminal)."""
        runs: list[list[int]] = []
        for x in changed:
            if runs and (x == runs[-1][1] or (x - runs[-1][1] <= MERGE_GAP and all(
                    new[g] is not None for g in range(runs[-1][1], x)))):
                runs[-1][1] = x + 1
            else:
                runs.append([x, x + 1])
        result: list[tuple[int, int]] = []
        for start, end in runs:
            while start > 0 and new[start - 1] is not None and (_half(new[start]) or _half(old[start])):
                start -= 1
            while end < self.width and new[end] is not None and (_half(new[end]) or _half(old[end])):
                end += 1
            if result and start <= result[-1][1]:
                result[-1] = (result[-1][0], max(end, result[-1][1]))
            else:
                result.append((start, end))
        return result

    @staticmethod
    def _move(cursor: tuple[int, int]) -> str:
        return f"\x1b[{cursor[1] + 1};{cursor[0] + 1}H"
