"""Helm charts: option mapping (fleet file, Argo CD), ``helm template`` arguments, the missing-binary error,
and renders with the real helm (built by scripts/build-helm) compared with ``helm template`` run directly."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.desired import helm as helm_module
from core.desired.fleet_file import fleet_schema, load_fleet
from core.desired.helm import Capabilities, escape_set_value, template_args, value_file, with_capabilities
from core.desired.imported import argo_helm, discover_imported_apps
from core.desired.kustomize import RenderTimeout
from core.desired.render import Renderer, render, value_file_paths
from core.desired.repo import ConfigRepo
from core.desired.spec import AppSpec, ClusterSpec, HelmOptions, HelmParameter, RepoSpec
from core.errors import ConfigError, RenderError
from tests.core.test_repo import Work

CORPUS_CHART = Path(__file__).parents[3] / "shared" / "corpus" / "argocd-example-apps" / "helm-guestbook"
"""The public example chart (read-only data); tests copy it into their tmp dir."""


def corpus_chart() -> Path:
    """The corpus chart, or skip when this checkout has no shared/ corpus beside it."""
    for candidate in (CORPUS_CHART, Path("/work/shared/corpus/argocd-example-apps/helm-guestbook")):
        if (candidate / "Chart.yaml").is_file():
            return candidate
    pytest.skip("the shared corpus (argocd-example-apps/helm-guestbook) is not available")


def chart_repo(tmp_path: Path) -> Path:
    """A tree holding a copy of helm-guestbook at ``charts/guestbook``."""
    root = tmp_path / "tree"
    shutil.copytree(corpus_chart(), root / "charts" / "guestbook")
    return root


def fleet_text(helm: str) -> str:
    """A fleet file with one chart app and the given ``helm:`` block (indented under the app)."""
    block = textwrap.indent(textwrap.dedent(helm), "    ")
    return f"repo:\n  url: .\nclusters:\n  - name: a\napps:\n  - name: guestbook\n    path: charts/guestbook\n" \
           f"    namespace: gb\n{block}"


# ---------------------------------------------------------------------------------------------- mapping


def test_fleet_file_helm_block_maps_to_options(tmp_path: Path) -> None:
    """Every key of ``helm:`` lands in HelmOptions; inline values become canonical JSON; numbers and booleans
    in parameters become --set text."""
    path = tmp_path / "fleetdeck.yaml"
    path.write_text(fleet_text("""\
        helm:
          releaseName: gb-prod
          valueFiles: [values-production.yaml, ../shared.yaml]
          ignoreMissingValueFiles: true
          values: {replicaCount: 3, image: {tag: v6}}
          parameters:
            - {name: service.port, value: 8080}
            - {name: ingress.enabled, value: false}
            - {name: podAnnotations.rev, value: "1", forceString: true}
          includeCRDs: false
          kubeVersion: 1.36.3
          apiVersions: [monitoring.coreos.com/v1]
    """))
    app = load_fleet(path).apps[0]
    assert app.helm == HelmOptions(
        release_name="gb-prod", value_files=("values-production.yaml", "../shared.yaml"),
        values='{"image": {"tag": "v6"}, "replicaCount": 3}',
        parameters=(HelmParameter("service.port", "8080"), HelmParameter("ingress.enabled", "false"),
                    HelmParameter("podAnnotations.rev", "1", force_string=True)),
        include_crds=False, ignore_missing_value_files=True, kube_version="1.36.3",
        api_versions=("monitoring.coreos.com/v1",))
    assert app.helm_options().release_name == "gb-prod"


def test_helm_block_validates_with_the_reference_jsonschema(tmp_path: Path) -> None:
    """The schema ``fleetdeck schema`` prints accepts a full ``helm:`` block with the reference implementation
    too, and rejects an unknown key in it."""
    jsonschema = pytest.importorskip("jsonschema")
    text = fleet_text("""\
        helm:
          releaseName: gb
          valueFiles: [values-production.yaml]
          values: {replicaCount: 3}
          parameters: [{name: a, value: 1}, {name: b, value: x, forceString: true}]
          includeCRDs: true
          ignoreMissingValueFiles: false
          kubeVersion: v1.36.3
          apiVersions: [a/v1]
    """)
    jsonschema.validate(yaml.safe_load(text), fleet_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(fleet_text("helm: {chart: x}\n")), fleet_schema())


def test_release_name_defaults_to_the_app_name(tmp_path: Path) -> None:
    """Without ``helm:`` (or without releaseName) the release is named after the app; CRDs are included."""
    path = tmp_path / "fleetdeck.yaml"
    path.write_text(fleet_text(""))
    app = load_fleet(path).apps[0]
    assert app.helm is None
    assert app.helm_options() == HelmOptions(release_name="guestbook", include_crds=True)


@pytest.mark.parametrize(("block", "field"), [
    ("helm: {releaseName: Bad_Name}", "releaseName"),
    ("helm: {parameters: [{name: a}]}", "value"),
    ("helm: {valueFile: [x.yaml]}", "valueFile"),
    ("helm: {kubeVersion: latest}", "kubeVersion"),
])
def test_bad_helm_block_names_the_field(tmp_path: Path, block: str, field: str) -> None:
    """Schema errors in ``helm:`` name the file, line and field."""
    path = tmp_path / "fleetdeck.yaml"
    path.write_text(fleet_text(block + "\n"))
    with pytest.raises(ConfigError) as caught:
        load_fleet(path)
    assert "fleetdeck.yaml:9" in str(caught.value) and field in str(caught.value)


def test_schema_helm_keys_match_the_options() -> None:
    """Every HelmOptions field has a key in the schema's ``helm`` definition and no key lacks a field."""
    keys = set(fleet_schema()["$defs"]["helm"]["properties"])
    assert keys == {"releaseName", "valueFiles", "values", "parameters", "includeCRDs", "ignoreMissingValueFiles",
                    "kubeVersion", "apiVersions"}
    assert len(keys) == len(HelmOptions.__dataclass_fields__)
    assert set(fleet_schema()["$defs"]["helmParameter"]["properties"]) == {"name", "value", "forceString"}


