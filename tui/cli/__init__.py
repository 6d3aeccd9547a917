"""The ``fleetdeck`` command line: the console, the demo, and headless verbs for scripts and CI.

One module per verb group; what they share lives in one place each: ``options`` (the global options, the
exit codes and their mapping from errors), ``wall`` (the read-only wall every changing verb passes first),
``common`` (the one-shot engine and target lookup). Textual is imported only by the verbs that open the
console, so scripted verbs start fast.
"""

from __future__ import annotations

from tui.cli import act, agent, audit, console, events, observe, offline, serve  # noqa: F401  (each registers its verbs)
from tui.cli.root import main

__all__ = ["main"]
