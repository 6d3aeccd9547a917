"""The fleet file: loading, errors that name file+line+field, placeholders, selectors, imports, schema."""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from core.desired.fleet_file import (
    AppSource,
    AppSpec,
    ClusterSpec,
    ConfigErrors,
    HealthSpec,
    IgnoreSpec,
    SyncPolicy,
    discover_imported_apps,
    find_fleet_file,
    fleet_schema,
    load_fleet,
    merge_apps,
    parse_duration,
)
from core.errors import ConfigError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "fleet"
SCHEMA_FILE = Path(__file__).parents[2] / "core" / "desired" / "fleet.schema.json"

VALID = """\
repo:
  url: ./config
clusters:
  - name: dev-1
    labels: {env: dev}
  - name: prod-1
    labels: {env: prod}
apps:
  - name: web
    path: apps/web/{env}
    namespace: web
"""


def write(tmp_path: Path, text: str) -> Path:
    """Write a fleet file and return its path."""
    path = tmp_path / "fleetdeck.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def load_error(tmp_path: Path, text: str) -> ConfigError:
    """The ConfigError loading ``text`` raises."""
    with pytest.raises(ConfigError) as caught:
        load_fleet(write(tmp_path, text))
    return caught.value


# ---------------------------------------------------------------------------------------------- valid


def test_complete_example_loads() -> None:
    """The complete example fixture loads with every field in place."""
    config = load_fleet(FIXTURES / "fleetdeck.yaml")
    assert config.repo.url == str((FIXTURES / "../config-repo").resolve())
    assert (config.repo.branch, config.repo.interval) == ("main", 90.0)
    assert config.imports.argocd and config.imports.flux and not config.read_only
    dev = config.cluster("dev-1")
    assert dev is not None and dev.kubeconfig == str(FIXTURES / "kubeconfigs" / "dev.yaml")
    assert dev.context == "kind-dev" and dict(dev.labels) == {"env": "dev", "region": "eu"}
    assert config.is_read_only("prod-eu") and not config.is_read_only("prod-us")
    web = config.app("web")
    assert web is not None and web.sync == SyncPolicy(automated=True, prune=True, self_heal=True)
    assert web.ignore[0] == IgnoreSpec(group="apps", kind="Deployment", name="web", namespace="web",
                                       json_pointers=("/spec/replicas",))
    assert web.ignore[1].managed_fields_managers == ("kube-controller-manager",)
    assert web.source is AppSource.FLEET and web.origin == "fleetdeck.yaml:26"
    canary = config.app("canary")
    assert canary is not None and canary.revision == "release-2024.06" and canary.suspended


def test_minimal_example_and_defaults() -> None:
    """Defaults: branch main, 60 s interval, manual sync, every cluster."""
    config = load_fleet(FIXTURES / "minimal.yaml")
    assert config.repo.url == "https://github.com/example/fleet-config.git" and config.repo.is_remote
    assert (config.repo.branch, config.repo.interval) == ("main", 60.0)
    (app,) = config.apps
    assert app.sync == SyncPolicy() and app.clusters == () and app.revision is None
    assert [c.name for c, _ in app.targets(config.clusters)] == ["local"]


def test_placeholders_fill_from_labels_and_cluster_name() -> None:
    """``{label}`` takes the cluster's label, ``{cluster}`` its name."""
    config = load_fleet(FIXTURES / "fleetdeck.yaml")
    monitoring = config.app("monitoring")
    assert monitoring is not None
    assert [(c.name, p) for c, p in monitoring.targets(config.clusters)] == [
        ("dev-1", "platform/monitoring/eu"), ("staging-1", "platform/monitoring/eu"),
        ("prod-eu", "platform/monitoring/eu"), ("prod-us", "platform/monitoring/us"),
    ]
    app = AppSpec(name="x", path="./clusters/{cluster}//apps/", namespace="x")
    assert app.targets([ClusterSpec("c1")]) == ((ClusterSpec("c1"), "clusters/c1/apps"),)


