"""Kubeconfig loading with kubectl's semantics, and one ``kubernetes.aio`` client configuration per cluster.

Role: turn ``KUBECONFIG`` (several files), ``~/.kube/config`` or an explicit file into a merged view,
resolve one context into a :class:`ContextConfig`, obtain its credentials (static token, token file,
client certificate, exec plugin) and build a *per-cluster* ``kubernetes.aio`` ``Configuration`` and
``ApiClient``.

Constraint: nothing here touches the process-wide default ``Configuration``; each call builds a fresh
object. This module never talks to an API server (exec plugins may, on their own).

Why the configuration is built here rather than with ``kubernetes.aio.config.new_client_from_config``
(checked against ``kubernetes==37.0.2``, ``kubernetes/aio/config/kube_config.py``):

* ``KubeConfigMerger`` lets a *later* file's ``current-context`` override an earlier one; kubectl keeps
  the first non-empty value.
* relative ``client-certificate``/``client-key`` paths are resolved against the file that defined the
  *cluster*, not the file that defined the *user*.
* ``load_from_exec_plugin`` runs the plugin with no timeout, swallows every failure (logging it, then
  silently trying a token), echoes stderr unredacted, and never re-runs a plugin whose credential
  carried no ``expirationTimestamp``; there is no "re-run once on 401".
* ``load_kube_config(persist_config=True)`` (the default of ``new_client_from_config``) may rewrite the
  user's kubeconfig, and embedded certificate data is written to process-global temp files that live
  until exit.

So this module parses the YAML itself, keeps per-stanza origins for path resolution, runs exec plugins
with a timeout, and hands ``Configuration`` only what it needs: ``host``, CA data, TLS flags, a bearer
token with a refresh hook, and (for client certificates) key files that exist only while the
``ApiClient`` builds its ``ssl.SSLContext``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import re
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigError

EXEC_TIMEOUT = 10.0
"""Seconds an exec credential plugin may run (fault B11 in docs/reliability.md: a hanging plugin must not hang a cluster)."""
EXPIRY_SKEW = 30.0
"""A credential expiring within this many seconds is treated as expired and fetched again."""
TOKEN_FILE_TTL = 60.0
"""A ``tokenFile`` is re-read at most this often (client-go re-reads it every minute too)."""
_STDERR_LIMIT = 2000

JSON = dict[str, Any]


# ---------------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class ExecConfig:
    """A ``users[].user.exec`` stanza (client.authentication.k8s.io exec credential plugin)."""

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    api_version: str = "client.authentication.k8s.io/v1"
    install_hint: str = ""

    def __repr__(self) -> str:
        # env values often carry a credential (an API key for the plugin): names only.
        names = [name for name, _ in self.env]
        return f"ExecConfig(command={self.command!r}, args={self.args!r}, env names={names!r})"


@dataclass(frozen=True, slots=True)
class ContextConfig:
    """One resolved context: where the API server is and how to authenticate to it."""

    name: str
    server: str
    cluster_name: str = ""
    user_name: str = ""
    namespace: str = ""
    ca_data: bytes | None = None
    """PEM bundle of the cluster CA (from ``certificate-authority-data`` or the file)."""
    insecure: bool = False
    """``insecure-skip-tls-verify: true``: the server certificate is not verified (shown badged)."""
    tls_server_name: str = ""
    proxy_url: str = ""
    client_cert: bytes | None = None
    client_key: bytes | None = None
    token: str = ""
    token_file: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    exec: ExecConfig | None = None
    impersonate_user: str = ""
    """Every request is sent as this user (``Impersonate-User``): the user's ``as`` or ``fleetdeck --as``."""
    impersonate_groups: tuple[str, ...] = ()
    """``Impersonate-Group``, one header each: the user's ``as-groups`` or ``fleetdeck --as-group``."""
    source: str = ""
    """The kubeconfig file that defined the context."""

    def __repr__(self) -> str:
        return f"ContextConfig(name={self.name!r}, server={self.server!r}, user={self.user_name!r})"

    @property
    def impersonation(self) -> str:
        """``"alice (groups ops, dev)"``: who requests are sent as, ``""`` when nobody is impersonated."""
        if not self.impersonate_user:
            return ""
        groups = f" (groups {', '.join(self.impersonate_groups)})" if self.impersonate_groups else ""
        return self.impersonate_user + groups


