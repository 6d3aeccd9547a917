"""Flux ``HelmRelease`` (helm.toolkit.fluxcd.io/v2) objects as apps whose desired state is their chart.

Role: ``discover_releases`` finds the HelmReleases in the rendered output of imported Flux Kustomization
apps and makes one app of each (named ``<namespace>.<name>``, on the Kustomization's clusters, at the
Kustomization's path). ``plan_release`` reads one HelmRelease from that output (at the revision being
rendered; sources and values objects missing there are looked up in the other Flux Kustomizations of the
cluster) and says how to render it: the release name, namespace, merged values, CRD policy and where
the chart comes from (a directory of the config repo, or a ``ChartRequest`` for an HTTP repository or
an OCI registry). ``core.desired.render`` fetches the chart (``chart_source``) and runs ``helm template``.

The split: the parent Kustomization app keeps the HelmRelease and its source objects in its own
desired state (that is what Flux's kustomize-controller applies); the HelmRelease app holds the objects
the chart renders (what helm-controller would install).

Constraint: pure reading of already-rendered objects; no I/O. Values from Secrets are never put in a
message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from core.desired.chart_source import ChartRequest
from core.desired.spec import (
    AppSource,
    AppSpec,
    ClusterSpec,
    HelmOptions,
    HelmReleaseRef,
    SyncPolicy,
    normalize_repo_path,
)
from core.desired.yamlload import DEFAULT_BUDGET, budget_violation
from core.errors import ConfigError, FleetdeckError, RenderError

log = logging.getLogger(__name__)

HELM_GROUP = "helm.toolkit.fluxcd.io"
SOURCE_GROUP = "source.toolkit.fluxcd.io"
_MAX_RELEASE_NAME = 53


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _group(obj: Mapping[str, Any]) -> str:
    return str(obj.get("apiVersion", "")).rpartition("/")[0]


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(obj.get("metadata"))


def is_helm_release(obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` is a Flux HelmRelease."""
    return obj.get("kind") == "HelmRelease" and _group(obj) == HELM_GROUP


def with_namespace(obj: Mapping[str, Any], parent_namespace: str) -> Mapping[str, Any]:
    """``obj`` with the namespace Flux would give it (see ``object_namespace``) written in its metadata."""
    return {**obj, "metadata": {**_meta(obj), "namespace": object_namespace(obj, parent_namespace)}}


def object_namespace(obj: Mapping[str, Any], parent_namespace: str) -> str:
    """Where Flux's kustomize-controller puts ``obj``: the Kustomization's ``targetNamespace``, else the
    object's own namespace, else ``default``."""
    return parent_namespace or str(_meta(obj).get("namespace") or "") or "default"


def release_name(name: str, target_namespace: str, explicit: str) -> str:
    """``spec.releaseName``, else ``[targetNamespace-]name``; over 53 characters it is shortened as Flux
    does (the first 40 characters, ``-`` and 12 hex digits of its sha256)."""
    full = explicit or (f"{target_namespace}-{name}" if target_namespace else name)
    if len(full) <= _MAX_RELEASE_NAME:
        return full
    return f"{full[:40]}-{hashlib.sha256(full.encode()).hexdigest()[:12]}"


def app_name(namespace: str, name: str) -> str:
    """The app of the HelmRelease ``namespace/name``."""
    return f"{namespace}.{name}"


# ---------------------------------------------------------------------------------------------- discovery


RenderFn = Callable[[AppSpec, str], Awaitable[Sequence[Mapping[str, Any]]]]
"""Render an app at one of its (filled) paths: the objects of its desired state."""