def test_selector_and_clusters_combine_as_union() -> None:
    """An app with both ``clusters`` and ``selector`` deploys to the union, in fleet order."""
    config = load_fleet(FIXTURES / "fleetdeck.yaml")
    web = config.app("web")
    assert web is not None
    assert [(c.name, p) for c, p in web.targets(config.clusters)] == [
        ("dev-1", "apps/web/overlays/dev"), ("staging-1", "apps/web/overlays/staging"),
        ("prod-eu", "apps/web/overlays/prod"), ("prod-us", "apps/web/overlays/prod"),
    ]
    only_selector = AppSpec(name="x", path="p", namespace="x", selector={"env": "prod"})
    assert [c.name for c, _ in only_selector.targets(config.clusters)] == ["prod-eu", "prod-us"]


def test_targets_missing_label_names_app_cluster_and_label() -> None:
    """A cluster without the label a path uses is an error naming all three."""
    app = AppSpec(name="web", path="apps/{tier}", namespace="web")
    with pytest.raises(ConfigError, match=r"app 'web': cluster 'c1' has no label 'tier'"):
        app.targets([ClusterSpec("c1", labels={"env": "dev"})])


def test_duration_forms() -> None:
    """Intervals are seconds or Go-style durations."""
    assert parse_duration(45) == 45.0
    assert parse_duration("1h30m") == 5400.0
    assert parse_duration("500ms") == 0.5


def test_find_fleet_file(tmp_path: Path) -> None:
    """fleetdeck.yaml is found in the working directory, or given explicitly; missing is a ConfigError."""
    with pytest.raises(ConfigError, match="--fleet"):
        find_fleet_file(cwd=tmp_path)
    path = write(tmp_path, VALID)
    assert find_fleet_file(cwd=tmp_path) == path.resolve()
    assert find_fleet_file(str(path)) == path.resolve()
    with pytest.raises(ConfigError, match="not found"):
        find_fleet_file(tmp_path / "other.yaml")


# ---------------------------------------------------------------------------------------------- errors


def assert_names(error: ConfigError, path: Path, *, line: int, field: str, fragment: str) -> None:
    """The error names the file, the line and the field, and says what is expected."""
    assert error.path == str(path)
    assert error.line == line, error
    assert error.field == field, error
    assert str(error).startswith(f"{path}:{line}: {field}: "), str(error)
    assert fragment in str(error), str(error)


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    """A misspelled key is an error with a did-you-mean suggestion."""
    error = load_error(tmp_path, VALID + "    selectr: {env: dev}\n")
    assert_names(error, tmp_path / "fleetdeck.yaml", line=12, field="apps[0].selectr",
                 fragment="did you mean 'selector'?")


def test_snake_case_key_suggests_camel_case(tmp_path: Path) -> None:
    """``self_heal`` suggests ``selfHeal``."""
    error = load_error(tmp_path, VALID + "    sync: {self_heal: true}\n")
    assert "did you mean 'selfHeal'?" in str(error) and error.line == 12


def test_wrong_type_says_what_is_expected(tmp_path: Path) -> None:
    """A string where a boolean belongs names the field and expects true or false."""
    error = load_error(tmp_path, VALID + '    sync:\n      prune: "yes"\n')
    assert_names(error, tmp_path / "fleetdeck.yaml", line=13, field="apps[0].sync.prune",
                 fragment="expected true or false")


def test_unquoted_number_label_says_quote_it(tmp_path: Path) -> None:
    """A label value ``1.10`` is not a string: the error says to quote it."""
    text = VALID.replace("labels: {env: dev}", "labels: {env: dev, version: 1.10}")
    error = load_error(tmp_path, text)
    assert_names(error, tmp_path / "fleetdeck.yaml", line=5, field="clusters[0].labels.version",
                 fragment="quote it")


def test_missing_required_key(tmp_path: Path) -> None:
    """An app without a namespace names the app's line and the missing key."""
    error = load_error(tmp_path, VALID.replace("    namespace: web\n", ""))
    assert_names(error, tmp_path / "fleetdeck.yaml", line=9, field="apps[0]",
                 fragment="missing required key 'namespace'")