def test_argo_helm_source_maps_to_the_same_options() -> None:
    """Argo CD's spec.source.helm: valueFiles, values (text), parameters with forceString, releaseName, skipCrds."""
    options = argo_helm({
        "releaseName": "gb", "valueFiles": ["values-production.yaml"], "values": "replicaCount: 2\n",
        "parameters": [{"name": "image.tag", "value": "v6"}, {"name": "x", "value": "a,b", "forceString": True}],
        "skipCrds": True, "ignoreMissingValueFiles": True, "kubeVersion": "1.36.0", "apiVersions": ["a/v1"],
    })
    assert options == HelmOptions(
        release_name="gb", value_files=("values-production.yaml",), values="replicaCount: 2\n",
        parameters=(HelmParameter("image.tag", "v6"), HelmParameter("x", "a,b", force_string=True)),
        include_crds=False, ignore_missing_value_files=True, kube_version="1.36.0", api_versions=("a/v1",))
    assert argo_helm(None) is None


def test_argo_values_object_wins_over_values_text() -> None:
    """``valuesObject`` takes precedence over ``values``, as in Argo CD; defaults include CRDs."""
    options = argo_helm({"values": "a: 1\n", "valuesObject": {"b": {"c": 2}}})
    assert options is not None
    assert json.loads(options.values) == {"b": {"c": 2}}
    assert options.include_crds and options.release_name == ""


def test_imported_argo_application_carries_its_helm_options(tmp_path: Path) -> None:
    """An Argo CD Application whose source is a chart directory imports with its helm options; the release
    defaults to the Application's name."""
    app = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "helm-guestbook"},
           "spec": {"destination": {"name": "a", "namespace": "gb"},
                    "source": {"repoURL": "https://git.example/x.git", "path": "helm-guestbook",
                               "helm": {"valueFiles": ["values-production.yaml"],
                                        "parameters": [{"name": "replicaCount", "value": "2"}]}}}}
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "gb.yaml").write_text(yaml.safe_dump(app))
    (imported,) = discover_imported_apps(tmp_path, [ClusterSpec("a")], argocd=True, flux=False)
    assert isinstance(imported, AppSpec)
    assert imported.helm == HelmOptions(value_files=("values-production.yaml",),
                                        parameters=(HelmParameter("replicaCount", "2"),))
    assert imported.helm_options().release_name == "helm-guestbook"


# ---------------------------------------------------------------------------------------------- arguments


def test_template_arguments_follow_argo_cd_order() -> None:
    """Value files, then inline values, then --set/--set-string; CRDs, kube version and API versions."""
    options = HelmOptions(release_name="r", parameters=(HelmParameter("a", "1"), HelmParameter("b", "x", True)),
                          include_crds=True, kube_version="1.36.3", api_versions=("x/v1", "y/v1"))
    args = template_args("r", "charts/gb", namespace="ns", options=options, value_files=["charts/gb/v.yaml"],
                         inline_file="/tmp/inline.yaml")
    assert args == ["template", "r", "charts/gb", "--skip-tests", "--namespace", "ns",
                    "--values", "charts/gb/v.yaml", "--values", "/tmp/inline.yaml",
                    "--set", "a=1", "--set-string", "b=x", "--include-crds", "--kube-version", "1.36.3",
                    "--api-versions", "x/v1", "--api-versions", "y/v1"]


