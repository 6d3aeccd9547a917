"""Which revisions changed an app's rendered output: candidate commits from Git, confirmed by rendering.

Role: ``Renderer.history``'s walk. Candidates are the commits touching the app's directory, the bases
its kustomization references and the root ``.fleetdeckignore`` (``git log -- <paths>``); each is rendered
(through the render cache) and kept only when its output digest differs from the next older renderable
candidate's. When an older tree references more directories than the newer ones did, the candidate list
is extended from the last processed commit, so changes to a base used only in the past are found too.

Constraint: reads trees and asks the repo for logs; rendering is a callback, so this module never builds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from core.desired.kustomize import helm_charts, kustomization_file, referenced_dirs
from core.desired.plaindir import IGNORE_FILE, plain_app
from core.desired.repo import ConfigRepo
from core.desired.spec import normalize_repo_path
from core.errors import ConfigError, GitError, ManifestError, RenderError
from core.model import Revision


def watched_paths(tree: Path, path: str, *, allow_remote: bool = False) -> tuple[str, ...]:
    """Repo-relative paths whose changes can change the app's render: its directory, the bases it
    references, the chart homes of their ``helmCharts``, and the root ``.fleetdeckignore``."""
    root = tree.resolve()
    app_dir = root / normalize_repo_path(path)
    dirs: tuple[Path, ...] = ()
    if app_dir.is_dir() and kustomization_file(app_dir):
        dirs = referenced_dirs(root, app_dir, allow_remote=allow_remote)
    elif app_dir.is_dir():
        nested = plain_app(root, app_dir).kustomizations
        dirs = (*nested, *(d for n in nested for d in referenced_dirs(root, n, allow_remote=allow_remote)))
    if app_dir.is_dir():
        charts = helm_charts(root, [app_dir, *dirs])
        dirs = (*dirs, *(charts.homes if charts else ()))
    named = {normalize_repo_path(path), *(d.relative_to(root).as_posix() for d in dirs if d.is_relative_to(root))}
    return (*sorted(named), IGNORE_FILE)


class HistoryWalk:
    """Newest-to-oldest walk over candidate commits, growing the watched paths as older trees need."""

    def __init__(
        self, repo: ConfigRepo, path: str, *, digest: Callable[[str], Awaitable[str | None]], allow_remote: bool,
        also: Iterable[str] = (),
    ) -> None:
        self.repo = repo
        self.path = path
        self.digest = digest  # the app's rendered-output digest at a SHA; None when it does not render
        self.allow_remote = allow_remote
        self.watched: set[str] = set(also)
        """Repo-relative paths watched from the start (``also``: a chart's value files outside its directory)."""

    async def run(self, start: str, *, limit: int, scan_limit: int) -> tuple[Revision, ...]:
        """Up to ``limit`` output-changing revisions reachable from ``start``, newest first."""
        queue, exhausted = await self._queue(start, scan_limit, processed=set())
        changes: list[Revision] = []
        processed: set[str] = set()
        pending: tuple[Revision, str] | None = None
        resume_from = start
        while queue and len(changes) < limit and len(processed) < scan_limit:
            revision = queue[0]
            if await self._grew(revision.sha):
                # The older tree depends on more paths: commits touching them may lie between
                # the last processed candidate and this one, so list candidates again from there.
                queue, exhausted = await self._queue(resume_from, scan_limit - len(processed), processed=processed)
                continue
            queue.pop(0)
            processed.add(revision.sha)
            digest = await self.digest(revision.sha)
            if digest is None:
                continue
            if pending is not None and pending[1] != digest:
                changes.append(pending[0])
            pending, resume_from = (revision, digest), revision.sha
        if pending is not None and not queue and exhausted and len(changes) < limit:
            changes.append(pending[0])
        return tuple(changes)

    async def _queue(self, start: str, remaining: int, *, processed: set[str]) -> tuple[list[Revision], bool]:
        """Unprocessed candidates from ``start``, and whether that reached the start of history."""
        fresh = await self._candidates(start, remaining + 1)
        return [r for r in fresh if r.sha not in processed], len(fresh) <= remaining

    async def _candidates(self, start: str, limit: int) -> tuple[Revision, ...]:
        await self._grew(start)
        return await self.repo.log(sorted(self.watched), limit=limit, ref=start)

    async def _grew(self, sha: str) -> bool:
        """Add the paths the app depends on at ``sha``; whether that added any."""
        try:
            tree = await self.repo.materialize(sha)
            paths = await asyncio.to_thread(watched_paths, tree, self.path, allow_remote=self.allow_remote)
        except (RenderError, ManifestError, ConfigError, GitError, OSError):
            paths = (normalize_repo_path(self.path),)
        before = len(self.watched)
        self.watched.update(paths)
        return len(self.watched) > before
