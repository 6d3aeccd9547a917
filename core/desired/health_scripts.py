"""Custom health checks from disk: Argo CD ``resource_customizations`` directories and argocd-cm files.

Role: the one place that turns settings into loaded health checks (``load_health_checks``); the engine's
evaluation, a sync's health wait and ``fleetdeck health`` all run what it returns. Sources, first wins:
``HealthSettings.customizations``, then ``FLEETDECK_RESOURCE_CUSTOMIZATIONS`` (paths separated by
``os.pathsep``, relative to the working directory), then the fleet file's ``health.customizations``
(relative to the fleet file). Each path is either

* a directory laid out like Argo CD's ``resource_customizations``: ``<group>/<Kind>/health.lua``
  (``<Kind>/health.lua`` for the core group); an ``_`` in a directory name stands for ``*``, as in Argo
  CD's ``_.crossplane.io/_``, and a literal ``*.crossplane.io`` works too; or
* a YAML file holding the ``argocd-cm`` ConfigMap: its ``resource.customizations.health.<group>_<Kind>``
  keys (``<Kind>`` alone for the core group) and the older ``resource.customizations`` block
  (``group/Kind: {health.lua: …}``, wildcards allowed). Split keys win over the block, as in Argo CD.

Which script judges an object is decided in ``core.reconcile.health_lua``.
Constraint: reads only the given files; never Git or a cluster.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from core.desired.spec import FleetConfig
from core.desired.yamlload import compose_single, construct, load_documents
from core.errors import ConfigError, ManifestError
from core.reconcile.health_lua import ARGOCD_CM, DIRECTORY, HealthScript, LuaHealthChecks
from core.settings import HealthSettings

ENV = "FLEETDECK_RESOURCE_CUSTOMIZATIONS"
SCRIPT_FILE = "health.lua"
HEALTH_KEY = "resource.customizations.health."
BLOCK_KEY = "resource.customizations"
MAX_SCRIPT_BYTES = 1024 * 1024
"""A larger health.lua is refused (Argo CD's scripts are a few KiB)."""
_HINT = f"set {ENV} or the fleet file's health.customizations to directories or argocd-cm files that exist"


def customization_paths(settings: HealthSettings, fleet: FleetConfig | None = None,
                        environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """Every configured source, in precedence order (first wins)."""
    env = os.environ if environ is None else environ
    paths = [Path(p).expanduser() for p in settings.customizations]
    paths += [Path(p).expanduser() for p in env.get(ENV, "").split(os.pathsep) if p.strip()]
    if fleet is not None:
        base = fleet.path.parent
        paths += [base / Path(p).expanduser() for p in fleet.health_customizations]
    return tuple(paths)


def load_health_checks(settings: HealthSettings, fleet: FleetConfig | None = None,
                       environ: Mapping[str, str] | None = None) -> LuaHealthChecks | None:
    """The configured health scripts, ready to run; None when no source is configured or none holds one.

    Raises:
        ConfigError: a configured path does not exist, or a file in it cannot be read or parsed.
    """
    scripts: list[HealthScript] = []
    for path in customization_paths(settings, fleet, environ):
        scripts += read_customizations(path)
    return LuaHealthChecks(scripts, settings) if scripts else None


def with_configmap(checks: LuaHealthChecks | None, configmap: Mapping[str, Any], where: str,
                   settings: HealthSettings) -> LuaHealthChecks | None:
    """``checks`` plus the health scripts of an argocd-cm object (read live), which come after them.

    Raises:
        ConfigError: a ``resource.customizations.health.`` key names no kind.
    """
    data = configmap.get("data")
    added = scripts_from_configmap(data if isinstance(data, Mapping) else {}, where)
    if not added:
        return checks
    return LuaHealthChecks([*(checks.scripts if checks is not None else ()), *added], settings)


def read_customizations(path: Path) -> list[HealthScript]:
    """The scripts of one source: a ``resource_customizations`` directory or an argocd-cm file.

    Raises:
        ConfigError: the path does not exist, or a file in it cannot be read or parsed.
    """
    if path.is_dir():
        return _directory(path)
    if path.is_file():
        return _configmap_file(path)
    raise ConfigError("health customizations not found", path=str(path), hint=_HINT)


def _directory(root: Path) -> list[HealthScript]:
    files = sorted(root.glob(f"*/*/{SCRIPT_FILE}")) + sorted(root.glob(f"*/{SCRIPT_FILE}"))
    scripts = []
    for file in files:
        relative = file.parent.relative_to(root).as_posix()
        scripts.append(HealthScript(pattern=relative.replace("_", "*"), source=_read_text(file),
                                    where=f"{relative}/{SCRIPT_FILE}", tier=DIRECTORY))
    return scripts


def _read_text(file: Path) -> str:
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_SCRIPT_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the health script: {exc.strerror}", path=str(file)) from None
    if len(data) > MAX_SCRIPT_BYTES:
        raise ConfigError(f"health script larger than {MAX_SCRIPT_BYTES // 1024} KiB", path=str(file))
    return data.decode("utf-8", errors="replace")


def _configmap_file(file: Path) -> list[HealthScript]:
    try:
        docs = load_documents(file.read_bytes(), str(file))
    except OSError as exc:
        raise ConfigError(f"cannot read the argocd-cm file: {exc.strerror}", path=str(file)) from None
    except ManifestError as exc:
        raise ConfigError(f"not a valid argocd-cm ConfigMap: {exc.message}", path=str(file)) from None
    maps = [doc.obj for doc in docs if doc.obj.get("kind") == "ConfigMap"]
    if not maps:
        raise ConfigError("no ConfigMap in the file", path=str(file),
                          hint="give a directory of <group>/<Kind>/health.lua or the argocd-cm ConfigMap YAML")
    scripts: list[HealthScript] = []
    for cm in maps:
        scripts += scripts_from_configmap(cm.get("data") or {}, str(file))
    return scripts


def scripts_from_configmap(data: Mapping[str, Any], where: str = "argocd-cm") -> list[HealthScript]:
    """The health scripts of an argocd-cm ``data`` mapping: split keys first, then the older block.

    Raises:
        ConfigError: a ``resource.customizations.health.`` key does not name ``<group>_<Kind>`` or
            ``<Kind>``, or the ``resource.customizations`` block is not a mapping.
    """
    scripts = []
    for key in sorted(k for k in data if k.startswith(HEALTH_KEY)):
        group_kind = key.removeprefix(HEALTH_KEY)
        parts = group_kind.split("_")
        if len(parts) > 2 or not all(parts):
            raise ConfigError(f"{key}: expected resource.customizations.health.<group>_<Kind> or ...<Kind>",
                              path=where)
        text = data[key]
        if isinstance(text, str) and text.strip():
            scripts.append(HealthScript(pattern="/".join(parts), source=text, where=f"argocd-cm {key}",
                                        tier=ARGOCD_CM))
    block = data.get(BLOCK_KEY)
    if isinstance(block, str) and block.strip():
        scripts += _block(block, where)
    return scripts


def _block(text: str, where: str) -> list[HealthScript]:
    try:
        node = compose_single(text, f"{where} ({BLOCK_KEY})")
    except ManifestError as exc:
        raise ConfigError(f"{BLOCK_KEY} is not valid YAML: {exc.message}", path=where) from None
    value = construct(node) if node is not None else None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{BLOCK_KEY} must map group/Kind to customizations", path=where)
    return [HealthScript(pattern=str(key), source=entry["health.lua"], where=f"argocd-cm {BLOCK_KEY} {key}",
                         tier=ARGOCD_CM)
            for key, entry in _entries(value)]


def _entries(value: Mapping[Any, Any]) -> Iterable[tuple[Any, Mapping[str, Any]]]:
    for key, entry in value.items():
        if isinstance(entry, Mapping) and isinstance(entry.get("health.lua"), str) and entry["health.lua"].strip():
            yield key, entry
