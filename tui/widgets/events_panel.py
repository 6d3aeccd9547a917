"""EventsPanel: why an app is unhealthy, from the Kubernetes Events of its objects and their children.

One line per folded event (identical type, reason, message and object counted once): Warnings first
with a warning glyph, then newest first; ``×count``, the age since it was last seen, the object and the
message. A cluster that does not let these credentials list events says so ("events not readable:
forbidden") instead of failing the screen. Reason, object names and message come from the cluster:
every one goes through ``safe``.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from core.model import AppEvents, EventRecord
from tui.formatting import age_since, join_lines, safe
from tui.glyphs import UNICODE, Glyphs

MAX_SHOWN = 20
"""Lines drawn in the panel (the engine keeps up to 50 per app; ``fleetdeck events`` prints them all)."""


def event_line(event: EventRecord, now: float, glyphs: Glyphs) -> Text:
    """``⚠ BackOff  Pod/web/web-1  ×12  3m ago  Back-off restarting failed container``."""
    mark = glyphs.warning if event.warning else " "
    text = Text(f"{mark} ", no_wrap=True, end="", style="bold" if event.warning else "")
    text.append_text(safe(event.reason or "-", "bold" if event.warning else "", max_length=40))
    text.append("  ")
    text.append_text(safe(event.object.short, max_length=80))
    text.append(f"  ×{event.count}  {age_since(event.last_seen, now)}  ")
    text.append_text(safe(event.message, max_length=300))
    return text


def events_heading(found: AppEvents | None) -> Text:
    """``Events  2 warnings · 5 lines``."""
    text = Text("Events", style="bold", end="")
    if found is None:
        return text
    text.append(f"  {found.warnings} warning{'s' if found.warnings != 1 else ''}, "
                f"{len(found.events)} line{'s' if len(found.events) != 1 else ''}")
    if found.omitted:
        text.append(f" ({found.omitted} older left out)")
    return text


class EventsPanel(Static):
    """The app's events panel."""

    def __init__(self, *, glyphs: Glyphs = UNICODE, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self.glyphs = glyphs
        self.found: AppEvents | None = None

    @property
    def worth_showing(self) -> bool:
        """There is something to say: a line, or why the events cannot be read."""
        return self.found is not None and bool(self.found.events or self.found.error)

    def show(self, found: AppEvents | None, now: float) -> None:
        """Render ``found`` (None: not asked yet)."""
        self.found = found
        lines = [events_heading(found)]
        if found is None or (not found.listed and not found.error):
            lines.append(Text("listing events…" if self.glyphs.unicode else "listing events...", end=""))
        if found is not None:
            if found.error:
                text = Text(f"{self.glyphs.warning} ", style="bold", end="")
                text.append_text(safe(found.error, max_length=300))
                lines.append(text)
            elif found.listed and not found.events:
                lines.append(Text("no events for this app's objects", end=""))
            lines.extend(event_line(e, now, self.glyphs) for e in found.events[:MAX_SHOWN])
            if len(found.events) > MAX_SHOWN:
                more = Text(f"  {self.glyphs.fold} {len(found.events) - MAX_SHOWN} more: fleetdeck events ", end="")
                more.append_text(safe(f"{found.app} --cluster {found.cluster}", max_length=120))
                lines.append(more)
        self.update(join_lines(lines))
