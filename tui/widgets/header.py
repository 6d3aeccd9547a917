"""FleetHeader: the fleet's counts, the config repo's head or fetch error, and the read-only banner.

The header only formats what the screen hands it (a snapshot and the time); counts are words and
numbers, never colour alone. Repo URLs, subjects and errors are untrusted and go through ``safe``.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from core.model import Condition, FleetSnapshot, RepoStatus, Severity
from tui.fleet_query import FleetCounts, count_fleet
from tui.formatting import age_since, safe
from tui.glyphs import UNICODE, Glyphs

READ_ONLY_TEXT = "READ-ONLY AUDIT MODE: nothing here can change the fleet"
LAG_SHOWN = 1.0
"""A snapshot published this many seconds or more after the first change it reflects says so in the header
(the engine is starved of CPU): the screen is honest about showing a picture that old."""


def impersonation_text(snapshot: FleetSnapshot) -> str:
    """``AS alice (groups ops): every request to a, b is impersonated``, ``""`` when nobody is."""
    by_identity: dict[str, list[str]] = {}
    for cluster in snapshot.clusters:
        if cluster.impersonating:
            by_identity.setdefault(cluster.impersonating, []).append(cluster.name)
    return "; ".join(f"AS {who}: every request to {', '.join(names)} is impersonated"
                     for who, names in by_identity.items())


def counts_text(counts: FleetCounts, glyphs: Glyphs) -> Text:
    """``212 apps · 14 OutOfSync · 3 Degraded · 1 cluster unreachable``."""
    dot = f" {glyphs.dot} "
    parts: list[tuple[str, str]] = [(f"{counts.apps} apps ({counts.rows} rows)", "")]
    if counts.loading < counts.rows:  # "0 OutOfSync" of a fleet not evaluated yet would be a verdict
        parts.append((f"{counts.out_of_sync} OutOfSync", "-bad" if counts.out_of_sync else ""))
        parts.append((f"{counts.degraded} Degraded", "-bad" if counts.degraded else ""))
    if counts.loading:
        parts.append((f"{counts.loading} loading", ""))
    if counts.unknown:
        parts.append((f"{counts.unknown} Unknown", "-bad"))
    if counts.unreachable:
        noun = "cluster" if counts.unreachable == 1 else "clusters"
        parts.append((f"{counts.unreachable} {noun} unreachable", "-bad"))
    if counts.listing:
        parts.append((counts.listing, ""))
    if counts.paused:
        parts.append((f"{counts.paused} paused", ""))
    if counts.running:
        parts.append((f"{counts.running} running", ""))
    text = Text(no_wrap=True, end="")
    for index, (part, _kind) in enumerate(parts):
        if index:
            text.append(dot)
        if part == counts.listing:  # names from clusters: untrusted
            text.append_text(safe(part, max_length=120))
            continue
        text.append(part, style="bold" if _kind else "")
    return text


def fetch_age(fetched_at: float | None, now: float) -> str:
    """``<1m ago`` within a minute of the last fetch, then ``3m ago``: the repo is polled every minute, and
    seconds (``now``, ``20s ago``) would rewrite the line on every repaint without saying anything more."""
    if fetched_at is not None and now - fetched_at < 60:
        return "<1m ago"
    return age_since(fetched_at, now)


def repo_text(repo: RepoStatus | None, now: float, glyphs: Glyphs,
              conditions: tuple[Condition, ...] = ()) -> Text:
    """``repo main @ a1b2c3d4 "subject" · fetched <1m ago``, the fetch error, and the fleet's own conditions
    (apps that could not be read from the config: ``ConfigError``, ``ImportError``), first one in full."""
    if repo is None:
        return _with_conditions(Text("repo: not loaded yet", no_wrap=True, end=""), conditions, glyphs)
    text = Text("repo ", no_wrap=True, end="")
    text.append_text(safe(repo.branch or "?"))
    if repo.head is not None:
        text.append(" @ ")
        text.append_text(safe(repo.head.short, "bold"))
        if repo.head.subject:
            text.append(" ")
            text.append_text(safe(repo.head.subject, max_length=60))
    text.append(f" {glyphs.dot} fetched {fetch_age(repo.fetched_at, now)}")
    if repo.rendering:
        text.append(f" {glyphs.dot} rendering {repo.rendering} app{'s' if repo.rendering != 1 else ''}", style="bold")
    if repo.error:
        text.append(f"  {glyphs.warning} fetch failed: ", style="bold")
        text.append_text(safe(repo.error, max_length=200))
    if repo.warning:
        text.append(f"  {glyphs.warning} ", style="bold")
        text.append_text(safe(repo.warning, max_length=200))
    return _with_conditions(text, conditions, glyphs)


def _with_conditions(text: Text, conditions: tuple[Condition, ...], glyphs: Glyphs) -> Text:
    if not conditions:
        return text
    first = conditions[0]
    text.append(f"  {glyphs.warning} {first.type}: ", style="bold")
    text.append_text(safe(first.message, max_length=200))
    if len(conditions) > 1:
        text.append(f" (+{len(conditions) - 1} more)")
    return text


def set_line(widget: Static, text: Text) -> None:
    """Show a one-line, unwrapped ``text`` in ``widget``: nothing when unchanged, and a repaint, not a
    relayout, when changed (a ``no_wrap`` line without newlines is one line high whatever it says)."""
    shown = (text.plain, text.spans, text.style, text.no_wrap)
    if getattr(widget, "_shown_line", None) == shown:
        return
    widget._shown_line = shown  # type: ignore[attr-defined]
    widget.update(text, layout="\n" in text.plain or not text.no_wrap)


class FleetHeader(Vertical):
    """Two lines of fleet summary, plus a banner line in read-only mode."""

    def __init__(self, *, glyphs: Glyphs = UNICODE, read_only: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.glyphs = glyphs
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        """The banner (read-only only), the counts line and the repo line."""
        if self.read_only:
            yield Static(Text(READ_ONLY_TEXT, end=""), id="read-only-banner")
        yield Static("", id="as-banner", classes="-none")
        yield Static("fleetdeck: waiting for the first snapshot...", id="fleet-counts")
        yield Static("", id="repo-line")

    def show(self, snapshot: FleetSnapshot | None, now: float, counts: FleetCounts | None = None) -> None:
        """Render the summary of ``snapshot`` as of ``now``; ``counts`` are its counts when known already."""
        if snapshot is None:
            return
        counts = counts if counts is not None else count_fleet(snapshot)
        line = Text("fleetdeck ", style="bold", no_wrap=True, end="")
        line.append_text(counts_text(counts, self.glyphs))
        if snapshot.lag >= LAG_SHOWN:
            line.append(f" {self.glyphs.dot} ")
            line.append(f"updates {snapshot.lag:.1f}s behind", style="bold")
        set_line(self.query_one("#fleet-counts", Static), line)
        banner = self.query_one("#as-banner", Static)
        acting_as = impersonation_text(snapshot)
        set_line(banner, safe(acting_as, max_length=300))
        banner.set_class(not acting_as, "-none")
        repo_line = self.query_one("#repo-line", Static)
        set_line(repo_line, repo_text(snapshot.repo, now, self.glyphs, snapshot.conditions))
        failing = any(c.severity is Severity.ERROR for c in snapshot.conditions)
        repo_line.set_class(bool(snapshot.repo and snapshot.repo.error) or failing, "-error")
        self.set_class(counts.out_of_sync + counts.degraded + counts.unreachable > 0, "-attention")
