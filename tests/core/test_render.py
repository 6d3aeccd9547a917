"""Rendering with the real kustomize and plain directories; the render cache; history by rendered output."""

from __future__ import annotations

import functools
import os
import textwrap
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.desired.kustomize import RenderTimeout
from core.desired.render import Renderer, render, watched_paths
from core.desired.repo import ConfigRepo
from core.desired.spec import RepoSpec
from core.errors import ManifestError, RenderError
from core.settings import GitSettings
from tests.core.test_repo import Work


def tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (dedented) under ``root``."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


def cm(name: str, value: str = "1") -> str:
    """A ConfigMap manifest."""
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: '{value}'\n"


def names(objects: tuple[dict[str, object], ...]) -> list[str]:
    """``Kind/name`` of each object, in order."""
    return [f"{o['kind']}/{o['metadata']['name']}" for o in objects]  # type: ignore[index]


# ---------------------------------------------------------------------------------------------- plain


async def test_plain_directory_is_read_recursively_and_sorted(tmp_path: Path) -> None:
    """All yaml/yml/json files under the app dir load in path order; other and hidden files are ignored."""
    tree(tmp_path, {
        "app/b.yaml": cm("b"),
        "app/a.yml": cm("a") + "---\n" + cm("a2"),
        "app/sub/c.json": '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}',
        "app/README.md": "# not a manifest",
        "app/.github/workflows/ci.yaml": "on: push\n",
        "app/.hidden.yaml": "garbage: [",
    })
    result = await render(tmp_path, "app")
    assert names(result.objects) == ["ConfigMap/a", "ConfigMap/a2", "ConfigMap/b", "ConfigMap/c"]
    assert len(result.digest) == 64 and result.warnings == ()


async def test_fleetdeckignore_is_honoured(tmp_path: Path) -> None:
    """gitignore-style rules from the repo root and the app dir exclude files and directories."""
    tree(tmp_path, {
        ".fleetdeckignore": "# root rules\n*.tmpl.yaml\n",
        "app/.fleetdeckignore": "tests/\n/drafts/*\n!drafts/keep.yaml\n",
        "app/a.yaml": cm("a"),
        "app/x.tmpl.yaml": "{{ template }}",
        "app/tests/t.yaml": "not: a manifest\n",
        "app/deep/tests/t.yaml": "not: a manifest\n",
        "app/drafts/skip.yaml": cm("skip"),
        "app/drafts/keep.yaml": cm("keep"),
    })
    assert names((await render(tmp_path, "app")).objects) == ["ConfigMap/a", "ConfigMap/keep"]


async def test_nested_kustomization_in_a_plain_directory_is_built(tmp_path: Path) -> None:
    """A subdirectory with its own kustomization is built by kustomize, not read as files."""
    tree(tmp_path, {
        "app/a.yaml": cm("a"),
        "app/sub/kustomization.yaml": "namePrefix: k-\nresources: [cm.yaml]\n",
        "app/sub/cm.yaml": cm("b"),
    })
    assert names((await render(tmp_path, "app")).objects) == ["ConfigMap/a", "ConfigMap/k-b"]


async def test_invalid_documents_fail_the_whole_render(tmp_path: Path) -> None:
    """One bad document fails the app with every error and its file:line; nothing partial is returned."""
    tree(tmp_path, {
        "app/a.yaml": cm("a"),
        "app/b.yaml": cm("b") + "---\nkind: ConfigMap\nmetadata: {name: c}\n",
        "app/c.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\n  labels: {v: 1.10}\n",
    })
    with pytest.raises(ManifestError) as caught:
        await render(tmp_path, "app")
    errors = getattr(caught.value, "errors", ())
    assert [(e.path, e.line) for e in errors] == [("app/b.yaml", 8), ("app/c.yaml", 5)]


async def test_duplicate_objects_are_refused(tmp_path: Path) -> None:
    """The same object twice in one render is an error naming both places."""
    tree(tmp_path, {"app/a.yaml": cm("same"), "app/b.yaml": cm("same", "2")})
    with pytest.raises(ManifestError, match=r"defined twice \(also at app/a.yaml:1\)"):
        await render(tmp_path, "app")


