"""Flux's real controllers (source-controller, kustomize-controller) on a devcluster apiserver.

The binaries and the CRDs their Go modules ship come from ``scripts/build-flux`` (cached beside
kube-apiserver under ``~/.cache/fleetdeck/k8s/flux-<name>-<version>/``). :func:`start_flux` installs the
CRDs into one cluster of a :class:`~devcluster.cluster.ControlPlane` and starts both controllers as
recorded processes of that plane (so :meth:`ControlPlane.stop` and the reaper stop them by PID), with
every listener on 127.0.0.1: source-controller's artifact server (``--storage-addr`` and
``--storage-adv-addr``, the address kustomize-controller downloads artifacts from), and each
controller's metrics and health endpoints. No leader election, no events webhook.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from devcluster import kubeconfig, probes
from devcluster.api import ApiError, RestClient
from devcluster.binaries import REPO_ROOT
from devcluster.handles import ClusterInfo, ControlPlaneError
from devcluster.manifests import namespace as namespace_object
from devcluster.ports import LOOPBACK, free_port
from devcluster.processes import ProcessRecord

if TYPE_CHECKING:
    from devcluster.cluster import ControlPlane

BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-flux"
FLUX_NAMESPACE = "flux-system"
REQUIRED = ("source-controller", "kustomize-controller")
CRD_TIMEOUT = 60.0


class FluxNotFoundError(RuntimeError):
    """The Flux controllers can neither be found nor built."""


@dataclass(frozen=True, slots=True)
class FluxBinaries:
    """Controller binaries and the CRD directories of their modules."""

    controllers: dict[str, Path]
    """``source-controller`` / ``kustomize-controller`` (/ ``helm-controller`` when it built) -> binary."""
    crd_dirs: tuple[Path, ...]

    def binary(self, name: str) -> Path:
        """The binary of controller ``name``."""
        return self.controllers[name]


def _printed() -> dict[str, Path]:
    if not BUILD_SCRIPT.exists():
        return {}
    proc = subprocess.run([str(BUILD_SCRIPT), "--print"], capture_output=True, text=True, check=False,
                          timeout=60)
    found: dict[str, Path] = {}
    for line in proc.stdout.splitlines():
        name, _, directory = line.partition(" ")
        if directory:
            found[name] = Path(directory)
    return found


def find_flux(*, allow_build: bool = True, stream: TextIO | None = None) -> FluxBinaries:
    """The built controllers, running ``scripts/build-flux`` first when they are missing and allowed.

    Raises:
        FluxNotFoundError: source- or kustomize-controller is missing and could not be built.
    """
    dirs = _printed()
    if not all(name in dirs for name in REQUIRED) and allow_build:
        out = stream or sys.stderr
        proc = subprocess.run([str(BUILD_SCRIPT)], stdout=out, stderr=out, check=False)
        if proc.returncode != 0:
            out.write(f"{BUILD_SCRIPT} exited {proc.returncode}\n")
        dirs = _printed()
    missing = [name for name in REQUIRED if name not in dirs]
    if missing:
        raise FluxNotFoundError(
            f"Flux controllers not built: {', '.join(missing)}; run scripts/build-flux "
            f"(see docs/control-plane.md, 'Flux controllers')"
        )
    return FluxBinaries(
        controllers={name: d / name for name, d in dirs.items()},
        crd_dirs=tuple(d / "crds" for d in dirs.values() if (d / "crds").is_dir()),
    )


_CRD_NAME = re.compile(r"^metadata:\s*\n(?:[ \t]+.*\n)*?[ \t]+name:\s*(\S+)", re.MULTILINE)


def install_crds(rest: RestClient, crd_dirs: tuple[Path, ...], *, timeout: float = CRD_TIMEOUT) -> list[str]:
    """Server-side apply every CRD file of ``crd_dirs`` (YAML as it ships) and wait until each is Established.

    Returns:
        The CRD names.
    """
    names: list[str] = []
    for directory in crd_dirs:
        for path in sorted(directory.glob("*.yaml")):
            text = path.read_text()
            found = _CRD_NAME.search(text)
            if found is None:
                raise ControlPlaneError(f"no metadata.name in {path}")
            name = found.group(1)
            body = text.removeprefix("---\n").encode()
            status, raw = rest.raw(
                "PATCH",
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}?fieldManager=devcluster&force=true",
                body=body,
                content_type="application/apply-patch+yaml",
            )
            if status not in (200, 201):
                raise ApiError(status, f"apply CRD {name}: {raw[:300].decode(errors='replace')}")
            names.append(name)
    deadline = time.monotonic() + timeout
    for name in names:
        while not _established(rest, name):
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"CRD {name} not Established after {timeout:.0f}s")
            time.sleep(0.2)
    return names


def _established(rest: RestClient, name: str) -> bool:
    try:
        crd = rest.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    except ApiError:
        return False
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


@dataclass(frozen=True, slots=True)
class FluxInfo:
    """Flux running on one cluster: where its artifacts are served and its process records."""

    cluster: ClusterInfo
    namespace: str
    storage_address: str
    """``127.0.0.1:<port>`` of source-controller's artifact server."""
    storage_path: Path
    records: tuple[ProcessRecord, ...]
    crds: tuple[str, ...]


