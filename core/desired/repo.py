"""The config repository: fetch, resolve refs to commits, and materialize isolated trees per SHA.

Role: the only code that runs Git. A remote URL is kept as a bare mirror of its branches and tags under
the cache directory (``git fetch --prune``); a local path is read in place, by its refs, never through
its working tree. Every tree fleetdeck renders is extracted from ``git archive <sha>`` into
``<cache>/trees/<repo>/<sha>``, so the operator's checkout is never touched, and HEAD and an old revision
(for a rollback preview) can render at the same time.

Constraint: GitPython blocks, and its docs warn it leaks in long-running processes, so every Git call
runs in ``asyncio.to_thread`` with a ``Repo`` opened for that one operation and closed by ``with``.
Git never prompts (``GIT_TERMINAL_PROMPT=0``, SSH in batch mode) and every command has a timeout. A
deleted branch is an error, never an empty desired state. Credentials in the URL
(``https://user:token@host/...``) never reach the disk: the mirror's config holds the URL without them,
and each fetch hands them to Git through ``GIT_ASKPASS`` (a script that reads them from that one
process's environment). The cache is private (0700), see ``core.files``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from git import Repo
from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from core.desired.spec import RepoSpec
from core.errors import GitError
from core.files import private_dir, write_private
from core.limits import OUT_OF_FILES, out_of_files
from core.model import RepoStatus, Revision

_SHA = re.compile(r"^[0-9a-f]{40}$")
_SAFE_REF = re.compile(r"^(?!-)[^\s~^:?*\[\\\x00-\x1f\x7f]+$")
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_LOG_FORMAT = "%H%x00%ct%x00%an%x00%s"
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
    "GCM_INTERACTIVE": "never",
    "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
}


_ASKPASS_SCRIPT = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$FLEETDECK_GIT_USERNAME" ;;
  *) printf '%s\\n' "$FLEETDECK_GIT_PASSWORD" ;;
esac
"""


def split_credentials(url: str) -> tuple[str, str, str]:
    """``https://user:token@host/p`` → (``https://host/p``, ``user``, ``token``), percent-decoded;
    a URL without userinfo comes back unchanged with empty credentials."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    if "://" not in url:
        return url, "", ""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, "", ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc)), unquote(parts.username or ""), unquote(parts.password or "")


def redact(text: str) -> str:
    """``https://user:token@host`` → ``https://***@host`` everywhere in ``text``."""
    return _USERINFO.sub("***@", text)


DROPPED_SHOWN = 5
"""Commits named when a revision leaves history behind (``Lineage.dropped_commits``)."""


@dataclass(frozen=True, slots=True)
class Lineage:
    """How a revision to deploy (``new``) relates to the one deployed before (``old``)."""

    old: str
    new: str
    descends: bool
    """``new`` is ``old`` or one of its descendants: deploying it only adds history."""
    old_exists: bool = True
    """False when ``old`` is no longer in the repository (force-pushed away, garbage-collected)."""
    added: int = 0
    """Commits reachable from ``new`` but not from ``old`` (when ``old`` exists)."""
    dropped: int = 0
    """Commits reachable from ``old`` but not from ``new``: the history deploying ``new`` leaves behind."""
    error: str = ""
    """Set when the relation could not be computed (then ``descends`` is False: nothing is assumed)."""
    dropped_commits: tuple[Revision, ...] = ()
    """The newest of the ``dropped`` commits (at most ``DROPPED_SHOWN``), newest first."""


@dataclass(frozen=True, slots=True)
class _Paths:
    git_dir: Path
    trees: Path
    state: Path


