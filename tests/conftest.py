"""Shared pytest configuration: the real local control plane plugin and deterministic defaults."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["devcluster.pytest_plugin"]

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")


@pytest.fixture(autouse=True, scope="session")
def _journal_anchors(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Journals written by tests anchor in the session's tmp dir, not in the user's ~/.cache."""
    os.environ["FLEETDECK_JOURNAL_ANCHORS"] = str(tmp_path_factory.mktemp("journal-anchors"))
