"""A tiny synchronous Kubernetes REST client (stdlib only) used to set clusters up and probe them.

It exists so that the harness needs neither kubectl nor an event loop: readiness probes, RBAC and
Node creation, namespace create/delete for test fixtures. It speaks JSON over HTTPS with a client
certificate and never follows redirects. Feature code must use ``kubernetes.aio`` instead.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
FIELD_MANAGER = "devcluster"


class ApiError(RuntimeError):
    """A request failed; ``status`` is the HTTP status (0 when the connection failed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


@dataclass(frozen=True, slots=True)
class RestClient:
    """Client-certificate HTTPS access to one apiserver on 127.0.0.1."""

    port: int
    ca_cert: Path
    client_cert: Path
    client_key: Path
    timeout: float = 10.0

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        ctx.load_cert_chain(str(self.client_cert), str(self.client_key))
        return ctx

    def raw(
        self, method: str, path: str, *, body: bytes | None = None, content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        """Send one request and return ``(status, body)``; connection errors raise ``ApiError(0)``."""
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.port, timeout=self.timeout, context=self._context()
        )
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ApiError(0, f"{method} {path}: {exc}") from exc
        finally:
            conn.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        ok: tuple[int, ...] = (200, 201, 202),
    ) -> Any:
        """Send a JSON request and return the decoded JSON response.

        Raises:
            ApiError: the status is not in ``ok``.
        """
        data = None if body is None else json.dumps(body).encode()
        status, raw = self.raw(method, path, body=data, content_type=content_type)
        if status not in ok:
            raise ApiError(status, f"{method} {path}: {raw[:500].decode(errors='replace')}")
        return json.loads(raw) if raw else None

    def get(self, path: str) -> Any:
        """GET ``path`` and return the decoded JSON."""
        return self.request("GET", path)

    def apply(self, path: str, obj: dict[str, Any]) -> Any:
        """Server-side apply ``obj`` at ``path`` (the object's own URL), forcing ownership."""
        query = urlencode({"fieldManager": FIELD_MANAGER, "force": "true"})
        return self.request("PATCH", f"{path}?{query}", body=obj, content_type=APPLY_CONTENT_TYPE)

    def delete(self, path: str) -> None:
        """DELETE ``path``; a missing object is not an error."""
        self.request("DELETE", path, ok=(200, 202, 404))

    def healthy(self, path: str = "/readyz") -> bool:
        """Whether ``path`` answers 200 ``ok`` right now."""
        try:
            status, body = self.raw("GET", path)
        except ApiError:
            return False
        return status == 200 and body.strip() == b"ok"
