"""``KubeClient``: the ``KubeAPI`` protocol over ``kubernetes.aio`` for one real cluster, on raw JSON.

Role: every HTTP request fleetdeck sends to a Kubernetes API server is built here. Requests go through
``kubernetes.aio``'s ``ApiClient.call_api`` (its aiohttp session, TLS context and proxy settings) with
bodies as plain dicts and responses read as bytes and parsed with ``orjson``; generated models are never
constructed (they are slow and reject unknown CRD fields).

Constraint: only ``core.live`` may import this module, and it never mutates anything by itself:
mutations happen only when a caller invokes ``apply``/``delete``/``create``, which callers reach
through ``core.live.guard`` (read-only mode). ``can_i`` and ``whoami`` POST *reviews*
(SelfSubjectAccessReview, SelfSubjectReview): the API server computes an answer and stores nothing, so
they are reads in effect even though the audit log records the verb ``create``. They use their own
code path, never ``create``, so the guard can let them through while refusing ``create``.

Timeouts (checked in ``kubernetes/aio/client/rest.py`` of ``kubernetes==37.0.2``): the REST layer passes
``_request_timeout`` straight to ``aiohttp.ClientSession.request(timeout=...)`` and defaults it to a
300 s *total* timeout, which would kill every long watch. aiohttp accepts a ``ClientTimeout`` there, so
every request passes one explicitly. A watch gets no total limit, a connect limit and a socket read
limit tied to bookmarks (``WatchSettings.read_timeout``). A list page gets no total limit either, only a
socket read (idle) limit of ``WatchSettings.request_timeout``: a big list over a slow link keeps arriving
(K3), a frozen server still sends nothing. Every other request gets a total deadline
(``WatchSettings.request_timeout``) on top of the connect and read limits: a server that accepts
connections but never answers (a frozen process: the kernel still completes the TCP handshake) cannot
hold a caller longer than that. ``ping`` (``GET /version``) is the heartbeat, with its own short deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson

from core.aio import TokenBucket
from core.errors import ClusterError, ConfigError
from core.live.api import JSON, APIResource
from core.live.compact import WatchLine, decode_watch_line
from core.live.connection_budget import ConnectionBudget
from core.live.error_masking import mask_message
from core.live.kubeconfig import ContextConfig, Credentials, Kubeconfig, build_api_client, load_kubeconfig
from core.live.watch_events import MALFORMED_EVENT, Throttled
from core.settings import WatchSettings

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"
APPLY_TYPE = "application/apply-patch+yaml"
MERGE_PATCH_TYPE = "application/merge-patch+json"
AGGREGATED_DISCOVERY = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
REQUEST_READ_TIMEOUT = 60.0
"""Seconds without a byte from the server before a non-watch request is abandoned."""
_TYPED_PATCH_FAILURE = "failed to create typed patch object"
VERBS = ("discover", "list", "watch", "get", "apply", "dry_run", "delete", "create", "patch", "review")

_TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


# ---------------------------------------------------------------------------------------------- paths


def collection_path(resource: APIResource, namespace: str = "") -> str:
    """``/api/v1[/namespaces/NS]/PLURAL`` or ``/apis/GROUP/VERSION[/namespaces/NS]/PLURAL``."""
    root = f"/apis/{resource.group}/{resource.version}" if resource.group else f"/api/{resource.version}"
    scope = f"/namespaces/{quote(namespace, safe='')}" if namespace and resource.namespaced else ""
    return f"{root}{scope}/{resource.plural}"


def object_path(resource: APIResource, name: str, namespace: str = "") -> str:
    """The URL path of one object."""
    return f"{collection_path(resource, namespace)}/{quote(name, safe='')}"


def plain(value: Any) -> Any:
    """A JSON-serialisable copy: read-only mappings become dicts and tuples lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _describe(resource: APIResource, name: str = "", namespace: str = "") -> str:
    scope = f"{namespace}/" if namespace else ""
    return f"{resource.kind}/{scope}{name}" if name else f"{resource.kind} ({resource.api_version})"