@dataclass(frozen=True, slots=True)
class _Entry:
    """A named stanza (cluster, user or context) and the file it came from."""

    body: Mapping[str, Any] = field(repr=False)
    """The raw stanza: a user's holds tokens, passwords and keys, so it is never printed."""
    origin: Path


@dataclass(frozen=True, slots=True)
class Kubeconfig:
    """Merged kubeconfig files, first file winning per name (kubectl's ``KUBECONFIG`` rules)."""

    files: tuple[Path, ...]
    current_context: str
    clusters: Mapping[str, _Entry]
    users: Mapping[str, _Entry]
    contexts: Mapping[str, _Entry]
    errors: tuple[ConfigError, ...] = ()
    """Files that could not be read or parsed; their contexts are missing, the others still work."""

    def context_names(self) -> tuple[str, ...]:
        """Every context name, in merge order."""
        return tuple(self.contexts)

    def context(self, name: str | None = None) -> ContextConfig:
        """Resolve context ``name`` (``current-context`` when None).

        Raises:
            ConfigError: the context, its cluster or its user is missing or malformed, or a referenced
                certificate file cannot be read.
        """
        wanted = name or self.current_context
        if not wanted:
            raise ConfigError("no context given and no current-context set", path=self._where(),
                              hint=self._hint())
        entry = self.contexts.get(wanted)
        if entry is None:
            raise ConfigError(f"context {wanted!r} not found", path=self._where(), hint=self._hint())
        return _resolve(wanted, entry, self)

    def _where(self) -> str:
        return os.pathsep.join(str(p) for p in self.files)

    def _hint(self) -> str:
        known = ", ".join(self.contexts) or "none"
        broken = "; ".join(str(e) for e in self.errors)
        return f"known contexts: {known}" + (f"; unreadable: {broken}" if broken else "")


# ---------------------------------------------------------------------------------------------- loading


