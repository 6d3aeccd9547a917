"""The demo's render store: renders of the generated repo kept by content, shared by the seeding and the engine.

A key computed from the files in memory equals the key of the same files on disk; a stored render or failure
comes back as the engine would have built it; a second renderer over a new repo with the same content (new
SHAs, as every ``fleetdeck demo`` run dates its commits anew) runs no kustomize at all.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.demo.render_cache import SHIPPED, DemoRenderStore, binary_digest, write_shipped
from core.demo.repo import commit_shas, create_demo_repo, revision_files
from core.desired.kustomize import kustomize_command
from core.desired.render import Renderer, render
from core.desired.repo import ConfigRepo
from core.desired.spec import RepoSpec
from core.errors import RenderError
from core.settings import GitSettings

MAX = GitSettings().max_manifest_bytes


def test_a_key_from_memory_equals_the_key_from_disk(tmp_path: Path) -> None:
    repo = create_demo_repo(tmp_path / "config")
    store = DemoRenderStore(tmp_path / "store")
    head = revision_files()[-1]
    for path in ("apps/web/overlays/production", "apps/ledger/overlays/production", "apps/search/overlays/dev"):
        on_disk = store.key(repo, path, kustomize_command(), MAX)
        assert on_disk is not None and on_disk == store.key_of_files(head, path, kustomize_command(), MAX)
    older = revision_files()[0]
    assert store.key_of_files(older, "apps/web/overlays/production", kustomize_command(), MAX) != store.key(
        repo, "apps/web/overlays/production", kustomize_command(), MAX)
    assert store.key(repo, "fleetdeck.yaml", kustomize_command(), MAX) is None
    assert store.key(repo, "apps/../etc", kustomize_command(), MAX) is None


async def test_stored_renders_and_failures_come_back_as_built(tmp_path: Path) -> None:
    repo = create_demo_repo(tmp_path / "config")
    store = DemoRenderStore(tmp_path / "store")
    path = "apps/web/overlays/production"
    built = await render(repo, path, max_bytes=MAX)
    key = store.key(repo, path, kustomize_command(), MAX)
    assert key is not None
    store.put(key, built)
    assert store.get(key) == built
    store.put("broken", RenderError("kustomize build of x failed", hint="run it"))
    failure = store.get("broken")
    assert isinstance(failure, RenderError) and (failure.message, failure.hint) == ("kustomize build of x failed",
                                                                                    "run it")
    (tmp_path / "store" / "torn.json").write_bytes(b"{not json")
    assert store.get("torn") is None and store.get("absent") is None


@pytest.mark.parametrize("path", ["apps/web/overlays/production", "apps/ledger/overlays/production"])
async def test_a_new_demo_repo_with_the_same_content_renders_nothing(tmp_path: Path, path: str) -> None:
    """Each run dates its commits from now: other SHAs, the same files. The second renderer builds nothing, and
    the broken ledger overlay fails with the same message."""
    store = DemoRenderStore(tmp_path / "store", shipped=None)
    outcomes: list[tuple[int, object]] = []
    heads: list[str] = []
    for run, ending in enumerate((None, datetime.fromtimestamp(time.time(), tz=UTC))):
        repo_dir = create_demo_repo(tmp_path / f"config{run}", ending_at=ending)
        repo = ConfigRepo(RepoSpec(url=str(repo_dir)), tmp_path / f"cache{run}")
        await repo.fetch()
        renderer = Renderer(GitSettings(), store=store)
        head = commit_shas(repo_dir)[-1]
        outcome: object
        try:
            outcome = await renderer.render_app(repo, head, path=path, namespace="x")
        except RenderError as exc:
            outcome = exc.message
        outcomes.append((renderer.builds, outcome))
        heads.append(head)
    (first_builds, first), (second_builds, second) = outcomes
    assert (first_builds, second_builds) == (1, 0)
    assert first == second
    assert heads[0] != heads[1]


def test_the_shipped_renders_are_the_current_demos_with_the_locked_kubectl(tmp_path: Path) -> None:
    """The package's renders are byte for byte what this install's kubectl renders for the demo now (they are found
    only through keys over the binary's bytes and every input file, so stale ones would just miss: this test says
    when to write them again)."""
    count = write_shipped(tmp_path / "fresh")
    fresh = {f.name: f.read_bytes() for f in (tmp_path / "fresh").glob("*.json")}
    shipped = {f.name: f.read_bytes() for f in SHIPPED.glob("*.json")}
    assert count == len(fresh) > 0
    assert shipped == fresh, "the demo or kubectl changed: run `uv run python -m core.demo.render_cache`"


@pytest.mark.parametrize("path", ["apps/web/overlays/production", "apps/ledger/overlays/production"])
async def test_a_first_run_finds_the_shipped_renders(tmp_path: Path, path: str) -> None:
    """An empty cache directory: the engine's render comes from the package's renders, equal to a build."""
    repo_dir = create_demo_repo(tmp_path / "config", ending_at=datetime.fromtimestamp(time.time(), tz=UTC))
    repo = ConfigRepo(RepoSpec(url=str(repo_dir)), tmp_path / "cache")
    await repo.fetch()
    outcomes: list[object] = []
    for store in (DemoRenderStore(tmp_path / "empty"), None):
        renderer = Renderer(GitSettings(), store=store)
        try:
            outcomes.append(await renderer.render_app(repo, commit_shas(repo_dir)[-1], path=path, namespace="x"))
        except RenderError as exc:
            outcomes.append(exc.message.replace(str(tmp_path), "<tmp>"))
        assert renderer.builds == (0 if store is not None else 1)
    assert outcomes[0] == outcomes[1]


def test_another_binary_misses_the_shipped_renders(tmp_path: Path) -> None:
    fake = tmp_path / "kubectl"
    fake.write_bytes(b"not the locked kubectl")
    head = revision_files()[-1]
    path = "apps/web/overlays/production"
    store = DemoRenderStore(tmp_path / "store")
    key = store.key_of_files(head, path, (str(fake), "kustomize"), MAX)
    assert key is not None and key != store.key_of_files(head, path, kustomize_command(), MAX)
    assert store.get(key) is None


def test_the_binary_digest_is_its_bytes_and_follows_a_replaced_binary(tmp_path: Path) -> None:
    binary, memo = tmp_path / "kubectl", tmp_path / "memo"
    binary.write_bytes(b"one build")
    assert binary_digest((str(binary), "kustomize"), memo) == hashlib.sha256(b"one build").hexdigest()
    assert [f.read_text() for f in memo.glob("binary-*")] == [hashlib.sha256(b"one build").hexdigest()]
    binary.write_bytes(b"another, longer build")
    assert binary_digest((str(binary), "kustomize"), memo) == hashlib.sha256(b"another, longer build").hexdigest()
    assert binary_digest((str(tmp_path / "absent"), "kustomize"), memo) is None
