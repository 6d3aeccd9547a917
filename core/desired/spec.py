"""The fleet's configuration as frozen values: repo, clusters, apps and how apps map onto clusters.

Role: what ``load_fleet`` and the Argo CD / Flux importers produce and the engine consumes. An app's
``path`` may hold ``{cluster}`` and ``{label}`` placeholders, filled per cluster by ``AppSpec.targets``.

Constraint: values only; no I/O. Frozen dataclasses with tuples and read-only mappings.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from core.errors import ConfigError
from core.model import Owner


def _no_labels() -> Mapping[str, str]:
    return MappingProxyType({})


PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
CLUSTER_PLACEHOLDER = "cluster"


class AppSource(StrEnum):
    """Where an app's definition came from."""

    FLEET = "fleet"
    """The fleet file."""
    ARGOCD = "argocd"
    """An Argo CD ``Application`` in the config repo."""
    FLUX = "flux"
    """A Flux ``Kustomization`` in the config repo."""


@dataclass(frozen=True, slots=True)
class RepoSpec:
    """The config repository."""

    url: str
    """A Git URL, or an absolute local path (relative paths are resolved against the fleet file)."""
    branch: str = "main"
    interval: float = 60.0
    """Seconds between fetches."""

    @property
    def is_remote(self) -> bool:
        """Whether ``url`` names a remote (mirrored) repo rather than a local checkout."""
        return is_remote_url(self.url)


def is_remote_url(url: str) -> bool:
    """``scheme://…`` (including ``file://``) and scp-like ``user@host:path`` are remote."""
    return "://" in url or re.match(r"^[\w.-]+@[\w.-]+:", url) is not None


@dataclass(frozen=True, slots=True)
class ImportSpec:
    """Which app definitions of other GitOps tools to import from the repo."""

    argocd: bool = False
    flux: bool = False
    flux_strict_substitutions: bool = False
    """Flux post-build substitution refuses a variable without a value or default (kustomize-controller's
    ``StrictPostBuildSubstitutions`` feature gate, off by default there and here)."""

    @property
    def any(self) -> bool:
        """Whether anything is imported."""
        return self.argocd or self.flux


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """A cluster of the fleet."""

    name: str
    kubeconfig: str | None = None
    """Absolute path of the kubeconfig; None for ``KUBECONFIG`` or kubectl's default."""
    context: str | None = None
    """The kubeconfig context; None for its current context."""
    labels: Mapping[str, str] = field(default_factory=_no_labels)
    read_only: bool = False
    owner: Owner | None = None
    """Who applies apps on this cluster, as the fleet file says (None: detected from the cluster)."""

    def matches(self, selector: Mapping[str, str]) -> bool:
        """Whether every ``key: value`` of ``selector`` is among the labels (an empty selector matches)."""
        return all(self.labels.get(key) == value for key, value in selector.items())


@dataclass(frozen=True, slots=True)
class SyncPolicy:
    """When and how an app is synced."""

    automated: bool = False
    prune: bool = False
    self_heal: bool = False
    allow_empty: bool = False
    """Allow an automated sync to a render with no objects (it would prune everything)."""
    respect_ignore: bool = True
    """Leave fields covered by an ignore rule out of the apply when another field manager owns them live
    (Argo CD's ``RespectIgnoreDifferences``); False applies them as Git says."""


@dataclass(frozen=True, slots=True)
class IgnoreSpec:
    """Differences to ignore on matching objects (Argo CD ``ignoreDifferences``)."""

    group: str = "*"
    kind: str = "*"
    name: str | None = None
    namespace: str | None = None
    json_pointers: tuple[str, ...] = ()
    managed_fields_managers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HelmParameter:
    """One ``--set`` (or ``--set-string`` when ``force_string``) of a Helm render."""

    name: str
    value: str
    force_string: bool = False


@dataclass(frozen=True, slots=True)
class HelmOptions:
    """How a chart directory is rendered (``helm template``); the fleet file's ``helm:`` or Argo CD's
    ``spec.source.helm``. Every field is a value, so the options key the render cache."""

    release_name: str = ""
    """Empty: the app's name."""
    value_files: tuple[str, ...] = ()
    """Paths relative to the chart directory (``-f``, in order)."""
    values: str = ""
    """Inline values as YAML (or JSON) text, applied after the value files."""
    parameters: tuple[HelmParameter, ...] = ()
    """Applied last, in order."""
    include_crds: bool = True
    """``--include-crds`` (the chart's ``crds/`` directory), as Argo CD does unless ``skipCrds``."""
    ignore_missing_value_files: bool = False
    kube_version: str = ""
    """``--kube-version`` (``.Capabilities.KubeVersion``); empty: Helm's built-in default."""
    api_versions: tuple[str, ...] = ()
    """``--api-versions`` added to Helm's built-in list (``.Capabilities.APIVersions``)."""

    def for_release(self, name: str) -> HelmOptions:
        """These options with the release name defaulted to ``name``."""
        return self if self.release_name else dataclasses.replace(self, release_name=name)


