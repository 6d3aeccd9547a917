"""Write self-contained kubeconfig files (CA, client cert and key embedded as base64 data).

The YAML is emitted by hand because every value is a plain string: each scalar is written as a
JSON string, which is also a valid YAML double-quoted scalar. That keeps the package stdlib-only
and the output readable by kubectl, client-go and the Python ``kubernetes`` client alike.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from devcluster.pki import ClusterPki


@dataclass(frozen=True, slots=True)
class Context:
    """One kubeconfig context: a server, its CA and a client identity."""

    name: str
    server: str
    pki: ClusterPki
    who: str
    """Client identity, a key of :data:`devcluster.pki.CLIENTS` (``admin``, ``viewer``, ...)."""


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _q(value: str) -> str:
    return json.dumps(value)


def _cluster_entry(ctx: Context) -> list[str]:
    return [
        f"- name: {_q(ctx.name)}",
        "  cluster:",
        f"    server: {_q(ctx.server)}",
        f"    certificate-authority-data: {_q(_b64(ctx.pki.ca_cert))}",
    ]


def _user_entry(ctx: Context) -> list[str]:
    return [
        f"- name: {_q(ctx.name)}",
        "  user:",
        f"    client-certificate-data: {_q(_b64(ctx.pki.client_cert(ctx.who)))}",
        f"    client-key-data: {_q(_b64(ctx.pki.client_key(ctx.who)))}",
    ]


def _context_entry(ctx: Context) -> list[str]:
    return [
        f"- name: {_q(ctx.name)}",
        "  context:",
        f"    cluster: {_q(ctx.name)}",
        f"    user: {_q(ctx.name)}",
    ]


def render(contexts: list[Context], *, current: str) -> str:
    """Render a kubeconfig holding ``contexts``; each gets its own cluster and user entry.

    Args:
        contexts: the contexts, in order.
        current: name of the ``current-context``.

    Returns:
        The YAML text.
    """
    lines = [
        "apiVersion: v1",
        "kind: Config",
        "preferences: {}",
        f"current-context: {_q(current)}",
        "clusters:",
    ]
    for ctx in contexts:
        lines += _cluster_entry(ctx)
    lines.append("users:")
    for ctx in contexts:
        lines += _user_entry(ctx)
    lines.append("contexts:")
    for ctx in contexts:
        lines += _context_entry(ctx)
    return "\n".join(lines) + "\n"


def write(path: Path, contexts: list[Context], *, current: str) -> Path:
    """Write a kubeconfig atomically with mode 0600 and return its path."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render(contexts, current=current))
    tmp.chmod(0o600)
    tmp.replace(path)
    return path
