"""Orchestrate one shared etcd and N clusters; the state file makes every process stoppable later.

:class:`ControlPlane` starts etcd, then each cluster's kube-apiserver one after another (2 cores:
parallel starts only slow each other down), each followed by its kube-controller-manager,
kube-scheduler and kwok; then it waits for every cluster to be usable (``/readyz``, namespace
``default``, ``view`` aggregated, fake Nodes Ready and untainted) and grants the viewer its RBAC.
Every PID is written to ``<state dir>/state.json`` as soon as it exists, so ``stop()``, even from
another process (``scripts/dev-cluster down``), signals exactly what was started and nothing else.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from devcluster import components, etcd, kubeconfig, manifests, probes, processes
from devcluster.api import RestClient
from devcluster.binaries import Binaries, find_binaries
from devcluster.components import ClusterLayout
from devcluster.handles import ClusterInfo, ControlPlaneError, ProcessDiedError
from devcluster.pki import create_pki
from devcluster.ports import LOOPBACK, free_port, held_by, is_bind_race
from devcluster.processes import ProcessRecord

STATE_VERSION = 1
START_TIMEOUT = 180.0
"""Seconds allowed per readiness step; generous because 2 cores are shared by everything."""
PORT_ATTEMPTS = 4
STOP_TIERS = (
    ("kwok", "kube-scheduler", "kube-controller-manager", "source-controller", "kustomize-controller",
     "helm-controller"),
    ("kube-apiserver",),
    ("etcd",),
)
"""Stop order: clients of the apiservers first, etcd last."""


NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")


def _checked_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """Cluster names become directories, etcd prefixes and context names: short DNS labels, unique."""
    bad = [n for n in names if not NAME_PATTERN.match(n) or n.endswith("-viewer")]
    if bad or not names or len(set(names)) != len(names):
        raise ValueError(f"cluster names must be unique DNS labels (not ending in -viewer): {names!r}")
    return tuple(names)


def _owned_and_ready(record: ProcessRecord, probe: Callable[[ProcessRecord], bool]) -> bool:
    """Ready only if *our* process holds the port (another plane may answer on it) and the probe passes."""
    return held_by(record.pid, record.port) and probe(record)


def _print_progress(message: str) -> None:
    print(f"[dev-cluster {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class ControlPlane:
    """One shared etcd plus N clusters, recorded in ``<state_dir>/state.json``."""

    def __init__(
        self,
        state_dir: Path,
        *,
        names: tuple[str, ...] = ("fd-a", "fd-b"),
        binaries: Binaries | None = None,
        nodes: int = 1,
        progress: Callable[[str], None] | None = _print_progress,
        timeout: float = START_TIMEOUT,
        apiserver_args: tuple[str, ...] = (),
    ) -> None:
        """Describe a control plane; nothing starts before :meth:`start`.

        Args:
            state_dir: directory for PKI, logs, etcd data, the state file and the kubeconfig.
            names: cluster names; each becomes an etcd prefix and two kubeconfig contexts.
            binaries: resolved binaries (default: :func:`find_binaries`, building if needed).
            nodes: fake kwok Nodes per cluster.
            progress: receives one human-readable line per step (``None``: silent).
            timeout: seconds allowed for each readiness step.
            apiserver_args: extra kube-apiserver flags for every cluster (``("--watch-cache=false",)``).
        """
        self.state_dir = Path(state_dir).resolve()
        self.names = _checked_names(names)
        self._binaries = binaries
        self.nodes = nodes
        self._progress = progress
        self.timeout = timeout
        self.apiserver_args = tuple(apiserver_args)
        self.etcd_port = 0
        self.records: list[ProcessRecord] = []
        self.ports: dict[str, int] = {}

    # ----- paths and handles ------------------------------------------------------------------

    @property
    def binaries(self) -> Binaries:
        """The binaries in use (located lazily)."""
        if self._binaries is None:
            self._binaries = find_binaries()
        return self._binaries

    @property
    def state_file(self) -> Path:
        """``<state_dir>/state.json``."""
        return self.state_dir / "state.json"

    @property
    def kubeconfig(self) -> Path:
        """``<state_dir>/kubeconfig`` with contexts ``NAME`` and ``NAME-viewer`` per cluster."""
        return self.state_dir / "kubeconfig"

    def layout(self, name: str) -> ClusterLayout:
        """File layout of cluster ``name``."""
        return ClusterLayout(name, self.state_dir / name)

    @property
    def clusters(self) -> dict[str, ClusterInfo]:
        """Handles of the clusters whose apiserver has a port, by name, in start order."""
        return {name: self.cluster(name) for name in self.names if name in self.ports}

    def cluster(self, name: str) -> ClusterInfo:
        """Handle of cluster ``name``."""
        layout = self.layout(name)
        port = self.ports[name]
        return ClusterInfo(
            name=name,
            kubeconfig=self.kubeconfig,
            admin_context=name,
            viewer_context=f"{name}-viewer",
            audit_log=layout.audit_log,
            server=f"https://{LOOPBACK}:{port}",
            port=port,
            etcd_prefix=layout.etcd_prefix,
            directory=layout.directory,
        )

    def _say(self, message: str) -> None:
        if self._progress is not None:
            self._progress(message)

    # ----- state file --------------------------------------------------------------------------

    def save(self) -> None:
        """Write the state file atomically (called after every spawn)."""
        data: dict[str, Any] = {
            "version": STATE_VERSION,
            "names": list(self.names),
            "nodes": self.nodes,
            "apiserver_args": list(self.apiserver_args),
            "etcd_port": self.etcd_port,
            "ports": self.ports,
            "binaries": self.binaries.as_dict(),
            "processes": [r.to_dict() for r in self.records],
        }
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(self.state_file)

    @classmethod
    def load(
        cls, state_dir: Path, *, progress: Callable[[str], None] | None = _print_progress
    ) -> ControlPlane | None:
        """Rebuild a control plane from its state file, or ``None`` when there is none."""
        state_file = Path(state_dir).resolve() / "state.json"
        if not state_file.exists():
            return None
        data = json.loads(state_file.read_text())
        plane = cls(
            Path(state_dir),
            names=tuple(data["names"]),
            binaries=Binaries.from_dict(data["binaries"]),
            nodes=int(data["nodes"]),
            progress=progress,
            apiserver_args=tuple(data.get("apiserver_args", ())),
        )
        plane.etcd_port = int(data["etcd_port"])
        plane.ports = {k: int(v) for k, v in data["ports"].items()}
        plane.records = [ProcessRecord.from_dict(r) for r in data["processes"]]
        return plane

    def is_running(self) -> bool:
        """Whether any recorded process is still alive."""
        return any(processes.is_ours(r) for r in self.records)

    # ----- start ---------------------------------------------------------------------------------

    def start(self) -> ControlPlane:
        """Start everything and wait until every cluster is usable.

        Returns:
            ``self``.

        Raises:
            ControlPlaneError: already running, or a step failed (everything started is stopped).
        """
        if self.is_running():
            raise ControlPlaneError(f"already running (state file {self.state_file})")
        began = time.monotonic()
        self._reset_state_dir()
        try:
            self._start_etcd()
            for name in self.names:
                self._start_cluster(self.layout(name))
            self._write_kubeconfig()
            for name in self.names:
                self._finish_cluster(self.layout(name))
        except BaseException:
            self._say("start failed; stopping what was started")
            self.stop()
            raise
        self._say(f"{len(self.names)} cluster(s) ready in {time.monotonic() - began:.1f}s")
        return self

    def _reset_state_dir(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("etcd", *self.names):
            shutil.rmtree(self.state_dir / sub, ignore_errors=True)
        for leftover in (self.kubeconfig, self.state_file):
            leftover.unlink(missing_ok=True)
        self.records, self.ports, self.etcd_port = [], {}, 0

    def _spawn(self, record: ProcessRecord) -> ProcessRecord:
        processes.spawn(record)
        self.records.append(record)
        self.save()
        return record

    def _forget(self, record: ProcessRecord) -> None:
        processes.stop(record)
        self.records.remove(record)
        self.save()

    def _wait(self, what: str, ready: Callable[[], bool], *, watch: tuple[ProcessRecord, ...] = ()) -> float:
        began = time.monotonic()
        deadline = began + self.timeout
        while True:
            if ready():
                return time.monotonic() - began
            for record in watch:
                if not processes.is_ours(record):
                    raise ProcessDiedError(record, processes.log_tail(record))
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {r.role}\n{processes.log_tail(r)}" for r in watch)
                raise ControlPlaneError(f"timed out after {self.timeout:.0f}s waiting for {what}\n{tails}")
            time.sleep(0.25)

    def _start_listening(
        self, what: str, make: Callable[[int], ProcessRecord], probe: Callable[[ProcessRecord], bool]
    ) -> ProcessRecord:
        """Start a process on a fresh free port, retrying with new ports when it loses a bind race."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            record = self._spawn(make(free_port()))
            try:
                took = self._wait(what, partial(_owned_and_ready, record, probe), watch=(record,))
            except ProcessDiedError as exc:
                self._forget(record)
                if attempt == PORT_ATTEMPTS or not is_bind_race(exc.log):
                    raise
                self._say(f"{what}: port {record.port} was taken, retrying")
                continue
            self._say(f"{what} ready on {LOOPBACK}:{record.port} (pid {record.pid}, {took:.1f}s)")
            return record
        raise AssertionError("unreachable")

    def start_component(
        self, what: str, make: Callable[[int], ProcessRecord], probe: Callable[[ProcessRecord], bool]
    ) -> ProcessRecord:
        """Start one more recorded process (e.g. a Flux controller, :mod:`devcluster.flux`) on a fresh port.

        ``make(port)`` builds its record; ``probe(record)`` says when it is ready. It is stopped with the
        plane (first tier, with the other clients of the apiservers) and by the reaper.
        """
        return self._start_listening(what, make, probe)

    def _start_etcd(self) -> None:
        data_dir = self.state_dir / "etcd" / "data"
        data_dir.mkdir(parents=True, mode=0o700)

        def make(port: int) -> ProcessRecord:
            return etcd.etcd_record(
                self.binaries.etcd,
                data_dir=data_dir,
                log=self.state_dir / "etcd" / "etcd.log",
                client_port=port,
                peer_port=free_port(),
            )

        record = self._start_listening("etcd", make, lambda r: etcd.healthy(r.port))
        self.etcd_port = record.port
        self.save()

    def _prepare_files(self, layout: ClusterLayout) -> None:
        create_pki(layout.pki.directory, cluster=layout.name)
        manifests.write_json(layout.audit_policy, manifests.AUDIT_POLICY)
        manifests.write_json(
            layout.scheduler_config, manifests.scheduler_config(layout.kubeconfig("kube-scheduler"))
        )

    def _start_cluster(self, layout: ClusterLayout) -> None:
        self._prepare_files(layout)
        name = layout.name

        def make(port: int) -> ProcessRecord:
            return components.apiserver(
                self.binaries, layout, port=port, etcd_port=self.etcd_port, extra_args=self.apiserver_args
            )

        api = self._start_listening(
            f"{name}: kube-apiserver", make, lambda r: self._rest(name, r.port).healthy()
        )
        self.ports[name] = api.port
        self.save()
        self._write_component_kubeconfigs(layout, api.port)
        self._start_listening(
            f"{name}: kube-controller-manager",
            lambda p: components.controller_manager(self.binaries, layout, port=p),
            probes.healthz,
        )
        self._start_listening(
            f"{name}: kube-scheduler",
            lambda p: components.scheduler(self.binaries, layout, port=p),
            probes.healthz,
        )
        self._spawn(components.kwok(self.binaries, layout))

    def _rest(self, name: str, port: int | None = None) -> RestClient:
        pki = self.layout(name).pki
        return RestClient(
            port or self.ports[name], pki.ca_cert, pki.client_cert("admin"), pki.client_key("admin")
        )

    def _write_component_kubeconfigs(self, layout: ClusterLayout, port: int) -> None:
        server = f"https://{LOOPBACK}:{port}"
        for who in ("kube-controller-manager", "kube-scheduler", "kwok"):
            ctx = kubeconfig.Context(name=layout.name, server=server, pki=layout.pki, who=who)
            kubeconfig.write(layout.kubeconfig(who), [ctx], current=layout.name)

    def _write_kubeconfig(self) -> None:
        contexts: list[kubeconfig.Context] = []
        for name in self.names:
            server, pki = f"https://{LOOPBACK}:{self.ports[name]}", self.layout(name).pki
            contexts.append(kubeconfig.Context(name=name, server=server, pki=pki, who="admin"))
            contexts.append(kubeconfig.Context(name=f"{name}-viewer", server=server, pki=pki, who="viewer"))
        kubeconfig.write(self.kubeconfig, contexts, current=self.names[0])

    def _cluster_records(self, name: str) -> tuple[ProcessRecord, ...]:
        return tuple(r for r in self.records if r.cluster == name)

    def _finish_cluster(self, layout: ClusterLayout) -> None:
        name, rest = layout.name, self._rest(layout.name)
        watch = self._cluster_records(name)
        took = self._wait(
            f"{name}: namespace default",
            lambda: probes.exists(rest, "/api/v1/namespaces/default"),
            watch=watch,
        )
        took += self._wait(
            f"{name}: clusterrole view aggregated", lambda: probes.view_has_rules(rest), watch=watch
        )
        for path, obj in manifests.viewer_objects():
            probes.retry_transient(partial(rest.apply, path, obj), timeout=self.timeout)
        node_names = [f"{manifests.NODE_PREFIX}{i}" for i in range(self.nodes)]
        for node in node_names:
            create = partial(
                rest.request, "POST", "/api/v1/nodes", body=manifests.fake_node(node), ok=(201, 409)
            )
            probes.retry_transient(create, timeout=self.timeout)
        took += self._wait(
            f"{name}: nodes Ready",
            lambda: all(probes.node_schedulable(rest, n) for n in node_names),
            watch=watch,
        )
        self._say(f"{name}: RBAC, view aggregation and {self.nodes} node(s) ready ({took:.1f}s)")

    # ----- operations on a running plane ----------------------------------------------------

    def _record(self, role: str, cluster: str) -> ProcessRecord:
        for record in self.records:
            if record.role == role and record.cluster == cluster:
                return record
        raise ControlPlaneError(f"no {role} recorded for cluster {cluster!r}")

    def stop_apiserver(self, name: str) -> None:
        """Stop cluster ``name``'s kube-apiserver (SIGTERM, graceful); the other processes keep running."""
        processes.stop(self._record("kube-apiserver", name))

    def start_apiserver(self, name: str) -> float:
        """Start cluster ``name``'s kube-apiserver again with the same port and flags.

        Returns:
            Seconds until ``/readyz`` answered ``ok``.
        """
        old = self._record("kube-apiserver", name)
        if processes.is_ours(old):
            raise ControlPlaneError(f"{name}: kube-apiserver is still running (pid {old.pid})")
        new = ProcessRecord(
            role=old.role, cluster=name, argv=old.argv, log=old.log, port=old.port, env=old.env
        )
        self.records[self.records.index(old)] = processes.spawn(new)
        self.save()
        return self._wait(
            f"{name}: kube-apiserver restart",
            lambda: held_by(new.pid, new.port) and self._rest(name).healthy(),
            watch=(new,),
        )

    def restart_apiserver(self, name: str) -> float:
        """Stop and start cluster ``name``'s kube-apiserver; returns seconds until ready again.

        The shared etcd revision is advanced while the apiserver is down, so its new watch cache
        starts strictly after every resourceVersion handed out before: with the watch cache on
        (the default), a watch from any pre-restart resourceVersion then gets 410 Gone
        deterministically instead of "usually".
        """
        self.stop_apiserver(name)
        self.bump_revision()
        return self.start_apiserver(name)

    def start_lone_apiserver(self, name: str) -> tuple[ClusterInfo, ProcessRecord]:
        """Start one more kube-apiserver, alone, for a test that must freeze or kill it.

        It stores under ``/<name>`` in this plane's etcd (started first if this plane has not been
        started: a plane of one etcd and lone apiservers costs a few seconds), has its own PKI and audit log in
        ``<state dir>/<name>/`` and a kubeconfig ``<state dir>/<name>/kubeconfig`` (contexts ``name`` and
        ``name-viewer``). No controller manager, scheduler or kwok: the API server alone (it creates
        ``default``, ``kube-system`` and the RBAC bootstrap roles itself). It is recorded in the state
        file like every other process, so :meth:`stop` and the reaper stop it too; a test stops it earlier
        with :meth:`stop_lone_apiserver`.

        Returns:
            The cluster's handle and the apiserver's process record (``.pid`` is its process group).
        """
        if not NAME_PATTERN.match(name) or name in self.names or name in self.ports:
            raise ValueError(f"not a new cluster name: {name!r}")
        if not self.etcd_port:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.state_dir / "etcd", ignore_errors=True)
            self._start_etcd()
        layout = self.layout(name)
        shutil.rmtree(layout.directory, ignore_errors=True)
        self._prepare_files(layout)

        def make(port: int) -> ProcessRecord:
            return components.apiserver(
                self.binaries, layout, port=port, etcd_port=self.etcd_port, extra_args=self.apiserver_args
            )

        record = self._start_listening(f"{name}: kube-apiserver", make, lambda r: self._rest(name, r.port).healthy())
        self.ports[name] = record.port
        self.save()
        config = layout.directory / "kubeconfig"
        server = f"https://{LOOPBACK}:{record.port}"
        kubeconfig.write(config, [
            kubeconfig.Context(name=name, server=server, pki=layout.pki, who="admin"),
            kubeconfig.Context(name=f"{name}-viewer", server=server, pki=layout.pki, who="viewer"),
        ], current=name)
        info = ClusterInfo(
            name=name, kubeconfig=config, admin_context=name, viewer_context=f"{name}-viewer",
            audit_log=layout.audit_log, server=server, port=record.port, etcd_prefix=layout.etcd_prefix,
            directory=layout.directory,
        )
        return info, record

    def stop_lone_apiserver(self, name: str) -> None:
        """Stop (SIGTERM, then SIGKILL) an apiserver started by :meth:`start_lone_apiserver` and forget it."""
        record = self._record("kube-apiserver", name)
        if name in self.names:
            raise ValueError(f"{name!r} is one of the plane's own clusters")
        self._forget(record)
        self.ports.pop(name, None)
        self.save()

    def restore_etcd(self, snapshot_file: Path) -> float:
        """Restore the shared etcd from ``snapshot_file`` (``etcd.snapshot``) with ``etcdutl``: stop every
        kube-apiserver and etcd, restore into a fresh data directory that replaces the old one, start etcd
        and then the apiservers again. The etcd revision goes back to the snapshot's (no ``--bump-revision``),
        as after a naive restore from a backup.

        Returns:
            Seconds until every apiserver answered ``/readyz`` again.

        Raises:
            ControlPlaneError: ``etcdutl`` is not next to ``etcd`` (``scripts/build-control-plane`` builds it),
                or the restore failed.
        """
        import subprocess

        etcdutl = Path(self.binaries.etcd).with_name("etcdutl")
        if not etcdutl.exists():
            raise ControlPlaneError(f"no etcdutl next to {self.binaries.etcd}: run scripts/build-control-plane")
        began = time.monotonic()
        apiservers = [r for r in self.records if r.role == "kube-apiserver"]
        for record in apiservers:
            processes.stop(record)
        old = self._record("etcd", "")
        processes.stop(old)
        data_dir = Path(next(a for a in old.argv if a.startswith("--data-dir=")).split("=", 1)[1])
        restored = data_dir.with_name("restored")
        shutil.rmtree(restored, ignore_errors=True)
        result = subprocess.run(etcd.restore_command(etcdutl, old, snapshot_file, restored),
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise ControlPlaneError(f"etcdutl snapshot restore failed: {result.stderr.strip()[-500:]}")
        shutil.rmtree(data_dir)
        restored.rename(data_dir)
        current = old
        for attempt in (1, 2, 3):  # seen once on the shared VM: the restarted etcd exited at once
            new = ProcessRecord(role=old.role, cluster=old.cluster, argv=old.argv, log=old.log, port=old.port,
                                env=old.env)
            self.records[self.records.index(current)] = processes.spawn(new)
            current = new
            self.save()
            try:
                self._wait("etcd restart", partial(etcd.healthy, new.port), watch=(new,))
                break
            except ProcessDiedError:
                if attempt == 3:
                    raise
                self._say(f"etcd exited at restart (attempt {attempt}); starting it again")
                time.sleep(1.0)
        for record in apiservers:
            fresh = ProcessRecord(role=record.role, cluster=record.cluster, argv=record.argv, log=record.log,
                                  port=record.port, env=record.env)
            self.records[self.records.index(record)] = processes.spawn(fresh)
            self.save()
            self._wait(f"{record.cluster}: kube-apiserver restart",
                       partial(self._apiserver_ready, fresh), watch=(fresh,))
        return time.monotonic() - began

    def _apiserver_ready(self, record: ProcessRecord) -> bool:
        return held_by(record.pid, record.port) and self._rest(record.cluster, record.port).healthy()

    def bump_revision(self) -> int:
        """Advance the shared etcd revision without touching any cluster's data; returns it."""
        return etcd.bump_revision(self.etcd_port)

    def etcd_revision(self) -> int:
        """The shared etcd's current revision (the newest resourceVersion across all clusters)."""
        return etcd.current_revision(self.etcd_port)

    def compact(self, revision: int | None = None) -> int:
        """Compact the shared etcd up to ``revision`` (default: now); returns the revision used."""
        return etcd.compact(self.etcd_port, revision)

    def status(self) -> list[dict[str, Any]]:
        """One row per recorded process: role, cluster, pid, alive, port, rss_mib."""
        rows = []
        for record in self.records:
            alive = processes.is_ours(record)
            rss = processes.rss_kib(record.pid) if alive else None
            rows.append(
                {
                    "role": record.role,
                    "cluster": record.cluster or "(shared)",
                    "pid": record.pid,
                    "alive": alive,
                    "port": record.port or None,
                    "rss_mib": None if rss is None else rss // 1024,
                }
            )
        return rows

    # ----- stop ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every recorded process, by PID/process group, tier by tier; then drop the state file."""
        for tier in STOP_TIERS:
            processes.stop_all([r for r in self.records if r.role in tier])
        leftovers = [r for r in self.records if processes.is_ours(r)]
        if leftovers:
            raise ControlPlaneError(f"still alive after SIGKILL: {[(r.role, r.pid) for r in leftovers]}")
        self.records = []
        self.state_file.unlink(missing_ok=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def running(state_dir: Path, **kwargs: Any) -> Iterator[ControlPlane]:
    """Context manager: start a :class:`ControlPlane` and always stop it."""
    plane = ControlPlane(state_dir, **kwargs)
    try:
        yield plane.start()
    finally:
        plane.stop()