async def test_missing_path_is_an_error_not_an_empty_render(tmp_path: Path) -> None:
    """A path that does not exist raises; an existing empty directory renders nothing, with a warning."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(RenderError, match="does not exist"):
        await render(tmp_path, "gone")
    result = await render(tmp_path, "empty")
    assert result.objects == () and "renders no objects" in result.warnings[0]
    with pytest.raises(RenderError, match="leaves the repository"):
        await render(tmp_path, "../elsewhere")


async def test_symlink_escaping_the_tree_is_refused(tmp_path: Path) -> None:
    """A manifest symlinked from outside the tree is refused; links inside the tree are fine."""
    outside = tmp_path / "outside.yaml"
    outside.write_text(cm("secret"))
    root = tree(tmp_path / "repo", {"app/a.yaml": cm("a"), "shared/s.yaml": cm("s")})
    (root / "app/inside.yaml").symlink_to("../shared/s.yaml")
    assert names((await render(root, "app")).objects) == ["ConfigMap/a", "ConfigMap/s"]
    (root / "app/leak.yaml").symlink_to(outside)
    with pytest.raises(RenderError, match=r"app/leak.yaml is a symlink to .*outside the repository"):
        await render(root, "app")


async def test_symlinked_app_dir_and_kustomize_base_outside_are_refused(tmp_path: Path) -> None:
    """An app directory, or a kustomize base, reached through a link out of the tree is refused."""
    external = tree(tmp_path / "external", {"kustomization.yaml": "resources: [cm.yaml]\n", "cm.yaml": cm("x")})
    root = tree(tmp_path / "repo", {"app/kustomization.yaml": "resources: [../base]\n"})
    (root / "base").symlink_to(external)
    with pytest.raises(RenderError, match="base is a symlink"):
        await render(root, "app")
    (root / "linked").symlink_to(external)
    with pytest.raises(RenderError, match="outside the repository"):
        await render(root, "linked")


async def test_size_cap(tmp_path: Path) -> None:
    """An app over the per-app byte cap fails with a clear error."""
    tree(tmp_path, {"app/a.yaml": cm("a", "x" * 2000)})
    with pytest.raises(RenderError, match="limit"):
        await render(tmp_path, "app", max_bytes=1000)


async def test_helm_chart_without_helm_is_refused_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Helm chart directory is never read as plain YAML (its templates are not manifests): without a helm
    binary it fails naming what is missing (rendering with helm: tests/core/test_helm.py)."""
    tree(tmp_path, {"chart/Chart.yaml": "name: x\n", "chart/templates/d.yaml": "{{ .Values }}"})
    monkeypatch.delenv("FLEETDECK_HELM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(RenderError, match="Helm chart at chart needs the helm binary"):
        await render(tmp_path, "chart")


# ---------------------------------------------------------------------------------------------- kustomize


DEPLOYMENT = """\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          containers:
            - name: web
              image: nginx:1.27
              envFrom: [{configMapRef: {name: web-config}}]
    """


def kustomize_repo(root: Path) -> Path:
    """A base and three overlays using namePrefix, commonLabels and configMapGenerator."""
    files = {
        "base/kustomization.yaml": """\
            resources: [deployment.yaml]
            configMapGenerator:
              - name: web-config
                literals: [LOG_LEVEL=info]
            """,
        "base/deployment.yaml": DEPLOYMENT,
    }
    for env, level in (("dev", "debug"), ("staging", "info"), ("prod", "warn")):
        files[f"overlays/{env}/kustomization.yaml"] = f"""\
            resources: [../../base]
            namePrefix: {env}-
            commonLabels: {{env: {env}}}
            configMapGenerator:
              - name: web-config
                behavior: merge
                literals: [LOG_LEVEL={level}]
            """
    return tree(root, files)


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
async def test_kustomize_overlays_with_the_real_binary(tmp_path: Path, env: str) -> None:
    """Each overlay gets its prefix, labels (selectors too) and a hashed ConfigMap the Deployment refers to."""
    result = await render(kustomize_repo(tmp_path), f"overlays/{env}", namespace="web")
    by_kind = {o["kind"]: o for o in result.objects}
    config_name = by_kind["ConfigMap"]["metadata"]["name"]
    assert config_name.startswith(f"{env}-web-config-") and len(config_name) == len(f"{env}-web-config-") + 10
    deployment = by_kind["Deployment"]
    assert deployment["metadata"]["name"] == f"{env}-web"
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": "web", "env": env}
    assert deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] == config_name
    assert any("commonLabels" in w for w in result.warnings)


async def test_overlays_hash_differently(tmp_path: Path) -> None:
    """Different generator data yields different hash suffixes and digests."""
    root = kustomize_repo(tmp_path)
    dev, prod = await render(root, "overlays/dev"), await render(root, "overlays/prod")
    assert dev.digest != prod.digest
    assert (await render(root, "overlays/dev")).digest == dev.digest


async def test_kustomize_error_surfaces_stderr(tmp_path: Path) -> None:
    """A failing build raises RenderError carrying kustomize's own message, without the tree's path."""
    tree(tmp_path, {"app/kustomization.yaml": "resources: [missing.yaml]\n"})
    with pytest.raises(RenderError) as caught:
        await render(tmp_path, "app")
    message = str(caught.value)
    assert message.startswith("kustomize build of app failed:") and "missing.yaml" in message
    assert str(tmp_path) not in message and "kubectl kustomize app" in caught.value.hint


