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


def snapshot(port: int, path: Path, *, timeout: float = 60.0) -> int:
    """Save a snapshot of the live etcd to ``path`` (what ``etcdctl snapshot save`` does: the Maintenance
    Snapshot RPC, here through the gateway's ``POST /v3/maintenance/snapshot``); returns its size in bytes.

    The gateway streams one JSON object per chunk (``{"result": {"blob": base64, "remaining_bytes": n}}``);
    the blobs together are the database followed by its SHA-256, which ``etcdutl snapshot restore`` checks.
    """
    req = urllib.request.Request(
        f"http://{LOOPBACK}:{port}/v3/maintenance/snapshot", data=b"{}",
        headers={"Content-Type": "application/json"}, method="POST",
    )
    decoder = json.JSONDecoder()
    size = 0
    with urllib.request.urlopen(req, timeout=timeout) as resp, open(path, "wb") as out:
        text = resp.read().decode()
        index = 0
        while index < len(text):
            while index < len(text) and text[index].isspace():
                index += 1
            if index >= len(text):
                break
            chunk, index = decoder.raw_decode(text, index)
            if "error" in chunk:
                raise RuntimeError(f"etcd snapshot failed: {chunk['error']}")
            blob = base64.b64decode(chunk.get("result", {}).get("blob", ""))
            out.write(blob)
            size += len(blob)
    return size


def restore_command(etcdutl: Path, record: ProcessRecord, snapshot_file: Path, data_dir: Path) -> list[str]:
    """``etcdutl snapshot restore`` of ``snapshot_file`` into ``data_dir`` for the member ``record`` runs
    (same name and peer URL), without ``--bump-revision``: the revision goes back to the snapshot's, as a
    naive restore from a backup does."""
    flags = {arg.split("=", 1)[0]: arg.split("=", 1)[1] for arg in record.argv[1:] if "=" in arg}
    return [str(etcdutl), "snapshot", "restore", str(snapshot_file), f"--data-dir={data_dir}",
            f"--name={flags['--name']}", f"--initial-cluster={flags['--initial-cluster']}",
            f"--initial-advertise-peer-urls={flags['--initial-advertise-peer-urls']}"]
