"""Command lines of one cluster's processes: kube-apiserver, kube-controller-manager, kube-scheduler, kwok.

Pure functions from a :class:`ClusterLayout` (paths) and ports to :class:`ProcessRecord`s; nothing
here starts anything. Every listener binds 127.0.0.1. The flags are explained in
docs/control-plane.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devcluster.binaries import Binaries
from devcluster.manifests import KWOK_NODE_ANNOTATION, KWOK_STAGE_FILES
from devcluster.pki import ClusterPki
from devcluster.ports import LOOPBACK
from devcluster.processes import ProcessRecord

SERVICE_CIDR = "10.0.0.0/24"
POD_CIDR = "10.0.0.0/24"  # only strings in Pod status; nothing ever dials them


@dataclass(frozen=True, slots=True)
class ClusterLayout:
    """Where one cluster's files live: ``<state dir>/<name>/``."""

    name: str
    directory: Path

    @property
    def pki(self) -> ClusterPki:
        """The cluster's PKI files."""
        return ClusterPki(self.directory / "pki")

    @property
    def audit_log(self) -> Path:
        """kube-apiserver's JSON-lines audit log."""
        return self.directory / "audit.log"

    @property
    def audit_policy(self) -> Path:
        """The audit policy file (Metadata level for every request)."""
        return self.directory / "audit-policy.yaml"

    @property
    def scheduler_config(self) -> Path:
        """KubeSchedulerConfiguration file."""
        return self.directory / "kube-scheduler.yaml"

    def kubeconfig(self, who: str) -> Path:
        """Single-context kubeconfig for identity ``who`` (used by the components)."""
        return self.directory / f"{who}.kubeconfig"

    def log(self, role: str) -> Path:
        """Log file of process ``role``."""
        return self.directory / "logs" / f"{role}.log"

    @property
    def etcd_prefix(self) -> str:
        """This cluster's key prefix in the shared etcd."""
        return f"/{self.name}"


def apiserver(
    binaries: Binaries, layout: ClusterLayout, *, port: int, etcd_port: int, extra_args: tuple[str, ...] = ()
) -> ProcessRecord:
    """kube-apiserver on 127.0.0.1:``port`` storing under ``/<name>`` in the shared etcd.

    ``extra_args`` come last, so they override (e.g. ``--watch-cache=false``).
    """
    pki = layout.pki
    argv = [
        str(binaries.kube_apiserver),
        f"--etcd-servers=http://{LOOPBACK}:{etcd_port}",
        f"--etcd-prefix={layout.etcd_prefix}",
        f"--bind-address={LOOPBACK}",
        f"--advertise-address={LOOPBACK}",
        f"--secure-port={port}",
        "--endpoint-reconciler-type=none",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--cert-dir={pki.directory}",
        f"--client-ca-file={pki.ca_cert}",
        f"--service-account-issuer=https://{LOOPBACK}:{port}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=RBAC",
        "--allow-privileged=true",
        "--kubelet-preferred-address-types=InternalIP",
        "--profiling=false",
        # close open watches on SIGTERM; otherwise shutdown waits --request-timeout (60s) for them
        "--shutdown-watch-termination-grace-period=2s",
        f"--audit-policy-file={layout.audit_policy}",
        f"--audit-log-path={layout.audit_log}",
        "--audit-log-format=json",
        "--audit-log-maxsize=200",
        "--audit-log-maxbackup=1",
        *extra_args,
    ]
    return ProcessRecord(
        role="kube-apiserver",
        cluster=layout.name,
        argv=argv,
        log=str(layout.log("kube-apiserver")),
        port=port,
    )


def _serving_flags(kubeconfig: Path, port: int) -> list[str]:
    return [
        f"--bind-address={LOOPBACK}",
        f"--secure-port={port}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
    ]


def controller_manager(binaries: Binaries, layout: ClusterLayout, *, port: int) -> ProcessRecord:
    """kube-controller-manager: Deployments, namespace deletion, GC, ``view`` aggregation, node taints."""
    pki = layout.pki
    kubeconfig = layout.kubeconfig("kube-controller-manager")
    argv = [
        str(binaries.kube_controller_manager),
        f"--kubeconfig={kubeconfig}",
        *_serving_flags(kubeconfig, port),
        f"--cert-dir={layout.directory / 'kcm-serving'}",
        "--leader-elect=false",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--root-ca-file={pki.ca_cert}",
        f"--cluster-signing-cert-file={pki.ca_cert}",
        f"--cluster-signing-key-file={pki.ca_key}",
        "--use-service-account-credentials=false",
        "--kube-api-qps=100",
        "--kube-api-burst=200",
    ]
    return ProcessRecord(
        role="kube-controller-manager",
        cluster=layout.name,
        argv=argv,
        log=str(layout.log("kube-controller-manager")),
        port=port,
    )


def scheduler(binaries: Binaries, layout: ClusterLayout, *, port: int) -> ProcessRecord:
    """kube-scheduler configured by file (kubeconfig, no leader election)."""
    kubeconfig = layout.kubeconfig("kube-scheduler")
    argv = [
        str(binaries.kube_scheduler),
        f"--config={layout.scheduler_config}",
        *_serving_flags(kubeconfig, port),
        f"--cert-dir={layout.directory / 'scheduler-serving'}",
    ]
    return ProcessRecord(
        role="kube-scheduler",
        cluster=layout.name,
        argv=argv,
        log=str(layout.log("kube-scheduler")),
        port=port,
    )


def kwok(binaries: Binaries, layout: ClusterLayout) -> ProcessRecord:
    """kwok as fake kubelet for annotated Nodes; it opens no port (no ``--server-address``)."""
    argv = [
        str(binaries.kwok),
        f"--kubeconfig={layout.kubeconfig('kwok')}",
        *[f"--config={binaries.kwok_stages / rel}" for rel in KWOK_STAGE_FILES],
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
        f"--node-ip={LOOPBACK}",
        f"--cidr={POD_CIDR}",
        "--node-lease-duration-seconds=40",
    ]
    return ProcessRecord(role="kwok", cluster=layout.name, argv=argv, log=str(layout.log("kwok")), port=0)
