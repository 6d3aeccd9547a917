"""The fleet file (``fleetdeck.yaml``): find it, validate it with line numbers, turn it into a FleetConfig.

Role: the operator-facing configuration. Every error is a ``ConfigError`` naming the file, the line and
the field, and saying what is expected. The published JSON Schema (``fleet.schema.json``) drives the
validation, so the schema and the loader cannot drift apart.

Constraint: reads only the fleet file (and, through ``discover_imported_apps``, a materialized repo
tree); never touches Git or a cluster.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.desired.imported import discover_imported_apps, merge_apps
from core.desired.nodeschema import Problem, validate
from core.desired.spec import (
    CLUSTER_PLACEHOLDER,
    PLACEHOLDER,
    AppSource,
    AppSpec,
    ClusterSpec,
    ConfigMapRef,
    FleetConfig,
    HealthSpec,
    HelmOptions,
    HelmParameter,
    IgnoreSpec,
    ImportSpec,
    RepoSpec,
    SyncPolicy,
    is_remote_url,
    normalize_repo_path,
)
from core.desired.yamlload import compose_single, construct
from core.errors import ConfigError, ManifestError
from core.model import Owner

__all__ = [
    "FLEET_FILE_NAMES",
    "AppSource",
    "AppSpec",
    "ClusterSpec",
    "ConfigErrors",
    "FleetConfig",
    "HealthSpec",
    "HelmOptions",
    "IgnoreSpec",
    "ImportSpec",
    "Owner",
    "RepoSpec",
    "SyncPolicy",
    "discover_imported_apps",
    "find_fleet_file",
    "fleet_schema",
    "load_fleet",
    "merge_apps",
    "parse_duration",
]

FLEET_FILE_NAMES = ("fleetdeck.yaml", "fleetdeck.yml")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


class ConfigErrors(ConfigError):
    """Several problems in one fleet file; ``errors`` holds each, the message shows the first."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        first = errors[0]
        others = "; ".join(f"line {e.line}: {e.field or _bare(e)}" for e in errors[1:4])
        more = f" (and {len(errors) - 1} more: {others})" if len(errors) > 1 else ""
        super().__init__(_bare(first) + more, path=first.path, line=first.line, field=first.field, hint=first.hint)
        self.errors = tuple(errors)


def _bare(error: ConfigError) -> str:
    prefix = f"{error.path}:{error.line}: " if error.line else (f"{error.path}: " if error.path else "")
    text = error.message.removeprefix(prefix)
    return text.removeprefix(f"{error.field}: ") if error.field else text


@cache
def _schema_text() -> str:
    return resources.files("core.desired").joinpath("fleet.schema.json").read_text(encoding="utf-8")


def fleet_schema() -> dict[str, Any]:
    """The JSON Schema of the fleet file (what ``fleetdeck schema`` prints); a fresh copy each call."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


def find_fleet_file(explicit: str | os.PathLike[str] | None = None, *, cwd: Path | None = None) -> Path:
    """The fleet file: ``explicit`` (``--fleet``) if given, else ``fleetdeck.yaml`` in ``cwd``.

    Raises:
        ConfigError: the file does not exist.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError("fleet file not found", path=str(path), hint="check the --fleet path")
        return path.resolve()
    base = cwd or Path.cwd()
    for name in FLEET_FILE_NAMES:
        if (base / name).is_file():
            return (base / name).resolve()
    raise ConfigError(
        f"no {FLEET_FILE_NAMES[0]} in {base}",
        hint="run fleetdeck where fleetdeck.yaml is, or pass --fleet PATH (fleetdeck schema prints its format)",
    )


def load_fleet(path: str | os.PathLike[str]) -> FleetConfig:
    """Read and validate a fleet file.

    Args:
        path: the fleet file.

    Returns:
        The configuration, with relative repo and kubeconfig paths resolved against the file's directory.

    Raises:
        ConfigError: the file is missing or invalid (``ConfigErrors`` when there are several problems);
            each names the file, line and field and what is expected.
    """
    file = Path(path)
    data = _read(file)
    values, lines = _validated(data, str(file))
    builder = _Builder(file, lines)
    config = builder.build(values)
    builder.raise_problems()
    return config


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the fleet file: {exc.strerror}", path=str(file)) from None


def _validated(data: bytes, where: str) -> tuple[dict[str, Any], dict[str, int]]:
    try:
        node = compose_single(data, where)
    except ManifestError as exc:
        errors = getattr(exc, "errors", (exc,))
        first = errors[0]
        raise ConfigError(_bare_manifest(first), path=where, line=first.line, hint="fix the YAML syntax") from None
    if node is None:
        raise ConfigError("the fleet file is empty", path=where, hint="see `fleetdeck schema` for its format")
    problems, lines = validate(node, fleet_schema())
    if problems:
        raise ConfigErrors([_problem_error(p, where) for p in problems])
    return dict(construct(node)), lines


