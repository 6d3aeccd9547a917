"""Import app definitions that other GitOps tools keep in the config repo: Argo CD and Flux.

Role: read Argo CD ``Application`` (argoproj.io/v1alpha1) and Flux ``Kustomization``
(kustomize.toolkit.fluxcd.io/v1) objects anywhere in a materialized repo tree and turn them into
``AppSpec`` values, so a fleet that already runs Argo CD or Flux shows up without rewriting it.

Argo CD: ``spec.source.path``, ``helm`` (see ``argo_helm``), ``targetRevision``, ``destination`` (cluster by name, or by the API server
URL found in the cluster's kubeconfig; the in-cluster URL means every cluster), ``syncPolicy.automated``
and ``ignoreDifferences``. Flux: ``spec.path`` (through an ``ArtifactGenerator``'s copy rules for
``ExternalArtifact`` sources), ``prune``, ``suspend``; the cluster is the one whose ``clusters/<name>/``
directory holds the object, or every cluster when it lies elsewhere. The build-time fields
(``targetNamespace``, ``namePrefix``, ``nameSuffix``, ``patches``, ``components``,
``ignoreMissingComponents``, ``images``, ``postBuild.substitute`` and ``substituteFrom``, ``commonMetadata``) become the app's
``FluxOptions``: the render builds the path as kustomize-controller does (``core.desired.flux``, with
``substituteFrom`` values read from each destination cluster). ``dependsOn`` becomes ``AppSpec.depends_on``:
shown, not enforced. Not imported: ``healthChecks``, ``wait``, ``timeout``, ``force``, ``decryption`` (SOPS),
``kubeConfig``, ``serviceAccountName`` (see docs/flux.md).

Constraint: reads files of a tree that is already materialized; never runs Git or kustomize. Files that
cannot be read are skipped with a log line: an unrelated broken manifest must not hide every other app.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

import yaml

from core.desired.spec import (
    AppSource,
    AppSpec,
    ClusterSpec,
    FluxImage,
    FluxOptions,
    FluxPatch,
    HelmOptions,
    HelmParameter,
    IgnoreSpec,
    SubstituteRef,
    SyncPolicy,
    normalize_repo_path,
)
from core.desired.yamlload import (
    DEFAULT_BUDGET,
    compose_chunk,
    compose_single,
    construct,
    decode,
    split_documents,
)
from core.errors import ConfigError, ManifestError

log = logging.getLogger(__name__)

IN_CLUSTER = "https://kubernetes.default.svc"
_INTERESTING = re.compile(r"^kind:\s*[\"']?(Application|Kustomization|ArtifactGenerator)[\"']?\s*$", re.M)
_SKIP_DIRS = {".git", "node_modules"}


@dataclass(frozen=True, slots=True)
class _Found:
    obj: Mapping[str, Any]
    file: PurePosixPath
    """Repo-relative file."""
    line: int

    @property
    def cluster_dir(self) -> str | None:
        """``<name>`` when the file is under ``clusters/<name>/``."""
        parts = self.file.parts
        return parts[1] if len(parts) > 2 and parts[0] == "clusters" else None

    @property
    def origin(self) -> str:
        return f"{self.file}:{self.line}"


def discover_imported_apps(
    repo_tree_dir: str | os.PathLike[str],
    clusters: Sequence[ClusterSpec],
    *,
    argocd: bool = True,
    flux: bool = True,
    flux_strict: bool = False,
) -> tuple[AppSpec, ...]:
    """Apps defined by Argo CD ``Application`` and Flux ``Kustomization`` objects in a repo tree.

    Args:
        repo_tree_dir: a materialized tree of the config repo (``ConfigRepo.materialize``).
        clusters: the fleet's clusters, to match destinations against.
        argocd: import Argo CD Applications.
        flux: import Flux Kustomizations.
        flux_strict: their post-build substitution refuses unset variables without a default.

    Returns:
        One app per definition name, sorted by name. Same-named definitions for several clusters merge
        into one app (a differing cluster directory in the path becomes ``{cluster}``); otherwise they
        get the cluster's name as a suffix.
    """
    found = list(_scan(Path(repo_tree_dir)))
    names = {c.name for c in clusters}
    entries: list[AppSpec] = []
    if argocd:
        servers = _cluster_servers(clusters)
        entries.extend(e for f in found if _is_argo_app(f.obj) for e in _argo_app(f, names, servers))
    if flux:
        artifacts = _artifact_maps(f for f in found if _is_artifact_generator(f.obj))
        entries.extend(e for f in found if _is_flux_kustomization(f.obj) for e in _flux_app(f, names, artifacts, flux_strict))
    return tuple(sorted(_merge_same_names(entries), key=lambda a: a.name))


def merge_apps(declared: Sequence[AppSpec], imported: Iterable[AppSpec]) -> tuple[AppSpec, ...]:
    """The fleet file's apps followed by imported ones; on a name clash the fleet file wins."""
    names = {app.name for app in declared}
    kept = list(declared)
    for app in imported:
        if app.name in names:
            log.info("imported app %s (%s) is shadowed by the fleet file's app of that name", app.name, app.origin)
            continue
        names.add(app.name)
        kept.append(app)
    return tuple(kept)


