"""Fetch a packaged Helm chart from an HTTP chart repository or an OCI registry, into a private cache.

Role: the chart of a Flux ``HelmRelease`` that lives outside the config repo. ``fetch_chart`` is blocking
(call it through ``asyncio.to_thread``, off the engine loop): every request has a timeout and every
body a size cap; only the URLs the ``HelmRelease``'s source names are contacted (the repository's
``index.yaml`` and the chart URL it lists, or the registry's ``/v2/`` API for that one repository).

* HTTP repository: ``GET <url>/index.yaml``, the highest version of the chart matching the range, the
  ``.tgz`` from the entry's URL, its sha256 checked against the index's ``digest`` (refused without one).
* OCI: the distribution API directly (``tags/list`` for a semver range, ``manifests/<tag|digest>``, the
  layer of media type ``application/vnd.cncf.helm.chart.content.v1.tar+gzip`` from ``blobs/<digest>``),
  the manifest digest checked against ``ref.digest`` and the layer against its descriptor. Anonymous only;
  ``http://`` only when the source says ``insecure: true``.

Cache: ``$FLEETDECK_CHART_CACHE`` or ``$XDG_CACHE_HOME/fleetdeck/charts`` (default ``~/.cache/…``), one
directory per (url, chart, version, digest), 0700 directories and 0600 files, written to a temporary
name and renamed into place. The archive is extracted with tarfile's ``data`` filter, links refused,
under a total-size and member-count cap.

Constraint: failures raise ``ChartSourceError`` naming the URL and what to do; they are never cached as
a render result, so the next refresh tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.desired.semver import ConstraintError, highest
from core.desired.yamlload import Budget, compose_single, construct
from core.errors import ManifestError, RenderError

CACHE_ENV = "FLEETDECK_CHART_CACHE"
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
_MANIFEST_TYPES = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
_MAX_MEMBERS = 5000
_INDEX_BYTES = 32 * 1024 * 1024
_INDEX_BUDGET = Budget(max_bytes=_INDEX_BYTES, max_depth=64, max_nodes=10_000_000)


class ChartSourceError(RenderError):
    """The chart could not be fetched (repository unreachable, version not found, digest mismatch…);
    worth retrying later, never cached as the app's render."""


@dataclass(frozen=True, slots=True)
class ChartRequest:
    """Which chart to fetch."""

    url: str
    """``http(s)://`` repository URL, or ``oci://host/path`` (for OCI, the full chart reference when
    ``chart`` is empty, else the repository prefix the chart name is appended to)."""
    chart: str = ""
    version: str = ""
    """A semver range (HTTP repository, OCI ``ref.semver``); empty: the latest release."""
    tag: str = ""
    """OCI ``ref.tag``."""
    digest: str = ""
    """OCI ``ref.digest`` (``sha256:…``): wins over tag and version."""
    insecure: bool = False
    """OCI over plain HTTP (``spec.insecure``)."""

    @property
    def is_oci(self) -> bool:
        return self.url.startswith("oci://")

    @property
    def where(self) -> str:
        """The URL as the operator wrote it, for messages."""
        return self.url


@dataclass(frozen=True, slots=True)
class FetchedChart:
    """A chart in the cache."""

    root: Path
    """The extraction directory (the root a render is relative to)."""
    chart_dir: Path
    """The chart directory inside ``root``."""
    name: str
    version: str
    digest: str
    """sha256 of the archive, ``sha256:…``."""
    cached: bool
    """True when nothing but index/tag lookups went over the network."""


