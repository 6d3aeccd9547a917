"""Value types shared by the harness, the CLI and the pytest plugin: errors and cluster handles."""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from devcluster.api import RestClient
from devcluster.components import ClusterLayout
from devcluster.processes import ProcessRecord


class ControlPlaneError(RuntimeError):
    """The control plane could not be started, reached or stopped as asked."""


class ProcessDiedError(ControlPlaneError):
    """A process exited while we waited for it; ``log`` holds the tail of its output."""

    def __init__(self, record: ProcessRecord, log: str) -> None:
        where = f" ({record.cluster})" if record.cluster else ""
        super().__init__(f"{record.role}{where} exited early; last log lines:\n{log}")
        self.record = record
        self.log = log


def default_names(count: int) -> tuple[str, ...]:
    """``fd-a``, ``fd-b``, ... for ``count`` clusters (at most 26)."""
    if not 1 <= count <= len(string.ascii_lowercase):
        raise ValueError(f"between 1 and 26 clusters, not {count}")
    return tuple(f"fd-{letter}" for letter in string.ascii_lowercase[:count])


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """Everything a test or a user needs to talk to one cluster."""

    name: str
    kubeconfig: Path
    """The shared, self-contained kubeconfig holding every cluster's contexts."""
    admin_context: str
    """Context with user ``fleetdeck-admin`` (group ``system:masters``)."""
    viewer_context: str
    """Context with user ``fleetdeck-viewer`` (``view`` + cluster-scoped reads, no Secrets)."""
    audit_log: Path
    """JSON-lines audit log of this cluster's kube-apiserver (Metadata level, every request)."""
    server: str
    port: int
    etcd_prefix: str
    directory: Path

    def rest(self, who: str = "admin") -> RestClient:
        """A small synchronous REST client as ``admin`` or ``viewer`` (see :mod:`devcluster.api`)."""
        pki = ClusterLayout(self.name, self.directory).pki
        return RestClient(self.port, pki.ca_cert, pki.client_cert(who), pki.client_key(who))