# ---------------------------------------------------------------------------------------------- scanning


def _scan(root: Path) -> Iterator[_Found]:
    for file in _yaml_files(root):
        yield from _scan_file(root, file)


def _yaml_files(root: Path) -> Iterator[Path]:
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            path = Path(directory, name)
            if name.endswith((".yaml", ".yml")) and path.is_file() and not path.is_symlink():
                yield path


def _scan_file(root: Path, file: Path) -> Iterator[_Found]:
    relative = PurePosixPath(file.relative_to(root).as_posix())
    try:
        text = decode(file.read_bytes(), str(relative))
    except (OSError, ManifestError) as exc:
        log.warning("import: skipping %s: %s", relative, exc)
        return
    for offset, chunk in split_documents(text):
        if not _INTERESTING.search(chunk):
            continue
        try:
            for node, value in compose_chunk(chunk, offset, DEFAULT_BUDGET):
                if isinstance(value, dict):
                    yield _Found(value, relative, int(node.start_mark.line) + 1)
        except yaml.YAMLError as exc:
            log.warning("import: skipping a document of %s: %s", relative, exc)


def _api_group(obj: Mapping[str, Any]) -> str:
    return str(obj.get("apiVersion", "")).rpartition("/")[0]


def _is_argo_app(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Application" and _api_group(obj) == "argoproj.io"


def _is_flux_kustomization(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Kustomization" and _api_group(obj) == "kustomize.toolkit.fluxcd.io"


def _is_artifact_generator(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "ArtifactGenerator" and _api_group(obj) == "source.extensions.fluxcd.io"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_mapping(obj.get("metadata")).get("name") or "")


# ---------------------------------------------------------------------------------------------- Argo CD


def _argo_app(found: _Found, names: set[str], servers: Mapping[str, tuple[str, ...]]) -> list[AppSpec]:
    spec = _mapping(found.obj.get("spec"))
    source = _argo_source(spec)
    path = source.get("path")
    if not isinstance(path, str) or not _name(found.obj):
        log.info("import: Argo CD Application at %s has no source path (Helm chart or plugin); skipped", found.origin)
        return []
    targets = _argo_destination(_mapping(spec.get("destination")), names, servers)
    if targets is None:
        log.info("import: Argo CD Application at %s deploys to a cluster outside the fleet; skipped", found.origin)
        return []
    app = _app(found, path, AppSource.ARGOCD, targets,
               namespace=str(_mapping(spec.get("destination")).get("namespace") or ""),
               sync=_argo_sync(_mapping(spec.get("syncPolicy"))),
               revision=_argo_revision(source.get("targetRevision")),
               ignore=tuple(_argo_ignore(rule) for rule in spec.get("ignoreDifferences") or () if isinstance(rule, dict)),
               helm=argo_helm(source.get("helm"), found.origin))
    return [app] if app else []


def argo_helm(helm: Any, origin: str = "") -> HelmOptions | None:
    """An Argo CD ``spec.source.helm`` as fleetdeck's Helm options (None when absent).

    ``valuesObject`` wins over ``values`` (as in Argo CD); ``skipCrds`` turns CRDs off; ``fileParameters``
    are not supported and logged.
    """
    if not isinstance(helm, dict):
        return None
    inline = helm.get("valuesObject")
    if isinstance(inline, dict) and inline:
        values = json.dumps(inline, sort_keys=True, default=str)
    else:
        values = str(helm.get("values") or "") if isinstance(helm.get("values"), str) else ""
    if helm.get("fileParameters"):
        log.info("import: Argo CD Application at %s uses helm.fileParameters, which fleetdeck ignores", origin)
    return HelmOptions(
        release_name=str(helm.get("releaseName") or ""),
        value_files=tuple(str(f) for f in helm.get("valueFiles") or () if isinstance(f, str | int | float)),
        values=values,
        parameters=tuple(_argo_parameter(p) for p in helm.get("parameters") or ()
                         if isinstance(p, dict) and p.get("name")),
        include_crds=not bool(helm.get("skipCrds")),
        ignore_missing_value_files=bool(helm.get("ignoreMissingValueFiles")),
        kube_version=str(helm.get("kubeVersion") or ""),
        api_versions=tuple(str(v) for v in helm.get("apiVersions") or () if isinstance(v, str)),
    )


def _argo_parameter(parameter: Mapping[str, Any]) -> HelmParameter:
    value = parameter.get("value")
    text = ("true" if value else "false") if isinstance(value, bool) else ("" if value is None else str(value))
    return HelmParameter(str(parameter["name"]), text, bool(parameter.get("forceString")))


def _argo_source(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(spec.get("source"), dict):
        return _mapping(spec["source"])
    sources = [s for s in spec.get("sources") or () if isinstance(s, dict) and s.get("path")]
    return sources[0] if sources else {}


def _argo_destination(
    destination: Mapping[str, Any], names: set[str], servers: Mapping[str, tuple[str, ...]]
) -> tuple[str, ...] | None:
    """Cluster names, ``()`` for every cluster, None when the destination is not in the fleet."""
    name, server = destination.get("name"), str(destination.get("server") or "").rstrip("/")
    if name:
        return (str(name),) if name in names else (() if name == "in-cluster" else None)
    if not server or server == IN_CLUSTER:
        return ()
    return servers.get(server)


def _argo_sync(policy: Mapping[str, Any]) -> SyncPolicy:
    automated = policy.get("automated")
    if not isinstance(automated, dict) or automated.get("enabled") is False:
        return SyncPolicy()
    return SyncPolicy(automated=True, prune=bool(automated.get("prune")),
                      self_heal=bool(automated.get("selfHeal")), allow_empty=bool(automated.get("allowEmpty")))


def _argo_revision(value: Any) -> str | None:
    return None if value in (None, "", "HEAD") else str(value)


def _argo_ignore(rule: Mapping[str, Any]) -> IgnoreSpec:
    return IgnoreSpec(
        group=str(rule.get("group", "*")) if rule.get("group") is not None else "*",
        kind=str(rule.get("kind") or "*"),
        name=rule.get("name"),
        namespace=rule.get("namespace"),
        json_pointers=tuple(str(p) for p in rule.get("jsonPointers") or ()),
        managed_fields_managers=tuple(str(m) for m in rule.get("managedFieldsManagers") or ()),
    )


def _cluster_servers(clusters: Sequence[ClusterSpec]) -> dict[str, tuple[str, ...]]:
    """API server URL → names of the fleet's clusters using it (read from their kubeconfigs)."""
    servers: dict[str, tuple[str, ...]] = {}
    for cluster in clusters:
        server = _kubeconfig_server(cluster)
        if server:
            servers[server] = (*servers.get(server, ()), cluster.name)
    return servers


def _kubeconfig_server(cluster: ClusterSpec) -> str | None:
    default = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config"
    path = Path(cluster.kubeconfig or default).expanduser()
    try:
        node = compose_single(path.read_bytes(), str(path))
    except (OSError, ManifestError):
        return None
    return _server_of(_mapping(construct(node)) if node else {}, cluster.context)


def _server_of(config: Mapping[str, Any], context: str | None) -> str | None:
    wanted = context or config.get("current-context")
    ctx = next((c for c in config.get("contexts") or () if _mapping(c).get("name") == wanted), None)
    cluster_name = _mapping(_mapping(ctx).get("context")).get("cluster")
    entry = next((c for c in config.get("clusters") or () if _mapping(c).get("name") == cluster_name), None)
    server = _mapping(_mapping(entry).get("cluster")).get("server")
    return str(server).rstrip("/") if server else None


# ---------------------------------------------------------------------------------------------- Flux


_ArtifactMaps = Mapping[tuple[str | None, str], tuple[tuple[str, str], ...]]


def _artifact_maps(generators: Iterable[_Found]) -> _ArtifactMaps:
    """(cluster dir, artifact name) → ((artifact prefix, repo prefix), …) from ArtifactGenerator copy rules."""
    maps: dict[tuple[str | None, str], tuple[tuple[str, str], ...]] = {}
    for found in generators:
        for artifact in _mapping(found.obj.get("spec")).get("artifacts") or ():
            rules = tuple(_copy_rule(r) for r in _mapping(artifact).get("copy") or () if isinstance(r, dict))
            maps[(found.cluster_dir, str(_mapping(artifact).get("name")))] = tuple(r for r in rules if r)
    return maps


def _copy_rule(rule: Mapping[str, Any]) -> tuple[str, str] | None:
    source, target = str(rule.get("from", "")), str(rule.get("to", ""))
    if not source.startswith("@") or not target.startswith("@artifact"):
        return None
    repo_prefix = source.partition("/")[2].removesuffix("**").strip("/")
    artifact_prefix = target.removeprefix("@artifact").strip("/")
    return artifact_prefix, repo_prefix


def _flux_path(found: _Found, path: str, artifacts: _ArtifactMaps) -> str | None:
    ref = _mapping(_mapping(found.obj.get("spec")).get("sourceRef"))
    kind = ref.get("kind", "GitRepository")
    if kind == "GitRepository":
        return path
    if kind != "ExternalArtifact":
        return None
    rules = artifacts.get((found.cluster_dir, str(ref.get("name")))) or artifacts.get((None, str(ref.get("name"))))
    relative = normalize_repo_path(path)
    for artifact_prefix, repo_prefix in rules or ():
        if artifact_prefix in ("", ".") or relative == artifact_prefix or relative.startswith(artifact_prefix + "/"):
            rest = relative.removeprefix(artifact_prefix).strip("/") if artifact_prefix not in ("", ".") else relative
            return "/".join(p for p in (repo_prefix, rest) if p and p != ".") or "."
    return None


def _flux_app(found: _Found, names: set[str], artifacts: _ArtifactMaps, strict: bool = False) -> list[AppSpec]:
    spec = _mapping(found.obj.get("spec"))
    path = _flux_path(found, str(spec.get("path") or "./"), artifacts)
    if path is None or not _name(found.obj):
        log.info("import: Flux Kustomization at %s reads a source other than this repo; skipped", found.origin)
        return []
    cluster_dir = found.cluster_dir
    if cluster_dir is not None and cluster_dir not in names:
        log.info("import: Flux Kustomization at %s is for cluster %r, not in the fleet; skipped",
                 found.origin, cluster_dir)
        return []
    prune = bool(spec.get("prune"))
    app = _app(found, path, AppSource.FLUX, (cluster_dir,) if cluster_dir else (),
               namespace=str(spec.get("targetNamespace") or ""),
               sync=SyncPolicy(automated=True, prune=prune, self_heal=True),
               suspended=bool(spec.get("suspend")),
               flux=flux_options(found.obj, strict=strict), depends_on=_flux_depends_on(found.obj))
    return [app] if app else []


def flux_options(obj: Mapping[str, Any], *, strict: bool = False) -> FluxOptions:
    """The build-time fields of a Flux Kustomization (see ``core.desired.flux`` and docs/flux.md)."""
    spec = _mapping(obj.get("spec"))
    post = _mapping(spec.get("postBuild"))
    patches = tuple(FluxPatch(str(p["patch"]), json.dumps(p["target"], sort_keys=True) if isinstance(
        p.get("target"), dict) and p["target"] else "") for p in spec.get("patches") or ()
        if isinstance(p, dict) and isinstance(p.get("patch"), str))
    images = tuple(FluxImage(str(i["name"]), str(i.get("newName") or ""), str(i.get("newTag") or ""),
                             str(i.get("digest") or "")) for i in spec.get("images") or ()
                   if isinstance(i, dict) and i.get("name"))
    refs = tuple(SubstituteRef(str(r.get("kind")), str(r.get("name")), bool(r.get("optional")))
                 for r in post.get("substituteFrom") or ()
                 if isinstance(r, dict) and r.get("kind") in ("ConfigMap", "Secret") and r.get("name"))
    inline = _mapping(post.get("substitute"))
    return FluxOptions(
        namespace=str(_mapping(obj.get("metadata")).get("namespace") or "flux-system"),
        target_namespace=str(spec.get("targetNamespace") or ""),
        name_prefix=str(spec.get("namePrefix") or ""), name_suffix=str(spec.get("nameSuffix") or ""),
        patches=patches, components=tuple(str(c) for c in spec.get("components") or () if isinstance(c, str)),
        ignore_missing_components=bool(spec.get("ignoreMissingComponents")), images=images,
        substitute=tuple(sorted((str(k), "" if v is None else str(v)) for k, v in inline.items())),
        substitute_from=refs,
        common_labels=_string_pairs(_mapping(spec.get("commonMetadata")).get("labels")),
        common_annotations=_string_pairs(_mapping(spec.get("commonMetadata")).get("annotations")),
        strict=strict,
    )


def _string_pairs(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), "" if v is None else str(v)) for k, v in _mapping(value).items()))


