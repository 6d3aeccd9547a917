"""Git faults end to end through real Git (rows G1, G3, G6, G7): a commit is pushed to a bare remote,
fetched into fleetdeck's mirror, materialized from ``git archive`` and rendered the way the engine does."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from core.desired.render import render
from core.errors import GitError, RenderError
from core.settings import GitSettings
from tests.core.test_repo import Work, git, mirrored


@pytest.fixture
def work(tmp_path: Path) -> Work:
    """A fresh working repo with its bare remote."""
    return Work(tmp_path)


GOOD = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\n"


def commit_links(work: Work, links: dict[str, str], message: str) -> str:
    """Commit symlinks ``{path: target}`` (stored by Git as links), push, and return the SHA."""
    for name, target in links.items():
        path = work.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    git(work.dir, "add", "-A")
    git(work.dir, "commit", "-q", "-m", message)
    git(work.dir, "push", "-q", "--force", "origin", "HEAD:main")
    return git(work.dir, "rev-parse", "HEAD")


@pytest.mark.parametrize(
    ("link", "target"),
    [
        pytest.param("apps/web/leak.yaml", "/etc/hostname", id="absolute-file"),
        pytest.param("apps/web/leak.yaml", "../../../../../../../etc/hostname", id="relative-file"),
        pytest.param("apps/web/sub", "/etc", id="absolute-directory"),
    ],
)
async def test_committed_symlink_out_of_the_repo_is_refused(work: Work, tmp_path: Path, link: str, target: str) -> None:
    """G7: a symlink committed to Git that points out of the repository is refused when the app renders,
    naming the link; a neighbour app of the same commit renders."""
    work.commit({"apps/web/cm.yaml": GOOD, "apps/other/cm.yaml": GOOD}, "apps")
    sha = commit_links(work, {link: target}, "link out")
    repo = mirrored(work, tmp_path)
    assert (await repo.fetch()).sha == sha
    tree = await repo.materialize(sha)
    assert (tree / link).is_symlink(), "git archive keeps the link; the renderer must refuse it"
    with pytest.raises(RenderError, match=f"{link} is a symlink to .*outside the repository"):
        await render(tree, "apps/web")
    assert [o["metadata"]["name"] for o in (await render(tree, "apps/other")).objects] == ["fine"]


async def test_committed_symlink_inside_the_repo_is_followed(work: Work, tmp_path: Path) -> None:
    """G7: a link to a file elsewhere in the same repository is fine."""
    work.commit({"apps/web/cm.yaml": GOOD, "shared/cm.yaml": GOOD.replace("fine", "shared")}, "apps")
    sha = commit_links(work, {"apps/web/shared.yaml": "../../shared/cm.yaml"}, "link in")
    repo = mirrored(work, tmp_path)
    await repo.fetch()
    result = await render(await repo.materialize(sha), "apps/web")
    assert sorted(o["metadata"]["name"] for o in result.objects) == ["fine", "shared"]


async def test_file_over_the_shipped_cap_fails_its_app_only(work: Work, tmp_path: Path) -> None:
    """G6: an 11 MiB manifest, over the shipped 10 MiB per-app cap, fails that app with a clear error
    naming the limit, quickly; the other app of the same commit renders."""
    cap = GitSettings().max_manifest_bytes
    filler = "x" * 1000
    lines = "".join(f"  k{i}: '{filler}'\n" for i in range(cap // 1000 + 1024))
    sha = work.commit({"apps/big/cm.yaml": GOOD + "data:\n" + lines, "apps/small/cm.yaml": GOOD}, "big")
    repo = mirrored(work, tmp_path)
    await repo.fetch()
    tree = await repo.materialize(sha)
    assert (tree / "apps/big/cm.yaml").stat().st_size > cap
    started = time.perf_counter()
    with pytest.raises(RenderError) as caught:
        await render(tree, "apps/big")
    elapsed = time.perf_counter() - started
    print(f"\nG6: manifest over the {cap}-byte cap refused in {elapsed * 1000:.1f} ms")
    assert "limit" in str(caught.value) and str(cap) in str(caught.value), str(caught.value)
    assert elapsed < 2.0, f"refusing took {elapsed:.2f}s"
    assert [o["metadata"]["name"] for o in (await render(tree, "apps/small")).objects] == ["fine"]


async def test_revision_gone_from_the_remote_is_not_found_and_the_mirror_keeps_it(work: Work, tmp_path: Path) -> None:
    """G3: a commit force-pushed away and garbage-collected on the remote: a fresh mirror says "not found"
    (never an empty tree); the mirror that fetched it before still materializes it (the last good revision)."""
    work.commit({"apps/web/cm.yaml": GOOD}, "one")
    pinned = work.commit({"apps/web/cm.yaml": GOOD.replace("fine", "pinned")}, "two")
    old = mirrored(work, tmp_path)
    await old.fetch()
    git(work.dir, "reset", "-q", "--hard", "HEAD~1")
    work.commit({"apps/web/cm.yaml": GOOD.replace("fine", "rewritten")}, "rewritten")
    git(work.remote, "reflog", "expire", "--expire=now", "--all")
    git(work.remote, "gc", "-q", "--prune=now")
    with pytest.raises(subprocess.CalledProcessError):
        git(work.remote, "cat-file", "-e", pinned)  # gone from the remote
    fresh = mirrored(work, tmp_path / "other")
    await fresh.fetch()
    with pytest.raises(GitError, match="not found"):
        await fresh.resolve(pinned)
    with pytest.raises(GitError, match="not found") as caught:
        await fresh.materialize(pinned)
    assert "force-pushed away or garbage-collected" in caught.value.hint
    await old.fetch()
    assert "force-pushed" in old.status.warning
    tree = await old.materialize(pinned)
    assert [o["metadata"]["name"] for o in (await render(tree, "apps/web")).objects] == ["pinned"]


async def test_remote_gone_after_a_fetch_keeps_the_last_head(work: Work, tmp_path: Path) -> None:
    """G1: the remote disappears after a fetch: the next fetch fails with what failed and a hint, the last
    head stays known and its tree still renders (nothing reads as "desired = empty")."""
    sha = work.commit({"apps/web/cm.yaml": GOOD}, "one")
    repo = mirrored(work, tmp_path)
    await repo.fetch()
    os.rename(work.remote, work.remote.with_name("moved.git"))
    with pytest.raises(GitError) as caught:
        await repo.fetch()
    assert str(caught.value).startswith("failed to fetch") and caught.value.hint
    assert repo.head is not None and repo.head.sha == sha
    assert repo.status.error and repo.status.head is not None and repo.status.head.sha == sha
    tree = await repo.materialize(sha)
    assert [o["metadata"]["name"] for o in (await render(tree, "apps/web")).objects] == ["fine"]


async def test_stalled_remote_fetch_is_killed_at_its_timeout(tmp_path: Path) -> None:
    """G8: an HTTP remote on 127.0.0.1 that accepts the connection and never answers: the fetch is killed
    at ``fetch_timeout`` with a GitError saying so, instead of hanging the refresh loop; two fetches of the
    same repo asked at once run one after the other."""
    import asyncio

    from core.desired.repo import ConfigRepo
    from core.desired.spec import RepoSpec

    accepted: list[asyncio.StreamWriter] = []
    done = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await done.wait()
        writer.close()

    server = await asyncio.start_server(stall, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    repo = ConfigRepo(RepoSpec(url=f"http://127.0.0.1:{port}/config.git"), tmp_path / "cache", fetch_timeout=1.0)
    started = time.perf_counter()
    try:
        with pytest.raises(GitError) as caught:
            await repo.fetch()
        elapsed = time.perf_counter() - started
        began = time.perf_counter()
        both = await asyncio.gather(repo.fetch(), repo.fetch(), return_exceptions=True)
        serial = time.perf_counter() - began
    finally:
        done.set()
        server.close()
        await server.wait_closed()
    assert all(isinstance(e, GitError) for e in both)
    assert serial >= 2.0, f"two fetches of one repo ran at the same time ({serial:.2f}s)"
    assert accepted, "git reached the stalled remote"
    assert "did not complete in 1 secs" in str(caught.value) and "last fetched revision stays" in str(caught.value)
    assert 1.0 <= elapsed < 5.0, f"{elapsed:.2f}s"
    assert repo.head is None and repo.status.error
    print(f"\nG8: stalled fetch killed after {elapsed:.2f}s (fetch_timeout 1 s)")