async def discover_releases(apps: Sequence[AppSpec], clusters: Sequence[ClusterSpec],
                            render: RenderFn) -> tuple[AppSpec, ...]:
    """One app per HelmRelease in the rendered output of the imported Flux Kustomization apps.

    A Kustomization that fails to render contributes nothing (its own row shows the error). A HelmRelease
    found only for some of the Kustomization's clusters gets only those; one found in the output of two
    different Kustomizations gets the Kustomization's name as a suffix.
    """
    found: dict[tuple[str, str], list[tuple[AppSpec, Mapping[str, Any], tuple[str, ...], bool]]] = {}
    for parent in apps:
        if parent.source is not AppSource.FLUX or parent.release is not None:
            continue
        try:
            targets = parent.targets(clusters)
        except FleetdeckError:
            continue
        by_path: dict[str, list[str]] = {}
        for cluster, path in targets:
            by_path.setdefault(path, []).append(cluster.name)
        seen: dict[tuple[str, str], tuple[Mapping[str, Any], list[str]]] = {}
        for path, names in by_path.items():
            try:
                objects = await render(parent, path)
            except (FleetdeckError, OSError) as exc:
                log.info("HelmRelease discovery: %s at %s does not render: %s", parent.name, path, exc)
                continue
            for obj in objects:
                if is_helm_release(obj) and _meta(obj).get("name"):
                    key = (object_namespace(obj, parent.namespace), str(_meta(obj)["name"]))
                    seen.setdefault(key, (obj, []))[1].extend(names)
        every = len(targets)
        for key, (obj, where) in seen.items():
            found.setdefault(key, []).append((parent, obj, tuple(where), len(where) == every))
    apps_out: list[AppSpec] = []
    for (namespace, name), entries in sorted(found.items()):
        for parent, obj, on, everywhere in entries:
            base = app_name(namespace, name)
            apps_out.append(_release_app(base if len(entries) == 1 else f"{base}-{parent.name}", parent, obj,
                                         namespace, on, everywhere, _siblings(parent, apps, clusters)))
    return tuple(apps_out)


def _siblings(parent: AppSpec, apps: Sequence[AppSpec], clusters: Sequence[ClusterSpec]
              ) -> tuple[tuple[str, str, str, str], ...]:
    """For each cluster of ``parent``: the other Flux Kustomization apps there, with their filled paths."""
    out: set[tuple[str, str, str, str]] = set()
    for cluster in clusters:
        if not parent.selects(cluster):
            continue
        try:
            parent_path = parent.path_for(cluster)
        except FleetdeckError:
            continue
        for other in apps:
            if other is parent or other.source is not AppSource.FLUX or other.release is not None:
                continue
            if not other.selects(cluster):
                continue
            try:
                out.add((parent_path, other.name, other.path_for(cluster), other.namespace))
            except FleetdeckError:
                continue
    return tuple(sorted(out))


def _release_app(name: str, parent: AppSpec, obj: Mapping[str, Any], namespace: str,
                 clusters: tuple[str, ...], everywhere: bool,
                 siblings: tuple[tuple[str, str, str, str], ...]) -> AppSpec:
    spec = _mapping(obj.get("spec"))
    hr_name = str(_meta(obj).get("name"))
    return AppSpec(
        name=name, path=parent.path, namespace=str(spec.get("targetNamespace") or "") or namespace,
        clusters=parent.clusters if everywhere else clusters, selector=parent.selector if everywhere else {},
        sync=SyncPolicy(automated=True, prune=True, self_heal=True), source=AppSource.FLUX,
        revision=parent.revision, suspended=parent.suspended or bool(spec.get("suspend")),
        origin=f"HelmRelease {namespace}/{hr_name} in Flux Kustomization {parent.name} ({parent.origin})",
        release=HelmReleaseRef(namespace, hr_name, parent.name, parent.namespace, siblings),
        flux=parent.flux,
    )


# ---------------------------------------------------------------------------------------------- planning


class NotInOutput(RenderError):
    """A source, ConfigMap or Secret the HelmRelease names is not among the objects searched."""


@dataclass(frozen=True, slots=True)
class ReleasePlan:
    """How to render one HelmRelease at one revision."""

    namespace: str
    """``helm template --namespace``: ``spec.targetNamespace`` or the HelmRelease's namespace."""
    helm: HelmOptions
    chart: str | ChartRequest
    """A repo-relative chart directory (GitRepository: the config repo), or what to fetch."""
    source: str
    """``HelmRepository podinfo/podinfo`` etc., for messages."""
    warnings: tuple[str, ...] = ()
    crd_note: str = ""
    """A warning for the row when the render holds CustomResourceDefinitions."""


