"""The shared etcd: command line, health probe and compaction through etcd's HTTP/JSON gateway.

etcd v3 serves a gRPC-gateway on its client URL (``POST /v3/kv/range``, ``/v3/kv/compaction``),
so compaction needs neither etcdctl nor a gRPC client. Plain HTTP on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from devcluster.ports import LOOPBACK
from devcluster.processes import ProcessRecord


def etcd_record(
    binary: Path, *, data_dir: Path, log: Path, client_port: int, peer_port: int
) -> ProcessRecord:
    """Build the process record for one single-member etcd on loopback."""
    client = f"http://{LOOPBACK}:{client_port}"
    peer = f"http://{LOOPBACK}:{peer_port}"
    argv = [
        str(binary),
        "--name=fd",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=fd={peer}",
        # test data only: no fsync keeps apiserver writes fast on a small VM
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]
    return ProcessRecord(role="etcd", cluster="", argv=argv, log=str(log), port=client_port)


def _post(port: int, path: str, body: dict[str, Any], *, timeout: float = 10.0) -> dict[str, Any]:
    req = urllib.request.Request(
        f"http://{LOOPBACK}:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        result: dict[str, Any] = json.loads(resp.read())
    return result


def healthy(port: int) -> bool:
    """Whether etcd's ``/health`` reports ``"health":"true"``."""
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/health", timeout=2) as resp:
            return bool(json.loads(resp.read()).get("health") == "true")
    except (OSError, urllib.error.URLError, ValueError):
        return False


def current_revision(port: int) -> int:
    """etcd's current (global) revision: the newest resourceVersion of every cluster sharing it."""
    key = base64.b64encode(b"/").decode()
    result = _post(port, "/v3/kv/range", {"key": key, "count_only": True})
    return int(result["header"]["revision"])


def bump_revision(port: int) -> int:
    """Write a key outside every cluster's prefix, so the shared revision advances; returns it."""
    key = base64.b64encode(b"/devcluster/bump").decode()
    result = _post(port, "/v3/kv/put", {"key": key, "value": base64.b64encode(b"x").decode()})
    return int(result["header"]["revision"])


def compact(port: int, revision: int | None = None) -> int:
    """Compact etcd's history up to ``revision`` (default: the current revision).

    After this, an etcd watch from any older revision fails with "required revision has been
    compacted"; see docs/control-plane.md for what the apiserver's watch cache makes of that.

    Returns:
        The revision compacted to.
    """
    target = current_revision(port) if revision is None else revision
    _post(port, "/v3/kv/compaction", {"revision": str(target), "physical": True}, timeout=60)
    return target