class ConfigRepo:
    """One config repository, mirrored (remote URL) or read in place (local path).

    Args:
        spec: the repo URL or path and the branch apps follow.
        cache_dir: where mirrors, trees and the last-seen head live (fleetdeck's state dir).
        fetch_timeout: seconds a fetch may take before Git is killed.
        git_timeout: seconds any other Git command may take.
    """

    def __init__(
        self,
        spec: RepoSpec,
        cache_dir: str | os.PathLike[str],
        *,
        fetch_timeout: float = 120.0,
        git_timeout: float = 60.0,
    ) -> None:
        self.spec = spec
        self.key = _repo_key(spec.url)
        cache = Path(cache_dir)
        git_dir = cache / "git" / f"{self.key}.git" if spec.is_remote else Path(spec.url)
        self._cache = cache
        self._paths = _Paths(git_dir, cache / "trees" / self.key, cache / "state" / f"{self.key}.json")
        self._fetch_timeout = fetch_timeout
        self._timeout = git_timeout
        self._fetch_lock = asyncio.Lock()
        self._tree_locks: dict[str, asyncio.Lock] = {}
        self._resolved: dict[str, Revision] = {}
        self._resolve_locks: dict[str, asyncio.Lock] = {}
        self._head: Revision | None = None
        self._status = RepoStatus(url=redact(spec.url), branch=spec.branch)

    # ------------------------------------------------------------------------------------------ state

    @property
    def url(self) -> str:
        """The URL or path, with credentials removed (safe to show)."""
        return redact(self.spec.url)

    @property
    def head(self) -> Revision | None:
        """The branch head as last fetched (kept when a later fetch fails)."""
        return self._head

    @property
    def status(self) -> RepoStatus:
        """What the console shows about the repo: head, last fetch time, error and warning."""
        return self._status

    # ------------------------------------------------------------------------------------------ API

    async def fetch(self) -> Revision:
        """Fetch (remote) or re-read (local) the branch and resolve its head.

        A head that does not descend from the previous one (a force-push) is kept, and
        ``status.warning`` says so. On failure the previous head stays in ``head``; in a new process
        (no previous fetch yet) that is the head the last process fetched, if the local copy still has it
        (a deleted branch or an unreachable remote must not make the last good revision disappear).

        Returns:
            The branch head: full SHA, committer time, author and subject.

        Raises:
            GitError: the repo is unreachable, the fetch timed out, or the branch does not exist.
        """
        async with self._fetch_lock:
            previous = self._head.sha if self._head else self._load_state()
            try:
                head, warning = await asyncio.to_thread(self._fetch_sync, previous)
            except GitError as exc:
                if self._head is None and previous is not None:
                    self._head = await asyncio.to_thread(self._last_known, previous)
                self._status = replace(self._status, head=self._head, error=str(exc), fetched_at=time.time())
                raise
            if warning is None and head.sha == previous:
                warning = self._status.warning
            self._head = head
            self._status = replace(self._status, head=head, fetched_at=time.time(), error="", warning=warning or "")
            self._save_state(head.sha)
            return head

    async def resolve(self, ref: str) -> Revision:
        """The commit ``ref`` (branch, tag, full or short SHA) names.

        Raises:
            GitError: the ref is not found (deleted, force-pushed away, garbage-collected) or invalid.
        """
        if ref in self._resolved:  # a full SHA names the same commit forever
            return self._resolved[ref]
        if not _SHA.match(ref):
            return await asyncio.to_thread(self._with_repo, _resolve, ref)
        # One read per SHA: the engine resolves every target's revision at once (the demo's 20 targets
        # started 40 Git processes for the same commit), so the others wait for the first.
        async with self._resolve_locks.setdefault(ref, asyncio.Lock()):
            if ref in self._resolved:
                return self._resolved[ref]
            revision: Revision = await asyncio.to_thread(self._with_repo, _resolve, ref)
            # Remembered so a commit already read keeps rendering when the repo cannot be opened any more
            # (a local path moved away or unmounted): its tree is materialized, only Git is gone.
            self._resolved[ref] = revision
        self._resolve_locks.pop(ref, None)
        return revision

    async def materialize(self, sha: str) -> Path:
        """An isolated, read-only-by-convention tree of commit ``sha``, reused per SHA.

        Raises:
            GitError: ``sha`` is not a full SHA or is not in the repository.
        """
        if not _SHA.match(sha):
            raise GitError(f"not a full commit SHA: {sha!r}", hint="resolve the ref first")
        target = self._paths.trees / sha
        lock = self._tree_locks.setdefault(sha, asyncio.Lock())
        async with lock:
            if not target.is_dir():
                await asyncio.to_thread(self._with_repo, _extract, sha, target)
            os.utime(target)
        return target

    async def log(
        self, paths: Sequence[str] = (), *, limit: int = 50, ref: str | None = None
    ) -> tuple[Revision, ...]:
        """Commits reachable from ``ref`` (default: the fetched head) touching ``paths``, newest first.

        Raises:
            GitError: the ref is unknown.
        """
        start = ref or (self._head.sha if self._head else f"refs/heads/{self.spec.branch}")
        return await asyncio.to_thread(self._with_repo, _log, start, tuple(paths), limit)

    async def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether ``ancestor`` is ``descendant`` or one of its ancestors.

        Raises:
            GitError: either commit is unknown.
        """
        return await asyncio.to_thread(self._with_repo, _is_ancestor, ancestor, descendant)

    async def lineage(self, old: str, new: str) -> Lineage:
        """Whether ``new`` descends from ``old``, whether ``old`` still exists, and the commits each side has
        that the other lacks (one thread hop, three or four Git commands).

        Raises:
            GitError: ``new`` is unknown, a ref is invalid, or the repository cannot be read.
        """
        return await asyncio.to_thread(self._with_repo, _lineage, old, new)

    async def commits_between(self, old: str, new: str) -> int:
        """Commits reachable from ``new`` but not from ``old`` (how far ``old`` is behind)."""
        return await asyncio.to_thread(self._with_repo, _count_between, old, new)

    async def cleanup(self, *, keep: Iterable[str] = (), max_trees: int = 16) -> int:
        """Delete materialized trees beyond the ``max_trees`` most recently used, never those in ``keep``.

        Returns:
            How many trees were removed.
        """
        return await asyncio.to_thread(_prune_trees, self._paths.trees, set(keep), max_trees)

    # ------------------------------------------------------------------------------------------ threads

    def _open(self) -> Repo:
        try:
            return Repo(self._paths.git_dir)
        except (InvalidGitRepositoryError, NoSuchPathError) as exc:
            if out_of_files(exc) or _out_of_files(self._paths.git_dir):
                raise GitError(f"cannot open {self.url}: the process has too many open files",
                               hint="raise the open-file limit (`ulimit -n`); see the OpenFileLimit warning") from None
            raise GitError(
                f"{self.url} is not a Git repository",
                hint="point repo.url at the top of a Git checkout (run `git init` and commit), or at a Git URL",
            ) from None

    def _with_repo(self, operation: Any, *args: Any) -> Any:
        with self._open() as repo:
            return operation(_Git(repo, self._timeout, self.url), *args)

    def _fetch_sync(self, previous: str | None) -> tuple[Revision, str | None]:
        private_dir(self._cache)
        if self.spec.is_remote:
            bare_url, user, password = split_credentials(self.spec.url)
            _ensure_mirror(self._paths.git_dir, bare_url)
        with self._open() as repo:
            git = _Git(repo, self._timeout, self.url)
            if self.spec.is_remote:
                if repo.git.config("--get", "remote.origin.url") != bare_url:  # written by an older version
                    git.run("config", "remote.origin.url", bare_url, what="configure")
                env = self._askpass_env(user, password) if (user or password) else {}
                git.run("fetch", "--prune", "--force", "origin", what="fetch", timeout=self._fetch_timeout, env=env)
            head = _branch_head(git, self.spec.branch)
            return head, _force_push_warning(git, previous, head, self.spec.branch)

    def _askpass_env(self, user: str, password: str) -> dict[str, str]:
        """The environment of one fetch that answers Git's credential prompts from memory."""
        script = private_dir(self._paths.git_dir.parent) / "askpass.sh"
        if not script.is_file():
            write_private(script, _ASKPASS_SCRIPT.encode())
            script.chmod(0o700)
        return {**_GIT_ENV, "GIT_ASKPASS": str(script), "FLEETDECK_GIT_USERNAME": user,
                "FLEETDECK_GIT_PASSWORD": password, "GIT_CONFIG_PARAMETERS": "'credential.helper='"}

    def _last_known(self, sha: str) -> Revision | None:
        """The head a previous process fetched, if the local copy still has it (the branch may be gone)."""
        try:
            revision: Revision = self._with_repo(_resolve, sha)
        except (GitError, OSError, ValueError):
            return None
        return revision

    def _load_state(self) -> str | None:
        try:
            state = json.loads(self._paths.state.read_text())
        except (OSError, ValueError):
            return None
        return state.get("head") if state.get("branch") == self.spec.branch else None

    def _save_state(self, sha: str) -> None:
        with contextlib.suppress(OSError):  # only force-push detection across restarts depends on it
            write_private(self._paths.state, json.dumps({"branch": self.spec.branch, "head": sha}).encode())