async def test_kustomize_timeout_kills_the_build(tmp_path: Path) -> None:
    """A build that blocks (a generator reading a FIFO) is killed at the timeout."""
    tree(tmp_path, {"app/kustomization.yaml": "configMapGenerator:\n  - name: c\n    files: [data.txt]\n"})
    os.mkfifo(tmp_path / "app/data.txt")
    started = time.perf_counter()
    with pytest.raises(RenderTimeout, match="did not finish in 1s"):
        await render(tmp_path, "app", timeout=1.0)
    assert time.perf_counter() - started < 5


async def test_remote_bases_are_refused_by_default(tmp_path: Path) -> None:
    """Remote resources fail closed unless allowed."""
    tree(tmp_path, {"app/kustomization.yaml": "resources:\n  - github.com/example/repo//base?ref=v1\n"})
    with pytest.raises(RenderError, match=r"remote resource .* is disabled"):
        await render(tmp_path, "app")


@pytest.mark.parametrize("field", ["patches: [{path: URL}]", "configMapGenerator: [{name: g, files: [URL]}]",
                                   "patchesStrategicMerge: [URL]", "transformers: [URL]"])
async def test_remote_files_are_refused_by_default(tmp_path: Path, field: str) -> None:
    """A patch or generator file given as a URL fails closed too: kustomize loads such URLs itself, and the
    unreachable proxy does not stop loopback (Go never proxies it). The server here counts requests: none."""
    served = tmp_path / "srv"
    served.mkdir()
    (served / "p.yaml").write_text(cm("app"))
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            requests.append(self.path)

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/p.yaml"
        tree(tmp_path, {"app/kustomization.yaml": f"resources: [cm.yaml]\n{field.replace('URL', repr(url))}\n",
                        "app/cm.yaml": cm("app")})
        with pytest.raises(RenderError, match=r"remote file .*/p\.yaml' in app is disabled"):
            await render(tmp_path, "app")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert requests == []


def test_watched_paths_follow_bases(tmp_path: Path) -> None:
    """History watches the app dir, the bases it references (recursively) and the root ignore file."""
    root = kustomize_repo(tmp_path)
    tree(root, {"base/kustomization.yaml": "resources: [deployment.yaml, ../components/common]\n",
                "components/common/kustomization.yaml": "resources: []\n"})
    assert watched_paths(root, "overlays/dev") == ("base", "components/common", "overlays/dev", ".fleetdeckignore")


# ---------------------------------------------------------------------------------------------- Renderer


def app_repo(tmp_path: Path) -> tuple[Work, ConfigRepo]:
    """A working repo (base + overlay) and its mirrored ConfigRepo."""
    work = Work(tmp_path)
    return work, ConfigRepo(RepoSpec(url=work.url), tmp_path / "cache")


async def test_render_cache_hit(tmp_path: Path) -> None:
    """A second render of the same (repo, sha, path, options) is served from the cache as fresh copies."""
    work, repo = app_repo(tmp_path)
    work.commit({"app/a.yaml": cm("a")}, "add app")
    head = await repo.fetch()
    renderer = Renderer(GitSettings())
    first = await renderer.render_app(repo, head.sha, path="app", namespace="web")
    first.objects[0]["metadata"]["name"] = "mutated"
    second = await renderer.render_app(repo, head.sha, path="./app/", namespace="web")
    assert renderer.builds == 1 and names(second.objects) == ["ConfigMap/a"]
    assert second.digest == first.digest
    await renderer.render_app(repo, head.sha, path="app", namespace="other")
    assert renderer.builds == 2
    renderer.clear()
    await renderer.render_app(repo, head.sha, path="app", namespace="web")
    assert renderer.builds == 3


async def test_render_failures_are_cached_until_cleared(tmp_path: Path) -> None:
    """A revision that fails to render fails the same way from the cache."""
    work, repo = app_repo(tmp_path)
    work.commit({"app/a.yaml": "apiVersion: v1\nkind: ConfigMap\n"}, "broken")
    head = await repo.fetch()
    renderer = Renderer()
    for _ in range(2):
        with pytest.raises(ManifestError):
            await renderer.render_app(repo, head.sha, path="app")
    assert renderer.builds == 1