def kubeconfig_paths(explicit: str | os.PathLike[str] | None = None, *,
                     environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """The files kubectl would read, in precedence order.

    Args:
        explicit: a ``--kubeconfig`` file: only that file is read.
        environ: the environment (``os.environ`` when None); ``KUBECONFIG`` is split on ``os.pathsep``,
            empty entries and duplicates are dropped.

    Returns:
        The candidate paths (they may not exist; see :func:`load_kubeconfig`).
    """
    env = os.environ if environ is None else environ
    if explicit:
        return (Path(explicit).expanduser(),)
    raw = env.get("KUBECONFIG", "")
    if raw:
        seen: dict[Path, None] = {}
        for part in raw.split(os.pathsep):
            if part:
                seen.setdefault(Path(part).expanduser(), None)
        if seen:
            return tuple(seen)
    home = Path(env.get("HOME", str(Path.home())))
    return (home / ".kube" / "config",)


def load_kubeconfig(explicit: str | os.PathLike[str] | None = None, *,
                    environ: Mapping[str, str] | None = None) -> Kubeconfig:
    """Load and merge kubeconfig files like kubectl.

    An explicit file must exist. Files named by ``KUBECONFIG`` that do not exist are skipped (as kubectl
    does); a file that exists but is not valid YAML is recorded in ``Kubeconfig.errors`` so the contexts
    of the other files keep working.

    Raises:
        ConfigError: the explicit file is missing or invalid, or no listed file exists.
    """
    paths = kubeconfig_paths(explicit, environ=environ)
    docs: list[tuple[Path, Mapping[str, Any]]] = []
    errors: list[ConfigError] = []
    for path in paths:
        if not path.exists():
            if explicit:
                raise ConfigError("kubeconfig file does not exist", path=str(path))
            continue
        try:
            docs.append((path, _read_yaml(path)))
        except ConfigError as exc:
            if explicit:
                raise
            errors.append(exc)
    if not docs and not errors:
        raise ConfigError("no kubeconfig file found", path=os.pathsep.join(map(str, paths)),
                          hint="set KUBECONFIG or pass --kubeconfig")
    return _merge(tuple(paths), docs, tuple(errors))


def _read_yaml(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read kubeconfig: {exc}", path=str(path)) from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", path=str(path), line=line) from exc
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise ConfigError("a kubeconfig must be a YAML mapping", path=str(path))
    return doc


def _merge(paths: tuple[Path, ...], docs: Sequence[tuple[Path, Mapping[str, Any]]],
           errors: tuple[ConfigError, ...]) -> Kubeconfig:
    tables: dict[str, dict[str, _Entry]] = {"clusters": {}, "users": {}, "contexts": {}}
    current = ""
    for path, doc in docs:
        current = current or str(doc.get("current-context") or "")
        for section, table in tables.items():
            for item in _named_items(doc, section, path):
                table.setdefault(item[0], item[1])
    return Kubeconfig(files=paths, current_context=current, clusters=tables["clusters"],
                      users=tables["users"], contexts=tables["contexts"], errors=errors)


def _named_items(doc: Mapping[str, Any], section: str, path: Path) -> Iterator[tuple[str, _Entry]]:
    key = section[:-1]  # clusters -> cluster
    for item in doc.get(section) or ():
        if not isinstance(item, Mapping) or not item.get("name"):
            raise ConfigError(f"every entry of {section} needs a name", path=str(path), field=section)
        body = item.get(key) or {}
        if not isinstance(body, Mapping):
            raise ConfigError(f"{section}[{item['name']}].{key} must be a mapping", path=str(path))
        yield str(item["name"]), _Entry(body=body, origin=path)


# ---------------------------------------------------------------------------------------------- resolving


def _resolve(name: str, ctx: _Entry, config: Kubeconfig) -> ContextConfig:
    cluster_name = str(ctx.body.get("cluster") or "")
    cluster = config.clusters.get(cluster_name)
    if cluster is None:
        raise ConfigError(f"context {name!r} refers to cluster {cluster_name!r}, which is not defined",
                          path=str(ctx.origin))
    user_name = str(ctx.body.get("user") or "")
    user = config.users.get(user_name) if user_name else None
    if user_name and user is None:
        raise ConfigError(f"context {name!r} refers to user {user_name!r}, which is not defined",
                          path=str(ctx.origin))
    server = str(cluster.body.get("server") or "")
    if not server:
        raise ConfigError(f"cluster {cluster_name!r} has no server", path=str(cluster.origin))
    return ContextConfig(
        name=name, server=server.rstrip("/"), cluster_name=cluster_name, user_name=user_name,
        namespace=str(ctx.body.get("namespace") or ""), source=str(ctx.origin),
        **_cluster_fields(cluster_name, cluster), **(_user_fields(user_name, user) if user else {}),
    )


def _cluster_fields(name: str, entry: _Entry) -> dict[str, Any]:
    body = entry.body
    insecure = bool(body.get("insecure-skip-tls-verify"))
    ca = _data_or_file(body, "certificate-authority", entry.origin)
    if insecure and ca is not None:
        raise ConfigError(f"cluster {name!r}: specifying a root certificates file with the insecure flag "
                          "is not allowed (as kubectl)", path=str(entry.origin))
    return {
        "ca_data": ca, "insecure": insecure,
        "tls_server_name": str(body.get("tls-server-name") or ""),
        "proxy_url": str(body.get("proxy-url") or ""),
    }


def _user_fields(name: str, entry: _Entry) -> dict[str, Any]:
    body = entry.body
    token_file = str(body.get("tokenFile") or "")
    exec_cfg = _exec_config(name, entry) if body.get("exec") else None
    return {
        "client_cert": _data_or_file(body, "client-certificate", entry.origin),
        "client_key": _data_or_file(body, "client-key", entry.origin),
        "token": str(body.get("token") or ""),
        "token_file": str(_relative_to(token_file, entry.origin)) if token_file else "",
        "username": str(body.get("username") or ""),
        "password": str(body.get("password") or ""),
        "exec": exec_cfg,
        "impersonate_user": str(body.get("as") or ""),
        "impersonate_groups": tuple(str(g) for g in body.get("as-groups") or () if g),
    }


def _exec_config(user: str, entry: _Entry) -> ExecConfig:
    raw = entry.body["exec"]
    if not isinstance(raw, Mapping) or not raw.get("command"):
        raise ConfigError(f"user {user!r}: exec needs a command", path=str(entry.origin))
    command = str(raw["command"])
    if os.sep in command and not os.path.isabs(command):
        command = str(_relative_to(command, entry.origin))  # client-go: only paths with a separator
    env = tuple((str(e.get("name", "")), str(e.get("value", ""))) for e in raw.get("env") or ())
    return ExecConfig(
        command=command, args=tuple(str(a) for a in raw.get("args") or ()), env=env,
        api_version=str(raw.get("apiVersion") or "client.authentication.k8s.io/v1"),
        install_hint=str(raw.get("installHint") or ""),
    )


def _relative_to(path: str, origin: Path) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else (origin.parent / candidate)


def _data_or_file(body: Mapping[str, Any], key: str, origin: Path) -> bytes | None:
    """``<key>-data`` (base64) wins over ``<key>`` (a path relative to the defining file)."""
    data = body.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=False)
        except ValueError as exc:
            raise ConfigError(f"{key}-data is not valid base64", path=str(origin), field=key) from exc
    path = body.get(key)
    if not path:
        return None
    resolved = _relative_to(str(path), origin)
    try:
        return resolved.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {key} {resolved}: {exc.strerror or exc}", path=str(origin),
                          field=key) from exc