def _flux_depends_on(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """``spec.dependsOn`` names (a namespace other than the object's is kept as ``namespace/name``)."""
    own = _mapping(obj.get("metadata")).get("namespace")
    names: list[str] = []
    for entry in _mapping(obj.get("spec")).get("dependsOn") or ():
        if isinstance(entry, dict) and entry.get("name"):
            namespace = entry.get("namespace")
            names.append(f"{namespace}/{entry['name']}" if namespace and namespace != own else str(entry["name"]))
    return tuple(names)


# ---------------------------------------------------------------------------------------------- merging


def _app(
    found: _Found, path: str, source: AppSource, clusters: tuple[str, ...], **fields: Any
) -> AppSpec | None:
    try:
        normal = normalize_repo_path(path)
    except ConfigError as exc:
        log.warning("import: %s: %s", found.origin, exc)
        return None
    return AppSpec(name=_name(found.obj), path=normal, source=source, clusters=clusters,
                   selector=MappingProxyType({}), origin=found.origin, **fields)


def _merge_same_names(entries: Sequence[AppSpec]) -> list[AppSpec]:
    groups: dict[str, list[AppSpec]] = {}
    for entry in entries:
        groups.setdefault(entry.name, []).append(entry)
    merged: list[AppSpec] = []
    for group in groups.values():
        merged.extend(_merge_group(group))
    return merged


def _merge_group(group: list[AppSpec]) -> list[AppSpec]:
    if len(group) == 1:
        return group
    if all(len(a.clusters) == 1 for a in group) and len({a.clusters for a in group}) == len(group):
        path = _common_path(group)
        if path is not None and all(_rest(a) == _rest(group[0]) for a in group):
            clusters = tuple(c for a in group for c in a.clusters)
            return [dataclasses.replace(group[0], path=path, clusters=clusters,
                                        origin=", ".join(a.origin for a in group))]
    return [dataclasses.replace(a, name=_suffixed(a, i)) for i, a in enumerate(group)]


def _rest(app: AppSpec) -> AppSpec:
    return dataclasses.replace(app, path="", clusters=(), origin="")


def _common_path(group: Sequence[AppSpec]) -> str | None:
    """The one path of every entry, or a ``{cluster}`` template that yields each entry's path."""
    if len({a.path for a in group}) == 1:
        return group[0].path
    templates = {_template(a.path, a.clusters[0]) for a in group}
    template = templates.pop() if len(templates) == 1 else None
    return template if template and "{cluster}" in template else None


def _template(path: str, cluster: str) -> str:
    return "/".join("{cluster}" if part == cluster else part for part in path.split("/"))


def _suffixed(app: AppSpec, index: int) -> str:
    suffix = app.clusters[0] if len(app.clusters) == 1 else str(index + 1)
    return f"{app.name}-{suffix}"
