"""Flux Kustomization fidelity: envsubst, the generated kustomization, post-build substitution, the render
cache key, and the flux2-kustomize-helm-example corpus compared with ``kubectl kustomize`` on hand-written
overlays."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.desired.envsubst import SubstitutionError, substitute
from core.desired.flux import (
    SubstitutionValues,
    load_substitutions,
    make_flux_tree,
    merge_kustomization,
    remove_flux_tree,
    substitute_output,
)
from core.desired.imported import discover_imported_apps, flux_options
from core.desired.kustomize import kustomize_command
from core.desired.render import Renderer, render
from core.desired.spec import ClusterSpec, FluxImage, FluxOptions, FluxPatch, SubstituteRef
from core.errors import RenderError
from tests.core.test_render import app_repo, tree

CORPUS = Path("/work/shared/corpus/flux2-kustomize-helm-example")

# ---------------------------------------------------------------------------------------------- envsubst


@pytest.mark.parametrize(("text", "expected"), [
    ("${a}", "x"),
    ("pre-${a}-post", "pre-x-post"),
    ("$${a}", "${a}"),
    ("$$", "$"),
    ("$a and $ alone", "$a and $ alone"),
    ("${unset}", ""),
    ("${unset:=fallback}", "fallback"),
    ("${unset:-fallback}", "fallback"),
    ("${unset=fallback}", "fallback"),
    ("${empty:=fallback}", "fallback"),
    ("${a:=fallback}", "x"),
    ("${unset:=${a}-${a}}", "x-x"),
    ("${path^^}", "HELLO/WORLD"),
    ("${path^}", "Hello/world"),
    ("${#path}", "11"),
    ("${path:1:3}", "ell"),
    ("${path:-5}", "hello/world"),
    ("${path#*/}", "world"),
    ("${path%/*}", "hello"),
    ("${path//o/0}", "hell0/w0rld"),
    ("${path/o/0}", "hell0/world"),
    ("${path/#hello/bye}", "bye/world"),
    ("${path/%world/moon}", "hello/moon"),
])
def test_envsubst_expressions(text: str, expected: str) -> None:
    """The expressions of Flux's envsubst fork expand as it does (``$var`` is not a variable)."""
    assert substitute(text, {"a": "x", "empty": "", "path": "hello/world"}) == expected


@pytest.mark.parametrize("text", ["${a.b}", "${ a}", "${a-b}", "${a", "${}", "${a:=" * 5000 + "x" + "}" * 5000])
def test_envsubst_malformed_expressions_fail(text: str) -> None:
    """What the fork's parser refuses fails the build (Flux fails the Kustomization)."""
    with pytest.raises(SubstitutionError):
        substitute(text, {"a": "x"})


def test_envsubst_strict_mode_names_the_variable_never_a_value() -> None:
    """Strict mode (Flux's StrictPostBuildSubstitutions gate) refuses an unset variable without default."""
    with pytest.raises(SubstitutionError, match='variable not set \\(strict mode\\): "missing"') as caught:
        substitute("${missing} ${known}", {"known": "s3cr3t-value"}, strict=True)
    assert "s3cr3t" not in str(caught.value)
    assert substitute("${missing:=d}", {}, strict=True) == "d"


# ---------------------------------------------------------------------------------------------- post-build


def _built(*objects: dict[str, Any]) -> str:
    return "".join(("---\n" if i else "") + yaml.safe_dump(o, sort_keys=False) for i, o in enumerate(objects))


def test_substitution_skips_opted_out_objects_and_types_follow_yaml() -> None:
    """Each object's YAML is expanded (so ``replicas: ${n}`` becomes a number); objects labelled or annotated
    ``kustomize.toolkit.fluxcd.io/substitute: disabled`` stay as built; with no variable nothing changes."""
    text = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: ${replicas}\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: raw\n  annotations:\n"
        "    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  k: ${replicas}\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: raw2\n  labels:\n"
        "    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  k: ${replicas}\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: esc\ndata:\n  k: $${replicas} ${gone}\n"
    )
    flux = FluxOptions(substitute=(("replicas", "3"),))
    result = substitute_output(text, flux, SubstitutionValues())
    docs = list(yaml.safe_load_all(result.text))
    assert docs[0]["spec"]["replicas"] == 3
    assert docs[1]["data"]["k"] == "${replicas}" and docs[2]["data"]["k"] == "${replicas}"
    assert docs[3]["data"]["k"] == "${replicas}"  # the plain scalar loses its trailing space
    assert result.substituted == 2 and "gone" in result.warnings[0]
    assert substitute_output(text, FluxOptions(), SubstitutionValues()).text == text  # no variables: untouched


