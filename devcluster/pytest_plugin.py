"""pytest plugin: a real two-cluster control plane per test session, and per-test fixtures on it.

Register with ``pytest_plugins = ["devcluster.pytest_plugin"]`` in ``tests/conftest.py``.

* Tests marked ``@pytest.mark.cluster`` are skipped, with a loud terminal summary, when no
  binaries can be found or built; ``FLEETDECK_REQUIRE_CLUSTER=1`` turns that into a failure.
  ``FLEETDECK_BUILD_CONTROL_PLANE=0`` forbids running ``scripts/build-control-plane`` from tests
  (by default it runs, before the first test and outside any timeout, when ``go`` is installed).
* ``FLEETDECK_TEST_KUBECONFIG=<path>/.dev-cluster/kubeconfig`` reuses a control plane started with
  ``scripts/dev-cluster up`` (its state file sits next to the kubeconfig); it is not stopped.
* Otherwise the plane lives in a pytest tmp dir and is stopped at session end, on failures, on
  Ctrl-C and SIGTERM (teardown), at interpreter exit (atexit) and, if pytest is SIGKILLed, by a
  watchdog process (:mod:`devcluster.reaper`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import pytest_asyncio

from devcluster import reaper
from devcluster.api import ApiError
from devcluster.audit import MUTATING_VERBS, audit_events, mutating_events, wait_for_audit_event
from devcluster.binaries import Binaries, BinariesNotFoundError, find_binaries, find_helm
from devcluster.cluster import ControlPlane
from devcluster.handles import ClusterInfo
from devcluster.manifests import namespace as namespace_object

__all__ = ["MUTATING_VERBS", "audit_events", "mutating_events", "wait_for_audit_event"]

REQUIRE_ENV = "FLEETDECK_REQUIRE_CLUSTER"
BUILD_ENV = "FLEETDECK_BUILD_CONTROL_PLANE"
REUSE_ENV = "FLEETDECK_TEST_KUBECONFIG"
SESSION_CLUSTERS = ("fd-a", "fd-b")
NAMESPACE_READY_TIMEOUT = 60.0

_binaries_key = pytest.StashKey[Binaries | str]()
"""Resolved binaries, or the reason they are unavailable."""
_skipped_key = pytest.StashKey[int]()
_helm_key = pytest.StashKey[Path | str]()
"""The helm binary, or the reason it is unavailable."""


def _required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") == "1"


def _build_allowed() -> bool:
    return os.environ.get(BUILD_ENV, "1") != "0" and shutil.which("go") is not None


def _resolve_binaries(config: pytest.Config) -> Binaries | str:
    capture = config.pluginmanager.getplugin("capturemanager")
    ctx = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    with ctx:
        try:
            return find_binaries(allow_build=_build_allowed())
        except BinariesNotFoundError as exc:
            return str(exc)


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``cluster`` marker (harmless if pyproject.toml declares it too)."""
    config.addinivalue_line("markers", "cluster: needs the real local control plane (devcluster)")
    config.stash[_skipped_key] = 0


def pytest_collection_finish(session: pytest.Session) -> None:
    """Locate (or build) binaries once, before any test and its timeout start, if cluster tests run."""
    config = session.config
    if os.environ.get(REUSE_ENV):
        return
    if any("helm_binary" in getattr(item, "fixturenames", ()) for item in session.items):
        config.stash[_helm_key] = _resolve_helm(config)
    if any(item.get_closest_marker("cluster") for item in session.items):
        config.stash[_binaries_key] = _resolve_binaries(config)


def _resolve_helm(config: pytest.Config) -> Path | str:
    capture = config.pluginmanager.getplugin("capturemanager")
    ctx = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    with ctx:
        try:
            return find_helm(allow_build=_build_allowed())
        except BinariesNotFoundError as exc:
            return str(exc)


@pytest.fixture(scope="session")
def helm_binary(request: pytest.FixtureRequest) -> Path:
    """The real helm built by ``scripts/build-helm`` (skips, or fails with FLEETDECK_REQUIRE_CLUSTER=1, without)."""
    found = request.config.stash.get(_helm_key, None)
    if found is None:
        found = request.config.stash[_helm_key] = _resolve_helm(request.config)
    if isinstance(found, str):
        if _required():
            pytest.fail(f"{REQUIRE_ENV}=1 but {found}", pytrace=False)
        pytest.skip(found)
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or fail, with FLEETDECK_REQUIRE_CLUSTER=1) cluster tests when there is no control plane."""
    if item.get_closest_marker("cluster") is None:
        return
    found = item.config.stash.get(_binaries_key, None)
    if not isinstance(found, str):
        return
    if _required():
        pytest.fail(f"{REQUIRE_ENV}=1 but {found}", pytrace=False)
    item.config.stash[_skipped_key] += 1
    pytest.skip(f"no control plane: {found}")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say loudly that cluster tests were skipped, and how to make them run."""
    skipped = config.stash.get(_skipped_key, 0)
    if not skipped:
        return
    reason = config.stash.get(_binaries_key, "")
    terminalreporter.write_sep(
        "!", f"{skipped} cluster test(s) SKIPPED: no Kubernetes control plane", yellow=True
    )
    terminalreporter.write_line(f"  reason: {reason}")
    terminalreporter.write_line(
        "  fix:    scripts/build-control-plane   (builds etcd, kube-apiserver, kcm, scheduler, "
        "kubectl, kwok from Go modules into ~/.cache/fleetdeck/k8s; ~6 min cold on 2 cores)"
    )
    terminalreporter.write_line(
        f"  or set KUBEBUILDER_ASSETS / TEST_ASSET_*; {REQUIRE_ENV}=1 makes this a failure"
    )