def _retry_after(headers: Mapping[str, str] | None) -> float:
    """Seconds from a ``Retry-After`` header (delta-seconds form, as kube-apiserver sends), capped at 60."""
    try:
        return min(60.0, max(0.0, float((headers or {}).get("Retry-After", "1"))))
    except ValueError:
        return 1.0


# ---------------------------------------------------------------------------------------------- discovery parsing


def parse_aggregated(doc: Mapping[str, Any]) -> list[APIResource]:
    """Resources of an ``APIGroupDiscoveryList`` (aggregated discovery v2): preferred version only."""
    found: list[APIResource] = []
    for group in doc.get("items") or ():
        versions = group.get("versions") or ()
        if not versions:
            continue
        preferred = versions[0]  # the server lists versions in preference order
        name = str((group.get("metadata") or {}).get("name") or "")
        for res in preferred.get("resources") or ():
            kind = str((res.get("responseKind") or {}).get("kind") or "")
            if kind and "/" not in str(res.get("resource", "")):
                found.append(APIResource(
                    group=name, version=str(preferred.get("version")), kind=kind,
                    plural=str(res["resource"]), namespaced=res.get("scope") == "Namespaced",
                    verbs=frozenset(res.get("verbs") or ()),
                ))
    return found


def parse_resource_list(doc: Mapping[str, Any], *, group: str, version: str) -> list[APIResource]:
    """Resources of a legacy ``APIResourceList``, subresources (``pods/log``) skipped."""
    return [
        APIResource(group=group, version=version, kind=str(res["kind"]), plural=str(res["name"]),
                    namespaced=bool(res.get("namespaced")), verbs=frozenset(res.get("verbs") or ()))
        for res in doc.get("resources") or ()
        if "/" not in str(res.get("name", "")) and res.get("kind")
    ]


# ---------------------------------------------------------------------------------------------- client