def test_substitute_wins_over_substitute_from_and_names_are_checked() -> None:
    """Inline ``substitute`` overrides ``substituteFrom``; an invalid variable name fails the build."""
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: ${v}\n"
    flux = FluxOptions(substitute=(("v", "inline"),))
    result = substitute_output(text, flux, SubstitutionValues.of({"v": "from-cluster"}))
    assert "k: inline" in result.text
    with pytest.raises(RenderError, match="'bad-name' var name is invalid"):
        substitute_output(text, FluxOptions(), SubstitutionValues.of({"bad-name": "x"}))


def test_secret_values_landing_outside_secrets_are_named_not_shown() -> None:
    """A Secret-sourced variable substituted into a ConfigMap gets a warning naming the object and the
    variable; the value appears in no warning (a Secret object carrying it needs none: it is masked)."""
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leak\ndata:\n  k: ${token}\n"
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: fine\nstringData:\n  k: ${token}\n")
    result = substitute_output(text, FluxOptions(), SubstitutionValues.of({"token": "s3cr3t"}, frozenset({"token"})))
    assert result.text.count("s3cr3t") == 2
    (note,) = result.warnings
    assert "ConfigMap leak (token)" in note and "Secret fine" not in note and "s3cr3t" not in note


async def test_load_substitutions_order_optional_and_missing() -> None:
    """Sources are read in order (later wins), Secrets base64-decoded, newlines removed; a missing optional
    source is skipped; a missing required one is an error naming it, never any data."""
    store = {("ConfigMap", "vars"): {"data": {"a": "1", "b": "cm\n"}},
             ("Secret", "creds"): {"data": {"b": base64.b64encode(b"s3cr3t").decode()}}}

    async def get(kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        assert namespace == "flux-system"
        return store.get((kind, name))

    refs = (SubstituteRef("ConfigMap", "vars"), SubstituteRef("Secret", "creds"),
            SubstituteRef("ConfigMap", "absent", optional=True))
    values = await load_substitutions(refs, "flux-system", get)
    assert dict(values.values) == {"a": "1", "b": "s3cr3t"} and values.secret_names == {"b"}
    assert "s3cr3t" not in repr(values) and "s3cr3t" not in values.digest
    with pytest.raises(RenderError, match="Secret/nope") as caught:
        await load_substitutions((*refs, SubstituteRef("Secret", "nope")), "flux-system", get)
    assert "s3cr3t" not in str(caught.value)


# ---------------------------------------------------------------------------------------------- the generated kustomization


def test_merge_kustomization_follows_kustomize_controller() -> None:
    """targetNamespace replaces namespace, prefix/suffix replace, patches and components append, images merge."""
    original = {"resources": ["a.yaml"], "namespace": "old", "namePrefix": "p-",
                "patches": [{"path": "p.yaml"}], "images": [{"name": "nginx", "newTag": "1"}]}
    flux = FluxOptions(target_namespace="new", name_suffix="-s",
                       patches=(FluxPatch("- op: add\n  path: /x\n  value: 1\n", '{"kind": "ConfigMap"}'),),
                       images=(FluxImage("nginx", new_name="mirror/nginx"), FluxImage("redis", new_tag="7")))
    merged = merge_kustomization(original, flux, ["../c"])
    assert merged["namespace"] == "new" and merged["namePrefix"] == "p-" and merged["nameSuffix"] == "-s"
    assert merged["patches"][1] == {"patch": "- op: add\n  path: /x\n  value: 1\n", "target": {"kind": "ConfigMap"}}
    assert merged["components"] == ["../c"]
    assert merged["images"] == [{"name": "nginx", "newTag": "1", "newName": "mirror/nginx"},
                                {"name": "redis", "newTag": "7"}]


def test_flux_tree_is_private_and_the_shared_tree_is_untouched(tmp_path: Path) -> None:
    """The generated kustomization lives in a private copy beside the tree; the tree itself is not written."""
    root = tree(tmp_path / "trees" / "repo" / "sha", {
        "app/a.yaml": _cm("a"), "app/sub/kustomization.yaml": "resources: [b.yaml]\n", "app/sub/b.yaml": _cm("b"),
        "app/notes.txt": "x",
    })
    before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    mirror = make_flux_tree(root, root / "app", FluxOptions(target_namespace="ns"))
    try:
        generated = json.loads((mirror / "app" / "kustomization.yaml").read_text())
        assert generated["resources"] == ["a.yaml", "sub"] and generated["namespace"] == "ns"
        assert mirror.parent == root.parent and mirror.name.startswith(".flux-build-")
    finally:
        remove_flux_tree(mirror)
    assert not mirror.exists()
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == before


def _cm(name: str, data: str = "v: '1'") -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  {data}\n"


async def test_render_plain_directory_with_patches_prefix_and_substitution(tmp_path: Path) -> None:
    """A path without kustomization.yaml gets one (every manifest), then Flux's fields and substitution."""
    root = tree(tmp_path / "t" / "sha", {
        "app/a.yaml": _cm("a", "v: ${greeting:=hi}"),
        "app/b.yml": _cm("b"),
        "app/readme.json": '{"not": "a manifest for Flux"}',
    })
    flux = FluxOptions(target_namespace="team", name_prefix="x-",
                       patches=(FluxPatch("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  w: '2'\n"),),
                       substitute=(("greeting", "hello"),))
    result = await render(root, "app", flux=flux)
    objects = {o["metadata"]["name"]: o for o in result.objects}
    assert set(objects) == {"x-a", "x-b"}
    assert {o["metadata"]["namespace"] for o in objects.values()} == {"team"}
    assert objects["x-a"]["data"] == {"v": "hello"} and objects["x-b"]["data"] == {"v": "1", "w": "2"}


async def test_common_metadata_is_set_on_every_object(tmp_path: Path) -> None:
    """``commonMetadata`` labels and annotations land on every object, overriding the same keys."""
    root = tree(tmp_path / "t" / "sha", {
        "app/kustomization.yaml": "resources: [a.yaml]\n",
        "app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {team: old, keep: 'y'}\n",
    })
    flux = FluxOptions(common_labels=(("team", "web"),), common_annotations=(("owner", "ops"),))
    (obj,) = (await render(root, "app", flux=flux)).objects
    assert obj["metadata"]["labels"] == {"team": "web", "keep": "y"}
    assert obj["metadata"]["annotations"] == {"owner": "ops"}


async def test_strict_substitution_fails_the_render_naming_object_and_variable(tmp_path: Path) -> None:
    """With ``import.fluxStrictSubstitutions`` an unset variable without default fails the render."""
    root = tree(tmp_path / "t" / "sha", {"app/a.yaml": _cm("a", "v: ${known}-${unknown}")})
    loose = await render(root, "app", flux=FluxOptions(substitute=(("known", "k"),)))
    assert loose.objects[0]["data"] == {"v": "k-"} and any("unknown" in w for w in loose.warnings)
    with pytest.raises(RenderError, match=r'ConfigMap a: .*variable not set \(strict mode\): "unknown"'):
        await render(root, "app", flux=FluxOptions(substitute=(("known", "k"),), strict=True))


async def test_render_components_and_missing_component(tmp_path: Path) -> None:
    """``spec.components`` are added to the path's kustomization; a missing one fails unless ignored."""
    root = tree(tmp_path / "t" / "sha", {
        "app/kustomization.yaml": "resources: [a.yaml]\n", "app/a.yaml": _cm("a"),
        "comp/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
                                   "resources: [c.yaml]\n",
        "comp/c.yaml": _cm("c"),
    })
    result = await render(root, "app", flux=FluxOptions(components=("../comp",)))
    assert sorted(o["metadata"]["name"] for o in result.objects) == ["a", "c"]
    with pytest.raises(RenderError):
        await render(root, "app", flux=FluxOptions(components=("../nope",)))
    ignored = await render(root, "app", flux=FluxOptions(components=("../nope",), ignore_missing_components=True))
    assert [o["metadata"]["name"] for o in ignored.objects] == ["a"]
    with pytest.raises(RenderError, match="must be local and relative"):
        await render(root, "app", flux=FluxOptions(components=("../../../../etc",)))
    outside = tree(tmp_path / "outside", {"kustomization.yaml": "resources: [x.yaml]\n", "x.yaml": _cm("x")})
    (root / "linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(RenderError, match=r"linked is a symlink to .* outside the repository"):
        await render(root, "app", flux=FluxOptions(components=("../linked",)))


async def test_render_cache_keys_on_the_values_digest(tmp_path: Path) -> None:
    """substituteFrom values are asked at each render; equal values hit the cache, new values re-render."""
    work, repo = app_repo(tmp_path)
    work.commit({"app/a.yaml": _cm("a", "v: ${v}")}, "add app")
    head = await repo.fetch()
    renderer = Renderer()
    flux = FluxOptions(substitute_from=(SubstituteRef("ConfigMap", "vars"),))
    current = {"v": "one"}

    async def values() -> SubstitutionValues:
        return SubstitutionValues.of(dict(current))

    first = await renderer.render_app(repo, head.sha, path="app", flux=flux, substitutions=values)
    again = await renderer.render_app(repo, head.sha, path="app", flux=flux, substitutions=values)
    assert renderer.builds == 1 and first.objects[0]["data"] == {"v": "one"} == again.objects[0]["data"]
    current["v"] = "two"
    second = await renderer.render_app(repo, head.sha, path="app", flux=flux, substitutions=values)
    assert renderer.builds == 2 and second.objects[0]["data"] == {"v": "two"}


async def test_history_follows_a_component_outside_the_path(tmp_path: Path) -> None:
    """A commit changing only a Flux component (outside the app's path) is a revision that changed the app."""
    work, repo = app_repo(tmp_path)
    component = "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [c.yaml]\n"
    work.commit({"app/kustomization.yaml": "resources: [a.yaml]\n", "app/a.yaml": _cm("a"),
                 "comp/kustomization.yaml": component, "comp/c.yaml": _cm("c")}, "app with component")
    work.commit({"comp/c.yaml": _cm("c", "v: '2'")}, "component: v2")
    work.commit({"elsewhere/x.yaml": _cm("x")}, "unrelated")
    await repo.fetch()
    flux = FluxOptions(components=("../comp",))
    revisions = await Renderer().history(repo, "app", flux=flux)
    assert [r.subject for r in revisions] == ["component: v2", "app with component"]


async def test_import_reads_the_build_fields(tmp_path: Path) -> None:
    """The importer turns a Kustomization's build-time fields and dependsOn into the app spec."""
    root = tree(tmp_path, {"clusters/dev/app.yaml": """\
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: web, namespace: flux-system}
        spec:
          path: ./apps/web
          sourceRef: {kind: GitRepository, name: flux-system}
          dependsOn: [{name: infra}, {name: db, namespace: data}]
          targetNamespace: web
          namePrefix: p-
          images: [{name: nginx, newTag: "1.27"}]
          commonMetadata: {labels: {team: web}}
          components: [../../components/tls]
          patches:
            - patch: |
                - op: replace
                  path: /spec/replicas
                  value: 2
              target: {kind: Deployment, name: web}
          postBuild:
            substitute: {cluster: dev, replicas: 2}
            substituteFrom:
              - {kind: ConfigMap, name: vars}
              - {kind: Secret, name: creds, optional: true}
        """})
    (app,) = discover_imported_apps(root, [ClusterSpec("dev")])
    assert app.depends_on == ("infra", "data/db")
    assert app.flux is not None and app.flux.namespace == "flux-system"
    assert app.flux.patches[0].target == '{"kind": "Deployment", "name": "web"}'
    assert app.flux.substitute == (("cluster", "dev"), ("replicas", "2"))
    assert app.flux.substitute_from == (SubstituteRef("ConfigMap", "vars"), SubstituteRef("Secret", "creds", True))
    assert app.flux.images == (FluxImage("nginx", new_tag="1.27"),) and app.flux.components == ("../../components/tls",)
    assert app.flux.common_labels == (("team", "web"),) and not app.flux.strict
    (strict,) = discover_imported_apps(root, [ClusterSpec("dev")], flux_strict=True)
    assert strict.flux is not None and strict.flux.strict


# ---------------------------------------------------------------------------------------------- the Flux corpus


def _kubectl_kustomize(directory: Path) -> list[dict[str, Any]]:
    command = kustomize_command()
    out = subprocess.run([*command, str(directory)], check=True, capture_output=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _by_key(objects: Any) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects}


# What a reader writes by hand for each staging Kustomization: an overlay around its repo path with the
# object's fields (only infra-configs has any: a JSON6902 patch of the ClusterIssuer).
_OVERLAYS = {
    "infra-controllers": ("infrastructure/controllers", "resources: [../../infrastructure/controllers]\n"),
    "infra-configs": ("infrastructure/configs", textwrap.dedent("""\
        resources: [../../infrastructure/configs]
        patches:
          - patch: |
              - op: replace
                path: /spec/acme/server
                value: https://acme-staging-v02.api.letsencrypt.org/directory
            target: {kind: ClusterIssuer, name: letsencrypt}
        """)),
    "apps": ("apps/staging", "resources: [../../apps/staging]\n"),
}


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the Flux corpus is not on this machine")
async def test_flux_corpus_staging_renders_as_kubectl_kustomize_on_hand_written_overlays(tmp_path: Path) -> None:
    """Each Kustomization of clusters/staging, imported and rendered by fleetdeck, equals (object by object)
    ``kubectl kustomize`` of a hand-written overlay; HelmReleases stay objects."""
    repo = tmp_path / "repo"
    shutil.copytree(CORPUS, repo, ignore=shutil.ignore_patterns(".git"))
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    apps = {a.name: a for a in discover_imported_apps(repo, [ClusterSpec("staging"), ClusterSpec("production")])}
    hand = tmp_path / "hand"
    shutil.copytree(CORPUS, hand / "repo", ignore=shutil.ignore_patterns(".git"))
    for name, (path, overlay) in _OVERLAYS.items():
        app = _staging(apps, name)
        (staged,) = [p for c, p in app.targets([ClusterSpec("staging")]) if c.name == "staging"]
        assert staged == path, name
        ours = await render(repo, staged, flux=app.flux)
        overlay_dir = hand / "overlays" / name
        overlay_dir.mkdir(parents=True)
        (overlay_dir / "kustomization.yaml").write_text(overlay.replace("../../", "../../repo/"))
        expected = _by_key(_kubectl_kustomize(overlay_dir))
        got = _by_key(ours.objects)
        assert sorted(got) == sorted(expected), name
        for key, obj in expected.items():
            assert got[key] == obj, (name, key)
    issuer = _by_key((await render(repo, "infrastructure/configs", flux=_staging(apps, "infra-configs").flux)).objects)
    assert issuer[("ClusterIssuer", "", "letsencrypt")]["spec"]["acme"]["server"].startswith(
        "https://acme-staging-v02")
    assert any(k[0] == "HelmRelease" for k in _by_key((await render(repo, "apps/staging")).objects))


def _staging(apps: dict[str, Any], name: str) -> Any:
    return apps[name] if name in apps else apps[f"{name}-staging"]


def test_flux_options_of_the_corpus_patch() -> None:
    """The corpus's JSON6902 patch is read with its target."""
    obj = yaml.safe_load(textwrap.dedent("""\
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {name: infra-configs, namespace: flux-system}
        spec:
          patches:
            - patch: "- op: replace\\n  path: /spec/acme/server\\n  value: x\\n"
              target: {kind: ClusterIssuer, name: letsencrypt}
        """))
    options = flux_options(obj)
    assert options.generates and json.loads(options.patches[0].target) == {"kind": "ClusterIssuer",
                                                                           "name": "letsencrypt"}
