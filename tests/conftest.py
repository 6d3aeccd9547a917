"""Shared pytest configuration: the real local control plane plugin and deterministic defaults."""

from __future__ import annotations

import os

pytest_plugins = ["devcluster.pytest_plugin"]

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
