"""The import contracts that keep the engine's parts from reaching back into the engine, and the console
on the core's public surface, really bite.

Each case copies the tree to a temporary directory, adds one deliberate back-reference, and runs
import-linter there: the contract named in ``pyproject.toml`` must report it broken. The TYPE_CHECKING
spelling is the one the engine's old cycle used (``Actions`` and ``ClusterRuntime`` held a ``FleetEngine``),
which is why ``exclude_type_checking_imports`` stays off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")

BACK_REFERENCES = {
    "runtime import in actions": ("core/engine/actions.py", "engine-parts", "core.engine.fleet_engine",
                                  "\nfrom core.engine.fleet_engine import FleetEngine  # noqa: E402\n"),
    "TYPE_CHECKING import in clusters": ("core/engine/clusters.py", "engine-parts", "core.engine.fleet_engine",
                                         "\nfrom typing import TYPE_CHECKING  # noqa: E402\n"
                                         "if TYPE_CHECKING:\n    from core.engine.fleet_engine import FleetEngine\n"),
    "agent reaching past core.api": ("core/engine/agent.py", "agent-api", "core.engine.fleet_engine",
                                     "\nfrom core.engine.fleet_engine import FleetEngine  # noqa: E402\n"),
    "command line reaching into the engine": ("tui/cli/agent.py", "tui-public-surface", "core.engine.actions",
                                              "\nfrom core.engine.actions import Actions  # noqa: E402\n"),
    "console importing a core module that is no entry point": (
        "tui/output.py", "tui-public-surface", "core.reconcile.normalize",
        "\nimport core.reconcile.normalize  # noqa: E402\n"),
}
CONTRACTS = sorted({contract for _, contract, _, _ in BACK_REFERENCES.values()})


def lint(tree: Path, contract: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT), "--no-cache", "--contract", contract], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120)


def copy_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    ignore = shutil.ignore_patterns("__pycache__")
    for package in ("core", "tui"):
        shutil.copytree(ROOT / package, tree / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_copied_tree_keeps_the_contracts(tmp_path: Path) -> None:
    """Without a change the copy is kept, so a broken result below is the back-reference's doing."""
    tree = copy_tree(tmp_path)
    for contract in CONTRACTS:
        result = lint(tree, contract)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", sorted(BACK_REFERENCES))
def test_a_back_reference_breaks_its_contract(tmp_path: Path, case: str) -> None:
    """Adding the import makes lint-imports fail and name the importer and the imported module."""
    path, contract, imported, added = BACK_REFERENCES[case]
    tree = copy_tree(tmp_path)
    with (tree / path).open("a") as module:
        module.write(added)
    result = lint(tree, contract)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    importer = path.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {imported}" in result.stdout