def cache_dir() -> Path:
    """Where charts are cached (created 0700 on first use)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "fleetdeck", "charts")


def fetch_chart(request: ChartRequest, *, timeout: float, max_bytes: int, cache: Path | None = None) -> FetchedChart:
    """Fetch (or find in the cache) the chart ``request`` names. Blocking.

    Raises:
        ChartSourceError: unreachable, not found, no matching version, digest mismatch, over ``max_bytes``, or
            an archive that is not a chart.
    """
    where = cache or cache_dir()
    if request.is_oci:
        return _fetch_oci(request, timeout=timeout, max_bytes=max_bytes, cache=where)
    return _fetch_http(request, timeout=timeout, max_bytes=max_bytes, cache=where)


# ---------------------------------------------------------------------------------------------- HTTP


class _SameHostAuth(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but never sends a registry's bearer token to another host (a blob CDN)."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_SameHostAuth)
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def _get(url: str, *, timeout: float, max_bytes: int, what: str, source: str,
         headers: Mapping[str, str] | None = None, auth: dict[str, str] | None = None) -> bytes:
    """GET ``url`` (at most ``max_bytes``). With ``auth`` (an OCI fetch), a 401 carrying a Bearer challenge
    gets an anonymous token from the challenge's realm once, kept in ``auth`` for the fetch's next requests."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise ChartSourceError(f"{what} {url} is not an http(s) URL; fleetdeck fetches charts over HTTP(S) only")
    sent = {"User-Agent": "fleetdeck", **(headers or {})}
    if auth and auth.get("token"):
        sent["Authorization"] = f"Bearer {auth['token']}"
    request = urllib.request.Request(url, headers=sent)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            body: bytes = response.read(max_bytes + 1)
            if len(body) > max_bytes:
                raise ChartSourceError(f"{what} {url} is over the {max_bytes}-byte limit",
                                       hint="raise max_manifest_bytes if the chart is really that large")
            return body
    except urllib.error.HTTPError as exc:
        challenge = str(exc.headers.get("WWW-Authenticate") or "") if exc.headers else ""
        if exc.code == 401 and auth is not None and not auth.get("token") and challenge.lower().startswith("bearer"):
            auth["token"] = _anonymous_token(challenge, registry_scheme=scheme, timeout=timeout, source=source)
            return _get(url, timeout=timeout, max_bytes=max_bytes, what=what, source=source, headers=headers,
                        auth=auth)
        raise ChartSourceError(f"{what} {url} of {source}: HTTP {exc.code} {exc.reason}",
                               hint=_hint(exc.code)) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ChartSourceError(
            f"chart repository {source} unreachable: {reason}",
            hint="check the URL and that this machine can reach it through its network or proxy; the app's "
                 "objects are left as they are until the chart can be fetched") from None


def _anonymous_token(challenge: str, *, registry_scheme: str, timeout: float, source: str) -> str:
    """An anonymous pull token from the realm of a registry's Bearer challenge (the distribution token flow)."""
    params = dict(_CHALLENGE.findall(challenge))
    realm = params.pop("realm", "")
    realm_scheme = urllib.parse.urlsplit(realm).scheme
    if realm_scheme not in ("http", "https") or (realm_scheme == "http" and registry_scheme != "http"):
        raise ChartSourceError(f"registry {source} asks for a token from {realm or 'nowhere'!r}, which fleetdeck "
                               "does not use (https only for an https registry)")
    query = urllib.parse.urlencode({k: v for k, v in params.items() if k in ("service", "scope")})
    body = _get(f"{realm}{'&' if '?' in realm else '?'}{query}", timeout=timeout, max_bytes=1024 * 1024,
                what="token", source=source)
    try:
        answer = json.loads(body)
        token = str(answer.get("token") or answer.get("access_token") or "")
    except (ValueError, AttributeError):
        token = ""
    if not token:
        raise ChartSourceError(f"registry {source}: its token endpoint gave no anonymous token",
                               hint="the registry needs credentials; fleetdeck fetches anonymously only")
    return token


def _hint(code: int) -> str:
    if code in (401, 403):
        return "the repository needs credentials; fleetdeck fetches anonymously only"
    if code == 404:
        return "check the URL, chart name and version in the HelmRelease and its source"
    return "the repository answered with an error; the next refresh tries again"


def _fetch_http(request: ChartRequest, *, timeout: float, max_bytes: int, cache: Path) -> FetchedChart:
    base = request.url.rstrip("/")
    index_url = f"{base}/index.yaml"
    body = _get(index_url, timeout=timeout, max_bytes=_INDEX_BYTES, what="index", source=base)
    try:
        node = compose_single(body, index_url, budget=_INDEX_BUDGET)
    except ManifestError as exc:
        raise ChartSourceError(f"index {index_url} is not valid YAML: {exc}") from None
    index = construct(node) if node is not None else None
    entries = index.get("entries") if isinstance(index, dict) else None
    versions = entries.get(request.chart) if isinstance(entries, dict) else None
    if not isinstance(versions, list) or not versions:
        raise ChartSourceError(f"chart {request.chart!r} is not in the index of {base}",
                               hint="check spec.chart.spec.chart of the HelmRelease")
    by_version = {str(v.get("version")): v for v in versions if isinstance(v, dict) and v.get("version")}
    version = _pick(by_version, request.version, f"chart {request.chart!r} of {base}")
    entry = by_version[version]
    digest = str(entry.get("digest") or "")
    if not digest:
        raise ChartSourceError(f"the index of {base} lists no digest for {request.chart} {version}; "
                               "fleetdeck does not install an unverified chart",
                               hint="regenerate the index with `helm repo index`")
    key = _key("http", base, request.chart, version, digest)
    found = _cached(cache, key, request.chart, version, f"sha256:{digest}")
    if found is not None:
        return found
    urls = [u for u in entry.get("urls") or () if isinstance(u, str)]
    if not urls:
        raise ChartSourceError(f"the index of {base} lists no URL for {request.chart} {version}")
    chart_url = urllib.parse.urljoin(f"{base}/", urls[0])
    data = _get(chart_url, timeout=timeout, max_bytes=max_bytes, what="chart", source=base)
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise ChartSourceError(f"chart {chart_url} has digest sha256:{actual}, the index of {base} says sha256:{digest}; "
                               "not used", hint="the repository changed a published chart; ask its owner")
    return _store(cache, key, data, request.chart, version, max_bytes=max_bytes)


