"""The demo's render store: kustomize outputs of the demo repo kept on disk by content, across runs.

Role: ``fleetdeck demo`` creates a new repo each run (its commits are dated relative to now, so the SHAs
change), but the files of each revision are generated from ``core.demo.apps`` and are the same from run
to run. ``DemoRenderStore`` keys a render by what it reads: the kustomize binary (path, size, mtime), the
size cap, the app path, and every file under the app's directory ``apps/<app>/`` (the demo's overlays
reference only their own directory and ``../../base``). The seeding renders and the engine's renders
share it, so a cold run builds each distinct content once and a later run builds nothing.

Constraint: for the demo's generated repo only (a real repo's kustomizations may read files anywhere).
A kustomize failure is stored as its message (the tree's path marked, ``core.desired.render.TREE_MARK``) and
hint: the demo's broken ``ledger`` overlay fails the same way every run. Entries are small JSON files written
atomically; an unreadable or foreign entry is a miss.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from core.errors import RenderError

if TYPE_CHECKING:
    from core.desired.render import RenderResult

FORMAT = b"fleetdeck-demo-render/1"


def _app_root(path: str) -> str | None:
    """``apps/<app>`` of an app path of the demo repo, or None for any other path."""
    parts = path.strip("/").split("/")
    if len(parts) < 2 or parts[0] != "apps" or any(p in ("", ".", "..") for p in parts):
        return None
    return f"apps/{parts[1]}"


class DemoRenderStore:
    """``core.desired.render.RenderStore`` over a directory (``$XDG_CACHE_HOME/fleetdeck/demo-renders``)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.hits = 0
        self.misses = 0

    def key(self, tree: Path, path: str, command: tuple[str, ...], max_bytes: int) -> str | None:
        """sha256 of the binary's identity, the cap, the path and every file of ``apps/<app>/`` in ``tree``."""
        app = _app_root(path)
        if app is None:
            return None
        try:
            files = {}
            for file in (tree / app).rglob("*"):
                if file.is_symlink():
                    return None
                if not file.is_dir():
                    files[file.relative_to(tree).as_posix()] = file.read_bytes()
        except OSError:
            return None
        return self.key_of_files(files, path, command, max_bytes)

    def key_of_files(self, files: Mapping[str, bytes], path: str, command: tuple[str, ...],
                     max_bytes: int) -> str | None:
        """The same key from a revision's files held in memory (repo-relative path → bytes), so the demo can
        look a render up without writing the revision out."""
        app = _app_root(path)
        if app is None:
            return None
        try:
            binary = os.stat(command[0])
        except (OSError, IndexError):
            return None
        digest = hashlib.sha256(FORMAT + b"\0")
        digest.update(f"{command!r}\0{binary.st_size}\0{binary.st_mtime_ns}\0{max_bytes}\0{path}\0".encode())
        names = sorted(name for name in files if name.startswith(app + "/"))
        for name in names:
            digest.update(name.encode() + b"\0" + files[name] + b"\0")
        return digest.hexdigest() if names else None

    def get(self, key: str) -> RenderResult | RenderError | None:
        """The stored render or failure, or None (missing, unreadable or not this format)."""
        from core.desired.render import RenderResult

        try:
            data: dict[str, Any] = orjson.loads((self.directory / f"{key}.json").read_bytes())
            if "error" in data:
                self.hits += 1
                return RenderError(str(data["error"]), hint=str(data["hint"]))
            result = RenderResult(tuple(data["objects"]), tuple(data["warnings"]), str(data["digest"]))
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
            self.misses += 1
            return None
        self.hits += 1
        return result

    def put(self, key: str, result: RenderResult | RenderError) -> None:
        """Write the entry atomically; a directory that cannot be written just keeps nothing."""
        if isinstance(result, RenderError):
            data = orjson.dumps({"error": result.message, "hint": result.hint})
        else:
            data = orjson.dumps({"objects": list(result.objects), "warnings": list(result.warnings),
                                 "digest": result.digest})
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".entry-")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, self.directory / f"{key}.json")
        except OSError:
            return