@dataclass(frozen=True, slots=True)
class HelmReleaseRef:
    """A Flux ``HelmRelease`` found in the rendered output of an imported Flux Kustomization: the app
    renders its chart (``core.desired.helm_release``) instead of the Kustomization's objects."""

    namespace: str
    """The HelmRelease's namespace (the Kustomization's ``targetNamespace`` when it sets one)."""
    name: str
    parent: str
    """The Flux Kustomization app whose output holds it (its ``helm_options()`` release name)."""
    parent_namespace: str = ""
    """That app's destination namespace (its render is looked up with it)."""
    siblings: tuple[tuple[str, str, str, str], ...] = ()
    """(parent's filled path, app, filled path, namespace) of the other Flux Kustomization apps deployed
    with the parent to a cluster: where a source or valuesFrom object missing from the parent's output is
    looked for next."""


@dataclass(frozen=True, slots=True)
class FluxPatch:
    """One entry of a Flux Kustomization's ``spec.patches``: a strategic-merge or JSON6902 patch."""

    patch: str
    target: str = ""
    """The ``target`` selector as canonical JSON (``{"kind": "ClusterIssuer", "name": …}``); empty: none."""


@dataclass(frozen=True, slots=True)
class FluxImage:
    """One entry of a Flux Kustomization's ``spec.images`` (kustomize's ``images`` transformer)."""

    name: str
    new_name: str = ""
    new_tag: str = ""
    digest: str = ""


@dataclass(frozen=True, slots=True)
class SubstituteRef:
    """One entry of ``spec.postBuild.substituteFrom``: a ConfigMap or Secret of the destination cluster."""

    kind: str
    """``ConfigMap`` or ``Secret``."""
    name: str
    optional: bool = False


@dataclass(frozen=True, slots=True)
class FluxOptions:
    """The build-time features of a Flux ``Kustomization`` (kustomize-controller's generator and post-build
    substitution), as values: they key the render cache. See docs/flux.md."""

    namespace: str = "flux-system"
    """The Kustomization object's own namespace: where ``substituteFrom`` sources are read."""
    target_namespace: str = ""
    name_prefix: str = ""
    name_suffix: str = ""
    patches: tuple[FluxPatch, ...] = ()
    components: tuple[str, ...] = ()
    """Paths relative to the app's path."""
    ignore_missing_components: bool = False
    images: tuple[FluxImage, ...] = ()
    substitute: tuple[tuple[str, str], ...] = ()
    """``postBuild.substitute`` as sorted (name, value) pairs (values from Git, never secret)."""
    substitute_from: tuple[SubstituteRef, ...] = ()
    """``postBuild.substituteFrom`` in order (later sources override earlier ones; ``substitute`` wins)."""
    common_labels: tuple[tuple[str, str], ...] = ()
    """``commonMetadata.labels``, set on every object after the build (overriding the same keys)."""
    common_annotations: tuple[tuple[str, str], ...] = ()
    """``commonMetadata.annotations``, likewise."""
    strict: bool = False
    """Substitution refuses an unset variable without a default (``import.fluxStrictSubstitutions``)."""

    @property
    def generates(self) -> bool:
        """Whether the kustomization of the path is rewritten before the build (any generator field set)."""
        return bool(self.target_namespace or self.name_prefix or self.name_suffix or self.patches
                    or self.components or self.images)

    @property
    def substitutes(self) -> bool:
        """Whether post-build substitution may run (some variables are declared)."""
        return bool(self.substitute or self.substitute_from)