def _pick(versions: Mapping[str, Any], wanted: str, what: str) -> str:
    try:
        version = highest(versions, wanted)
    except ConstraintError as exc:
        raise RenderError(f"version {wanted!r} of {what}: {exc}") from None
    if version is None:
        raise ChartSourceError(f"no version of {what} matches {wanted or '*'!r} "
                               f"(has {', '.join(sorted(versions)[:8]) or 'none'})",
                               hint="fix the version range, or publish a matching version")
    return version


# ---------------------------------------------------------------------------------------------- OCI


def _oci_parts(request: ChartRequest) -> tuple[str, str, str]:
    """(base URL of the registry, repository path, reference URL for messages)."""
    reference = request.url.rstrip("/") + (f"/{request.chart}" if request.chart else "")
    rest = reference.removeprefix("oci://")
    host, _, path = rest.partition("/")
    if not host or not path:
        raise RenderError(f"OCI reference {reference} has no repository path")
    scheme = "http" if request.insecure else "https"
    return f"{scheme}://{host}", path, reference


def _fetch_oci(request: ChartRequest, *, timeout: float, max_bytes: int, cache: Path) -> FetchedChart:
    base, repository, reference = _oci_parts(request)
    name = repository.rsplit("/", 1)[-1]
    auth: dict[str, str] = {}
    if request.digest:
        ref = request.digest
        found = _cached(cache, _key("oci", reference, "", ref, ref), name, ref, "")
        if found is not None:
            return found
    elif request.version:
        body = _get(f"{base}/v2/{repository}/tags/list", timeout=timeout, max_bytes=_INDEX_BYTES,
                       what="tag list", source=reference, auth=auth)
        try:
            tags = json.loads(body).get("tags") or []
        except (ValueError, AttributeError):
            raise ChartSourceError(f"the tag list of {reference} is not valid JSON") from None
        ref = _pick({str(t).replace("_", "+"): t for t in tags}, request.version, reference).replace("+", "_")
    else:
        ref = request.tag or "latest"
    manifest_body = _get(f"{base}/v2/{repository}/manifests/{ref}", timeout=timeout,
                                  max_bytes=4 * 1024 * 1024, what="manifest", source=reference,
                                  headers={"Accept": _MANIFEST_TYPES}, auth=auth)
    manifest_digest = "sha256:" + hashlib.sha256(manifest_body).hexdigest()
    if request.digest and manifest_digest != request.digest:
        raise ChartSourceError(f"manifest of {reference}@{request.digest} has digest {manifest_digest}; not used")
    try:
        manifest = json.loads(manifest_body)
        layers = [layer for layer in manifest.get("layers") or () if isinstance(layer, dict)]
    except (ValueError, AttributeError):
        raise ChartSourceError(f"the manifest of {reference}:{ref} is not valid JSON") from None
    layer = next((entry for entry in layers if entry.get("mediaType") == HELM_LAYER), None)
    if layer is None:
        raise ChartSourceError(f"{reference}:{ref} holds no Helm chart layer ({HELM_LAYER})",
                               hint="the OCI artifact is not a Helm chart")
    blob = str(layer.get("digest") or "")
    if not blob.startswith("sha256:") or int(layer.get("size") or 0) > max_bytes:
        raise ChartSourceError(f"the chart layer of {reference}:{ref} is over the {max_bytes}-byte limit or "
                               "has no sha256 digest")
    version = ref if not ref.startswith("sha256:") else ""
    key = _key("oci", reference, "", request.digest or ref, manifest_digest)
    found = _cached(cache, key, name, version or manifest_digest, blob)
    if found is not None:
        return found
    data = _get(f"{base}/v2/{repository}/blobs/{blob}", timeout=timeout, max_bytes=max_bytes,
                   what="chart layer", source=reference, auth=auth)
    if "sha256:" + hashlib.sha256(data).hexdigest() != blob:
        raise ChartSourceError(f"the chart layer of {reference}:{ref} does not match its digest {blob}; not used")
    stored = _store(cache, key, data, name, version or manifest_digest, max_bytes=max_bytes)
    if request.digest:  # also findable without any request next time
        _link(cache, _key("oci", reference, "", request.digest, request.digest), stored.root.parent)
    return stored


