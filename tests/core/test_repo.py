"""ConfigRepo against real Git repositories: mirrors, force-pushes, deleted branches, trees per SHA, log."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from core.desired.repo import ConfigRepo, redact
from core.desired.spec import RepoSpec
from core.errors import GitError

BASE_TIME = 1_700_000_000


def git(cwd: Path, *args: str, when: int = BASE_TIME) -> str:
    """Run git with an isolated configuration and a fixed clock."""
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
        "GIT_AUTHOR_DATE": f"@{when} +0000",
        "GIT_COMMITTER_DATE": f"@{when} +0000",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip()


class Work:
    """A working repository pushing to a bare ``file://`` remote."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "work"
        self.remote = root / "remote.git"
        self.dir.mkdir()
        git(self.dir, "init", "-q", "-b", "main")
        git(root, "init", "-q", "--bare", "-b", "main", str(self.remote))
        git(self.dir, "remote", "add", "origin", str(self.remote))
        self.clock = BASE_TIME

    @property
    def url(self) -> str:
        return self.remote.as_uri()

    def commit(self, files: dict[str, str], message: str, *, push: bool = True) -> str:
        """Write ``files``, commit them, push, and return the SHA."""
        for name, text in files.items():
            (self.dir / name).parent.mkdir(parents=True, exist_ok=True)
            (self.dir / name).write_text(text)
        self.clock += 60
        git(self.dir, "add", "-A")
        git(self.dir, "commit", "-q", "-m", message, when=self.clock)
        if push:
            git(self.dir, "push", "-q", "--force", "origin", "HEAD:main")
        return git(self.dir, "rev-parse", "HEAD")


@pytest.fixture
def work(tmp_path: Path) -> Work:
    """A fresh working repo with its bare remote."""
    return Work(tmp_path)


def mirrored(work: Work, tmp_path: Path, *, branch: str = "main") -> ConfigRepo:
    """A ConfigRepo mirroring the remote into ``tmp_path/cache``."""
    return ConfigRepo(RepoSpec(url=work.url, branch=branch), tmp_path / "cache")


async def test_fetch_from_a_file_remote_resolves_the_branch(work: Work, tmp_path: Path) -> None:
    """The first fetch creates a bare mirror and returns the head with time, author and subject."""
    sha = work.commit({"apps/web/cm.yaml": "a: 1\n"}, "add web")
    repo = mirrored(work, tmp_path)
    head = await repo.fetch()
    assert (head.sha, head.ref, head.author, head.subject) == (sha, "main", "Ada", "add web")
    assert head.committed_at == BASE_TIME + 60
    assert repo.head == head and repo.status.head == head and repo.status.error == ""
    assert (tmp_path / "cache" / "git" / f"{repo.key}.git" / "HEAD").is_file()


async def test_new_commits_are_fast_forwards(work: Work, tmp_path: Path) -> None:
    """A normal push is picked up without a warning; ancestry and distance are reported."""
    first = work.commit({"a.yaml": "a: 1\n"}, "one")
    repo = mirrored(work, tmp_path)
    await repo.fetch()
    second = work.commit({"a.yaml": "a: 2\n"}, "two")
    third = work.commit({"a.yaml": "a: 3\n"}, "three")
    head = await repo.fetch()
    assert head.sha == third and repo.status.warning == ""
    assert await repo.is_ancestor(first, third) and not await repo.is_ancestor(third, first)
    assert await repo.commits_between(first, third) == 2
    assert (await repo.resolve(second[:10])).sha == second


async def test_force_push_is_kept_with_a_warning(work: Work, tmp_path: Path) -> None:
    """A head that does not descend from the previous one is used, and a warning names both."""
    work.commit({"a.yaml": "a: 1\n"}, "one")
    old = work.commit({"a.yaml": "a: 2\n"}, "two")
    repo = mirrored(work, tmp_path)
    await repo.fetch()
    git(work.dir, "reset", "-q", "--hard", "HEAD~1")
    rewritten = work.commit({"a.yaml": "a: 3\n"}, "rewritten")
    head = await repo.fetch()
    assert head.sha == rewritten
    assert "force-pushed" in repo.status.warning and old[:8] in repo.status.warning
    assert not await repo.is_ancestor(old, rewritten)
    await repo.fetch()
    assert "force-pushed" in repo.status.warning, "the warning stays while the head is unchanged"
    work.commit({"a.yaml": "a: 4\n"}, "four")
    await repo.fetch()
    assert repo.status.warning == ""