def test_cluster_capabilities_fill_only_what_the_app_leaves_unset() -> None:
    """The destination cluster's kube version and API versions apply unless the app sets its own."""
    cluster = Capabilities("v1.36.3", ("apps/v1", "x.test/v1", "x.test/v1/Widget"))
    assert with_capabilities(HelmOptions(), cluster) == HelmOptions(kube_version="v1.36.3",
                                                                    api_versions=cluster.api_versions)
    own = HelmOptions(kube_version="1.30.2", api_versions=("y.test/v1",))
    assert with_capabilities(own, cluster) == own


def test_set_values_escape_commas() -> None:
    """Helm splits --set on commas; unescaped ones are escaped, escaped ones kept."""
    assert escape_set_value("a,b") == "a\\,b"
    assert escape_set_value("a\\,b") == "a\\,b"
    assert escape_set_value("plain") == "plain"


def test_value_files_stay_inside_the_repository(tmp_path: Path) -> None:
    """A value file may be beside the chart or elsewhere in the repo, never outside it, a URL or a symlink out."""
    root = tmp_path / "repo"
    chart = root / "charts" / "gb"
    chart.mkdir(parents=True)
    (root / "shared.yaml").write_text("a: 1\n")
    assert value_file(root, chart, "../../shared.yaml") == root / "shared.yaml"
    assert value_file(root, chart, "/shared.yaml") == root / "shared.yaml"
    assert value_file(root, chart, "missing.yaml") is None
    with pytest.raises(RenderError, match="leaves the repository"):
        value_file(root, chart, "../../../etc/passwd")
    with pytest.raises(RenderError, match="URL"):
        value_file(root, chart, "https://example.invalid/values.yaml")
    (tmp_path / "outside.yaml").write_text("b: 2\n")
    (chart / "link.yaml").symlink_to(tmp_path / "outside.yaml")
    with pytest.raises(RenderError, match="symlink"):
        value_file(root, chart, "link.yaml")


# ---------------------------------------------------------------------------------------------- no helm


