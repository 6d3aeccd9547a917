"""Plain manifest directories: which files make up an app that has no kustomization.

Role: as Flux does for a directory without a kustomization, every ``*.yaml``, ``*.yml`` and ``*.json``
under it (recursively, sorted) is a manifest, except what ``.fleetdeckignore`` files exclude (gitignore
syntax: ``#`` comments, ``!`` negation, trailing ``/`` for directories, ``/`` anchoring, ``*``, ``?``,
``**``), hidden files and directories, and subdirectories that are kustomizations of their own (they are
built with kustomize). Also refuses symlinks that leave the repository tree.

Constraint: reads directory listings and link targets only; file contents are read by the caller.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.desired.kustomize import kustomization_file
from core.errors import RenderError

IGNORE_FILE = ".fleetdeckignore"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class _Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool
    base: str
    """Directory of the ignore file, relative to the tree root ("" for the root)."""


@dataclass(frozen=True, slots=True)
class PlainApp:
    """The parts of a plain directory app."""

    files: tuple[Path, ...] = ()
    kustomizations: tuple[Path, ...] = ()
    """Subdirectories with their own kustomization, built with kustomize."""


@dataclass(slots=True)
class IgnoreRules:
    """gitignore-style rules gathered from ``.fleetdeckignore`` files; the last matching rule wins."""

    rules: list[_Rule] = field(default_factory=list)

    def add_file(self, file: Path, *, base: str) -> None:
        """Add the rules of ``file``, whose patterns are relative to ``base`` (repo-relative)."""
        try:
            lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return
        self.rules.extend(rule for line in lines if (rule := _parse_rule(line, base)) is not None)

    def ignored(self, path: str, *, is_dir: bool) -> bool:
        """Whether the repo-relative ``path`` is excluded."""
        verdict = False
        for rule in self.rules:
            if rule.dir_only and not is_dir:
                continue
            relative = path[len(rule.base) + 1 :] if rule.base else path
            if (not rule.base or path.startswith(rule.base + "/")) and rule.regex.fullmatch(relative):
                verdict = not rule.negate
        return verdict


def _parse_rule(line: str, base: str) -> _Rule | None:
    line = line.rstrip()
    if not line or line.startswith("#"):
        return None
    negate = line.startswith("!")
    pattern = line[1:] if negate else line.removeprefix("\\")
    dir_only = pattern.endswith("/")
    pattern = pattern.rstrip("/")
    if not pattern:
        return None
    anchored = "/" in pattern
    regex = _glob_regex(pattern.lstrip("/"))
    if not anchored:
        regex = f"(?:.*/)?{regex}"
    return _Rule(re.compile(regex), negate, dir_only, base)


def _glob_regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            out.append(_glob_char(pattern, i))
            i += len(_glob_token(pattern, i))
    return "".join(out)


def _glob_token(pattern: str, i: int) -> str:
    if pattern[i] == "[":
        end = pattern.find("]", i + 1)
        if end > i:
            return pattern[i : end + 1]
    return pattern[i]


def _glob_char(pattern: str, i: int) -> str:
    token = _glob_token(pattern, i)
    if token == "*":
        return "[^/]*"
    if token == "?":
        return "[^/]"
    if len(token) > 1:
        body = token[1:-1]
        negated = body.startswith(("!", "^"))
        inner = (body[1:] if negated else body).replace("\\", "\\\\").replace("[", "\\[")
        return f"[{'^' if negated else ''}{inner}]"
    return re.escape(token)


def check_symlinks(root: Path, directories: Sequence[Path]) -> None:
    """Refuse any symlink under ``directories`` (or a directory itself) resolving outside ``root``.

    Raises:
        RenderError: naming the link and its target.
    """
    real_root = root.resolve()
    for directory in directories:
        _check_link(real_root, root, directory)
        for current, subdirs, files in os.walk(directory):
            for name in [*subdirs, *files]:
                path = Path(current, name)
                if path.is_symlink():
                    _check_link(real_root, root, path)


def _check_link(real_root: Path, root: Path, path: Path) -> None:
    target = path.resolve()
    if target != real_root and real_root not in target.parents:
        shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        raise RenderError(f"{shown} is a symlink to {os.readlink(path) if path.is_symlink() else target} "
                          "outside the repository; refused",
                          hint="replace the link with the file itself")


def plain_app(root: Path, app_dir: Path) -> PlainApp:
    """The manifest files and nested kustomizations of a plain directory app, sorted."""
    rules = IgnoreRules()
    rules.add_file(root / IGNORE_FILE, base="")
    files: list[Path] = []
    nested: list[Path] = []
    for path, is_dir in _walk(root, app_dir, rules):
        if is_dir:
            nested.append(path)
        else:
            files.append(path)
    return PlainApp(tuple(files), tuple(nested))


def _walk(root: Path, directory: Path, rules: IgnoreRules) -> Iterator[tuple[Path, bool]]:
    base = directory.relative_to(root).as_posix()
    base = "" if base == "." else base
    if directory != root:
        rules.add_file(directory / IGNORE_FILE, base=base)
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        relative = f"{base}/{entry.name}" if base else entry.name
        if entry.name.startswith(".") or rules.ignored(relative, is_dir=entry.is_dir()):
            continue
        if entry.is_dir():
            yield from ([(entry, True)] if kustomization_file(entry) else _walk(root, entry, rules))
        elif entry.suffix in MANIFEST_SUFFIXES and entry.is_file():
            yield entry, False