def test_invalid_name_pattern(tmp_path: Path) -> None:
    """Cluster names must be DNS-like."""
    error = load_error(tmp_path, VALID.replace("name: prod-1", "name: Prod_1"))
    assert_names(error, tmp_path / "fleetdeck.yaml", line=6, field="clusters[1].name", fragment="lowercase")


def test_duplicate_app_and_cluster_names(tmp_path: Path) -> None:
    """Duplicate names are errors pointing at the second, mentioning the first."""
    text = VALID.replace("name: prod-1", "name: dev-1") + "  - name: web\n    path: x\n    namespace: x\n"
    error = load_error(tmp_path, text)
    assert isinstance(error, ConfigErrors)
    assert [(e.line, e.field) for e in error.errors] == [(6, "clusters[1].name"), (12, "apps[1].name")]
    assert "first defined at line 4" in error.errors[0].message


def test_unknown_cluster_reference(tmp_path: Path) -> None:
    """An app naming a cluster that does not exist gets a suggestion."""
    error = load_error(tmp_path, VALID + "    clusters: [prod-2]\n")
    assert_names(error, tmp_path / "fleetdeck.yaml", line=12, field="apps[0].clusters[0]",
                 fragment="did you mean 'prod-1'?")


def test_missing_placeholder_label_at_load(tmp_path: Path) -> None:
    """A path placeholder missing on a selected cluster fails at load, naming app, cluster and label."""
    text = VALID.replace("    labels: {env: prod}\n", "")
    error = load_error(tmp_path, text)
    assert_names(error, tmp_path / "fleetdeck.yaml", line=9, field="apps[0].path",
                 fragment="cluster 'prod-1' has no label 'env'")


def test_path_leaving_the_repo(tmp_path: Path) -> None:
    """App paths stay inside the repo."""
    error = load_error(tmp_path, VALID.replace("apps/web/{env}", "../outside"))
    assert error.line == 10 and error.field == "apps[0].path" and "leaves the repository" in str(error)


def test_yaml_syntax_error_and_duplicate_key(tmp_path: Path) -> None:
    """YAML errors carry the line; duplicate keys too."""
    assert load_error(tmp_path, VALID + "  - name: [unclosed\n").line == 13
    error = load_error(tmp_path, VALID.replace("  branch", "x").replace("url: ./config", "url: a\n  url: b"))
    assert error.line == 3 and "duplicate key 'url'" in str(error)


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    """An empty file and a list at the top level are clear errors."""
    assert "empty" in str(load_error(tmp_path, "# nothing\n"))
    assert "expected a mapping" in str(load_error(tmp_path, "- a\n"))


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    """All schema problems come back, the first in the message."""
    text = VALID.replace("name: web", "name: web\n    bogus: 1").replace("url: ./config", "url: 7")
    error = load_error(tmp_path, text)
    assert isinstance(error, ConfigErrors)
    assert [e.field for e in error.errors] == ["repo.url", "apps[0].bogus"]
    assert "1 more" in str(error)


# ---------------------------------------------------------------------------------------------- imports