async def test_force_push_detected_across_restarts(work: Work, tmp_path: Path) -> None:
    """The last seen head is remembered in the cache, so a restart still notices a force-push."""
    work.commit({"a.yaml": "a: 1\n"}, "one")
    work.commit({"a.yaml": "a: 2\n"}, "two")
    await mirrored(work, tmp_path).fetch()
    git(work.dir, "reset", "-q", "--hard", "HEAD~1")
    work.commit({"a.yaml": "a: 3\n"}, "rewritten")
    fresh = mirrored(work, tmp_path)
    await fresh.fetch()
    assert "force-pushed" in fresh.status.warning


async def test_deleted_branch_is_an_error_not_an_empty_state(work: Work, tmp_path: Path) -> None:
    """After the branch is deleted, fetch raises GitError naming it; the last head is kept."""
    sha = work.commit({"a.yaml": "a: 1\n"}, "one")
    git(work.dir, "push", "-q", "origin", "HEAD:other")
    repo = mirrored(work, tmp_path)
    await repo.fetch()
    git(work.remote, "symbolic-ref", "HEAD", "refs/heads/other")
    git(work.dir, "push", "-q", "origin", "--delete", "main")
    with pytest.raises(GitError) as caught:
        await repo.fetch()
    assert "branch 'main' not found" in str(caught.value) and "other" in str(caught.value)
    assert "nothing is pruned" in caught.value.hint
    assert repo.head is not None and repo.head.sha == sha
    assert repo.status.head is not None and repo.status.error.startswith("branch 'main' not found")


async def test_missing_branch_on_first_fetch(work: Work, tmp_path: Path) -> None:
    """A branch that never existed is reported with the branches that do."""
    work.commit({"a.yaml": "a: 1\n"}, "one")
    with pytest.raises(GitError, match=r"branch 'prod' not found .*branches: main"):
        await mirrored(work, tmp_path, branch="prod").fetch()


async def test_unreachable_repo(tmp_path: Path) -> None:
    """An unreachable remote is a GitError saying what failed and what to check."""
    repo = ConfigRepo(RepoSpec(url=(tmp_path / "nowhere.git").as_uri()), tmp_path / "cache")
    with pytest.raises(GitError) as caught:
        await repo.fetch()
    assert str(caught.value).startswith("failed to fetch file://")
    assert "credentials" in caught.value.hint
    assert repo.head is None and repo.status.error


async def test_resolve_unknown_and_invalid_refs(work: Work, tmp_path: Path) -> None:
    """Unknown SHAs and tags are 'not found'; option-like refs are refused."""
    sha = work.commit({"a.yaml": "a: 1\n"}, "one")
    git(work.dir, "tag", "v1")
    git(work.dir, "push", "-q", "origin", "v1")
    repo = mirrored(work, tmp_path)
    await repo.fetch()
    assert (await repo.resolve("v1")).sha == sha
    with pytest.raises(GitError, match="not found"):
        await repo.resolve("0" * 40)
    with pytest.raises(GitError, match="invalid Git ref"):
        await repo.resolve("--output=/tmp/x")



