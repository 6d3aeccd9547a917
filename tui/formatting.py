"""Turning values into display text: untrusted strings, ages, durations and timestamps.

Every string that comes from a cluster or from Git goes through ``safe`` (``core.sanitize.clean`` and then
a plain ``rich.text.Text``), so it is never parsed as markup and never carries an escape sequence. Ages are
computed from a ``now`` the caller passes in, because the app takes its clock as a parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime

from rich.style import Style
from rich.text import Text

from core.sanitize import clean

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.I)
_UNIT_SECONDS = {"": 60.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def safe(value: object, style: str | Style = "", *, max_length: int = 2_000) -> Text:
    """A ``Text`` holding ``value`` literally, with control and escape sequences removed.

    Args:
        value: any untrusted value (a name, a message, a commit subject).
        style: the style of the whole text.
        max_length: longer values are cut with an ellipsis.
    """
    return Text(clean(value, max_length=max_length), style=style, no_wrap=True, end="")


def safe_block(value: object, style: str | Style = "", *, max_length: int = 20_000) -> Text:
    """Like ``safe`` but keeps newlines, for multi-line messages shown in dialogs."""
    return Text(clean(value, max_length=max_length, keep_newlines=True), style=style, end="")


def short_age(seconds: float) -> str:
    """A compact age: ``now``, ``45s``, ``3m``, ``5h``, ``2d``, ``6w``.

    Args:
        seconds: elapsed seconds; negative values (clock skew) count as zero.
    """
    seconds = max(0.0, seconds)
    if seconds < 5:
        return "now"
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def age_since(timestamp: float | None, now: float) -> str:
    """``3m ago`` for a Unix timestamp, ``-`` when unknown."""
    if timestamp is None:
        return "-"
    age = short_age(now - timestamp)
    return age if age == "now" else f"{age} ago"


def remaining(seconds: float) -> str:
    """Time left, rounded up to the minute and in two units, so a 2 h pause set a moment ago reads ``2h``
    (never ``1h``): ``45s``, ``12m``, ``1h 59m``, ``2h``, ``3d 4h``."""
    if math.ceil(seconds) < 60:
        return f"{max(1, math.ceil(seconds))}s"
    minutes = math.ceil(seconds / 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {mins}m" if mins else f"{hours}h"
    return f"{mins}m"


def age_until(timestamp: float | None, now: float) -> str:
    """``in 2h`` (``in 1h 59m``) for a future Unix timestamp, ``expired`` when past, ``-`` when unknown."""
    if timestamp is None:
        return "-"
    if timestamp <= now:
        return "expired"
    return f"in {remaining(timestamp - now)}"


def parse_rfc3339(value: str | None) -> float | None:
    """A Unix timestamp from an RFC 3339 string (``managedFields`` times), ``None`` if unparsable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def parse_duration(text: str) -> float | None:
    """Seconds from ``90s``, ``30m``, ``2h``, ``1d``, ``1w`` (a bare number means minutes).

    Args:
        text: what the operator typed.

    Returns:
        The duration in seconds; ``None`` for an empty string.

    Raises:
        ValueError: when the text is not a positive duration.
    """
    if not text.strip():
        return None
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {clean(text)!r} (try 30m, 2h, 1d)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if seconds <= 0:
        raise ValueError("the duration must be positive")
    return seconds


def fit(text: Text, width: int, ellipsis: str = "…") -> Text:
    """``text`` cut to ``width`` cells (ending with ``ellipsis`` when cut) and padded to exactly ``width``."""
    result = text.copy()
    if result.cell_len > width:
        result.truncate(max(0, width - len(ellipsis)))
        result.append(ellipsis[:width])
    result.truncate(width, pad=True)
    return result


def join_lines(lines: Iterable[Text]) -> Text:
    """One multi-line ``Text`` from single-line texts (a ``Group`` of ``end=""`` texts would run together)."""
    return Text("\n", end="").join(lines)
