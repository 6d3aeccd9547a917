"""Create the demo config repo: a real Git repository with a reproducible history.

Role: write the files of each state in ``core.demo.apps.HISTORY`` and commit them with the ``git``
command line, with fixed author and committer names and dates and no user or system configuration,
so the same code always produces the same commit SHAs.

Constraint: blocking (subprocess); call it from a worker thread inside an event loop. Touches only
the directory it is given.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

from core.demo.apps import HISTORY, AppModel, app_files, fleet_text, states
from core.errors import FleetdeckError

FIRST_COMMIT_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
"""When the demo repo's first commit was (nominally) made."""
_AUTHOR_EMAIL_DOMAIN = "example.com"
FLEET_FILE = "fleetdeck.yaml"


class DemoError(FleetdeckError):
    """The demo repo could not be created (``git`` missing or failing)."""


def create_demo_repo(directory: str | os.PathLike[str], *, ending_at: datetime | None = None) -> Path:
    """Create the demo config repo in ``directory`` (created if missing; must be empty).

    Args:
        directory: where the repository goes.
        ending_at: when the last commit is dated (the console's demo uses "now" so ages read
            naturally); by default the history starts at a fixed date, so SHAs are reproducible.

    Returns:
        The repository's path (``fleetdeck.yaml`` is at its root, branch ``main``).

    Raises:
        DemoError: the directory is not empty, or ``git`` is missing or fails.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise DemoError(f"{root} is not empty", hint="pass an empty or new directory for the demo repo")
    _git(root, "init", "--quiet", "--initial-branch=main")
    stream = bytearray()
    for index, (commit, files, when) in enumerate(zip(HISTORY, revision_files(), commit_times(ending_at),
                                                      strict=True)):
        email = f"{commit.author.lower().replace(' ', '.')}@{_AUTHOR_EMAIL_DOMAIN}"
        message = (commit.subject + "\n").encode()
        stream += (f"commit refs/heads/main\nmark :{index + 1}\n"
                   f"author {commit.author} <{email}> {int(when)} +0000\n"
                   f"committer {commit.author} <{email}> {int(when)} +0000\n"
                   f"data {len(message)}\n").encode() + message + b"\n"
        if index:
            stream += f"from :{index}\n".encode()
        stream += b"deleteall\n"
        for path, data in sorted(files.items()):
            stream += f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"
        stream += b"\n"
    _git(root, "fast-import", "--quiet", "--date-format=raw", stdin=bytes(stream))  # every commit in one process
    _git(root, "reset", "--quiet", "--hard")  # the work tree at the head
    return root


@functools.cache
def revision_files() -> tuple[Mapping[str, bytes], ...]:
    """The files of each commit of ``HISTORY`` (repo-relative path → bytes), oldest first."""
    rendered: dict[int, dict[str, str]] = {}
    out: list[Mapping[str, bytes]] = []
    for apps in states():
        files = {FLEET_FILE: fleet_text(apps), **_all_app_files(apps, rendered)}
        out.append(MappingProxyType({path: text.encode("utf-8") for path, text in files.items()}))
    return tuple(out)


def commit_times(ending_at: datetime | None = None) -> list[float]:
    """When each commit of ``HISTORY`` is dated (Unix time, whole seconds), oldest first."""
    first = FIRST_COMMIT_AT if ending_at is None else ending_at - timedelta(hours=HISTORY[-1].hours)
    return [float(int((first + timedelta(hours=commit.hours)).timestamp())) for commit in HISTORY]


def touching(index: int, paths: Sequence[str]) -> list[int]:
    """Indexes of the commits up to ``index`` whose change touches a file under any of ``paths`` (what
    ``git log -- paths`` lists), oldest first; computed from ``revision_files`` without asking git."""
    prefixes = tuple(p.rstrip("/") + "/" for p in paths)
    found: list[int] = []
    before: Mapping[str, bytes] = {}
    for number, files in enumerate(revision_files()[:index + 1]):
        names = {n for n in (*files, *before) if n.startswith(prefixes)}
        if any(files.get(n) != before.get(n) for n in names):
            found.append(number)
        before = files
    return found


def commit_shas(repo: str | os.PathLike[str]) -> list[str]:
    """The SHAs of the branch's commits, oldest first."""
    return _git(Path(repo), "rev-list", "--reverse", "HEAD").split()


def commits_touching(repo: str | os.PathLike[str], paths: Sequence[str], *, until: str = "HEAD") -> list[
        tuple[str, float]]:
    """``(sha, committed_at)`` of the commits up to ``until`` that changed any of ``paths``, oldest first."""
    out = _git(Path(repo), "log", "--reverse", "--format=%H %ct", until, "--", *paths)
    return [(sha, float(ts)) for sha, ts in (line.split() for line in out.splitlines())]


def commit_time(repo: str | os.PathLike[str], sha: str) -> float:
    """When ``sha`` was committed (Unix time)."""
    return float(_git(Path(repo), "log", "-1", "--format=%ct", sha).strip())


def export_tree(repo: str | os.PathLike[str], sha: str, destination: str | os.PathLike[str]) -> Path:
    """Write the files of commit ``sha`` into ``destination`` (``git archive``), for rendering an old revision."""
    target = Path(destination)
    target.mkdir(parents=True, exist_ok=True)
    data = subprocess.run(["git", "archive", "--format=tar", sha], cwd=repo, env=_environment(), check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(target, filter="data")
    return target


def _all_app_files(apps: Mapping[str, AppModel], rendered: dict[int, dict[str, str]]) -> dict[str, str]:
    """The files of every app; ``rendered`` memoizes by model identity (unchanged apps are shared)."""
    files: dict[str, str] = {}
    for app in apps.values():
        if id(app) not in rendered:
            rendered[id(app)] = app_files(app)
        files.update(rendered[id(app)])
    return files


def _environment(author: str = "fleetdeck demo", when: datetime | None = None) -> dict[str, str]:
    """A clean environment: no user or system git config, fixed identity and dates."""
    email = f"{author.lower().replace(' ', '.')}@{_AUTHOR_EMAIL_DOMAIN}"
    stamp = (when or FIRST_COMMIT_AT).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.devnull,
        "LC_ALL": "C",
        "TZ": "UTC",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": author,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_NAME": author,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_COMMITTER_DATE": stamp,
    }


def _git(root: Path, *args: str, author: str = "fleetdeck demo", when: datetime | None = None,
         stdin: bytes = b"") -> str:
    if shutil.which("git") is None:
        raise DemoError("git is not installed", hint="install git to run the demo")
    command = ["git", "-c", "commit.gpgsign=false", "-c", "core.autocrlf=false", *args]
    result = subprocess.run(command, cwd=root, env=_environment(author, when), capture_output=True, input=stdin,
                            check=False)
    stdout, stderr = result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")
    if result.returncode != 0:
        raise DemoError(f"git {' '.join(args)} failed: {stderr.strip() or stdout.strip()}")
    return stdout