async def test_many_resolves_of_one_sha_read_git_once(work: Work, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine resolves every target's revision at once: one Git read per SHA, every caller answered."""
    import core.desired.repo as repo_module

    sha = work.commit({"a.yaml": "a: 1\n"}, "one")
    repo = mirrored(work, tmp_path)
    await repo.fetch()
    reads: list[str] = []
    original = repo_module._resolve

    def counted(git_: object, ref: str) -> object:
        reads.append(ref)
        return original(git_, ref)  # type: ignore[arg-type]

    monkeypatch.setattr(repo_module, "_resolve", counted)
    revisions = await asyncio.gather(*(repo.resolve(sha) for _ in range(20)))
    assert {r.sha for r in revisions} == {sha} and reads == [sha]
    with pytest.raises(GitError, match="not found"):  # a failure is not remembered: each caller is told
        await asyncio.gather(repo.resolve("0" * 40), repo.resolve("0" * 40))

async def test_materialize_two_shas_concurrently(work: Work, tmp_path: Path) -> None:
    """Two revisions materialize side by side, each with its own content, and are reused per SHA."""
    first = work.commit({"apps/web/cm.yaml": "v: 1\n", "link.yaml": "x"}, "one")
    second = work.commit({"apps/web/cm.yaml": "v: 2\n", "apps/web/extra.yaml": "e: 1\n"}, "two")
    repo = mirrored(work, tmp_path)
    await repo.fetch()
    tree_a, tree_b, tree_a_again = await asyncio.gather(
        repo.materialize(first), repo.materialize(second), repo.materialize(first)
    )
    assert tree_a == tree_a_again and tree_a != tree_b
    assert (tree_a / "apps/web/cm.yaml").read_text() == "v: 1\n"
    assert not (tree_a / "apps/web/extra.yaml").exists()
    assert (tree_b / "apps/web/cm.yaml").read_text() == "v: 2\n"
    assert await repo.materialize(first) == tree_a
    with pytest.raises(GitError, match="not found"):
        await repo.materialize("1" * 40)
    with pytest.raises(GitError, match="full commit SHA"):
        await repo.materialize("main")


async def test_local_repo_is_read_by_its_refs_never_its_worktree(work: Work, tmp_path: Path) -> None:
    """A local path repo renders committed content; the user's checkout is left untouched."""
    sha = work.commit({"a.yaml": "committed\n"}, "one", push=False)
    (work.dir / "a.yaml").write_text("uncommitted\n")
    repo = ConfigRepo(RepoSpec(url=str(work.dir)), tmp_path / "cache")
    head = await repo.fetch()
    tree = await repo.materialize(head.sha)
    assert head.sha == sha and (tree / "a.yaml").read_text() == "committed\n"
    assert git(work.dir, "status", "--porcelain") == "M a.yaml"
    assert git(work.dir, "worktree", "list").count("\n") == 0
    assert not str(tree).startswith(str(work.dir))


async def test_not_a_repository(tmp_path: Path) -> None:
    """A plain directory is a GitError with a hint."""
    with pytest.raises(GitError, match="not a Git repository"):
        await ConfigRepo(RepoSpec(url=str(tmp_path)), tmp_path / "cache").fetch()


async def test_log_lists_commits_touching_paths(work: Work, tmp_path: Path) -> None:
    """``log(paths)`` returns only commits touching those paths, newest first, up to the limit."""
    web1 = work.commit({"apps/web/a.yaml": "1\n"}, "web 1")
    work.commit({"apps/api/a.yaml": "1\n"}, "api 1")
    web2 = work.commit({"apps/web/a.yaml": "2\n"}, "web 2")
    both = work.commit({"apps/web/a.yaml": "3\n", "base/b.yaml": "1\n"}, "web 3 and base")
    repo = mirrored(work, tmp_path)
    await repo.fetch()
    assert [r.sha for r in await repo.log(["apps/web"])] == [both, web2, web1]
    assert [r.subject for r in await repo.log(["apps/web"], limit=2)] == ["web 3 and base", "web 2"]
    assert [r.sha for r in await repo.log(["base", "apps/api"], ref=web2)] != []
    assert [r.sha for r in await repo.log(["apps/web"], ref=web2)] == [web2, web1]
    with pytest.raises(GitError):
        await repo.log(["../outside"])


async def test_cleanup_keeps_recent_and_pinned_trees(work: Work, tmp_path: Path) -> None:
    """Cleanup removes least recently used trees beyond the limit, never those asked to keep."""
    shas = [work.commit({"a.yaml": f"{i}\n"}, f"c{i}") for i in range(3)]
    repo = mirrored(work, tmp_path)
    await repo.fetch()
    trees = [await repo.materialize(sha) for sha in shas]
    for i, tree in enumerate(trees):
        os.utime(tree, (BASE_TIME + i, BASE_TIME + i))
    assert await repo.cleanup(keep={shas[0]}, max_trees=1) == 1
    assert [t.exists() for t in trees] == [True, False, True]


async def test_cleanup_removes_a_crashed_flux_build_tree(work: Work, tmp_path: Path) -> None:
    """A Flux build's private tree left by a crash (over an hour old) goes at cleanup; a fresh one stays."""
    sha = work.commit({"a.yaml": "1\n"}, "c")
    repo = mirrored(work, tmp_path)
    await repo.fetch()
    tree = await repo.materialize(sha)
    old, fresh = tree.parent / ".flux-build-old", tree.parent / ".flux-build-new"
    for leftover in (old, fresh):
        (leftover / "app").mkdir(parents=True)
    os.utime(old, (BASE_TIME, BASE_TIME))
    await repo.cleanup(max_trees=4)
    assert not old.exists() and fresh.exists() and tree.exists()


def test_credentials_are_redacted() -> None:
    """Tokens in URLs never reach messages."""
    assert redact("fatal: https://bot:s3cret@git.example.com/r.git") == "fatal: https://***@git.example.com/r.git"
    repo = ConfigRepo(RepoSpec(url="https://bot:s3cret@git.example.com/r.git"), "/nonexistent")
    assert "s3cret" not in repo.url and "s3cret" not in repo.status.url


# ---------------------------------------------------------------------------------------------- secrets at rest


class _GitHTTP:
    """Git's smart HTTP protocol (``git http-backend``) on 127.0.0.1, behind HTTP basic auth."""

    def __init__(self, root: Path, user: str, password: str) -> None:
        import base64
        import http.server
        import threading

        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.attempts: list[str] = []
        attempts = self.attempts

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                attempts.append(self.headers.get("Authorization", ""))
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                env = {"GIT_PROJECT_ROOT": str(root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
                       "QUERY_STRING": query, "REQUEST_METHOD": self.command,
                       "CONTENT_TYPE": self.headers.get("Content-Type", ""), "REMOTE_USER": user,
                       "PATH": os.environ.get("PATH", "")}
                out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                                     check=True).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode().split("\r\n"):
                    name, _, value = line.partition(": ")
                    if name.lower() == "status":
                        status = int(value.split()[0])
                    elif name:
                        headers.append((name, value))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and needle in p.read_bytes()]