# ---------------------------------------------------------------------------------------------- git calls


class _Git:
    """Runs Git commands on one open Repo with a timeout, no prompts, and errors as GitError."""

    def __init__(self, repo: Repo, timeout: float, url: str) -> None:
        self.repo = repo
        self.timeout = timeout
        self.url = url

    def run(self, *args: str, what: str, timeout: float | None = None, env: dict[str, str] | None = None,
            **kwargs: Any) -> str:
        try:
            output: str = self.repo.git.execute(
                ["git", *args], env=env or _GIT_ENV, kill_after_timeout=timeout or self.timeout, **kwargs
            )
            return output
        except GitCommandError as exc:
            raise _git_error(exc, what, self.url) from None

    def status(self, *args: str) -> int:
        """Run a command whose exit status is the answer; 0 and 1 are answers, anything else fails."""
        try:
            self.repo.git.execute(["git", *args], env=_GIT_ENV, kill_after_timeout=self.timeout)
            return 0
        except GitCommandError as exc:
            if exc.status == 1:
                return 1
            raise _git_error(exc, f"git {args[0]}", self.url) from None


def _git_error(exc: GitCommandError, what: str, url: str) -> GitError:
    stderr = redact(str(exc.stderr or "")).strip().removeprefix("stderr:").strip(" '\n")
    detail = next((line.strip() for line in stderr.splitlines() if line.strip()), f"exit status {exc.status}")
    hint = "check the URL, the network and credentials (fleetdeck never prompts: use an SSH agent or a credential helper)"
    if "timeout" in stderr.lower() or "did not complete" in stderr.lower():
        hint = "the repository is slow or unreachable; the last fetched revision stays in use"
    return GitError(f"failed to {what} {url}: {detail}", hint=hint)