def plan_release(objects: Iterable[Mapping[str, Any]], ref: HelmReleaseRef, *, repo_url: str,
                 extra: Iterable[Mapping[str, Any]] = ()) -> ReleasePlan:
    """Read the HelmRelease ``ref`` names in its Kustomization's rendered ``objects``; sources, ConfigMaps and
    Secrets not there are looked up in ``extra`` (other Kustomizations' objects, namespaces already set).

    Raises:
        RenderError: the HelmRelease (or its source, or a required valuesFrom object) is not in the output,
            or it uses something fleetdeck does not support (a Bucket source, chartRef to another kind).
    """
    index = _Objects(objects, ref.parent_namespace, extra)
    obj = index.get("HelmRelease", ref.namespace, ref.name, HELM_GROUP)
    where = f"HelmRelease {ref.namespace}/{ref.name}"
    if obj is None:
        raise RenderError(f"{where} is not in the output of Flux Kustomization {ref.parent} at this revision",
                          hint="it was removed or renamed; nothing is pruned for this app")
    spec = _mapping(obj.get("spec"))
    target = str(spec.get("targetNamespace") or "")
    warnings: list[str] = []
    values = _values(index, spec, ref.namespace, where)
    chart_spec = _mapping(_mapping(spec.get("chart")).get("spec"))
    chart_ref = _mapping(spec.get("chartRef"))
    if chart_ref:
        chart, source, value_files = _from_chart_ref(index, chart_ref, ref.namespace, where, repo_url)
    elif chart_spec:
        chart, source, value_files = _from_chart_spec(index, chart_spec, ref.namespace, where, repo_url)
    else:
        raise RenderError(f"{where} has neither spec.chart nor spec.chartRef")
    install_crds = str(_mapping(spec.get("install")).get("crds") or "Create")
    upgrade_crds = str(_mapping(spec.get("upgrade")).get("crds") or "Skip")
    if install_crds not in ("Skip", "Create", "CreateReplace"):
        warnings.append(f"{where}: install.crds {install_crds!r} is not a Flux policy; CRDs are included")
    crd_note = ""
    if upgrade_crds == "Skip" and install_crds != "Skip":
        crd_note = (f"{where}: the chart's CRDs are part of the desired state (install.crds {install_crds}); "
                    "fleetdeck applies them at every sync, where Flux would skip them on upgrade (upgrade.crds Skip)")
    helm = HelmOptions(
        release_name=release_name(ref.name, target, str(spec.get("releaseName") or "")),
        value_files=value_files,
        values=json.dumps(values, sort_keys=True, default=str) if values else "",
        include_crds=install_crds != "Skip",
    )
    return ReleasePlan(target or ref.namespace, helm, chart, source, tuple(warnings), crd_note)


class _Objects:
    """The Kustomization's objects by (kind, namespace, name)."""

    def __init__(self, objects: Iterable[Mapping[str, Any]], parent_namespace: str,
                 extra: Iterable[Mapping[str, Any]] = ()) -> None:
        self.by_key: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        for namespace, group in ((parent_namespace, objects), ("", extra)):
            for obj in group:
                name = _meta(obj).get("name")
                if name:
                    key = (str(obj.get("kind")), object_namespace(obj, namespace), str(name))
                    self.by_key.setdefault(key, obj)

    def get(self, kind: str, namespace: str, name: str, group: str | None = None) -> Mapping[str, Any] | None:
        obj = self.by_key.get((kind, namespace, name))
        if obj is not None and group is not None and _group(obj) != group:
            return None
        return obj


def _source(index: _Objects, kind: str, ref: Mapping[str, Any], namespace: str, where: str) -> Mapping[str, Any]:
    name = str(ref.get("name") or "")
    source_ns = str(ref.get("namespace") or namespace)
    obj = index.get(kind, source_ns, name, SOURCE_GROUP)
    if obj is None:
        raise NotInOutput(f"{where}: its {kind} {source_ns}/{name} is not in the output of the same Flux "
                          "Kustomization nor of another Flux Kustomization of the cluster",
                          hint=f"check the {kind}'s name and namespace")
    return obj