class KubeClient:
    """``KubeAPI`` for one cluster over ``kubernetes.aio`` (one aiohttp session, opened lazily).

    Args:
        cluster: the cluster's name in the fleet (used in every error message).
        context: the resolved kubeconfig context.
        settings: watch and connection timeouts.
        credentials: token / exec plugin state; built from ``context`` when omitted.
        request_timeout: socket read timeout of non-watch requests.
        connections: a connection budget shared by every cluster (``core.live.connection_budget``): each
            request holds a slot while its connection is open, and connections are not kept alive.
    """

    def __init__(
        self,
        *,
        cluster: str,
        context: ContextConfig,
        settings: WatchSettings | None = None,
        credentials: Credentials | None = None,
        request_timeout: float = REQUEST_READ_TIMEOUT,
        connections: ConnectionBudget | None = None,
    ) -> None:
        self.cluster = cluster
        self.connections = connections
        """The fleet's connection budget when the open-file limit is too low (K17); None: no budget."""
        self.server = context.server
        self.context = context
        self.insecure = context.insecure
        """The server certificate is not verified (``insecure-skip-tls-verify``): show it badged."""
        self.settings = settings or WatchSettings()
        self.credentials = credentials or Credentials(context)
        self.counters: dict[str, int] = dict.fromkeys(VERBS, 0)
        """Requests sent, per verb (plus ``malformed_events`` and ``retried_401``), for benchmarks."""
        self.server_version = ""
        """``gitVersion`` of the API server's ``GET /version`` (the heartbeat's answer); empty until one came."""
        self.discovery_warnings: tuple[str, ...] = ()
        """API groups skipped by the last ``discover`` (an aggregated API that is down, fault K12 in docs/reliability.md)."""
        self._request_timeout = request_timeout
        self.rate_limit = TokenBucket(self.settings.qps, self.settings.burst) if self.settings.qps > 0 else None
        """The client-side request rate limit (``settings.qps``/``burst``); its ``waits`` count the delayed requests."""
        self._clock_offset = 0.0
        """The server's clock minus the local one, from the last answer's ``Date`` header."""
        self._client: Any = None
        self._client_cert: tuple[bytes, bytes] | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_kubeconfig(
        cls,
        cluster: str,
        *,
        context: str | None = None,
        kubeconfig: Kubeconfig | None = None,
        settings: WatchSettings | None = None,
    ) -> KubeClient:
        """A client for ``context`` of ``kubeconfig`` (default: kubectl's files and current context).

        Raises:
            ConfigError: the context cannot be resolved.
        """
        config = kubeconfig or load_kubeconfig()
        return cls(cluster=cluster, context=config.context(context), settings=settings)

    # ----- transport --------------------------------------------------------------------------

    def _timeout(self, read: float, total: float | None) -> aiohttp.ClientTimeout:
        connect = self.settings.connect_timeout if total is None else min(self.settings.connect_timeout, total)
        return aiohttp.ClientTimeout(total=total, sock_connect=connect, sock_read=read)

    async def _api(self) -> Any:
        async with self._lock:
            if self._client is None:
                try:
                    self._client_cert = await self.credentials.client_certificate()
                    self._client = await build_api_client(self.context, self.credentials)
                except ConfigError as exc:
                    raise self._credential_error(exc) from exc
                if self.connections is not None:
                    _without_keep_alive(self._client)
            return self._client

    def _slot(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A connection slot of the budget (nothing to wait for without one)."""
        return self.connections if self.connections is not None else contextlib.nullcontext()

    async def _after_unauthorized(self) -> bool:
        """Forget credentials after a 401; rebuild the session if the client certificate changed."""
        if not await self.credentials.refresh():
            return False
        self.counters["retried_401"] = self.counters.get("retried_401", 0) + 1
        try:
            cert = await self.credentials.client_certificate()
        except ConfigError as exc:
            raise self._credential_error(exc) from exc
        if cert != self._client_cert:
            async with self._lock:
                old, self._client = self._client, None
            if old is not None:
                await old.close()
        return True

    async def _headers(self, *, accept: str, content_type: str) -> dict[str, str]:
        headers = {"Accept": accept, "Content-Type": content_type}
        try:
            authorization = await self.credentials.authorization()
        except ConfigError as exc:
            raise self._credential_error(exc) from exc
        if authorization:
            headers["Authorization"] = authorization
        return headers

    async def _send(
        self,
        verb: str,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = JSON_TYPE,
        accept: str = JSON_TYPE,
        read_timeout: float | None = None,
        total_timeout: float | None = None,
        stream: bool = False,
    ) -> Any:
        """Send one request; returns the ``RESTResponse`` (status not checked). Retries once on 401.

        ``stream`` (watches) lifts the total deadline; every other request must complete, body
        included, within ``total_timeout`` (default ``settings.request_timeout``).
        """
        suffix = "?" + urlencode(query, quote_via=quote) if query else ""
        total = None if stream else (total_timeout or self.settings.request_timeout)
        read = read_timeout or self._request_timeout
        timeout = self._timeout(read if total is None else min(read, total), total)
        if self.rate_limit is not None and await self.rate_limit.take() > 1.0:
            log.info("cluster %s: client-side rate limit (%s requests/s) delayed %s %s", self.cluster,
                     self.settings.qps, method, path)
        for attempt in (1, 2):
            client = await self._api()
            headers = await self._headers(accept=accept, content_type=content_type)
            self.counters[verb] += 1
            try:
                resp = await client.call_api(method, client.configuration.host + path + suffix,
                                             header_params=headers, body=body, _request_timeout=timeout)
            except _TRANSPORT_ERRORS as exc:
                raise self._transport_error(method, path, exc) from exc
            self._read_server_clock(resp.headers)
            if resp.status == 401 and attempt == 1 and await self._after_unauthorized():
                resp.response.release()
                continue
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_server_clock(self, headers: Mapping[str, str]) -> None:
        """Note the server's clock from a ``Date`` header (whole seconds, so the middle of that second)."""
        date = headers.get("Date")
        if not date:
            return
        try:
            stamp = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError):
            return
        self._clock_offset = stamp + 0.5 - time.time()

    def server_time(self) -> float:
        """The API server's clock now, from the offset its last answer showed (the local clock before any)."""
        return time.time() + self._clock_offset

    async def _json(self, verb: str, method: str, path: str, *, what: str, missing_ok: bool = False,
                    **kwargs: Any) -> JSON | None:
        """Send a request and return its decoded JSON body; raise ``ClusterError`` on a non-2xx status."""
        async with self._slot():
            resp = await self._send(verb, method, path, **kwargs)
            try:
                data = await resp.read()
            except _TRANSPORT_ERRORS as exc:
                raise self._transport_error(method, path, exc) from exc
            finally:
                resp.response.release()
        if resp.status == 404 and missing_ok:
            return None
        if not 200 <= resp.status < 300:
            raise self._status_error(resp.status, data, what=what, headers=resp.headers, sent=kwargs.get("body"))
        try:
            doc = orjson.loads(data) if data else {}
        except orjson.JSONDecodeError as exc:
            raise ClusterError(f"{what}: the server sent invalid JSON", cluster=self.cluster,
                               status=resp.status) from exc
        return doc if isinstance(doc, dict) else {"value": doc}

    def _status_error(self, status: int, data: bytes, *, what: str,
                      headers: Mapping[str, str] | None = None, sent: Any = None) -> ClusterError:
        """The fleetdeck error for a non-2xx answer: every API error becomes one here, and the secret values
        of the request body ``sent`` that the server's message quotes are masked first
        (``core.live.error_masking``)."""
        message, reason = f"HTTP {status}", ""
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            text = data[:300].decode(errors="replace").strip()
            message = f"HTTP {status}: {text}" if text else message
        else:
            if isinstance(doc, dict):
                message = str(doc.get("message") or message)
                reason = str(doc.get("reason") or "")
        if status == 500 and _TYPED_PATCH_FAILURE in message:
            # kube-apiserver 1.36 answers 500 when a server-side apply body does not match the schema
            # (unknown field, wrong type); it is the caller's input that is wrong, so report it as the
            # 422 Invalid it means, or retries would hammer the server with a manifest that cannot pass.
            message, status, reason = f"{message} (the API server answered HTTP 500)", 422, "Invalid"
        message = mask_message(message, sent)
        if status == 429:
            return Throttled(f"{what}: {message}", cluster=self.cluster, reason=reason,
                             retry_after=_retry_after(headers))
        return ClusterError(f"{what}: {message}", cluster=self.cluster, status=status, reason=reason)

    def _transport_error(self, method: str, path: str, exc: BaseException) -> ClusterError:
        if isinstance(exc, TimeoutError):
            detail = (f"timed out (no answer within the connect, read or total deadline; "
                      f"requests have {self.settings.request_timeout:g}s)")
        else:
            detail = str(exc) or type(exc).__name__
        return ClusterError(f"{method} {path}: {detail}", cluster=self.cluster, status=None,
                            reason=type(exc).__name__, hint=f"is {self.server} reachable?")

    def _credential_error(self, exc: ConfigError) -> ClusterError:
        return ClusterError(f"cannot obtain credentials: {exc.message}", cluster=self.cluster, status=None,
                            reason="CredentialsFailed", hint=exc.hint)

    # ----- KubeAPI: reads ---------------------------------------------------------------------

    async def discover(self) -> tuple[APIResource, ...]:
        """Every served kind at its preferred version (aggregated discovery, legacy as fallback).

        Groups whose discovery fails (e.g. an aggregated API that is down) are skipped and named in
        ``discovery_warnings``; only a failure of the core group raises.
        """
        warnings: list[str] = []
        core = await self._discover_root("/api", warnings)
        groups = await self._discover_root("/apis", warnings)
        self.discovery_warnings = tuple(warnings)
        for warning in warnings:
            log.warning("cluster %s: discovery: %s", self.cluster, warning)
        return tuple(core + groups)

    async def _discover_root(self, root: str, warnings: list[str]) -> list[APIResource]:
        doc = await self._json("discover", "GET", root, what=f"discover {root}", accept=AGGREGATED_DISCOVERY)
        assert doc is not None
        if doc.get("kind") == "APIGroupDiscoveryList":
            return parse_aggregated(doc)
        if root == "/api":
            version = str((doc.get("versions") or ["v1"])[0])
            return await self._legacy_group("", version, warnings)
        pairs = [(str(g["name"]), str((g.get("preferredVersion") or g["versions"][0])["version"]))
                 for g in doc.get("groups") or ()]
        results = await asyncio.gather(*(self._legacy_group(g, v, warnings) for g, v in pairs))
        return [res for group in results for res in group]

    async def _legacy_group(self, group: str, version: str, warnings: list[str]) -> list[APIResource]:
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            doc = await self._json("discover", "GET", path, what=f"discover {path}")
        except ClusterError as exc:
            if not group:
                raise
            warnings.append(f"{group}/{version} skipped: {exc.message}")
            return []
        assert doc is not None
        return parse_resource_list(doc, group=group, version=version)

    async def list(
        self,
        resource: APIResource,
        *,
        label_selector: str = "",
        limit: int = 500,
        continue_token: str = "",
    ) -> JSON:
        """One page of a cluster-wide list; each item gets ``apiVersion`` and ``kind`` filled in."""
        query = {"limit": str(limit)}
        if continue_token:
            query["continue"] = continue_token
        if label_selector:
            query["labelSelector"] = label_selector
        # A page has an idle deadline (no byte for ``request_timeout`` s), not a total one: a big page over a
        # slow link (K3: 1 MB/s) keeps arriving and must not fail, while a frozen server still cannot hold it.
        doc = await self._json("list", "GET", collection_path(resource), query=query,
                               what=f"list {_describe(resource)}", stream=True,
                               read_timeout=self.settings.request_timeout)
        assert doc is not None
        for item in doc.get("items") or ():
            item.setdefault("apiVersion", resource.api_version)
            item.setdefault("kind", resource.kind)
        return doc

    async def watch(
        self,
        resource: APIResource,
        *,
        resource_version: str,
        timeout_seconds: int,
        label_selector: str = "",
    ) -> AsyncIterator[JSON | WatchLine]:
        """Stream raw watch events (line-delimited JSON) with bookmarks, until the server closes; events
        the compact projection reads are yielded as ``WatchLine`` (their objects never decoded).

        Raises:
            ClusterError: a non-200 answer (410 when ``resource_version`` is too old), a broken
                connection or silent socket (status None), or a line that is not JSON
                (reason ``MalformedEvent``).
        """
        query = {"watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout_seconds)}
        if resource_version:
            query["resourceVersion"] = resource_version
        if label_selector:
            query["labelSelector"] = label_selector
        path = collection_path(resource)
        async with self._slot():
            resp = await self._send("watch", "GET", path, query=query, read_timeout=self.settings.read_timeout,
                                    stream=True)
            try:
                if resp.status != 200:
                    data = await resp.read()
                    raise self._status_error(resp.status, data, what=f"watch {_describe(resource)}",
                                             headers=resp.headers)
                async for event in self._events(resp.response.content, resource):
                    yield event
            except _TRANSPORT_ERRORS as exc:
                raise self._transport_error("GET", path, exc) from exc
            finally:
                resp.response.close()

    async def _events(self, content: aiohttp.StreamReader, resource: APIResource) -> AsyncIterator[JSON | WatchLine]:
        while True:
            try:
                line = await content.readline()
            except ValueError as exc:  # a line longer than the read buffer
                raise self._malformed(resource, str(exc)) from exc
            if not line:
                return
            if not line.strip():
                continue
            try:
                event = decode_watch_line(line)  # the object stays bytes (core.live.compact)
            except orjson.JSONDecodeError as exc:
                raise self._malformed(resource, str(exc)) from exc
            if isinstance(event, WatchLine):
                yield event
                continue
            if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
                raise self._malformed(resource, "not a watch event")
            yield event

    def _malformed(self, resource: APIResource, detail: str) -> ClusterError:
        self.counters["malformed_events"] = self.counters.get("malformed_events", 0) + 1
        return ClusterError(f"watch {_describe(resource)}: dropped a malformed event ({detail})",
                            cluster=self.cluster, status=None, reason=MALFORMED_EVENT)

    async def ping(self, timeout: float) -> None:
        """Heartbeat: ``GET /version`` must be answered (any HTTP status) within ``timeout`` seconds.

        Credentials are obtained first, outside the deadline (a slow exec plugin is not a hung server).

        Raises:
            ClusterError: status None when the server does not answer in time or cannot be reached
                (reason ``CredentialsFailed`` when no request could be sent).
        """
        self.counters["ping"] = self.counters.get("ping", 0) + 1
        path = "/version"
        client = await self._api()
        headers = await self._headers(accept=JSON_TYPE, content_type=JSON_TYPE)
        async with self._slot():  # waiting for a slot is queueing, not a hung server: outside the deadline
            await self._ping(client, headers, path, timeout)

    async def _ping(self, client: Any, headers: dict[str, str], path: str, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                resp = await client.call_api("GET", client.configuration.host + path, header_params=headers,
                                             _request_timeout=self._timeout(timeout, timeout))
                self._read_server_clock(resp.headers)
                try:
                    self._read_server_version(await resp.read())
                finally:
                    resp.response.release()
        except TimeoutError as exc:
            raise ClusterError(f"GET {path}: no answer within {timeout:g}s",
                               cluster=self.cluster, status=None, reason="Timeout",
                               hint=f"is {self.server} overloaded or hung?") from exc
        except _TRANSPORT_ERRORS as exc:
            raise self._transport_error("GET", path, exc) from exc

    def _read_server_version(self, body: bytes) -> None:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            version = orjson.loads(body).get("gitVersion")
            if isinstance(version, str) and re.fullmatch(r"v?[0-9]+\.[0-9]+\.[0-9]+[-+.0-9A-Za-z]*", version):
                self.server_version = version

    async def get(self, resource: APIResource, name: str, namespace: str = "") -> JSON | None:
        """The object, or None when it does not exist."""
        return await self._json("get", "GET", object_path(resource, name, namespace), missing_ok=True,
                                what=f"get {_describe(resource, name, namespace)}")

    # ----- KubeAPI: writes (reached only through core.live.guard) ------------------------------

    async def apply(
        self,
        resource: APIResource,
        obj: Mapping[str, Any],
        *,
        field_manager: str,
        dry_run: bool = False,
        force: bool = True,
    ) -> JSON:
        """Server-side apply with strict field validation; ``managedFields`` is never sent."""
        meta = dict(obj.get("metadata") or {})
        meta.pop("managedFields", None)
        name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "")
        what = f"{'dry-run ' if dry_run else ''}apply {_describe(resource, name, namespace)}"
        self._require_scope(resource, namespace, what=what)
        query = {"fieldManager": field_manager, "fieldValidation": "Strict"}
        if force:
            query["force"] = "true"
        if dry_run:
            query["dryRun"] = "All"
        body = plain({**obj, "metadata": meta})
        doc = await self._json("dry_run" if dry_run else "apply", "PATCH", object_path(resource, name, namespace),
                               query=query, body=body, content_type=APPLY_TYPE, what=what)
        assert doc is not None
        return doc

    async def delete(
        self,
        resource: APIResource,
        name: str,
        namespace: str = "",
        *,
        propagation: str = "Foreground",
        uid: str | None = None,
        dry_run: bool = False,
    ) -> None:
        """Delete the object, with a UID precondition when given (409 if it was replaced); 404 is fine."""
        options: JSON = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        if uid:
            options["preconditions"] = {"uid": uid}
        query = {"dryRun": "All"} if dry_run else None
        await self._json("delete", "DELETE", object_path(resource, name, namespace), query=query, body=options,
                         missing_ok=True, what=f"delete {_describe(resource, name, namespace)}")

    async def create(self, resource: APIResource, obj: Mapping[str, Any], *, dry_run: bool = False) -> JSON:
        """Create an object (strict field validation)."""
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        what = f"create {_describe(resource, str(meta.get('name') or meta.get('generateName') or ''), namespace)}"
        self._require_scope(resource, namespace, what=what)
        query = {"fieldValidation": "Strict", **({"dryRun": "All"} if dry_run else {})}
        doc = await self._json("create", "POST", collection_path(resource, namespace), query=query,
                               body=plain(obj), what=what)
        assert doc is not None
        return doc

    async def patch(self, resource: APIResource, name: str, namespace: str, patch: Mapping[str, Any], *,
                    dry_run: bool = False) -> JSON:
        """A JSON merge patch of an existing object (strict field validation)."""
        what = f"{'dry-run ' if dry_run else ''}patch {_describe(resource, name, namespace)}"
        self._require_scope(resource, namespace, what=what)
        query = {"fieldValidation": "Strict", **({"dryRun": "All"} if dry_run else {})}
        doc = await self._json("dry_run" if dry_run else "patch", "PATCH", object_path(resource, name, namespace),
                               query=query, body=plain(dict(patch)), content_type=MERGE_PATCH_TYPE, what=what)
        assert doc is not None
        return doc

    def _require_scope(self, resource: APIResource, namespace: str, *, what: str) -> None:
        if resource.namespaced and not namespace:
            raise ClusterError(f"{what}: a namespaced {resource.kind} needs metadata.namespace",
                               cluster=self.cluster, status=422, reason="Invalid")

    # ----- KubeAPI: reviews (non-mutating POSTs, allowed in read-only mode) --------------------

    async def can_i(self, verb: str, resource: APIResource, namespace: str = "") -> bool:
        """SelfSubjectAccessReview; ``resource.plural`` may name a subresource (``pods/exec``)."""
        plural, _, subresource = resource.plural.partition("/")
        attributes = {"verb": verb, "group": resource.group, "resource": plural}
        if subresource:
            attributes["subresource"] = subresource
        if namespace:
            attributes["namespace"] = namespace
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attributes}}
        doc = await self._json("review", "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                               body=body, what=f"can-i {verb} {resource.plural}")
        assert doc is not None
        return bool((doc.get("status") or {}).get("allowed"))

    async def whoami(self) -> str:
        """The authenticated user name (SelfSubjectReview), ``""`` when the server lacks the API."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        doc = await self._json("review", "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                               body=body, missing_ok=True, what="whoami")
        return str(((doc or {}).get("status") or {}).get("userInfo", {}).get("username") or "")

    async def close(self) -> None:
        """Close the aiohttp session."""
        async with self._lock:
            client, self._client = self._client, None
        if client is not None:
            await client.close()

    def request_count(self, verbs: Iterable[str] = VERBS) -> int:
        """Requests sent with any of ``verbs``."""
        return sum(self.counters.get(v, 0) for v in verbs)


def _without_keep_alive(client: Any) -> None:
    """Make the ``ApiClient``'s connections close after each request (a connection budget counts open
    connections; an idle kept-alive one would hold a file without a slot)."""
    rest = getattr(client, "rest_client", None)
    make = getattr(rest, "_create_connector", None)
    if rest is None or make is None:
        return

    def create() -> Any:
        connector = make()
        connector._force_close = True  # aiohttp's TCPConnector(force_close=True), after the fact
        return connector

    rest._create_connector = create
