"""Fixtures for the console's tests: the fake engine, a frozen clock, and the snapshot-directory shim.

pytest-textual-snapshot 1.1.0 compares through syrupy: ``snap_compare`` takes the ``snapshot`` fixture
and calls ``snapshot.use_extension(SVGImageExtension)``, whose ``dirname`` is
``<test dir>/__snapshots__/<module>``. The shim below overrides ``snapshot`` with an assertion whose
``use_extension`` wraps any extension class in a subclass rooted at the repository's top-level
``snapshots/<test module>/``, so SVGs live where reviewers look for them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.base import AbstractSyrupyExtension
from syrupy.location import PyTestLocation

from tests.fixtures.snapshots import fleet_snapshot, frozen_clock
from tests.tui.fakes import FakeEngine
from tui.app import FleetdeckApp, make_app

SNAPSHOT_ROOT = Path(__file__).resolve().parents[2] / "snapshots"
"""``<repo>/snapshots``: one sub-directory per test module."""

_rooted: dict[type[AbstractSyrupyExtension], type[AbstractSyrupyExtension]] = {}


def rooted_extension(extension: type[AbstractSyrupyExtension]) -> type[AbstractSyrupyExtension]:
    """``extension`` storing its files under ``snapshots/<test module>/`` (one class per extension)."""
    if extension not in _rooted:

        class Rooted(extension):  # type: ignore[valid-type, misc]
            @classmethod
            def dirname(cls, *, test_location: PyTestLocation) -> str:
                return str(SNAPSHOT_ROOT / test_location.basename)

        Rooted.__name__ = Rooted.__qualname__ = f"Rooted{extension.__name__}"
        _rooted[extension] = Rooted
    return _rooted[extension]


class RootedSnapshotAssertion(SnapshotAssertion):
    """A syrupy assertion whose extensions all write under ``SNAPSHOT_ROOT``."""

    def use_extension(self, extension_class: type[AbstractSyrupyExtension] | None = None) -> SnapshotAssertion:
        """Same as syrupy's, with the extension re-rooted."""
        return super().use_extension(rooted_extension(extension_class or self.extension_class))


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """syrupy's ``snapshot``, re-rooted (``snap_compare`` depends on this fixture by name)."""
    return RootedSnapshotAssertion(
        update_snapshots=snapshot.update_snapshots,
        extension_class=rooted_extension(snapshot.extension_class),
        test_location=snapshot.test_location,
        session=snapshot.session,
    )


@pytest.fixture(autouse=True)
def _deterministic_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fixed locale and colour environment, so glyphs and colours do not depend on the host."""
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_CTYPE", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FLEETDECK_DIFF", raising=False)
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    os.environ.pop("TEXTUAL_COLOR_SYSTEM", None)


@pytest.fixture
def engine() -> FakeEngine:
    """A fake engine streaming the standard fleet once."""
    return FakeEngine([fleet_snapshot()])


AppFactory = Callable[..., FleetdeckApp]


@pytest.fixture
def build_app() -> AppFactory:
    """``make_app`` with the test defaults (frozen clock, no blink, Unicode glyphs)."""

    def build(engine: Any, **kwargs: Any) -> FleetdeckApp:
        kwargs.setdefault("clock", frozen_clock)
        kwargs.setdefault("cursor_blink", False)
        kwargs.setdefault("ascii_only", False)
        return make_app(engine, **kwargs)

    return build