# ----- the session control plane ------------------------------------------------------------------


class _Teardown:
    """Stops a plane exactly once, from whichever of finally / atexit / SIGTERM comes first."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.done = False
        self.watchdog = reaper.spawn(plane.state_dir)
        self.previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        atexit.register(self.run)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        # Turn SIGTERM into the same path as Ctrl-C, so pytest runs fixture teardown.
        raise KeyboardInterrupt(f"signal {signum}")

    def run(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            self.plane.stop()
        finally:
            self._release()

    def _release(self) -> None:
        atexit.unregister(self.run)
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGTERM, self.previous)
        if self.watchdog.stdin is not None:
            self.watchdog.stdin.close()
        with contextlib.suppress(Exception):
            self.watchdog.wait(timeout=60)


def _attach(kubeconfig: Path) -> ControlPlane:
    plane = ControlPlane.load(kubeconfig.resolve().parent, progress=None)
    if plane is None or not plane.is_running():
        pytest.fail(
            f"{REUSE_ENV}={kubeconfig} but no running dev-cluster is recorded next to it "
            f"(start one with scripts/dev-cluster up)",
            pytrace=False,
        )
    unhealthy = [c.name for c in plane.clusters.values() if not c.rest().healthy()]
    if unhealthy:
        pytest.fail(f"{REUSE_ENV}: clusters not ready: {unhealthy}", pytrace=False)
    return plane


def _binaries_or_skip(config: pytest.Config) -> Binaries:
    """The stashed binaries (resolving them now if no cluster-marked test did); skip or fail if none."""
    found = config.stash.get(_binaries_key, None)
    if found is None:
        found = config.stash[_binaries_key] = _resolve_binaries(config)
    if isinstance(found, str):
        if _required():
            pytest.fail(f"{REQUIRE_ENV}=1 but {found}", pytrace=False)
        pytest.skip(f"no control plane: {found}")
    return found


@pytest.fixture(scope="session")
def control_plane_binaries(request: pytest.FixtureRequest) -> Binaries:
    """The control-plane binaries (skips, or fails with FLEETDECK_REQUIRE_CLUSTER=1, when there are none)."""
    return _binaries_or_skip(request.config)


@pytest.fixture
def private_plane_factory(
    control_plane_binaries: Binaries, tmp_path: Path
) -> Iterator[Callable[[], ControlPlane]]:
    """``make()`` -> an unstarted :class:`ControlPlane` in the test's tmp dir, stopped after the test.

    For tests that freeze or kill processes (``start_lone_apiserver``) without touching the session's
    clusters. A reaper stops it even if pytest is SIGKILLed.
    """
    made: list[tuple[ControlPlane, Any]] = []

    def make() -> ControlPlane:
        plane = ControlPlane(tmp_path / f"plane-{len(made)}", binaries=control_plane_binaries, progress=None)
        plane.state_dir.mkdir(parents=True, exist_ok=True)
        made.append((plane, reaper.spawn(plane.state_dir)))
        return plane

    try:
        yield make
    finally:
        for plane, watchdog in made:
            try:
                plane.stop()
            finally:
                if watchdog.stdin is not None:
                    watchdog.stdin.close()
                with contextlib.suppress(Exception):
                    watchdog.wait(timeout=60)


@pytest.fixture(scope="session")
def control_plane(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    """The session's :class:`devcluster.ControlPlane`: clusters ``fd-a`` and ``fd-b``, started once."""
    if reuse := os.environ.get(REUSE_ENV):
        yield _attach(Path(reuse))
        return
    binaries = _binaries_or_skip(request.config)
    plane = ControlPlane(tmp_path_factory.mktemp("control-plane"), names=SESSION_CLUSTERS, binaries=binaries)
    teardown = _Teardown(plane)
    try:
        plane.start()
    except BaseException:
        teardown.run()
        raise
    try:
        yield plane
    finally:
        teardown.run()


@pytest.fixture
def clusters(control_plane: ControlPlane) -> list[ClusterInfo]:
    """Handles of all session clusters, in order (``fd-a``, ``fd-b``)."""
    return list(control_plane.clusters.values())


@pytest.fixture
def cluster(clusters: list[ClusterInfo]) -> ClusterInfo:
    """Handle of the first cluster (``fd-a``): name, kubeconfig, admin/viewer context, audit_log, ..."""
    return clusters[0]