# ---------------------------------------------------------------------------------------------- cache


def _key(kind: str, url: str, chart: str, version: str, digest: str) -> str:
    return hashlib.sha256("\0".join((kind, url, chart, version, digest)).encode()).hexdigest()[:40]


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _cached(cache: Path, key: str, name: str, version: str, digest: str) -> FetchedChart | None:
    entry = cache / key
    meta = entry / "meta.json"
    if not meta.is_file():
        return None
    try:
        info = json.loads(meta.read_text())
        root = entry / "chart"
        return FetchedChart(root, root / str(info["dir"]), str(info.get("name") or name),
                            str(info.get("version") or version), str(info.get("digest") or digest), cached=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _link(cache: Path, key: str, entry: Path) -> None:
    alias = cache / key
    if alias.exists():
        return
    with contextlib.suppress(OSError):
        alias.symlink_to(entry.name)


def _store(cache: Path, key: str, data: bytes, name: str, version: str, *, max_bytes: int) -> FetchedChart:
    """Write the archive and its extracted chart under ``cache/key`` (atomically)."""
    _private_dir(cache)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache))
    try:
        archive = staging / "chart.tgz"
        fd = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        top = _extract(archive, staging / "chart", max_bytes=max_bytes * 4)
        name, version = _chart_id(staging / "chart" / top / "Chart.yaml", name, version)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        meta = staging / "meta.json"
        fd = os.open(meta, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w") as out:
            json.dump({"dir": top, "name": name, "version": version, "digest": digest}, out)
        try:
            os.rename(staging, cache / key)
        except OSError:  # another fetch stored it first
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    found = _cached(cache, key, name, version, digest)
    if found is None:
        raise ChartSourceError(f"the chart cache {cache} could not be written")
    return dataclasses.replace(found, cached=False)


def _chart_id(chart_file: Path, name: str, version: str) -> tuple[str, str]:
    """The chart's own name and version (``Chart.yaml``), else the given ones."""
    try:
        node = compose_single(chart_file.read_bytes(), "Chart.yaml")
        meta = construct(node) if node is not None else None
    except (OSError, ManifestError):
        return name, version
    if not isinstance(meta, dict):
        return name, version
    return str(meta.get("name") or name), str(meta.get("version") or version)


def _extract(archive: Path, into: Path, *, max_bytes: int) -> str:
    """Extract a chart archive (regular files and directories only) and return its top directory."""
    _private_dir(into)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            if len(members) > _MAX_MEMBERS or sum(m.size for m in members) > max_bytes:
                raise ChartSourceError(f"the chart archive has more than {_MAX_MEMBERS} files or {max_bytes} bytes")
            tops = {m.name.lstrip("./").split("/", 1)[0] for m in members if m.name.strip("./")}
            if any(not (m.isfile() or m.isdir()) for m in members) or len(tops) != 1:
                raise ChartSourceError("the chart archive holds links or more than one top directory; not used")
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ChartSourceError(f"the chart archive cannot be read: {exc}") from None
    top = tops.pop()
    for current, dirs, files in os.walk(into):
        for name in dirs:
            os.chmod(os.path.join(current, name), 0o700)
        for name in files:
            os.chmod(os.path.join(current, name), 0o600)
    if not (into / top / "Chart.yaml").is_file():
        raise ChartSourceError("the archive is not a Helm chart (no Chart.yaml in its top directory)")
    return top


async def fetch(request: ChartRequest, *, timeout: float, max_bytes: int, cache: Path | None = None) -> FetchedChart:
    """``fetch_chart`` in a worker thread (never on the event loop), the whole fetch bounded by ``timeout``.

    Raises:
        ChartSourceError: see ``fetch_chart``; also when the fetch takes longer than ``timeout`` seconds.
    """
    try:
        async with asyncio.timeout(timeout):
            return await asyncio.to_thread(fetch_chart, request, timeout=timeout, max_bytes=max_bytes, cache=cache)
    except TimeoutError:
        raise ChartSourceError(f"chart repository {request.where} unreachable: no answer within {timeout:g} s",
                               hint="check the URL and the network; the next refresh tries again") from None