@dataclass(frozen=True, slots=True)
class AppSpec:
    """An app: a directory of the repo deployed to some clusters."""

    name: str
    path: str
    """Repo-relative directory; may hold ``{cluster}`` and ``{label}`` placeholders."""
    namespace: str
    """Destination namespace; empty keeps the manifests' own namespaces."""
    clusters: tuple[str, ...] = ()
    selector: Mapping[str, str] = field(default_factory=_no_labels)
    sync: SyncPolicy = field(default_factory=SyncPolicy)
    ignore: tuple[IgnoreSpec, ...] = ()
    source: AppSource = AppSource.FLEET
    revision: str | None = None
    """Branch, tag or SHA to deploy instead of the repo's branch."""
    suspended: bool = False
    origin: str = ""
    """Where the app was defined (``fleetdeck.yaml:12``), for messages."""
    helm: HelmOptions | None = None
    """Helm options given for the app (used when its path is a chart directory)."""
    release: HelmReleaseRef | None = None
    """Set for a Flux HelmRelease app: ``path`` is its Kustomization's, the desired state is the chart."""
    flux: FluxOptions | None = None
    """Set for an app imported from a Flux ``Kustomization``: its path renders as kustomize-controller
    builds it (generated kustomization, patches, components, post-build substitution)."""
    depends_on: tuple[str, ...] = ()
    """Names of apps this one comes after (Flux ``spec.dependsOn``); shown, not enforced by syncs."""
    owner: Owner | None = None
    """Who applies the app, as the fleet file says for every cluster (None: the cluster's, else detected)."""
    owners: Mapping[str, Owner] = field(default_factory=lambda: MappingProxyType({}))
    """Per-cluster owner overrides of this app (cluster name → owner); they win over ``owner``."""

    def owner_override(self, cluster: ClusterSpec) -> tuple[Owner | None, str]:
        """The owner the fleet file sets for this app on ``cluster`` and where (``apps[web].owners.prod``),
        or (None, "") when it leaves it to detection. App per cluster, then app, then cluster."""
        if cluster.name in self.owners:
            return self.owners[cluster.name], f"app {self.name} owners.{cluster.name}"
        if self.owner is not None:
            return self.owner, f"app {self.name} owner"
        if cluster.owner is not None:
            return cluster.owner, f"cluster {cluster.name} owner"
        return None, ""

    def helm_options(self) -> HelmOptions:
        """The Helm options of a render of this app: as given, the release named after the app by default."""
        return (self.helm or HelmOptions()).for_release(self.name)

    @property
    def placeholders(self) -> tuple[str, ...]:
        """Names used in ``{…}`` placeholders of the path, in order."""
        return tuple(PLACEHOLDER.findall(self.path))

    def selects(self, cluster: ClusterSpec) -> bool:
        """``clusters`` and ``selector`` combine as a union; with neither, every cluster is selected."""
        if not self.clusters and not self.selector:
            return True
        return cluster.name in self.clusters or (bool(self.selector) and cluster.matches(self.selector))

    def path_for(self, cluster: ClusterSpec) -> str:
        """The path with placeholders filled from ``cluster``.

        Raises:
            ConfigError: the cluster lacks a label the path uses.
        """
        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == CLUSTER_PLACEHOLDER:
                return cluster.name
            if name not in cluster.labels:
                raise ConfigError(
                    f"app {self.name!r}: cluster {cluster.name!r} has no label {name!r} used in path {self.path!r}",
                    field="path",
                    hint=f"add a {name} label to cluster {cluster.name!r}, or exclude it from the app's clusters",
                )
            return cluster.labels[name]

        return normalize_repo_path(PLACEHOLDER.sub(fill, self.path))

    def targets(self, clusters: Iterable[ClusterSpec]) -> tuple[tuple[ClusterSpec, str], ...]:
        """Each selected cluster with the app's path resolved for it, in the given order.

        Raises:
            ConfigError: a selected cluster lacks a label the path uses (names app, cluster and label).
        """
        return tuple((cluster, self.path_for(cluster)) for cluster in clusters if self.selects(cluster))


@dataclass(frozen=True, slots=True)
class ConfigMapRef:
    """A ConfigMap in one of the fleet's clusters."""

    cluster: str
    namespace: str = "argocd"
    name: str = "argocd-cm"


@dataclass(frozen=True, slots=True)
class HealthSpec:
    """The fleet file's ``health`` section."""

    customizations: tuple[str, ...] = ()
    """Argo CD resource customizations (directories or argocd-cm files), relative to the fleet file."""
    argocd_config_map: ConfigMapRef | None = None
    """An argocd-cm read once, live (GET), from a cluster of the fleet when the engine starts."""


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """The whole fleet file."""

    path: Path
    repo: RepoSpec
    clusters: tuple[ClusterSpec, ...]
    apps: tuple[AppSpec, ...]
    read_only: bool = False
    imports: ImportSpec = field(default_factory=ImportSpec)
    health: HealthSpec = field(default_factory=HealthSpec)

    @property
    def health_customizations(self) -> tuple[str, ...]:
        """The ``health.customizations`` paths as written (relative to the fleet file's directory)."""
        return self.health.customizations

    def cluster(self, name: str) -> ClusterSpec | None:
        """The cluster called ``name``, if any."""
        return next((c for c in self.clusters if c.name == name), None)

    def app(self, name: str) -> AppSpec | None:
        """The app called ``name``, if any."""
        return next((a for a in self.apps if a.name == name), None)

    def is_read_only(self, cluster: str) -> bool:
        """Read-only for ``cluster``: the fleet's flag or the cluster's own (one cannot weaken the other)."""
        spec = self.cluster(cluster)
        return self.read_only or (spec is not None and spec.read_only)


def normalize_repo_path(path: str) -> str:
    """``./apps//web/`` → ``apps/web``; ``.`` for the repo root.

    Raises:
        ConfigError: the path is absolute or leaves the repo.
    """
    if path.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", path):
        raise ConfigError(f"path {path!r} must be relative to the repo root", field="path")
    normal = posixpath.normpath(path.replace("\\", "/"))
    if normal == ".." or normal.startswith("../"):
        raise ConfigError(f"path {path!r} leaves the repository", field="path")
    return normal
