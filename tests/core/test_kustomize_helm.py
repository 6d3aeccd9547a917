"""kustomize ``helmCharts``: built with the real ``kubectl kustomize --enable-helm`` and the real helm, from a
chart in the repo (``helmGlobals.chartHome``) and from a chart repository served on 127.0.0.1, compared object
by object with ``kubectl kustomize --enable-helm`` run directly; the shared tree is never written."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.desired.kustomize import RenderTimeout, kustomize_command
from core.desired.render import render, watched_paths
from core.errors import RenderError
from tests.core.test_helm import by_key, corpus_chart
from tests.core.test_render import BOMB
from tests.fixtures.chart_servers import serve_chart_repo


def tree_state(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its sha256 (to prove a render wrote nothing there)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def kustomize_direct(helm: Path, root: Path, app: str, scratch: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize --enable-helm`` run directly on a copy of ``root`` (it writes pulled charts)."""
    copy = scratch / "direct"
    shutil.copytree(root, copy)
    (scratch / "home").mkdir(exist_ok=True)
    out = subprocess.run([*kustomize_command(), app, "--enable-helm", "--helm-command", str(helm)], cwd=copy,
                         capture_output=True, text=True, check=True, env={"HOME": str(scratch / "home"), "PATH": ""})
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def write_kustomization(directory: Path, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kustomization.yaml").write_text(textwrap.dedent(text))


LOCAL = """\
    namespace: gb
    helmGlobals:
      chartHome: ../charts
    helmCharts:
      - name: guestbook
        releaseName: gb
        valuesFile: values-prod.yaml
        valuesInline: {replicaCount: 3}
    resources: [extra.yaml]
    commonLabels: {team: web}
"""


def local_tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    shutil.copytree(corpus_chart(), root / "charts" / "guestbook")
    write_kustomization(root / "app", LOCAL)
    (root / "app" / "values-prod.yaml").write_text("service: {type: NodePort}\n")
    (root / "app" / "extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n")
    return root


async def test_chart_in_the_repo_renders_like_kustomize_enable_helm(tmp_path: Path, helm_binary: Path) -> None:
    """A chart under the repo's chartHome (here beside the app, ``../charts``) with a values file and inline
    values renders exactly as ``kubectl kustomize --enable-helm`` does, and the tree is left as it was."""
    root = local_tree(tmp_path)
    before = tree_state(root)
    result = await render(root, "app", helm_bin=str(helm_binary))
    assert tree_state(root) == before
    expected = kustomize_direct(helm_binary, root, "app", tmp_path)
    assert by_key(result.objects) == by_key(expected)
    assert set(by_key(result.objects)) == {("Service", "gb-helm-guestbook"), ("Deployment", "gb-helm-guestbook"),
                                           ("ConfigMap", "extra")}
    deployment = by_key(result.objects)[("Deployment", "gb-helm-guestbook")]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["metadata"]["labels"]["team"] == "web", deployment["metadata"]
    assert by_key(result.objects)[("Service", "gb-helm-guestbook")]["spec"]["type"] == "NodePort"
    assert "charts" in watched_paths(root, "app")  # history sees commits to the chart home


async def test_chart_from_a_repository_is_pulled_into_a_private_copy(tmp_path: Path, helm_binary: Path) -> None:
    """A chart named by ``repo:`` + ``version:`` is pulled by kustomize (``helm pull``) from a chart repository
    on 127.0.0.1 into a private copy: the render equals ``kubectl kustomize --enable-helm`` run directly, and the
    tree (which kustomize would have written ``charts/guestbook-0.1.0/`` into) is unchanged."""
    root = tmp_path / "tree"
    with serve_chart_repo(helm_binary, [corpus_chart()], tmp_path / "repo") as (url, requests):
        write_kustomization(root / "app", f"""\
            helmCharts:
              - name: helm-guestbook
                repo: {url}
                version: 0.1.0
                releaseName: gb
                namespace: gb
                valuesInline: {{service: {{type: NodePort}}}}
        """)
        before = tree_state(root)
        result = await render(root, "app", helm_bin=str(helm_binary))
        assert tree_state(root) == before and not (root / "app" / "charts").exists()
        assert "/index.yaml" in requests and "/helm-guestbook-0.1.0.tgz" in requests
        expected = kustomize_direct(helm_binary, root, "app", tmp_path)
    assert by_key(result.objects) == by_key(expected)
    assert set(by_key(result.objects)) == {("Service", "gb-helm-guestbook"), ("Deployment", "gb-helm-guestbook")}


async def test_missing_helm_is_the_same_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without helm, a kustomization using helmCharts fails naming the directory and what to install; one
    without helmCharts still builds with no helm."""
    root = local_tree(tmp_path)
    write_kustomization(root / "plain", "resources: [cm.yaml]\n")
    (root / "plain" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: k}\n")
    monkeypatch.delenv("FLEETDECK_HELM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RenderError) as caught:
        await render(root, "app")
    assert str(caught.value).startswith("kustomization at app uses helmCharts and needs the helm binary: "
                                        "install Helm 3.x/4.x or set FLEETDECK_HELM")
    (cm,) = (await render(root, "plain")).objects
    assert cm["metadata"]["name"] == "k"


@pytest.mark.parametrize(("entry", "message"), [
    ("- {name: c, repo: 'https://charts.example/x'}", "without a version; fleetdeck renders only pinned charts"),
    ("- {name: c, repo: 'file:///etc', version: 1.0.0}", "is not an https://, http:// or oci:// chart repository"),
    ("- {name: c, valuesFile: 'https://x.example/v.yaml'}", "is a URL; only files of the repository are read"),
    ("- {name: c}\nhelmGlobals: {chartHome: /var/charts}", "helmGlobals.chartHome '/var/charts' of app leaves"),
    ("- {name: c}\nhelmGlobals: {chartHome: ../../x}", "helmGlobals.chartHome '../../x' of app leaves"),
    ("- {name: c}\nhelmGlobals: {configHome: /tmp/h}", "helmGlobals.configHome '/tmp/h' of app leaves"),
    ("- {name: c, repo: 'https://c.example', version: 1.0.0}\npatches: [{path: 'http://127.0.0.1:9/p.yaml'}]",
     "remote file 'http://127.0.0.1:9/p.yaml' in app is disabled"),
    ("- {name: c, repo: 'https://c.example', version: 1.0.0}\nconfigMapGenerator: [{name: g, files: ['https://x/f']}]",
     "remote file 'https://x/f' in app is disabled"),
])
async def test_unsafe_helm_charts_are_refused_before_kustomize_runs(
    tmp_path: Path, entry: str, message: str
) -> None:
    """Unpinned or non-HTTP chart repositories, remote values files and homes outside the repo are refused."""
    root = tmp_path / "tree"
    write_kustomization(root / "app", f"helmCharts:\n{entry}\n")
    with pytest.raises(RenderError, match=message.replace("(", r"\(").replace(".", r"\.").replace("/", "/")):
        await render(root, "app", helm_bin="/nonexistent/helm")


@pytest.mark.parametrize(("home", "where"), [("charts", "app/charts/c/values.yaml"),
                                             ("../shared-charts", "shared-charts/c/values.yaml")])
async def test_chart_home_is_screened_before_kustomize_runs(tmp_path: Path, home: str, where: str) -> None:
    """An alias bomb in a chart under the chart home (inside the app or elsewhere in the repo) is refused by
    the input screening, before kustomize or helm starts."""
    root = tmp_path / "tree"
    write_kustomization(root / "app", f"helmGlobals: {{chartHome: {home}}}\nhelmCharts: [{{name: c}}]\n")
    chart = Path(f"{root / 'app'}/{home}/c")
    chart.mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text(BOMB)
    with pytest.raises(RenderError, match=f"{where} is refused before kustomize runs"):
        await render(root, "app", helm_bin="/nonexistent/helm")


async def test_output_cap_applies(tmp_path: Path, helm_binary: Path) -> None:
    """kustomize's output with the charts inflated (two releases, ~2.6 kB; no input file over 1.5 kB) is held to
    max_manifest_bytes like any build."""
    root = local_tree(tmp_path)
    write_kustomization(root / "app", """\
        helmGlobals: {chartHome: ../charts}
        helmCharts:
          - {name: guestbook, releaseName: one, valuesFile: values-prod.yaml}
          - {name: guestbook, releaseName: two, valuesFile: values-prod.yaml}
    """)
    with pytest.raises(RenderError, match="kustomize output of app is over the 2000-byte limit"):
        await render(root, "app", helm_bin=str(helm_binary), max_bytes=2000)


async def test_a_chart_repository_that_never_answers_is_killed_at_the_timeout(
    tmp_path: Path, helm_binary: Path
) -> None:
    """The chart download runs inside the build's timeout: a repository that never sends the chart gets the
    build (kustomize and its helm) killed, reported as a timeout, and nothing is left in the tree."""
    root = tmp_path / "tree"
    with serve_chart_repo(helm_binary, [corpus_chart()], tmp_path / "repo", stall=".tgz") as (url, requests):
        write_kustomization(root / "app", f"helmCharts: [{{name: helm-guestbook, repo: '{url}', version: 0.1.0}}]\n")
        before = tree_state(root)
        with pytest.raises(RenderTimeout, match=r"did not finish in 3s and was killed"):
            await render(root, "app", helm_bin=str(helm_binary), timeout=3)
        assert "/helm-guestbook-0.1.0.tgz" in requests
    assert tree_state(root) == before


async def test_symlinks_in_a_helm_charts_tree(tmp_path: Path, helm_binary: Path) -> None:
    """The private copy keeps relative links as links (a loop does not make it recurse; the render equals
    kubectl's) and refuses an absolute one, which could lead back into the shared tree."""
    root = local_tree(tmp_path)
    (root / "app" / "loop").symlink_to("..")
    result = await render(root, "app", helm_bin=str(helm_binary))
    assert len(result.objects) == 3
    (root / "app" / "loop").unlink()
    (root / "app" / "abs").symlink_to(root / "charts")
    with pytest.raises(RenderError, match="app/abs is an absolute symlink; refused"):
        await render(root, "app", helm_bin=str(helm_binary))