def _ensure_mirror(git_dir: Path, url: str) -> None:
    """A bare repo whose origin mirrors ``url``'s branches and tags (not pull-request refs)."""
    if (git_dir / "HEAD").is_file():
        return
    staging = git_dir.with_name(f"{git_dir.name}.init-{uuid.uuid4().hex[:8]}")
    private_dir(staging.parent)
    with Repo.init(staging, bare=True) as repo:
        writer = repo.config_writer()
        writer.set_value('remote "origin"', "url", url)
        writer.set_value('remote "origin"', "fetch", "+refs/heads/*:refs/heads/*")
        writer.add_value('remote "origin"', "fetch", "+refs/tags/*:refs/tags/*")
        writer.set_value("gc", "auto", "0")
        writer.release()
    try:
        staging.rename(git_dir)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process created it first


def _branch_head(git: _Git, branch: str) -> Revision:
    _check_ref(branch)
    if git.status("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}") != 0:
        known = git.run("for-each-ref", "--count=10", "--format=%(refname:short)", "refs/heads", what="list branches")
        listed = ", ".join(known.split()) or "none"
        raise GitError(
            f"branch {branch!r} not found in {git.url} (branches: {listed})",
            hint="the branch may have been deleted or renamed; fix repo.branch. The last fetched revision stays "
            "in use and nothing is pruned",
        )
    return _revision(git, f"refs/heads/{branch}", ref=branch)


def _force_push_warning(git: _Git, previous: str | None, head: Revision, branch: str) -> str | None:
    if previous is None or previous == head.sha:
        return None
    exists = _has_commit(git, previous)
    if exists and git.status("merge-base", "--is-ancestor", previous, head.sha) == 0:
        return None
    why = "does not descend from" if exists else "replaced the no longer existing"
    return (
        f"branch {branch} was force-pushed: {head.short} {why} the previous head {previous[:8]}; "
        "review the difference before syncing or rolling back"
    )


def _has_commit(git: _Git, rev: str) -> bool:
    return git.status("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}") == 0


def _check_ref(ref: str) -> None:
    if not _SAFE_REF.match(ref) or ".." in ref:
        raise GitError(f"invalid Git ref {ref!r}", hint="use a branch, tag or commit SHA")


def _resolve(git: _Git, ref: str) -> Revision:
    _check_ref(ref)
    if not _has_commit(git, ref):
        raise GitError(
            f"revision {ref!r} not found in {git.url}",
            hint="it may have been deleted, force-pushed away or garbage-collected; the last good revision stays in use",
        )
    return _revision(git, ref, ref=ref)


def _revision(git: _Git, rev: str, *, ref: str) -> Revision:
    out = git.run("log", "-1", "-z", f"--format={_LOG_FORMAT}", rev, "--", what="read commit")
    return _parse_log(out, ref=ref)[0]


