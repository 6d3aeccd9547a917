"""Readiness probes used while a cluster starts: component health, RBAC aggregation, Node state.

Each probe answers "ready yet?" with a bool and never raises for a not-yet-ready server; the
waiting (deadline, dead-process detection) lives in :mod:`devcluster.cluster`. Setup writes go
through :func:`retry_transient`, since a just-ready apiserver can still answer 429/503.
"""

from __future__ import annotations

import http.client
import ssl
import time
from collections.abc import Callable
from typing import Any

from devcluster.api import ApiError, RestClient
from devcluster.ports import LOOPBACK
from devcluster.processes import ProcessRecord


def healthz(record: ProcessRecord) -> bool:
    """Whether a component (kcm, scheduler) answers ``/healthz`` on its recorded port."""
    return insecure_ok(record.port, "/healthz")


def insecure_ok(port: int, path: str) -> bool:
    """GET a component's always-allowed health path (self-signed serving cert, loopback only)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return _answers_200(http.client.HTTPSConnection(LOOPBACK, port, timeout=2, context=ctx), path)


def plain_ok(port: int, path: str = "/readyz") -> bool:
    """Whether a plain-HTTP health endpoint on 127.0.0.1:``port`` answers 200 (e.g. a Flux controller's)."""
    return _answers_200(http.client.HTTPConnection(LOOPBACK, port, timeout=2), path)


def _answers_200(conn: http.client.HTTPConnection, path: str) -> bool:
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def exists(rest: RestClient, path: str) -> bool:
    """Whether GET ``path`` succeeds."""
    try:
        rest.get(path)
    except ApiError:
        return False
    return True


def view_has_rules(rest: RestClient) -> bool:
    """Whether kcm's clusterrole-aggregation controller has filled ClusterRole ``view``."""
    try:
        role = rest.get("/apis/rbac.authorization.k8s.io/v1/clusterroles/view")
    except ApiError:
        return False
    return bool(role.get("rules"))


def node_schedulable(rest: RestClient, name: str) -> bool:
    """Whether Node ``name`` is Ready and carries none of the ``node.kubernetes.io/*`` taints."""
    try:
        node = rest.get(f"/api/v1/nodes/{name}")
    except ApiError:
        return False
    conditions = node.get("status", {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    taints = node.get("spec", {}).get("taints") or []
    return ready and not any(t.get("key", "").startswith("node.kubernetes.io/") for t in taints)


TRANSIENT_STATUSES = frozenset({0, 429, 500, 502, 503, 504})
"""Connection failures, throttling and "not ready yet" answers of a freshly started apiserver."""


def retry_transient(call: Callable[[], Any], *, timeout: float) -> Any:
    """Run ``call``, retrying :class:`ApiError` with a transient status until ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except ApiError as exc:
            if exc.status not in TRANSIENT_STATUSES or time.monotonic() > deadline:
                raise
        time.sleep(0.5)
