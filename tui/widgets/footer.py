"""KeysFooter: Textual's footer, which says when keys do not fit and how to see them.

Textual's ``Footer`` lays its keys out in one row and silently cuts those that pass the right edge (at
80 columns the fleet screen lost History, Matrix, Group, Help and Quit). This footer measures the keys
first; when they do not all fit it keeps the first ones and ends with ``? N more keys`` (pressing ``?``
or clicking it opens help, which lists every key), left of the palette key ``^p`` that Textual docks on
the right. Without a help binding on the screen it says ``N more keys: ^p palette``.

Only public attributes of Textual's footer keys are read (``key_display``, ``description`` and the
``-command-palette`` class); the "more" item is this module's own widget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Footer

HELP_KEY = "question_mark"
"""The key whose binding opens help (``tui.actions``: ``global.help``)."""
PALETTE_CLASS = "-command-palette"
"""The class Textual gives the palette key it docks on the right of the footer."""


def key_width(key_display: str, description: str) -> int:
    """Cells of a footer key: `` key `` (padding 0 1), then ``description `` (padding 0 1 0 0)."""
    return cell_len(key_display) + 2 + (cell_len(description) + 1 if description else 0)


def palette_width(key_display: str, description: str) -> int:
    """Cells of the docked palette key: its left border, ``key`` then `` description`` (compact, no key
    padding), its right padding (Textual 8's footer CSS; ``tests/tui`` checks it against the layout)."""
    return 1 + cell_len(key_display) + (1 + cell_len(description) if description else 0) + 1


def fit_keys(widths: Sequence[int], room: int, more_width: Callable[[int], int]) -> int:
    """How many of the keys (their ``widths``, in order) to show in ``room`` cells.

    All when they fit; else as many as fit together with the "more" item, whose width for ``n`` hidden
    keys is ``more_width(n)``.
    """
    if sum(widths) <= room:
        return len(widths)
    used = 0
    for count, width in enumerate(widths):
        if used + width + more_width(len(widths) - count - 1) > room:
            return count
        used += width
    return len(widths)


def more_text(hidden: int, has_help: bool) -> tuple[str, str]:
    """Key and description of the "more" item for ``hidden`` keys."""
    return ("?", f"{hidden} more keys") if has_help else ("", f"{hidden} more keys: ^p palette")


def _labels(widget: Widget) -> tuple[str, str] | None:
    """``(key_display, description)`` of a footer key, ``None`` for anything else."""
    key_display, description = getattr(widget, "key_display", None), getattr(widget, "description", None)
    if isinstance(key_display, str) and isinstance(description, str):
        return key_display, description
    return None


class MoreKeys(Widget):
    """``? 5 more keys``, styled as a footer key; a click opens help."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"more-keys--key", "more-keys--description"}
    DEFAULT_CSS = """
    MoreKeys {
        width: auto;
        height: 1;
        text-wrap: nowrap;
        background: $footer-item-background;
        .more-keys--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .more-keys--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
            text-style: bold;
        }
    }
    """

    def __init__(self, key_display: str, description: str) -> None:
        super().__init__()
        self.key_display = key_display
        self.description = description

    def render(self) -> Text:
        """`` ? 5 more keys ``."""
        text = Text(no_wrap=True, end="")
        if self.key_display:
            text.append(f" {self.key_display} ", self.get_component_rich_style("more-keys--key"))
        else:
            text.append(" ")
        text.append(f"{self.description} ", self.get_component_rich_style("more-keys--description"))
        return text

    def on_click(self) -> None:
        """Open help (every key of the screen)."""
        if self.key_display:
            self.app.simulate_key(HELP_KEY)


class KeysFooter(Footer):
    """A footer that never hides keys without saying so."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden_keys: tuple[str, ...] = ()
        """Descriptions of the keys left out at the current width."""
        self._composed_width = -1

    def compose(self) -> ComposeResult:
        """Textual's footer items; when they do not all fit, the first keys, then ``? N more keys``."""
        items = list(super().compose())
        width = self.size.width
        self._composed_width = width
        palette = [w for w in items if w.has_class(PALETTE_CLASS)]
        keys = [w for w in items if w not in palette]
        labels = [_labels(k) for k in keys]
        palette_labels = [_labels(p) for p in palette]
        if width <= 0 or None in labels or None in palette_labels:
            self.hidden_keys = ()
            yield from items
            return
        room = width - sum(palette_width(*p) for p in palette_labels if p is not None)
        has_help = HELP_KEY in self.screen.active_bindings

        def more_width(hidden: int) -> int:
            return key_width(*more_text(hidden, has_help)) if hidden else 0

        shown = fit_keys([key_width(*label) for label in labels if label is not None], room, more_width)
        self.hidden_keys = tuple(label[1] for label in labels[shown:] if label is not None)
        yield from keys[:shown]
        if self.hidden_keys:
            yield MoreKeys(*more_text(len(self.hidden_keys), has_help))
        yield from palette

    def on_resize(self, event: events.Resize) -> None:
        """Another width fits another number of keys."""
        if event.size.width != self._composed_width:
            self.call_after_refresh(self.recompose)