def _from_chart_spec(index: _Objects, chart_spec: Mapping[str, Any], namespace: str, where: str,
                     repo_url: str) -> tuple[str | ChartRequest, str, tuple[str, ...]]:
    chart = str(chart_spec.get("chart") or "")
    version = str(chart_spec.get("version") or "*")
    source_ref = _mapping(chart_spec.get("sourceRef"))
    kind = str(source_ref.get("kind") or "")
    value_files = tuple(str(f) for f in chart_spec.get("valuesFiles") or () if isinstance(f, str))
    if chart_spec.get("valuesFile"):
        value_files = (str(chart_spec["valuesFile"]), *value_files)
    label = f"{kind} {source_ref.get('namespace') or namespace}/{source_ref.get('name')}"
    if not chart:
        raise RenderError(f"{where}: spec.chart.spec.chart is empty")
    if kind == "HelmRepository":
        source = _mapping(_source(index, kind, source_ref, namespace, where).get("spec"))
        url = str(source.get("url") or "")
        if source.get("type") == "oci" or url.startswith("oci://"):
            return (ChartRequest(url, chart=chart, version=version, insecure=bool(source.get("insecure"))),
                    label, value_files)
        return ChartRequest(url, chart=chart, version=version), label, value_files
    if kind == "GitRepository":
        git_ns, git_name = str(source_ref.get("namespace") or namespace), str(source_ref.get("name") or "")
        if (git_ns, git_name) == ("flux-system", "flux-system"):  # bootstrap's: the config repo, kept elsewhere
            git = index.get(kind, git_ns, git_name, SOURCE_GROUP) or {"metadata": {"name": git_name,
                                                                                  "namespace": git_ns}}
        else:
            git = _source(index, kind, source_ref, namespace, where)
        if not _is_config_repo(git, repo_url):
            raise RenderError(f"{where}: its {label} ({_mapping(git.get('spec')).get('url')}) is not the config "
                              "repo; fleetdeck renders charts from the config repo's own GitRepository only")
        try:
            return normalize_repo_path(chart), label, value_files
        except ConfigError as exc:
            raise RenderError(f"{where}: chart {chart!r}: {exc}") from None
    if kind == "Bucket":
        raise RenderError(f"{where}: charts from a Bucket source are not supported by fleetdeck",
                          hint="use a HelmRepository, an OCIRepository or the config repo's GitRepository")
    raise RenderError(f"{where}: unknown chart source kind {kind!r}")


def _from_chart_ref(index: _Objects, chart_ref: Mapping[str, Any], namespace: str, where: str,
                    repo_url: str) -> tuple[str | ChartRequest, str, tuple[str, ...]]:
    kind = str(chart_ref.get("kind") or "")
    label = f"{kind} {chart_ref.get('namespace') or namespace}/{chart_ref.get('name')}"
    if kind == "OCIRepository":
        source = _mapping(_source(index, kind, chart_ref, namespace, where).get("spec"))
        url = str(source.get("url") or "")
        if not url.startswith("oci://"):
            raise RenderError(f"{where}: {label} has no oci:// URL")
        ref = _mapping(source.get("ref"))
        return (ChartRequest(url, digest=str(ref.get("digest") or ""), version=str(ref.get("semver") or ""),
                             tag=str(ref.get("tag") or ""), insecure=bool(source.get("insecure"))), label, ())
    if kind == "HelmChart":
        helm_chart = _source(index, kind, chart_ref, namespace, where)
        chart_ns = str(_meta(helm_chart).get("namespace") or namespace)
        return _from_chart_spec(index, _mapping(helm_chart.get("spec")), chart_ns, where, repo_url)
    raise RenderError(f"{where}: spec.chartRef kind {kind!r} is not supported (OCIRepository or HelmChart)")


def _normal_url(url: str) -> str:
    text = re.sub(r"^(ssh://)?git@([^:/]+)[:/]", r"https://\2/", url.strip())
    return text.removeprefix("file://").rstrip("/").removesuffix(".git").lower()