@pytest.fixture
def other_cluster(clusters: list[ClusterInfo]) -> ClusterInfo:
    """Handle of the second cluster (``fd-b``)."""
    return clusters[1]


# ----- per-test namespace and clients ---------------------------------------------------------


def _namespace_name(node_name: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", node_name.lower()).strip("-")[:40].strip("-")
    return f"t-{slug}-{secrets.token_hex(3)}"


def _wait_default_sa(cluster: ClusterInfo, name: str) -> None:
    """Pods are refused until kcm has created the namespace's ``default`` ServiceAccount."""
    rest = cluster.rest()
    deadline = time.monotonic() + NAMESPACE_READY_TIMEOUT
    while True:
        try:
            rest.get(f"/api/v1/namespaces/{name}/serviceaccounts/default")
            return
        except ApiError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def make_namespace(cluster: ClusterInfo, name: str) -> str:
    """Create namespace ``name`` as admin and wait for its ``default`` ServiceAccount."""
    cluster.rest().request("POST", "/api/v1/namespaces", body=namespace_object(name))
    _wait_default_sa(cluster, name)
    return name


@pytest.fixture
def namespace(cluster: ClusterInfo, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace in ``cluster`` (created as admin, deleted afterwards without waiting)."""
    name = make_namespace(cluster, _namespace_name(request.node.name))
    try:
        yield name
    finally:
        try:
            cluster.rest().delete(f"/api/v1/namespaces/{name}")
        except ApiError as exc:  # e.g. the apiserver is down because the run was interrupted
            warnings.warn(f"could not delete test namespace {name}: {exc}", stacklevel=1)


KubeClientFactory = Callable[..., Awaitable[Any]]


@pytest_asyncio.fixture
async def kube_client_factory() -> AsyncIterator[KubeClientFactory]:
    """``await make(cluster, viewer=False)`` -> a ``kubernetes.aio`` ApiClient, closed after the test."""
    import kubernetes.aio.config

    made: list[Any] = []

    async def make(cluster: ClusterInfo, *, viewer: bool = False) -> Any:
        context = cluster.viewer_context if viewer else cluster.admin_context
        client = await kubernetes.aio.config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(cluster.kubeconfig), context=context, persist_config=False
        )
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            await client.close()


@pytest_asyncio.fixture
async def admin_client(cluster: ClusterInfo, kube_client_factory: KubeClientFactory) -> Any:
    """``kubernetes.aio`` ApiClient for ``cluster`` as ``fleetdeck-admin`` (system:masters)."""
    return await kube_client_factory(cluster)


@pytest_asyncio.fixture
async def viewer_client(cluster: ClusterInfo, kube_client_factory: KubeClientFactory) -> Any:
    """``kubernetes.aio`` ApiClient for ``cluster`` as ``fleetdeck-viewer`` (read-only, no Secrets)."""
    return await kube_client_factory(cluster, viewer=True)


# ----- Flux's real controllers on a lone apiserver ----------------------------------------------------

_flux_key = pytest.StashKey[Any]()
"""Resolved :class:`devcluster.flux.FluxBinaries`, or the reason they are unavailable."""
FLUX_CLUSTER = "fd-flux"


def _resolve_flux(config: pytest.Config) -> Any:
    from devcluster.flux import FluxNotFoundError, find_flux

    capture = config.pluginmanager.getplugin("capturemanager")
    ctx = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    with ctx:
        try:
            return find_flux(allow_build=_build_allowed())
        except FluxNotFoundError as exc:
            return str(exc)


@pytest.fixture(scope="session")
def flux_plane(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An apiserver with Flux: a lone kube-apiserver (``fd-flux``, own etcd) with Flux's CRDs installed and the
    real source-controller and kustomize-controller running against it (:class:`devcluster.flux.FluxInfo`).

    No kube-controller-manager or scheduler: Flux-applied test objects are ConfigMaps/Services, or use
    ``wait: false``. Skips (fails with FLEETDECK_REQUIRE_CLUSTER=1) when the controllers are not built.
    """
    from devcluster.flux import start_flux

    binaries = _binaries_or_skip(request.config)
    found = request.config.stash.get(_flux_key, None)
    if found is None:
        found = request.config.stash[_flux_key] = _resolve_flux(request.config)
    if isinstance(found, str):
        if _required():
            pytest.fail(f"{REQUIRE_ENV}=1 but {found}", pytrace=False)
        pytest.skip(found)
    plane = ControlPlane(tmp_path_factory.mktemp("flux-plane"), names=("fd-flux-unused",), binaries=binaries,
                         progress=None)
    plane.state_dir.mkdir(parents=True, exist_ok=True)
    teardown = _Teardown(plane)
    try:
        info, _ = plane.start_lone_apiserver(FLUX_CLUSTER)
        flux = start_flux(plane, info, found)
    except BaseException:
        teardown.run()
        raise
    try:
        yield flux
    finally:
        teardown.run()