# ---------------------------------------------------------------------------------------------- exec plugins


@dataclass(frozen=True, slots=True)
class ExecCredential:
    """What an exec plugin returned."""

    token: str = field(default="", repr=False)
    client_cert: bytes | None = field(default=None, repr=False)
    client_key: bytes | None = field(default=None, repr=False)
    expires_at: float | None = None
    """Unix time from ``expirationTimestamp``; None means valid until a 401."""


_SECRETISH = re.compile(
    r"(?i)(bearer\s+|token[\"'=:\s]+|password[\"'=:\s]+)\S+|[A-Za-z0-9_\-+=.~]{24,}"
)


def redact(text: str, *secrets: str) -> str:
    """Replace tokens, passwords and long opaque strings in ``text`` with ``<redacted>``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return _SECRETISH.sub(lambda m: (m.group(1) or "") + "<redacted>", text)


async def run_exec_plugin(config: ExecConfig, *, context: str, timeout: float = EXEC_TIMEOUT,
                          environ: Mapping[str, str] | None = None) -> ExecCredential:
    """Run an exec credential plugin and parse its ``ExecCredential``.

    The plugin runs in its own process group (so a hung plugin and its children are killed together on
    timeout), with ``KUBERNETES_EXEC_INFO`` set and no stdin (non-interactive).

    Raises:
        ConfigError: the plugin is missing, timed out, exited non-zero (stderr shown, redacted), or
            printed something that is not an ExecCredential.
    """
    env = dict(os.environ if environ is None else environ)
    env.update(config.env)
    env["KUBERNETES_EXEC_INFO"] = json.dumps({
        "apiVersion": config.api_version, "kind": "ExecCredential", "spec": {"interactive": False},
    })
    what = f"context {context!r}: exec plugin {config.command!r}"
    try:
        proc = await asyncio.create_subprocess_exec(
            config.command, *config.args, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )
    except OSError as exc:
        raise ConfigError(f"{what} cannot be started: {exc.strerror or exc}", hint=config.install_hint) from exc
    stdout, stderr = await _communicate(proc, timeout=timeout, what=what)
    if proc.returncode != 0:
        detail = redact(stderr.decode(errors="replace").strip()[:_STDERR_LIMIT])
        raise ConfigError(f"{what} exited with status {proc.returncode}" + (f": {detail}" if detail else ""),
                          hint=config.install_hint)
    return _parse_exec_output(stdout, config=config, what=what)


async def _communicate(proc: asyncio.subprocess.Process, *, timeout: float, what: str) -> tuple[bytes, bytes]:
    try:
        return await asyncio.wait_for(proc.communicate(), timeout=timeout)
    except TimeoutError:
        _kill_group(proc)
        with contextlib.suppress(TimeoutError, ProcessLookupError):
            await asyncio.wait_for(proc.wait(), timeout=5)  # reap it, so its pipes close
        raise ConfigError(f"{what} did not finish within {timeout:g}s and was killed") from None
    except asyncio.CancelledError:
        _kill_group(proc)
        # Reap it before the cancellation goes on: a killed plugin left unawaited stays a zombie and its
        # pipes' transport is only closed by the garbage collector, after the event loop may be gone.
        with contextlib.suppress(TimeoutError, ProcessLookupError, asyncio.CancelledError):
            await asyncio.wait_for(proc.wait(), timeout=1)
        raise


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """Kill the plugin's own process group (it was started with ``start_new_session``)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _parse_exec_output(stdout: bytes, *, config: ExecConfig, what: str) -> ExecCredential:
    try:
        doc = json.loads(stdout)
    except ValueError:
        # Never echo it: a broken plugin's stdout is where a credential would be, in whatever format.
        raise ConfigError(f"{what} printed {len(stdout)} bytes that are not JSON (not shown: they may hold a "
                          "credential)", hint=f"run the plugin by hand to see its output; {config.install_hint}"
                          .rstrip("; ")) from None
    if not isinstance(doc, Mapping) or doc.get("kind") != "ExecCredential":
        raise ConfigError(f"{what} did not print an ExecCredential")
    if doc.get("apiVersion") != config.api_version:
        raise ConfigError(f"{what} answered apiVersion {doc.get('apiVersion')!r}, expected {config.api_version!r}")
    status = doc.get("status") or {}
    token = str(status.get("token") or "")
    cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
    if not token and not (cert and key):
        raise ConfigError(f"{what} returned neither a token nor a client certificate and key")
    return ExecCredential(
        token=token,
        client_cert=str(cert).encode() if cert else None,
        client_key=str(key).encode() if key else None,
        expires_at=_parse_time(status.get("expirationTimestamp"), what=what),
    )