def _is_config_repo(git: Mapping[str, Any], repo_url: str) -> bool:
    """The bootstrap ``flux-system/flux-system`` GitRepository, or one whose URL is the config repo's."""
    meta = _meta(git)
    if meta.get("name") == "flux-system" and meta.get("namespace") in ("flux-system", None):
        return True
    url = str(_mapping(git.get("spec")).get("url") or "")
    return bool(url) and _normal_url(url) == _normal_url(repo_url)


# ---------------------------------------------------------------------------------------------- values


def _values(index: _Objects, spec: Mapping[str, Any], namespace: str, where: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for entry in spec.get("valuesFrom") or ():
        ref = _mapping(entry)
        found = _values_from(index, ref, namespace, where)
        if found is None:
            continue
        target_path = str(ref.get("targetPath") or "")
        if target_path:
            _set_path(merged, target_path, found if isinstance(found, str) else str(found))
        elif isinstance(found, dict):
            merged = merge_values(merged, found)
    inline = spec.get("values")
    if isinstance(inline, dict):
        merged = merge_values(merged, inline)
    return merged


def merge_values(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base`` (mappings merged key by key, anything else replaced), as Flux does."""
    out = dict(base)
    for key, value in over.items():
        current = out.get(key)
        out[key] = merge_values(current, value) if isinstance(current, dict) and isinstance(value, dict) else value
    return out


def _values_from(index: _Objects, ref: Mapping[str, Any], namespace: str, where: str) -> Any:
    kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
    key = str(ref.get("valuesKey") or "values.yaml")
    optional = bool(ref.get("optional"))
    label = f"{where}: valuesFrom {kind} {namespace}/{name} key {key}"
    if kind not in ("ConfigMap", "Secret"):
        raise RenderError(f"{where}: valuesFrom kind {kind!r} is not ConfigMap or Secret")
    obj = index.get(kind, namespace, name, "")
    if obj is None:
        if optional:
            return None
        raise NotInOutput(f"{label}: the {kind} is not in the output of the same Flux Kustomization nor of another "
                          "Flux Kustomization of the cluster; fleetdeck never reads valuesFrom from the cluster",
                          hint="mark it optional, or keep it in the repository")
    text = _data(obj, key, secret=kind == "Secret", label=label)
    if text is None:
        if optional:
            return None
        raise RenderError(f"{label}: the key is missing")
    if ref.get("targetPath"):
        return text
    secret = kind == "Secret"
    problem = budget_violation(text.encode(), label, budget=DEFAULT_BUDGET)
    if problem is not None:
        raise RenderError(f"{label} is refused: {problem if not secret else 'over the size or nesting budget'}")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RenderError(f"{label} is not valid YAML" + ("" if secret else f": {exc}")) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RenderError(f"{label} is not a YAML mapping")
    return value


def _data(obj: Mapping[str, Any], key: str, *, secret: bool, label: str) -> str | None:
    string_data = _mapping(obj.get("stringData")) if secret else {}
    if key in string_data:
        return str(string_data[key])
    data = _mapping(obj.get("data"))
    if key not in data:
        return None
    if not secret:
        return str(data[key])
    try:
        return base64.b64decode(str(data[key]), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise RenderError(f"{label}: the Secret's value is not base64 of UTF-8 text") from None


def _scalar(text: str) -> Any:
    """A ``--set``-style value: ``true``/``false``/``null`` and integers typed, anything else a string."""
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if re.fullmatch(r"-?(0|[1-9][0-9]*)", text):
        return int(text)
    return text


def _set_path(values: dict[str, Any], path: str, text: str) -> None:
    """Set ``a.b.c`` in ``values`` (``targetPath``; ``\\.`` escapes a dot)."""
    parts = [p.replace("\0", ".") for p in path.replace("\\.", "\0").split(".")]
    current = values
    for part in parts[:-1]:
        child = current.get(part)
        if not isinstance(child, dict):
            child = {}
            current[part] = child
        current = child
    current[parts[-1]] = _scalar(text)
