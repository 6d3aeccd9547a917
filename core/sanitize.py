"""Make strings from clusters and Git safe to show in a terminal.

Object names, annotations, events, commit subjects and error messages are untrusted: they may hold
escape sequences (window title, clipboard, screen clearing), carriage returns or bidi overrides. The
console renders every such string through ``clean`` before it becomes a Rich ``Text``; nothing here
knows about Rich.
"""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?|.)", re.S
)


def clean(text: object, *, max_length: int = 10_000, keep_newlines: bool = False) -> str:
    """Return ``text`` with escape sequences, control characters and bidi overrides removed.

    Args:
        text: any value; it is converted with ``str`` first.
        max_length: longer results are cut and end with ``…``.
        keep_newlines: keep ``\\n`` (and tabs) for multi-line views; otherwise they become spaces.

    Returns:
        A string that holds no byte a terminal would interpret.
    """
    value = str(text)
    value = _ESCAPE_SEQUENCE.sub("", value)
    if keep_newlines:
        value = value.replace("\r\n", "\n")
        value = "\n".join(_CONTROL.sub("", line.replace("\t", "    ")) for line in value.split("\n"))
    else:
        value = _CONTROL.sub("", value.replace("\n", " ").replace("\t", " "))
    if any(unicodedata.category(ch) == "Cs" for ch in value):
        value = value.encode("utf-8", "replace").decode("utf-8", "replace")
    if len(value) > max_length:
        value = value[: max_length - 1] + "…"
    return value


def has_unsafe(text: str) -> bool:
    """Whether ``text`` holds a character a terminal would interpret (controls, C1, bidi overrides)."""
    return _CONTROL.search(text) is not None


def escape_json_text(text: str) -> str:
    """Escape, as ``\\uXXXX``, every control and bidi character left in serialized JSON.

    JSON allows these escapes anywhere a string may hold the character, so the data read back is
    unchanged; only the bytes printed to the terminal are inert. (The serializer already escapes C0
    controls inside strings; C1 controls and bidi overrides it writes raw.)
    """
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