async def test_url_credentials_reach_git_but_never_the_disk(tmp_path: Path) -> None:
    """A repo URL with a token: the fetch authenticates (through an askpass reading the fetch's own
    environment), the mirror's config holds the URL without it, no file of the cache holds the token,
    and the cache is private (0700) whatever the umask."""
    work = Work(tmp_path)
    sha = work.commit({"app/cm.yaml": "kind: ConfigMap\n"}, "one")
    token = "s3cret-t0ken-4242"
    server = _GitHTTP(tmp_path, "deploy", token)
    old_umask = os.umask(0o022)
    try:
        cache = tmp_path / "cache"
        repo = ConfigRepo(RepoSpec(url=f"http://deploy:{token}@127.0.0.1:{server.port}/remote.git"), cache)
        head = await repo.fetch()
        assert head.sha == sha
        await repo.materialize(sha)
        assert any(a.startswith("Basic ") for a in server.attempts)
        assert _files_containing(cache, token.encode()) == []
        config = next(cache.rglob("config")).read_text()
        assert f"http://127.0.0.1:{server.port}/remote.git" in config and "deploy" not in config
        assert token not in repr(repo.status)
        for directory in [cache, *(p for p in cache.rglob("*") if p.is_dir() and not p.is_symlink())]:
            if directory.parent == cache or directory == cache:
                assert directory.stat().st_mode & 0o077 == 0, directory
        state = next((cache / "state").iterdir())
        assert state.stat().st_mode & 0o777 == 0o600

        wrong = ConfigRepo(RepoSpec(url=f"http://deploy:wrong-{token}@127.0.0.1:{server.port}/remote.git"),
                           tmp_path / "cache2")
        with pytest.raises(GitError) as caught:
            await wrong.fetch()
        assert token not in f"{caught.value} {caught.value.hint}"
    finally:
        os.umask(old_umask)
        server.close()


def test_split_credentials() -> None:
    """Userinfo is taken out of the URL (and percent-decoded); other URLs pass through unchanged."""
    from core.desired.repo import split_credentials

    assert split_credentials("https://u:p%40ss@host:8443/r.git") == ("https://host:8443/r.git", "u", "p@ss")
    assert split_credentials("https://host/r.git") == ("https://host/r.git", "", "")
    assert split_credentials("git@host:org/r.git") == ("git@host:org/r.git", "", "")
    assert split_credentials("file:///tmp/r.git") == ("file:///tmp/r.git", "", "")


async def test_lineage_of_a_fast_forward_a_force_push_and_a_lost_revision(work: Work, tmp_path: Path) -> None:
    """``lineage(old, new)``: descends with the commits added; after a force-push, not descending with the
    commits each side lacks; an old revision the mirror never had is reported missing, an unknown new one
    is an error."""
    first = work.commit({"a.yaml": "a: 1\n"}, "one")
    repo = mirrored(work, tmp_path)
    await repo.fetch()
    second = work.commit({"a.yaml": "a: 2\n"}, "two")
    third = work.commit({"a.yaml": "a: 3\n"}, "three")
    await repo.fetch()
    forward = await repo.lineage(first, third)
    assert (forward.descends, forward.added, forward.dropped, forward.old_exists) == (True, 2, 0, True)
    assert (await repo.lineage(third, third)).descends
    git(work.dir, "reset", "-q", "--hard", first)
    rewritten = work.commit({"a.yaml": "a: 9\n"}, "rewritten")
    await repo.fetch()
    forced = await repo.lineage(third, rewritten)  # the mirror keeps the commits it fetched before
    assert (forced.descends, forced.added, forced.dropped, forced.old_exists) == (False, 1, 2, True)
    assert [c.subject for c in forced.dropped_commits] == ["three", "two"]  # newest first
    back = await repo.lineage(third, second)  # the branch moved back: nothing new, one commit dropped
    assert (back.descends, back.added, back.dropped) == (False, 0, 1)
    fresh = ConfigRepo(RepoSpec(url=work.url, branch="main"), tmp_path / "other-cache")
    await fresh.fetch()
    lost = await fresh.lineage(third, rewritten)  # a new mirror never had it
    assert (lost.descends, lost.old_exists) == (False, False)
    with pytest.raises(GitError):
        await repo.lineage(first, "f" * 40)