async def test_history_keeps_only_commits_that_change_the_output(tmp_path: Path) -> None:
    """History lists commits changing the rendered output (app or base), skipping no-op and broken ones."""
    work, repo = app_repo(tmp_path)
    root_files = {"base/kustomization.yaml": "resources: [cm.yaml]\n", "base/cm.yaml": cm("base"),
                  "app/kustomization.yaml": "resources: [../base, a.yaml]\n", "app/a.yaml": cm("a")}
    introduced = work.commit(root_files, "introduce app")
    work.commit({"README.md": "docs\n"}, "unrelated file")
    work.commit({"app/a.yaml": "# a comment only\n" + cm("a")}, "comment only")
    base_change = work.commit({"base/cm.yaml": cm("base", "2")}, "change base")
    work.commit({"app/a.yaml": "kind: [broken\n"}, "break app")
    fixed = work.commit({"app/a.yaml": cm("a", "3")}, "fix app with a new value")
    work.commit({"base/cm.yaml": cm("base", "2") + "\n"}, "whitespace in base")
    await repo.fetch()
    history = await Renderer().history(repo, "app", limit=10)
    assert [r.sha for r in history] == [fixed, base_change, introduced]
    assert history[0].subject == "fix app with a new value"
    limited = await Renderer().history(repo, "app", limit=2)
    assert [r.sha for r in limited] == [fixed, base_change]


async def test_history_follows_bases_used_only_in_older_revisions(tmp_path: Path) -> None:
    """A base the app referenced in the past is watched for the revisions that used it."""
    work, repo = app_repo(tmp_path)
    old_base = work.commit({"old/kustomization.yaml": "resources: [cm.yaml]\n", "old/cm.yaml": cm("o"),
                            "app/kustomization.yaml": "resources: [../old]\n"}, "app on old base")
    old_change = work.commit({"old/cm.yaml": cm("o", "2")}, "change old base")
    moved = work.commit({"new/kustomization.yaml": "resources: [cm.yaml]\n", "new/cm.yaml": cm("n"),
                         "app/kustomization.yaml": "resources: [../new]\n"}, "move to new base")
    work.commit({"old/cm.yaml": cm("o", "3")}, "old base changes after the move")
    await repo.fetch()
    history = await Renderer().history(repo, "app")
    assert [r.sha for r in history] == [moved, old_change, old_base]


# ---------------------------------------------------------------------------------------------- budgets

BOMB = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\nextra:\n" + "\n".join(
    ['  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"  a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]) + "\n"
"""A 'billion laughs' document of about 500 bytes: its aliases expand to ~430 million nodes."""


async def test_alias_bomb_under_a_kustomization_is_refused_before_kustomize_runs(tmp_path: Path) -> None:
    """Every file kustomize may read is screened with the plain path's budgets first: the bomb is named
    with its file and reason, and the kustomize binary is never started."""
    marker = tmp_path / "kustomize-started"
    fake = tmp_path / "bin" / "fake-kustomize"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\ntouch {marker}\necho 'apiVersion: v1'\n")
    fake.chmod(0o755)
    tree(tmp_path, {"repo/base/kustomization.yaml": "resources: [bomb.yaml]\n", "repo/base/bomb.yaml": BOMB,
                    "repo/app/kustomization.yaml": "resources: [../base, cm.yaml]\n", "repo/app/cm.yaml": cm("x")})
    with pytest.raises(RenderError) as caught:
        await render(tmp_path / "repo", "app", kustomize=str(fake))
    assert "base/bomb.yaml is refused before kustomize runs" in str(caught.value)
    assert "alias" in str(caught.value)
    assert not marker.exists()


async def test_deep_nesting_in_a_patch_file_is_refused(tmp_path: Path) -> None:
    """Files below the kustomization root (patches, not only resources) are screened too."""
    deep = "a: " + "[" * 300 + "]" * 300 + "\n"
    tree(tmp_path, {"app/kustomization.yaml": "resources: [cm.yaml]\n", "app/cm.yaml": cm("x"),
                    "app/patches/deep.yaml": deep})
    with pytest.raises(RenderError, match=r"app/patches/deep.yaml is refused before kustomize runs: .*nested"):
        await render(tmp_path, "app")


async def test_screening_passes_valid_and_merely_broken_files(tmp_path: Path) -> None:
    """A syntax error in a file kustomize does not read is not a budget violation: the build runs."""
    tree(tmp_path, {"app/kustomization.yaml": "resources: [cm.yaml]\n", "app/cm.yaml": cm("x"),
                    "app/notes/unused.yaml": "key: [unclosed\n"})
    result = await render(tmp_path, "app")
    assert names(result.objects) == ["ConfigMap/x"]


async def test_kustomize_runs_under_a_memory_limit(tmp_path: Path) -> None:
    """Past the screening, a build that blows its address-space limit dies and is reported as such,
    instead of growing to the machine's memory (it reached 10.9 GB without a limit)."""
    from core.desired.kustomize import build, kustomize_command

    tree(tmp_path, {"app/kustomization.yaml": "resources: [bomb.yaml]\n", "app/bomb.yaml": BOMB})
    with pytest.raises(RenderError, match=r"ran out of its 1024 MiB memory limit"):
        await build(tmp_path / "app", root=tmp_path, timeout=60, max_bytes=10 << 20,
                    command=kustomize_command(), memory_limit=1 << 30)