def _bare_manifest(error: ManifestError) -> str:
    return re.sub(r"^.*?:\d+(?::\d+)?: ", "", error.message)


def _problem_error(problem: Problem, where: str) -> ConfigError:
    return ConfigError(problem.message, path=where, line=problem.line, field=problem.field)


def parse_duration(value: float | str) -> float:
    """Seconds from a number or a duration such as ``90s``, ``5m`` or ``1h30m``."""
    if isinstance(value, int | float):
        return float(value)
    return sum(float(number) * _UNITS[unit] for number, unit in _DURATION_PART.findall(value))


class _Builder:
    """Turns schema-valid values into a FleetConfig, collecting the problems the schema cannot see."""

    def __init__(self, file: Path, lines: Mapping[str, int]) -> None:
        self.file = file
        self.base = file.resolve().parent
        self.lines = lines
        self.problems: list[ConfigError] = []

    def problem(self, field: str, message: str, *, hint: str = "") -> None:
        line = self.lines.get(field)
        self.problems.append(ConfigError(message, path=str(self.file), line=line, field=field, hint=hint))

    def raise_problems(self) -> None:
        if len(self.problems) == 1:
            raise self.problems[0]
        if self.problems:
            raise ConfigErrors(sorted(self.problems, key=lambda e: e.line or 0))

    def build(self, values: Mapping[str, Any]) -> FleetConfig:
        clusters = tuple(self.cluster(i, c) for i, c in enumerate(values.get("clusters", ())))
        self.unique("clusters", [c.name for c in clusters])
        apps = tuple(self.app(i, a, clusters) for i, a in enumerate(values.get("apps", ())))
        self.unique("apps", [a.name for a in apps])
        imports = values.get("import", {})
        return FleetConfig(
            path=self.file.resolve(),
            repo=self.repo(values["repo"]),
            clusters=clusters,
            apps=apps,
            read_only=bool(values.get("readOnly", False)),
            imports=ImportSpec(argocd=bool(imports.get("argocd")), flux=bool(imports.get("flux")),
                               flux_strict_substitutions=bool(imports.get("fluxStrictSubstitutions"))),
            health=self.health(values.get("health") or {}, clusters),
        )

    def health(self, values: Mapping[str, Any], clusters: Sequence[ClusterSpec]) -> HealthSpec:
        live = values.get("argocdConfigMap")
        ref = None
        if live is not None:
            ref = ConfigMapRef(cluster=str(live["cluster"]), namespace=str(live.get("namespace", "argocd")),
                               name=str(live.get("name", "argocd-cm")))
            names = [c.name for c in clusters]
            if ref.cluster not in names:
                self.problem("health.argocdConfigMap.cluster", f"unknown cluster {ref.cluster!r}",
                             hint=f"expected one of the clusters: {', '.join(names)}")
        return HealthSpec(customizations=tuple(str(p) for p in values.get("customizations", ())),
                          argocd_config_map=ref)

    def repo(self, values: Mapping[str, Any]) -> RepoSpec:
        url = str(values["url"])
        if not is_remote_url(url):
            url = str((self.base / Path(url).expanduser()).resolve())
        return RepoSpec(url=url, branch=str(values.get("branch", "main")),
                        interval=parse_duration(values.get("interval", 60.0)))

    def cluster(self, index: int, values: Mapping[str, Any]) -> ClusterSpec:
        kubeconfig = values.get("kubeconfig")
        if kubeconfig is not None:
            kubeconfig = str((self.base / Path(str(kubeconfig)).expanduser()).resolve())
        return ClusterSpec(
            name=str(values["name"]),
            kubeconfig=kubeconfig,
            context=values.get("context"),
            labels=MappingProxyType(dict(values.get("labels") or {})),
            read_only=bool(values.get("readOnly", False)),
            owner=Owner(values["owner"]) if "owner" in values else None,
        )

    def unique(self, section: str, names: Sequence[str]) -> None:
        first: dict[str, int] = {}
        for index, name in enumerate(names):
            if name in first:
                line = self.lines.get(f"{section}[{first[name]}].name")
                self.problem(f"{section}[{index}].name", f"duplicate name {name!r} (first defined at line {line})",
                             hint="names must be unique")
            first.setdefault(name, index)

    def app(self, index: int, values: Mapping[str, Any], clusters: Sequence[ClusterSpec]) -> AppSpec:
        where = f"apps[{index}]"
        app = AppSpec(
            name=str(values["name"]),
            path=self.app_path(where, str(values["path"])),
            namespace=str(values["namespace"]),
            clusters=tuple(values.get("clusters", ())),
            selector=MappingProxyType(dict(values.get("selector") or {})),
            sync=_sync_policy(values.get("sync") or {}),
            ignore=tuple(_ignore(rule) for rule in values.get("ignore", ())),
            source=AppSource.FLEET,
            revision=values.get("revision"),
            suspended=bool(values.get("suspended", False)),
            origin=f"{self.file.name}:{self.lines.get(where, 0)}",
            helm=helm_options(values["helm"]) if "helm" in values else None,
            depends_on=tuple(str(name) for name in values.get("dependsOn", ())),
            owner=Owner(values["owner"]) if "owner" in values else None,
            owners=MappingProxyType({str(k): Owner(v) for k, v in (values.get("owners") or {}).items()}),
        )
        self.check_app_clusters(where, app, clusters)
        for name in app.owners:
            if name not in [c.name for c in clusters]:
                self.problem(f"{where}.owners.{name}", f"unknown cluster {name!r}",
                             hint=f"expected one of the clusters: {', '.join(c.name for c in clusters)}")
        return app

    def app_path(self, where: str, path: str) -> str:
        for name in PLACEHOLDER.findall(path):
            if name != CLUSTER_PLACEHOLDER and not _LABEL_KEY.match(name):
                self.problem(f"{where}.path", f"placeholder {{{name}}} is not a label key or {{cluster}}")
        if "{" in PLACEHOLDER.sub("", path) or "}" in PLACEHOLDER.sub("", path):
            self.problem(f"{where}.path", f"unbalanced braces in {path!r}; placeholders look like {{env}}")
        try:
            return normalize_repo_path(path)
        except ConfigError as exc:
            self.problem(f"{where}.path", _bare(exc), hint="paths are directories inside the config repo")
            return path

    def check_app_clusters(self, where: str, app: AppSpec, clusters: Sequence[ClusterSpec]) -> None:
        names = [c.name for c in clusters]
        for index, name in enumerate(app.clusters):
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                suggestion = f" (did you mean {close[0]!r}?)" if close else ""
                self.problem(f"{where}.clusters[{index}]", f"unknown cluster {name!r}{suggestion}",
                             hint=f"expected one of the clusters: {', '.join(names)}")
        self.check_placeholders(where, app, clusters)

    def check_placeholders(self, where: str, app: AppSpec, clusters: Iterable[ClusterSpec]) -> None:
        for cluster in clusters:
            if not app.selects(cluster):
                continue
            missing = [p for p in app.placeholders if p != CLUSTER_PLACEHOLDER and p not in cluster.labels]
            for label in missing:
                self.problem(
                    f"{where}.path",
                    f"app {app.name!r}: cluster {cluster.name!r} has no label {label!r} used in path {app.path!r}",
                    hint=f"add a {label} label to cluster {cluster.name!r}, or narrow the app's clusters/selector",
                )