def _parse_time(value: Any, *, what: str) -> float | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ConfigError(f"{what} returned an invalid expirationTimestamp {value!r}") from None


# ---------------------------------------------------------------------------------------------- credentials


class Credentials:
    """The credentials of one context, refreshed when they expire or the server answers 401.

    Args:
        context: the resolved context.
        exec_timeout: seconds an exec plugin may run.
        clock: Unix time; injected in tests.
    """

    def __init__(self, context: ContextConfig, *, exec_timeout: float = EXEC_TIMEOUT,
                 clock: Callable[[], float] = time.time) -> None:
        self.context = context
        self._exec_timeout = exec_timeout
        self._clock = clock
        self._exec: ExecCredential | None = None
        self._file_token = ""
        self._file_read_at = -1e18
        self._lock = asyncio.Lock()
        self.exec_runs = 0
        """How many times the exec plugin ran (for tests and diagnostics)."""

    @property
    def refreshable(self) -> bool:
        """Whether a 401 may be cured by fetching credentials again (exec plugin or token file)."""
        return self.context.exec is not None or bool(self.context.token_file)

    async def authorization(self) -> str:
        """The ``Authorization`` header value, or ``""`` for certificate-only or anonymous access.

        Raises:
            ConfigError: the exec plugin or token file failed.
        """
        if self.context.exec is not None:
            cred = await self._exec_credential()
            if cred.token:
                return f"Bearer {cred.token}"
        token = self._read_token_file() or self.context.token
        if token:
            return f"Bearer {token}"
        if self.context.username:
            raw = f"{self.context.username}:{self.context.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        return ""

    async def client_certificate(self) -> tuple[bytes, bytes] | None:
        """PEM certificate and key for mutual TLS, from the exec plugin or the kubeconfig."""
        if self.context.exec is not None:
            cred = await self._exec_credential()
            if cred.client_cert and cred.client_key:
                return cred.client_cert, cred.client_key
        if self.context.client_cert and self.context.client_key:
            return self.context.client_cert, self.context.client_key
        return None

    async def refresh(self) -> bool:
        """Forget cached credentials after a 401. Returns whether fetching again may help."""
        async with self._lock:
            self._exec = None
            self._file_read_at = -1e18
        return self.refreshable

    async def _exec_credential(self) -> ExecCredential:
        assert self.context.exec is not None
        async with self._lock:
            if self._exec is None or self._expired(self._exec):
                self.exec_runs += 1
                self._exec = await run_exec_plugin(self.context.exec, context=self.context.name,
                                                   timeout=self._exec_timeout)
            return self._exec

    def _expired(self, cred: ExecCredential) -> bool:
        return cred.expires_at is not None and self._clock() >= cred.expires_at - EXPIRY_SKEW

    def _read_token_file(self) -> str:
        if not self.context.token_file:
            return ""
        now = self._clock()
        if now - self._file_read_at >= TOKEN_FILE_TTL:
            try:
                self._file_token = Path(self.context.token_file).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"context {self.context.name!r}: cannot read tokenFile: {exc.strerror}",
                                  path=self.context.token_file) from exc
            self._file_read_at = now
        return self._file_token


