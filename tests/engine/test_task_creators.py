"""``docs/architecture.md`` lists every place that creates a task; the code agrees (an ast walk).

Two lists: the functions that create tasks (``create_guarded_task``, ``create_task``, ``ensure_future``,
``TaskGroup``, ``run_coroutine_threadsafe``), and the functions that start one through the engine's
``spawn`` (``FleetEngine.spawn``, handed to the engine's parts as ``spawn``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
CREATORS = {"create_guarded_task", "create_task", "ensure_future", "TaskGroup", "run_coroutine_threadsafe"}
SPAWNERS = {"spawn", "_spawn"}


def callers(names: set[str]) -> set[str]:
    """Qualified names (module.Class.function) of the functions in core/ and tui/ that call any of ``names``."""
    found: set[str] = set()
    for package in ("core", "tui"):
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            _walk(ast.parse(path.read_text(encoding="utf-8")), [module], names, found)
    return found


def _walk(node: ast.AST, scope: list[str], names: set[str], found: set[str]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            _walk(child, [*scope, child.name], names, found)
            continue
        if isinstance(child, ast.Call):
            func = child.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in names:
                found.add(".".join(scope))
        _walk(child, scope, names, found)


def documented(heading: str) -> set[str]:
    """The qualified names opening each bullet of the list that follows ``heading`` in the doc."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(heading)
    section = text[start:text.index("\n\n", text.index("\n- ", start))]
    return set(re.findall(r"^- `([\w.]+)`", section, flags=re.MULTILINE))


def test_every_task_creator_is_documented_and_every_documented_one_exists() -> None:
    assert callers(CREATORS) == documented("Creators (functions that call")


def test_every_caller_of_spawn_is_documented_and_every_documented_one_exists() -> None:
    assert callers(SPAWNERS) == documented("Callers of `FleetEngine.spawn`")