async def test_missing_helm_binary_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no helm on PATH and no FLEETDECK_HELM, a chart fails naming the chart and what to install."""
    root = tmp_path / "tree"
    (root / "chart" / "templates").mkdir(parents=True)
    (root / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: x\nversion: 0.1.0\n")
    monkeypatch.delenv("FLEETDECK_HELM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RenderError) as caught:
        await render(root, "chart")
    assert str(caught.value).startswith(
        "Helm chart at chart needs the helm binary: install Helm 3.x/4.x or set FLEETDECK_HELM")
    monkeypatch.setenv("FLEETDECK_HELM", str(tmp_path / "nope"))
    with pytest.raises(RenderError, match="nope is not an executable file"):
        await render(root, "chart")
    monkeypatch.setenv("FLEETDECK_HELM", "helm3")  # a bare name is looked up on PATH
    with pytest.raises(RenderError, match="helm3 is not an executable file"):
        await render(root, "chart")


async def test_a_kustomization_beside_chart_yaml_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A directory with both a kustomization and a Chart.yaml is built by kustomize (as before, and as Argo CD
    decides), so no helm is needed for it."""
    root = tmp_path / "tree"
    (root / "app").mkdir(parents=True)
    (root / "app" / "Chart.yaml").write_text("apiVersion: v2\nname: x\nversion: 0.1.0\n")
    (root / "app" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: k}\n")
    (root / "app" / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    monkeypatch.delenv("FLEETDECK_HELM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    (cm,) = (await render(root, "app")).objects
    assert cm["metadata"]["name"] == "k"


# ---------------------------------------------------------------------------------------------- real helm


def helm_direct(helm: Path, root: Path, *args: str) -> list[dict[str, Any]]:
    """``helm template`` run directly in ``root``, its documents parsed."""
    out = subprocess.run([str(helm), "template", *args], cwd=root, capture_output=True, text=True, check=True,
                         env={"HOME": str(root.parent), "PATH": ""})
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def by_key(objects: Any) -> dict[tuple[str, str], Any]:
    """Objects by (kind, name)."""
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


@pytest.mark.parametrize("values", [None, "values.yaml", "values-production.yaml"])
async def test_chart_renders_like_helm_template(tmp_path: Path, helm_binary: Path, values: str | None) -> None:
    """helm-guestbook renders to exactly what ``helm template`` prints, object by object, for each values file."""
    root = chart_repo(tmp_path)
    options = HelmOptions(release_name="gb", value_files=(values,) if values else ())
    result = await render(root, "charts/guestbook", namespace="gb", helm=options, helm_bin=str(helm_binary))
    flags = ["--values", f"charts/guestbook/{values}"] if values else []
    expected = helm_direct(helm_binary, root, "gb", "charts/guestbook", "--namespace", "gb", *flags)
    assert by_key(result.objects) == by_key(expected)
    assert set(by_key(result.objects)) == {("Service", "gb-helm-guestbook"), ("Deployment", "gb-helm-guestbook")}
    service = by_key(result.objects)[("Service", "gb-helm-guestbook")]
    assert service["spec"]["type"] == ("LoadBalancer" if values == "values-production.yaml" else "ClusterIP")


async def test_inline_values_and_parameters_apply_in_order(tmp_path: Path, helm_binary: Path) -> None:
    """Inline values override value files; parameters override both."""
    root = chart_repo(tmp_path)
    options = HelmOptions(release_name="gb", value_files=("values-production.yaml",),
                          values='{"replicaCount": 3, "image": {"tag": "v6"}}',
                          parameters=(HelmParameter("replicaCount", "4"),))
    result = await render(root, "charts/guestbook", namespace="gb", helm=options, helm_bin=str(helm_binary))
    deployment = by_key(result.objects)[("Deployment", "gb-helm-guestbook")]
    assert deployment["spec"]["replicas"] == 4
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v6")


async def test_missing_value_file_fails_unless_ignored(tmp_path: Path, helm_binary: Path) -> None:
    """A value file that does not exist is an error naming it, unless ignoreMissingValueFiles."""
    root = chart_repo(tmp_path)
    with pytest.raises(RenderError, match=r"'values-staging\.yaml' of the chart at charts/guestbook does not exist"):
        await render(root, "charts/guestbook", helm=HelmOptions(value_files=("values-staging.yaml",)),
                     helm_bin=str(helm_binary))
    ignored = HelmOptions(value_files=("values-staging.yaml",), ignore_missing_value_files=True)
    assert (await render(root, "charts/guestbook", helm=ignored, helm_bin=str(helm_binary))).objects


async def test_failing_template_reports_helm_stderr(tmp_path: Path, helm_binary: Path) -> None:
    """A template error is a RenderError carrying Helm's own message, with repo-relative paths."""
    root = tmp_path / "tree"
    (root / "bad" / "templates").mkdir(parents=True)
    (root / "bad" / "Chart.yaml").write_text("apiVersion: v2\nname: bad\nversion: 0.1.0\n")
    (root / "bad" / "templates" / "x.yaml").write_text("{{ fail \"values are wrong\" }}\n")
    with pytest.raises(RenderError, match=r"helm template of bad failed: .*values are wrong") as caught:
        await render(root, "bad", helm_bin=str(helm_binary))
    assert str(tmp_path) not in str(caught.value)


async def test_capabilities_reach_the_chart(tmp_path: Path, helm_binary: Path) -> None:
    """kubeVersion and apiVersions are what the chart sees as .Capabilities."""
    root = tmp_path / "tree"
    (root / "cap" / "templates").mkdir(parents=True)
    (root / "cap" / "Chart.yaml").write_text("apiVersion: v2\nname: cap\nversion: 0.1.0\n")
    (root / "cap" / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cap}\n"
        "data:\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
        "  monitoring: {{ .Capabilities.APIVersions.Has \"monitoring.coreos.com/v1\" | quote }}\n")
    options = HelmOptions(release_name="c", kube_version="1.36.3", api_versions=("monitoring.coreos.com/v1",))
    (cm,) = (await render(root, "cap", helm=options, helm_bin=str(helm_binary))).objects
    assert cm["data"] == {"kube": "v1.36.3", "monitoring": "true"}


async def test_unchanged_chart_is_served_from_the_content_cache(tmp_path: Path, helm_binary: Path) -> None:
    """A second render of the same chart, values and arguments, even from another tree, does not run helm;
    a changed values file does."""
    first, second = chart_repo(tmp_path / "1"), chart_repo(tmp_path / "2")
    options = HelmOptions(release_name="gb", value_files=("values.yaml",))
    hits = helm_module.OUTPUTS.hits
    await render(first, "charts/guestbook", helm=options, helm_bin=str(helm_binary))
    start = time.perf_counter()
    await render(second, "charts/guestbook", helm=options, helm_bin=str(helm_binary))
    cached_ms = (time.perf_counter() - start) * 1000
    assert helm_module.OUTPUTS.hits == hits + 1
    assert cached_ms < 500  # generous for a shared machine; docs/helm.md gives the measured figure
    (second / "charts" / "guestbook" / "values.yaml").write_text("replicaCount: 5\nservice: {type: ClusterIP, port: 80}\n"
                                                                 "image: {repository: r, tag: t, pullPolicy: Never}\n"
                                                                 "containerPort: 80\ningress: {enabled: false}\n")
    changed = await render(second, "charts/guestbook", helm=options, helm_bin=str(helm_binary))
    assert helm_module.OUTPUTS.hits == hits + 1
    assert by_key(changed.objects)[("Deployment", "gb-helm-guestbook")]["spec"]["replicas"] == 5


async def test_hooks_are_applied_as_objects_with_a_warning(tmp_path: Path, helm_binary: Path) -> None:
    """A Helm hook (not a test) is rendered as an ordinary object and the render warns, naming it; test hooks
    are left out (--skip-tests)."""
    root = tmp_path / "tree"
    (root / "hooks" / "templates").mkdir(parents=True)
    (root / "hooks" / "Chart.yaml").write_text("apiVersion: v2\nname: hooks\nversion: 0.1.0\n")
    (root / "hooks" / "templates" / "hook.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: migrate\n  annotations: {helm.sh/hook: pre-install}\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: smoke\n  annotations: {helm.sh/hook: test}\n")
    result = await render(root, "hooks", helm_bin=str(helm_binary))
    assert [o["metadata"]["name"] for o in result.objects] == ["migrate"]
    assert any("migrate" in w and "pre-install" in w and "hook" in w for w in result.warnings), result.warnings


async def test_a_render_over_its_timeout_is_killed(tmp_path: Path, helm_binary: Path) -> None:
    """helm is killed at the render timeout and the error says so (RenderTimeout: retried later, not cached)."""
    root = chart_repo(tmp_path)
    with pytest.raises(RenderTimeout, match=r"did not finish in 0\.001s and was killed"):
        await render(root, "charts/guestbook", helm=HelmOptions(release_name="slow"), helm_bin=str(helm_binary),
                     timeout=0.001)


async def test_history_lists_commits_to_value_files_outside_the_chart(tmp_path: Path, helm_binary: Path) -> None:
    """A commit changing only a value file kept outside the chart directory changes the app's render, so
    history lists it; an unrelated commit is not listed. The render cache keys on the chart options."""
    work = Work(tmp_path)
    repo = ConfigRepo(RepoSpec(url=work.url), tmp_path / "cache")
    files = {f"charts/gb/{p.relative_to(corpus_chart()).as_posix()}": p.read_text()
             for p in corpus_chart().rglob("*") if p.is_file()}
    files["envs/prod.yaml"] = "replicaCount: 2\n"
    work.commit(files, "chart and prod values")
    work.commit({"README.md": "docs\n"}, "unrelated")
    work.commit({"envs/prod.yaml": "replicaCount: 3\n"}, "prod: 3 replicas")
    await repo.fetch()
    renderer = Renderer(helm=str(helm_binary))
    options = HelmOptions(release_name="gb", value_files=("../../envs/prod.yaml",))
    revisions = await renderer.history(repo, "charts/gb", namespace="gb", helm=options)
    assert [r.subject for r in revisions] == ["prod: 3 replicas", "chart and prod values"]
    assert value_file_paths("charts/gb", ("values.yaml", "../../envs/prod.yaml", "/envs/a.yaml", "../../../x",
                                          "https://h/v.yaml")) == ("charts/gb/values.yaml", "envs/prod.yaml",
                                                                   "envs/a.yaml")


async def test_a_chart_with_a_symlinked_directory_is_not_content_cached(tmp_path: Path, helm_binary: Path) -> None:
    """A symlinked directory inside the chart (to elsewhere in the repo) is followed by Helm but not hashed,
    so such a chart always runs helm: a change behind the link is never served stale."""
    root = chart_repo(tmp_path)
    shared = root / "shared-templates"
    shared.mkdir()
    (shared / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: linked}\ndata: {v: '1'}\n")
    (root / "charts" / "guestbook" / "templates" / "linked").symlink_to(shared, target_is_directory=True)
    options = HelmOptions(release_name="ln")
    first = await render(root, "charts/guestbook", helm=options, helm_bin=str(helm_binary))
    assert by_key(first.objects)[("ConfigMap", "linked")]["data"] == {"v": "1"}
    (shared / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: linked}\ndata: {v: '2'}\n")
    second = await render(root, "charts/guestbook", helm=options, helm_bin=str(helm_binary))
    assert by_key(second.objects)[("ConfigMap", "linked")]["data"] == {"v": "2"}
