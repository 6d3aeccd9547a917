"""Locate (or build) the control-plane binaries.

Lookup order, per binary, mirrors controller-runtime's envtest so that envtest users can reuse
their assets: ``TEST_ASSET_<NAME>`` environment variables, then the ``KUBEBUILDER_ASSETS``
directory, then the cache printed by ``scripts/build-control-plane --print``. When something is
still missing, the build script is run (its progress goes to stderr) unless building is disabled.
This module never downloads anything itself; only the build script talks to the Go module proxy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TextIO

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-control-plane"
HELM_BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-helm"
HELM_ENV_VAR = "TEST_ASSET_HELM"

#: binary file name -> environment variable that overrides it (envtest names first).
ENV_VARS: dict[str, str] = {
    "kube-apiserver": "TEST_ASSET_KUBE_APISERVER",
    "etcd": "TEST_ASSET_ETCD",
    "kubectl": "TEST_ASSET_KUBECTL",
    "kube-controller-manager": "TEST_ASSET_KUBE_CONTROLLER_MANAGER",
    "kube-scheduler": "TEST_ASSET_KUBE_SCHEDULER",
    "kwok": "TEST_ASSET_KWOK",
}
STAGES_ENV_VAR = "TEST_ASSET_KWOK_STAGES"
STAGES_DIR_NAME = "kwok-stages"


class BinariesNotFoundError(RuntimeError):
    """Raised when the control-plane binaries can neither be found nor built."""


@dataclass(frozen=True, slots=True)
class Binaries:
    """Absolute paths of everything the control plane runs."""

    kube_apiserver: Path
    etcd: Path
    kubectl: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kwok: Path
    kwok_stages: Path
    """Directory holding kwok's stage YAMLs (``node/fast/node-initialize.yaml``, ``pod/fast/...``)."""

    def as_dict(self) -> dict[str, str]:
        """Return the paths as strings, keyed by field name (for the state file)."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Binaries:
        """Rebuild from :meth:`as_dict` output."""
        return cls(**{f.name: Path(data[f.name]) for f in fields(cls)})


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def cached_dir() -> Path | None:
    """Return the build cache directory if ``scripts/build-control-plane --print`` reports one."""
    if not BUILD_SCRIPT.exists():
        return None
    proc = subprocess.run(
        [str(BUILD_SCRIPT), "--print"], capture_output=True, text=True, check=False, timeout=120
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return Path(proc.stdout.strip().splitlines()[-1])


def _candidates(name: str, cache: Path | None) -> list[Path]:
    found: list[Path] = []
    if value := os.environ.get(ENV_VARS[name]):
        found.append(Path(value))
    if assets := os.environ.get("KUBEBUILDER_ASSETS"):
        found.append(Path(assets) / name)
    if cache is not None:
        found.append(cache / name)
    return found


def _resolve(name: str, cache: Path | None) -> Path | None:
    return next((p.resolve() for p in _candidates(name, cache) if _is_executable(p)), None)


def _resolve_stages(kwok: Path | None, cache: Path | None) -> Path | None:
    options = [Path(v) for v in [os.environ.get(STAGES_ENV_VAR)] if v]
    if kwok is not None:
        options.append(kwok.parent / STAGES_DIR_NAME)
    if cache is not None:
        options.append(cache / STAGES_DIR_NAME)
    return next((p for p in options if (p / "pod" / "fast" / "pod-ready.yaml").is_file()), None)


def _lookup(cache: Path | None) -> tuple[dict[str, Path], list[str]]:
    paths: dict[str, Path] = {}
    missing: list[str] = []
    for name in ENV_VARS:
        path = _resolve(name, cache)
        if path is None:
            missing.append(name)
        else:
            paths[name] = path
    stages = _resolve_stages(paths.get("kwok"), cache)
    if stages is None:
        missing.append(STAGES_DIR_NAME)
    else:
        paths[STAGES_DIR_NAME] = stages
    return paths, missing


def _to_binaries(paths: dict[str, Path]) -> Binaries:
    return Binaries(**{name.replace("-", "_"): path for name, path in paths.items()})


def build(*, stream: TextIO | None = None) -> Path:
    """Run ``scripts/build-control-plane`` and return the directory it printed.

    Args:
        stream: where the build's progress goes (default: this process's stderr).

    Raises:
        BinariesNotFoundError: the Go toolchain is missing or the build failed.
    """
    if shutil.which("go") is None:
        raise BinariesNotFoundError("the Go toolchain (go >= 1.26) is not installed, so nothing can be built")
    out = stream or sys.stderr
    proc = subprocess.Popen(
        [str(BUILD_SCRIPT)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert proc.stdout is not None
    last = ""
    for line in proc.stdout:
        out.write(line)
        out.flush()
        last = line.strip() or last
    if proc.wait() != 0:
        raise BinariesNotFoundError(
            f"{BUILD_SCRIPT} failed with exit code {proc.returncode}; see output above"
        )
    return Path(last)


def find_binaries(*, allow_build: bool = True, stream: TextIO | None = None) -> Binaries:
    """Locate every control-plane binary, building them when allowed and necessary.

    Args:
        allow_build: run ``scripts/build-control-plane`` if something is missing.
        stream: where build progress is written (default: stderr).

    Returns:
        The resolved paths.

    Raises:
        BinariesNotFoundError: something is missing and could not be built.
    """
    cache = cached_dir()
    paths, missing = _lookup(cache)
    if not missing:
        return _to_binaries(paths)
    if not allow_build:
        raise BinariesNotFoundError(_missing_message(missing))
    build(stream=stream)
    paths, missing = _lookup(cached_dir())
    if missing:
        raise BinariesNotFoundError(_missing_message(missing) + " (even after building)")
    return _to_binaries(paths)


def _missing_message(missing: list[str]) -> str:
    names = ", ".join(missing)
    return (
        f"control-plane binaries not found: {names}. Build them with scripts/build-control-plane "
        f"(cached under ~/.cache/fleetdeck/k8s), or point KUBEBUILDER_ASSETS / "
        f"{', '.join(ENV_VARS.values())} / {STAGES_ENV_VAR} at existing ones"
    )


def find_helm(*, allow_build: bool = True, stream: TextIO | None = None) -> Path:
    """The helm binary for tests: ``TEST_ASSET_HELM``, ``$KUBEBUILDER_ASSETS/helm``, then the cache printed by
    ``scripts/build-helm --print``; built with that script when missing and allowed.

    Raises:
        BinariesNotFoundError: helm is missing and could not be built.
    """
    options = [Path(v) for v in (os.environ.get(HELM_ENV_VAR),) if v]
    if assets := os.environ.get("KUBEBUILDER_ASSETS"):
        options.append(Path(assets) / "helm")
    options.extend(_helm_cache())
    found = next((p.resolve() for p in options if _is_executable(p)), None)
    if found is not None:
        return found
    if not allow_build or shutil.which("go") is None:
        raise BinariesNotFoundError(
            f"helm not found: build it with {HELM_BUILD_SCRIPT.name} (cached under ~/.cache/fleetdeck/k8s), "
            f"or point {HELM_ENV_VAR} at an existing helm"
        )
    out = stream or sys.stderr
    proc = subprocess.run([str(HELM_BUILD_SCRIPT)], stdout=subprocess.PIPE, stderr=out, text=True, check=False)
    built = [Path(line) for line in proc.stdout.split() if line]
    if proc.returncode != 0 or not built or not _is_executable(built[-1]):
        raise BinariesNotFoundError(f"{HELM_BUILD_SCRIPT} failed with exit code {proc.returncode}; see output above")
    return built[-1].resolve()


def _helm_cache() -> list[Path]:
    if not HELM_BUILD_SCRIPT.exists():
        return []
    proc = subprocess.run([str(HELM_BUILD_SCRIPT), "--print"], capture_output=True, text=True, check=False,
                          timeout=60)
    lines = proc.stdout.split()
    return [Path(lines[-1])] if proc.returncode == 0 and lines else []