def make_import_repo(root: Path, kubeconfig: Path) -> None:
    """A small repo with Argo CD Applications and Flux Kustomizations in the usual places."""
    files = {
        "argocd/web.yaml": """\
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata: {name: web, namespace: argocd}
            spec:
              source: {repoURL: https://example.com/r.git, path: apps/web, targetRevision: HEAD}
              destination: {name: dev-1, namespace: web}
              syncPolicy:
                automated: {prune: true, selfHeal: true}
              ignoreDifferences:
                - group: apps
                  kind: Deployment
                  jsonPointers: [/spec/replicas]
            ---
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata: {name: api}
            spec:
              source: {path: ./apps/api, targetRevision: v2}
              destination: {server: "https://prod.example.com:6443/", namespace: api}
            ---
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata: {name: everywhere}
            spec:
              source: {path: apps/base}
              destination: {server: "https://kubernetes.default.svc", namespace: base}
              syncPolicy: {automated: {enabled: false}}
            ---
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata: {name: chart}
            spec:
              source: {chart: nginx, repoURL: https://charts.example.com}
              destination: {name: dev-1}
            ---
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata: {name: elsewhere}
            spec:
              source: {path: apps/x}
              destination: {name: not-in-fleet}
            """,
        "clusters/dev-1/apps.yaml": """\
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata: {name: apps, namespace: flux-system}
            spec:
              sourceRef: {kind: GitRepository, name: flux-system}
              path: ./apps/overlays/dev-1
              prune: true
              targetNamespace: shop
            """,
        "clusters/prod-1/apps.yaml": """\
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata: {name: apps, namespace: flux-system}
            spec:
              sourceRef: {kind: GitRepository, name: flux-system}
              path: ./apps/overlays/prod-1
              prune: true
              targetNamespace: shop
            ---
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata: {name: infra, namespace: flux-system}
            spec:
              sourceRef: {kind: ExternalArtifact, name: infrastructure}
              path: ./controllers
              suspend: true
            ---
            apiVersion: source.extensions.fluxcd.io/v1beta1
            kind: ArtifactGenerator
            metadata: {name: gen, namespace: flux-system}
            spec:
              artifacts:
                - name: infrastructure
                  copy:
                    - from: "@monorepo/infrastructure/**"
                      to: "@artifact/"
            """,
        "clusters/unknown/apps.yaml": """\
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata: {name: ghost}
            spec: {path: ./apps/ghost, sourceRef: {kind: GitRepository, name: x}}
            """,
        "platform/flux.yaml": """\
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata: {name: platform}
            spec: {path: ./platform/base, sourceRef: {kind: GitRepository, name: x}}
            """,
        "apps/web/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n",
        "broken.yaml": "kind: Application\n  bad: [\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    kubeconfig.write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: Config
        current-context: prod
        contexts: [{name: prod, context: {cluster: prod-cluster, user: u}}]
        clusters: [{name: prod-cluster, cluster: {server: "https://prod.example.com:6443"}}]
        users: [{name: u, user: {}}]
        """))


def by_name(apps: tuple[AppSpec, ...]) -> dict[str, AppSpec]:
    """Apps keyed by name."""
    return {app.name: app for app in apps}


def test_import_argocd_and_flux(tmp_path: Path) -> None:
    """Argo CD Applications and Flux Kustomizations become apps with their clusters and policies."""
    repo, kubeconfig = tmp_path / "repo", tmp_path / "prod.kubeconfig"
    make_import_repo(repo, kubeconfig)
    clusters = [ClusterSpec("dev-1"), ClusterSpec("prod-1", kubeconfig=str(kubeconfig))]
    apps = by_name(discover_imported_apps(repo, clusters))
    assert sorted(apps) == ["api", "apps", "everywhere", "infra", "platform", "web"]
    web = apps["web"]
    assert (web.source, web.path, web.namespace, web.clusters, web.revision) == (
        AppSource.ARGOCD, "apps/web", "web", ("dev-1",), None)
    assert web.sync == SyncPolicy(automated=True, prune=True, self_heal=True)
    assert web.ignore == (IgnoreSpec(group="apps", kind="Deployment", json_pointers=("/spec/replicas",)),)
    assert web.origin == "argocd/web.yaml:1"
    assert (apps["api"].clusters, apps["api"].revision, apps["api"].path) == (("prod-1",), "v2", "apps/api")
    assert apps["everywhere"].clusters == () and not apps["everywhere"].sync.automated
    flux_apps = apps["apps"]
    assert (flux_apps.source, flux_apps.path, flux_apps.clusters, flux_apps.namespace) == (
        AppSource.FLUX, "apps/overlays/{cluster}", ("dev-1", "prod-1"), "shop")
    assert flux_apps.sync == SyncPolicy(automated=True, prune=True, self_heal=True)
    assert [p for _, p in flux_apps.targets(clusters)] == ["apps/overlays/dev-1", "apps/overlays/prod-1"]
    assert (apps["infra"].path, apps["infra"].clusters, apps["infra"].suspended) == (
        "infrastructure/controllers", ("prod-1",), True)
    assert apps["platform"].clusters == ()


def test_import_flags_and_merge(tmp_path: Path) -> None:
    """Each importer can be switched off, and the fleet file's apps win on a name clash."""
    repo = tmp_path / "repo"
    make_import_repo(repo, tmp_path / "kc")
    clusters = [ClusterSpec("dev-1"), ClusterSpec("prod-1")]
    only_flux = discover_imported_apps(repo, clusters, argocd=False)
    assert {a.source for a in only_flux} == {AppSource.FLUX}
    declared = (AppSpec(name="apps", path="mine", namespace="mine"),)
    merged = merge_apps(declared, only_flux)
    assert merged[0] is declared[0] and [a.name for a in merged] == ["apps", "infra", "platform"]


def test_same_name_different_paths_get_cluster_suffixes(tmp_path: Path) -> None:
    """Same-named definitions that cannot share a path template are kept apart by cluster suffix."""
    for cluster, path in (("a", "one"), ("b", "two")):
        file = tmp_path / "clusters" / cluster / "k.yaml"
        file.parent.mkdir(parents=True)
        file.write_text(f"apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
                        f"metadata: {{name: apps}}\nspec: {{path: ./{path}}}\n")
    apps = by_name(discover_imported_apps(tmp_path, [ClusterSpec("a"), ClusterSpec("b")]))
    assert {n: (a.path, a.clusters) for n, a in apps.items()} == {"apps-a": ("one", ("a",)), "apps-b": ("two", ("b",))}


# ---------------------------------------------------------------------------------------------- schema


def test_schema_is_the_published_file() -> None:
    """``fleet_schema()`` is the JSON file next to the loader, and every $ref in it resolves."""
    schema = fleet_schema()
    assert schema == json.loads(SCHEMA_FILE.read_text())
    assert schema["$schema"].startswith("https://json-schema.org/")
    refs = re.findall(r'"\$ref": "#/\$defs/([A-Za-z]+)"', SCHEMA_FILE.read_text())
    assert refs and all(ref in schema["$defs"] for ref in refs)


def camel(name: str) -> str:
    """snake_case → camelCase."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@pytest.mark.parametrize(
    ("definition", "cls", "not_in_file"),
    [
        pytest.param("cluster", ClusterSpec, set(), id="cluster"),
        pytest.param("app", AppSpec, {"source", "origin", "release", "flux"}, id="app"),
        pytest.param("sync", SyncPolicy, set(), id="sync"),
        pytest.param("ignore", IgnoreSpec, set(), id="ignore"),
        pytest.param("health", HealthSpec, set(), id="health"),
    ],
)
def test_schema_keys_match_the_dataclasses(definition: str, cls: type[Any], not_in_file: set[str]) -> None:
    """Every field of the config types has a key in the schema and no key lacks a field."""
    keys = set(fleet_schema()["$defs"][definition]["properties"])
    assert keys == {camel(f.name) for f in fields(cls) if f.name not in not_in_file}


@pytest.mark.parametrize("example", sorted(FIXTURES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_validate_against_the_schema_with_jsonschema(example: Path) -> None:
    """The example files validate with the reference jsonschema implementation (skipped if not installed)."""
    jsonschema = pytest.importorskip("jsonschema")
    from core.desired.yamlload import compose_single, construct

    node = compose_single(example.read_bytes(), str(example))
    assert node is not None
    jsonschema.validate(construct(node), fleet_schema())


@pytest.mark.parametrize("example", sorted(FIXTURES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_load(example: Path) -> None:
    """Every example fixture loads."""
    assert load_fleet(example).clusters


def test_respect_ignore_is_on_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    """``sync.respectIgnore`` defaults to true; ``respect_ignore`` suggests the camelCase key."""
    (default,) = load_fleet(write(tmp_path, VALID)).apps
    assert default.sync.respect_ignore is True
    (off,) = load_fleet(write(tmp_path, VALID + "    sync: {respectIgnore: false}\n")).apps
    assert off.sync == SyncPolicy(respect_ignore=False)
    error = load_error(tmp_path, VALID + "    sync: {respect_ignore: false}\n")
    assert "did you mean 'respectIgnore'?" in str(error)
