"""Status glyphs and words: how every state is shown without relying on colour.

Each state is rendered as a glyph *and* a word (``✓ Synced``), so it stays readable with ``NO_COLOR``, on a
16-colour terminal and in a screenshot. When the locale cannot encode UTF-8 the ASCII set is used. This
module only maps closed vocabularies from ``core.model`` to strings; it never sees untrusted text.
"""

from __future__ import annotations

import locale
import os
import sys
from dataclasses import dataclass, field

from core.model import ConnectionState, HealthStatus, ResourceState, SyncAction, SyncStatus


@dataclass(frozen=True, slots=True)
class Glyphs:
    """One glyph set (Unicode or ASCII)."""

    sync: dict[SyncStatus, str] = field(default_factory=dict)
    health: dict[HealthStatus, str] = field(default_factory=dict)
    resource: dict[ResourceState, str] = field(default_factory=dict)
    connection: dict[ConnectionState, str] = field(default_factory=dict)
    action: dict[SyncAction, str] = field(default_factory=dict)
    cursor: str = ">"
    marked: str = "*"
    paused: str = "||"
    pinned: str = "@"
    stale: str = "!"
    approximate: str = "~"
    running: str = "*"
    ellipsis: str = "..."
    fold: str = "..."
    group_mark: str = "-"
    separator: str = "|"
    dot: str = "-"
    arrow: str = "<-"
    forward: str = ">"
    """Between the revision that runs and the one Git wants (``9e8d7c>4f9d2c``)."""
    more: str = ">"
    """After a count of things cut off on the right (``+2>``: two columns hidden for width)."""
    warning: str = "!"
    unicode: bool = False

    def sync_label(self, status: SyncStatus) -> str:
        """``✓ Synced`` style label for an app's sync roll-up."""
        return f"{self.sync[status]} {status.value}"

    def health_label(self, status: HealthStatus) -> str:
        """``♥ Healthy`` style label for a health status."""
        return f"{self.health[status]} {status.value}"

    def resource_label(self, state: ResourceState) -> str:
        """``✗ OutOfSync`` style label for one resource's state."""
        return f"{self.resource[state]} {state.value}"

    def connection_label(self, state: ConnectionState) -> str:
        """``● Connected`` style label for a cluster connection."""
        return f"{self.connection[state]} {state.value}"

    def action_label(self, action: SyncAction) -> str:
        """``+ created`` style label for a sync step or result."""
        return f"{self.action[action]} {action.value}"


UNICODE = Glyphs(
    sync={SyncStatus.SYNCED: "✓", SyncStatus.OUT_OF_SYNC: "✗", SyncStatus.UNKNOWN: "?"},
    health={
        HealthStatus.HEALTHY: "♥",
        HealthStatus.SUSPENDED: "‖",
        HealthStatus.PROGRESSING: "↻",
        HealthStatus.MISSING: "∅",
        HealthStatus.DEGRADED: "✘",
        HealthStatus.UNKNOWN: "?",
    },
    resource={
        ResourceState.SYNCED: "✓",
        ResourceState.OUT_OF_SYNC: "✗",
        ResourceState.MISSING: "+",
        ResourceState.EXTRANEOUS: "−",
        ResourceState.INVALID: "!",
        ResourceState.UNKNOWN: "?",
    },
    connection={
        ConnectionState.CONNECTED: "●",
        ConnectionState.CONNECTING: "○",
        ConnectionState.DEGRADED: "◐",
        ConnectionState.THROTTLED: "◔",
        ConnectionState.UNREACHABLE: "✗",
    },
    action={
        SyncAction.CREATED: "+",
        SyncAction.CONFIGURED: "~",
        SyncAction.UNCHANGED: "=",
        SyncAction.PRUNED: "−",
        SyncAction.PRUNE_SKIPPED: "·",
        SyncAction.SKIPPED: "·",
        SyncAction.FAILED: "✗",
        SyncAction.PENDING: "…",
    },
    cursor="▶",
    marked="●",
    paused="‖",
    pinned="⚑",
    stale="⚠",
    approximate="≈",
    running="↻",
    ellipsis="…",
    fold="⋯",
    group_mark="▾",
    separator="│",
    dot="·",
    arrow="←",
    forward="→",
    more="›",
    warning="⚠",
    unicode=True,
)

ASCII = Glyphs(
    sync={SyncStatus.SYNCED: "+", SyncStatus.OUT_OF_SYNC: "x", SyncStatus.UNKNOWN: "?"},
    health={
        HealthStatus.HEALTHY: "+",
        HealthStatus.SUSPENDED: "=",
        HealthStatus.PROGRESSING: "~",
        HealthStatus.MISSING: "0",
        HealthStatus.DEGRADED: "!",
        HealthStatus.UNKNOWN: "?",
    },
    resource={
        ResourceState.SYNCED: "+",
        ResourceState.OUT_OF_SYNC: "x",
        ResourceState.MISSING: "+",
        ResourceState.EXTRANEOUS: "-",
        ResourceState.INVALID: "!",
        ResourceState.UNKNOWN: "?",
    },
    connection={
        ConnectionState.CONNECTED: "o",
        ConnectionState.CONNECTING: ".",
        ConnectionState.DEGRADED: "~",
        ConnectionState.THROTTLED: "t",
        ConnectionState.UNREACHABLE: "x",
    },
    action={
        SyncAction.CREATED: "+",
        SyncAction.CONFIGURED: "~",
        SyncAction.UNCHANGED: "=",
        SyncAction.PRUNED: "-",
        SyncAction.PRUNE_SKIPPED: ".",
        SyncAction.SKIPPED: ".",
        SyncAction.FAILED: "x",
        SyncAction.PENDING: ".",
    },
)


def locale_is_utf8(environ: dict[str, str] | None = None) -> bool:
    """Whether the terminal's locale can show UTF-8 glyphs.

    ``LC_ALL``, then ``LC_CTYPE``, then ``LANG`` decide (the POSIX order); without any of them the
    interpreter's preferred encoding does.

    Args:
        environ: the environment to read; ``os.environ`` when omitted (injected in tests).
    """
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = env.get(name)
        if value:
            normalized = value.lower().replace("-", "")
            return "utf8" in normalized
    encoding = getattr(sys.stdout, "encoding", None) or locale.getpreferredencoding(False)
    return "utf" in encoding.lower().replace("-", "")


def default_glyphs(*, ascii_only: bool | None = None) -> Glyphs:
    """The Unicode set when the locale allows it, otherwise ASCII.

    Args:
        ascii_only: force a set; ``None`` decides from the locale.
    """
    if ascii_only is None:
        ascii_only = not locale_is_utf8()
    return ASCII if ascii_only else UNICODE