# ---------------------------------------------------------------------------------------------- aio client


async def build_configuration(context: ContextConfig, credentials: Credentials) -> Any:
    """A fresh ``kubernetes.aio.client.Configuration`` for one context (never the global default).

    The bearer token is installed as ``api_key["BearerToken"]`` with a ``refresh_api_key_hook`` that
    asks ``credentials`` again before each request, so generated APIs using this configuration also
    pick up re-run exec plugins. Client certificates are not set here: see :func:`build_api_client`.
    """
    from kubernetes.aio.client import Configuration

    cfg = Configuration(host=context.server)
    cfg.verify_ssl = not context.insecure
    if context.ca_data:
        cfg.ca_cert_data = context.ca_data.decode("ascii", errors="replace")
    if context.tls_server_name:
        cfg.tls_server_name = context.tls_server_name
    if context.proxy_url:
        cfg.proxy = context.proxy_url
    header = await credentials.authorization()
    if header:
        cfg.api_key["BearerToken"] = header

        async def _refresh(conf: Any) -> None:
            conf.api_key["BearerToken"] = await credentials.authorization()

        cfg.refresh_api_key_hook = _refresh  # type: ignore[assignment]  # typed as None upstream
    if context.impersonate_user:
        # Session-wide headers (aiohttp keeps repeated names from a list of pairs): the generated client's
        # per-request headers are a dict, one value per name, and each impersonated group needs its own.
        headers = [("Impersonate-User", context.impersonate_user),
                   *(("Impersonate-Group", g) for g in context.impersonate_groups)]
        cfg.client_session_kwargs = {"headers": headers}
    return cfg


async def build_api_client(context: ContextConfig, credentials: Credentials) -> Any:
    """A ``kubernetes.aio.client.ApiClient`` (one aiohttp session) for one context.

    ``Configuration`` accepts client certificates only as file paths, which ``ApiClient`` loads into
    its ``ssl.SSLContext`` at construction. Certificate and key are therefore written to a private
    (0700) temporary directory just for that call, then removed: key material does not outlive it on
    disk.
    """
    from kubernetes.aio.client import ApiClient

    cfg = await build_configuration(context, credentials)
    pair = await credentials.client_certificate()
    if pair is None:
        return ApiClient(configuration=cfg)
    with tempfile.TemporaryDirectory(prefix="fleetdeck-tls-") as tmp:
        cert_path, key_path = Path(tmp) / "client.crt", Path(tmp) / "client.key"
        for path, data in ((cert_path, pair[0]), (key_path, pair[1])):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        cfg.cert_file, cfg.key_file = str(cert_path), str(key_path)
        client = ApiClient(configuration=cfg)
    cfg.cert_file = cfg.key_file = None
    return client