def controller(
    role: str, binary: Path, *, cluster: str, kubeconfig_path: Path, directory: Path, health_port: int,
    extra: tuple[str, ...] = (),
) -> ProcessRecord:
    """One Flux controller (``role``) with its metrics and health endpoints on 127.0.0.1, no leader election,
    JSON logs under ``directory/logs``, and ``extra`` flags of its own."""
    argv = [
        str(binary),
        *extra,
        f"--metrics-addr={LOOPBACK}:{free_port()}",
        f"--health-addr={LOOPBACK}:{health_port}",
        "--enable-leader-election=false",
        "--log-level=info",
        "--log-encoding=json",
    ]
    return ProcessRecord(role=role, cluster=cluster, argv=argv, log=str(directory / "logs" / f"{role}.log"),
                         port=health_port, env={"KUBECONFIG": str(kubeconfig_path), "RUNTIME_NAMESPACE": FLUX_NAMESPACE})


def source_controller_flags(directory: Path, storage_port: int) -> tuple[str, ...]:
    """source-controller's artifact storage under ``directory``, served on 127.0.0.1:``storage_port``."""
    storage = directory / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    return (f"--storage-path={storage}", f"--storage-addr={LOOPBACK}:{storage_port}",
            f"--storage-adv-addr={LOOPBACK}:{storage_port}")


CONTROLLER_FLAGS: dict[str, tuple[str, ...]] = {"helm-controller": ("--graceful-shutdown-timeout=5s",)}
"""Flags a controller needs beyond the common ones (helm-controller: a short graceful shutdown)."""


def controller_kubeconfig(info: ClusterInfo, directory: Path) -> Path:
    """A one-context kubeconfig for the controllers: user ``flux-controllers`` (group system:masters), so the
    audit log tells their writes from the tests' and fleetdeck's (``fleetdeck-admin``)."""
    from devcluster.components import ClusterLayout

    pki = ClusterLayout(info.name, info.directory).pki
    ctx = kubeconfig.Context(name=info.name, server=info.server, pki=pki, who="flux")
    directory.mkdir(parents=True, exist_ok=True)
    return kubeconfig.write(directory / "flux.kubeconfig", [ctx], current=info.name)


def start_flux(plane: ControlPlane, info: ClusterInfo, flux: FluxBinaries) -> FluxInfo:
    """Install Flux's CRDs into ``info``'s apiserver and start source- and kustomize-controller on it (and
    helm-controller when it was built).

    The processes are recorded in ``plane``'s state file (stopped with the plane, or by its reaper).
    ``info`` may be one of the plane's clusters or a lone apiserver (:meth:`ControlPlane.start_lone_apiserver`).
    """
    rest = info.rest()
    crds = install_crds(rest, flux.crd_dirs)
    create = partial(rest.request, "POST", "/api/v1/namespaces", body=namespace_object(FLUX_NAMESPACE),
                     ok=(201, 409))
    probes.retry_transient(create, timeout=plane.timeout)
    directory = info.directory / "flux"
    config = controller_kubeconfig(info, directory)
    storage: list[int] = []  # the artifact server's port, fresh on each try (a retry may follow a port clash)

    def ready(record: ProcessRecord) -> bool:
        return probes.plain_ok(record.port)

    def start(role: str) -> ProcessRecord:
        def make(port: int) -> ProcessRecord:
            extra: tuple[str, ...] = CONTROLLER_FLAGS.get(role, ())
            if role == "source-controller":
                storage[:] = [free_port()]
                extra = source_controller_flags(directory, storage[0])
            return controller(role, flux.binary(role), cluster=info.name, kubeconfig_path=config,
                              directory=directory, health_port=port, extra=extra)

        return plane.start_component(f"{info.name}: {role}", make, ready)

    records = [start("source-controller"), start("kustomize-controller")]
    if "helm-controller" in flux.controllers:  # optional: built when its module builds (docs/control-plane.md)
        records.append(start("helm-controller"))
    return FluxInfo(cluster=info, namespace=FLUX_NAMESPACE, storage_address=f"{LOOPBACK}:{storage[0]}",
                    storage_path=directory / "storage", records=tuple(records), crds=tuple(crds))