def _sync_policy(values: Mapping[str, Any]) -> SyncPolicy:
    return SyncPolicy(
        automated=bool(values.get("automated", False)),
        prune=bool(values.get("prune", False)),
        self_heal=bool(values.get("selfHeal", False)),
        allow_empty=bool(values.get("allowEmpty", False)),
        respect_ignore=bool(values.get("respectIgnore", True)),
    )


def helm_options(values: Mapping[str, Any]) -> HelmOptions:
    """The fleet file's ``helm:`` block (schema-valid) as options; ``values`` becomes canonical JSON text."""
    inline = values.get("values") or {}
    return HelmOptions(
        release_name=str(values.get("releaseName") or ""),
        value_files=tuple(str(f) for f in values.get("valueFiles", ())),
        values=json.dumps(inline, sort_keys=True, default=str) if inline else "",
        parameters=tuple(HelmParameter(str(p["name"]), _scalar_text(p["value"]), bool(p.get("forceString", False)))
                         for p in values.get("parameters", ())),
        include_crds=bool(values.get("includeCRDs", True)),
        ignore_missing_value_files=bool(values.get("ignoreMissingValueFiles", False)),
        kube_version=str(values.get("kubeVersion") or ""),
        api_versions=tuple(str(v) for v in values.get("apiVersions", ())),
    )


def _scalar_text(value: Any) -> str:
    """A parameter value as ``--set`` text: YAML's true/false, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _ignore(values: Mapping[str, Any]) -> IgnoreSpec:
    return IgnoreSpec(
        group=str(values.get("group", "*")),
        kind=str(values.get("kind", "*")),
        name=values.get("name"),
        namespace=values.get("namespace"),
        json_pointers=tuple(values.get("jsonPointers", ())),
        managed_fields_managers=tuple(values.get("managedFieldsManagers", ())),
    )
