"""Run the console on the fake engine, to look at it as an operator would (tmux, SSH, 80x24).

    uv run python tests/tui/run_fake.py [--read-only] [--ascii] [--mouse] [--slow]

The fleet is the test fixture's; syncs, pauses and resumes publish follow-up snapshots, so a sync's
drift clears the way it does with the real engine. Not used by the test suite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fixtures.snapshots import fleet_snapshot, frozen_clock
from tests.tui.fakes import FakeEngine
from tui.app import make_app


def main() -> None:
    """Parse the flags and run the console until the operator quits."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--read-only", action="store_true")
    parser.add_argument("--ascii", action="store_true", default=None)
    parser.add_argument("--mouse", action="store_true")
    parser.add_argument("--slow", action="store_true", help="0.7 s between sync progress reports")
    args = parser.parse_args()
    engine = FakeEngine([fleet_snapshot(read_only=args.read_only)], read_only=args.read_only, live=True,
                        run_delay=0.7 if args.slow else 0.0)
    app = make_app(engine, read_only=args.read_only, mouse=args.mouse, clock=frozen_clock, ascii_only=args.ascii)
    app.run()


if __name__ == "__main__":
    main()