def _parse_log(out: str, *, ref: str = "") -> tuple[Revision, ...]:
    fields = out.split("\x00")
    revisions = []
    for i in range(0, len(fields) - 3, 4):
        sha, when, author, subject = (f.strip("\n") for f in fields[i : i + 4])
        revisions.append(Revision(sha=sha, ref=ref, committed_at=float(when), author=author, subject=subject))
    return tuple(revisions)


def _log(git: _Git, start: str, paths: tuple[str, ...], limit: int) -> tuple[Revision, ...]:
    _check_ref(start)
    clean = [posixpath.normpath(p) for p in paths]
    if any(p.startswith(("/", "../")) or p == ".." for p in clean):
        raise GitError(f"log paths must be inside the repository: {paths}")
    out = git.run("log", "-z", f"--format={_LOG_FORMAT}", f"--max-count={limit}", start, "--", *clean,
                  what="read history of")
    return _parse_log(out)


def _is_ancestor(git: _Git, ancestor: str, descendant: str) -> bool:
    for sha in (ancestor, descendant):
        _check_ref(sha)
        if not _has_commit(git, sha):
            raise GitError(f"revision {sha!r} not found in {git.url}")
    return git.status("merge-base", "--is-ancestor", ancestor, descendant) == 0


def _lineage(git: _Git, old: str, new: str) -> Lineage:
    _check_ref(old)
    _check_ref(new)
    if not _has_commit(git, new):
        raise GitError(f"revision {new!r} not found in {git.url}")
    if old == new:
        return Lineage(old, new, descends=True)
    if not _has_commit(git, old):
        return Lineage(old, new, descends=False, old_exists=False)
    descends = git.status("merge-base", "--is-ancestor", old, new) == 0
    if descends:
        return Lineage(old, new, descends=True, added=_count_between(git, old, new))
    out = git.run("log", "-z", f"--format={_LOG_FORMAT}", f"--max-count={DROPPED_SHOWN}", old, f"^{new}", "--",
                  what="read history of")
    return Lineage(old, new, descends=False, added=_count_between(git, old, new),
                   dropped=_count_between(git, new, old), dropped_commits=_parse_log(out))


def _count_between(git: _Git, old: str, new: str) -> int:
    _check_ref(old)
    _check_ref(new)
    return int(git.run("rev-list", "--count", f"{old}..{new}", what="count commits in").strip() or 0)


# ---------------------------------------------------------------------------------------------- trees


def _extract(git: _Git, sha: str, target: Path) -> None:
    if not _has_commit(git, sha):
        raise GitError(
            f"commit {sha[:12]} not found in {git.url}",
            hint="it may have been force-pushed away or garbage-collected; fetch, or pick another revision",
        )
    private_dir(target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f"{sha[:12]}.tmp-", dir=target.parent))
    try:
        with tempfile.TemporaryFile(dir=target.parent) as archive:
            git.run("archive", "--format=tar", sha, what="archive", output_stream=archive)
            archive.seek(0)
            with tarfile.open(fileobj=archive, mode="r:") as tar:
                tar.extractall(staging, filter=_tar_filter)
        staging.rename(target)
    except OSError:
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _tar_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """Git's own tar is trusted for paths; symlinks are kept as links (the renderer refuses escaping ones)."""
    if member.issym():
        return tarfile.tar_filter(member, dest)
    return tarfile.data_filter(member, dest)


def _prune_trees(trees: Path, keep: set[str], max_trees: int) -> int:
    if not trees.is_dir():
        return 0
    for leftover in [*trees.glob("*.tmp-*"), *trees.glob(".flux-build-*")]:  # a crash's leftovers (a Flux build's
        if time.time() - leftover.stat().st_mtime > 3600:  # private tree lives seconds: see core.desired.flux)
            shutil.rmtree(leftover, ignore_errors=True)
    candidates = sorted((p for p in trees.iterdir() if _SHA.match(p.name)), key=lambda p: p.stat().st_mtime,
                        reverse=True)
    removed = 0
    for tree in candidates[max_trees:]:
        if tree.name not in keep:
            shutil.rmtree(tree, ignore_errors=True)
            removed += 1
    return removed


def _repo_key(url: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git"))[:40]
    return f"{slug or 'repo'}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def _out_of_files(path: str | os.PathLike[str]) -> bool:
    """Whether opening ``path`` fails because the process (or the system) is out of file descriptors
    (GitPython reports that as "not a Git repository")."""
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as exc:
        return exc.errno in OUT_OF_FILES
    return False
