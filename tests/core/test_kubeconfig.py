"""Kubeconfig loading (kubectl merge semantics, relative paths, errors per context) and exec plugins.

Every kubeconfig is generated in ``tmp_path``; exec plugins are tiny Python scripts run with the test's
interpreter.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.errors import ConfigError
from core.live.kubeconfig import (
    EXEC_TIMEOUT,
    ContextConfig,
    Credentials,
    ExecConfig,
    build_api_client,
    kubeconfig_paths,
    load_kubeconfig,
    redact,
    run_exec_plugin,
)

TOKEN = "s3cr3t-token-abcdefghijklmnopqrstuvwxyz"


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def config(*, clusters: dict[str, dict[str, Any]] | None = None, users: dict[str, dict[str, Any]] | None = None,
           contexts: dict[str, dict[str, Any]] | None = None, current: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in (clusters or {}).items()],
        "users": [{"name": n, "user": u} for n, u in (users or {}).items()],
        "contexts": [{"name": n, "context": c} for n, c in (contexts or {}).items()],
    }
    if current is not None:
        doc["current-context"] = current
    return doc


@pytest.fixture
def two_files(tmp_path: Path) -> tuple[Path, Path]:
    a = write(tmp_path / "a" / "config", config(
        clusters={"c1": {"server": "https://a.example:6443"}},
        users={"u1": {"token": "from-a"}},
        contexts={"ctx1": {"cluster": "c1", "user": "u1", "namespace": "team"}},
        current="ctx1",
    ))
    b = write(tmp_path / "b" / "config", config(
        clusters={"c1": {"server": "https://b.example:6443"}, "c2": {"server": "https://c2.example/"}},
        users={"u1": {"token": "from-b"}, "u2": {"client-certificate": "certs/u2.crt", "client-key": "certs/u2.key"}},
        contexts={"ctx1": {"cluster": "c1", "user": "u1"}, "ctx2": {"cluster": "c2", "user": "u2"}},
        current="ctx2",
    ))
    (tmp_path / "b" / "certs").mkdir()
    (tmp_path / "b" / "certs" / "u2.crt").write_bytes(b"CERT")
    (tmp_path / "b" / "certs" / "u2.key").write_bytes(b"KEY")
    return a, b


def env_for(*paths: Path) -> dict[str, str]:
    return {"KUBECONFIG": os.pathsep.join(map(str, paths)), "HOME": "/nonexistent"}


# ---------------------------------------------------------------------------------------------- merging


def test_kubeconfig_merge_first_file_wins(two_files: tuple[Path, Path]) -> None:
    """KUBECONFIG=a:b: names and current-context come from the first file defining them (as kubectl)."""
    config_ = load_kubeconfig(environ=env_for(*two_files))
    assert config_.current_context == "ctx1"
    assert config_.context_names() == ("ctx1", "ctx2")
    ctx1 = config_.context()
    assert (ctx1.server, ctx1.token, ctx1.namespace) == ("https://a.example:6443", "from-a", "team")
    ctx2 = config_.context("ctx2")
    assert ctx2.server == "https://c2.example"
    assert (ctx2.client_cert, ctx2.client_key) == (b"CERT", b"KEY")


def test_relative_paths_resolve_against_the_defining_file(tmp_path: Path, two_files: tuple[Path, Path]) -> None:
    """A user defined in b/config with certs/u2.crt reads b/certs/u2.crt even when the context is in a/."""
    _, b = two_files
    c = write(tmp_path / "c" / "config", config(
        clusters={"c3": {"server": "https://c3", "certificate-authority": "ca.pem"}},
        contexts={"ctx3": {"cluster": "c3", "user": "u2"}},
    ))
    (tmp_path / "c" / "ca.pem").write_bytes(b"CA")
    ctx3 = load_kubeconfig(environ=env_for(c, b)).context("ctx3")
    assert (ctx3.ca_data, ctx3.client_cert) == (b"CA", b"CERT")
    assert ctx3.source == str(c)


def test_missing_kubeconfig_files_in_the_list_are_skipped(tmp_path: Path, two_files: tuple[Path, Path]) -> None:
    """Non-existent KUBECONFIG entries are ignored; empty entries and duplicates too."""
    a, _ = two_files
    environ = {"KUBECONFIG": f"{tmp_path / 'nope'}{os.pathsep}{os.pathsep}{a}{os.pathsep}{a}"}
    assert kubeconfig_paths(environ=environ) == (tmp_path / "nope", a)
    assert load_kubeconfig(environ=environ).context_names() == ("ctx1",)


def test_default_location_is_home_kube_config(tmp_path: Path) -> None:
    """Without KUBECONFIG, ~/.kube/config is read."""
    write(tmp_path / ".kube" / "config", config(clusters={"c": {"server": "https://h"}},
                                                contexts={"x": {"cluster": "c"}}, current="x"))
    assert load_kubeconfig(environ={"HOME": str(tmp_path)}).context().server == "https://h"


# ---------------------------------------------------------------------------------------------- errors


def test_missing_context_is_a_clear_error(two_files: tuple[Path, Path]) -> None:
    """Asking for an unknown context names it and lists the known ones."""
    with pytest.raises(ConfigError) as caught:
        load_kubeconfig(environ=env_for(*two_files)).context("prod")
    assert "'prod' not found" in str(caught.value) and "ctx1, ctx2" in str(caught.value)


def test_invalid_yaml_spoils_only_its_own_file(tmp_path: Path, two_files: tuple[Path, Path]) -> None:
    """A broken file in KUBECONFIG is reported with its line; contexts of the other files still resolve."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nclusters:\n  - name: x\n   cluster: {server: [unclosed\n")
    config_ = load_kubeconfig(environ=env_for(bad, two_files[0]))
    assert config_.context("ctx1").server == "https://a.example:6443"
    assert len(config_.errors) == 1 and config_.errors[0].path == str(bad) and config_.errors[0].line
    with pytest.raises(ConfigError) as caught:
        config_.context("x")
    assert "bad.yaml" in str(caught.value)
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_kubeconfig(bad)


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    """An explicit --kubeconfig that does not exist is an error (unlike a KUBECONFIG entry)."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_kubeconfig(tmp_path / "missing")


def test_missing_cert_file_and_dangling_references(tmp_path: Path) -> None:
    """A context whose cert file, cluster or user is missing fails alone, with the file in the message."""
    path = write(tmp_path / "k", config(
        clusters={"ok": {"server": "https://ok"}},
        users={"certless": {"client-certificate": "gone.crt", "client-key": "gone.key"}},
        contexts={"good": {"cluster": "ok"}, "nocert": {"cluster": "ok", "user": "certless"},
                  "nocluster": {"cluster": "ghost"}, "nouser": {"cluster": "ok", "user": "ghost"}},
    ))
    config_ = load_kubeconfig(path)
    assert config_.context("good").server == "https://ok"
    with pytest.raises(ConfigError, match=r"gone\.crt"):
        config_.context("nocert")
    with pytest.raises(ConfigError, match="cluster 'ghost'"):
        config_.context("nocluster")
    with pytest.raises(ConfigError, match="user 'ghost'"):
        config_.context("nouser")


def test_insecure_skip_tls_verify_is_flagged(tmp_path: Path) -> None:
    """insecure-skip-tls-verify is surfaced; combined with a CA it is rejected, as kubectl does."""
    ca = base64.b64encode(b"CA").decode()
    path = write(tmp_path / "k", config(
        clusters={"loose": {"server": "https://l", "insecure-skip-tls-verify": True},
                  "both": {"server": "https://b", "insecure-skip-tls-verify": True, "certificate-authority-data": ca}},
        contexts={"loose": {"cluster": "loose"}, "both": {"cluster": "both"}},
    ))
    config_ = load_kubeconfig(path)
    assert config_.context("loose").insecure
    with pytest.raises(ConfigError, match="insecure"):
        config_.context("both")


async def test_token_file_is_read_relative_and_refreshed(tmp_path: Path) -> None:
    """tokenFile is resolved against its kubeconfig and re-read after a 401 (refresh)."""
    path = write(tmp_path / "k", config(clusters={"c": {"server": "https://c"}}, users={"u": {"tokenFile": "tok"}},
                                        contexts={"x": {"cluster": "c", "user": "u"}}))
    (tmp_path / "tok").write_text("one\n")
    creds = Credentials(load_kubeconfig(path).context("x"))
    assert await creds.authorization() == "Bearer one"
    (tmp_path / "tok").write_text("two\n")
    assert await creds.authorization() == "Bearer one"  # cached for a minute
    assert await creds.refresh()
    assert await creds.authorization() == "Bearer two"


# ---------------------------------------------------------------------------------------------- exec plugins


PLUGIN = textwrap.dedent('''
    import json, os, sys, time
    mode = os.environ["PLUGIN_MODE"]
    count = os.environ["PLUGIN_COUNT"]
    with open(count, "a") as f:
        f.write("x")
    info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
    assert info["spec"]["interactive"] is False
    if mode == "hang":
        time.sleep(60)
    if mode == "fail":
        print("error: token %s expired; Authorization: Bearer %s" % (os.environ["SECRET"], os.environ["SECRET"]),
              file=sys.stderr)
        sys.exit(1)
    if mode == "garbage":
        print("<html>definitely not json</html>")
        sys.exit(0)
    if mode == "token-as-text":
        print("token: " + os.environ["SECRET"])
        sys.exit(0)
    status = {"token": os.environ["SECRET"] + "-" + str(len(open(count).read()))}
    if os.environ.get("EXPIRES"):
        status["expirationTimestamp"] = os.environ["EXPIRES"]
    print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status}))
''')


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN)
    return script


def exec_context(plugin: Path, tmp_path: Path, mode: str, expires: str = "") -> ContextConfig:
    env = (("PLUGIN_MODE", mode), ("PLUGIN_COUNT", str(tmp_path / "count")), ("SECRET", TOKEN),
           ("EXPIRES", expires))
    return ContextConfig(name="exec", server="https://e",
                         exec=ExecConfig(command=sys.executable, args=(str(plugin),), env=env))


def runs(tmp_path: Path) -> int:
    return len((tmp_path / "count").read_text()) if (tmp_path / "count").exists() else 0


async def test_exec_plugin_token_is_cached_until_it_expires(plugin: Path, tmp_path: Path) -> None:
    """The plugin runs once; it runs again when expirationTimestamp is (nearly) reached, or after a 401."""
    expires = dt.datetime.fromtimestamp(time.time() + 3600, tz=dt.UTC).isoformat().replace("+00:00", "Z")
    now = [time.time()]
    creds = Credentials(exec_context(plugin, tmp_path, "ok", expires), clock=lambda: now[0])
    assert await creds.authorization() == f"Bearer {TOKEN}-1"
    assert await creds.authorization() == f"Bearer {TOKEN}-1"
    assert runs(tmp_path) == 1
    now[0] += 3600
    assert await creds.authorization() == f"Bearer {TOKEN}-2"
    assert await creds.refresh()
    assert await creds.authorization() == f"Bearer {TOKEN}-3"


async def test_exec_plugin_that_hangs_is_killed_after_the_timeout(plugin: Path, tmp_path: Path) -> None:
    """A hanging plugin is killed (with its process group) and reported; the default cap is <= 10 s."""
    assert EXEC_TIMEOUT <= 10
    ctx = exec_context(plugin, tmp_path, "hang")
    assert ctx.exec is not None
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"did not finish within 0\.5s"):
        await run_exec_plugin(ctx.exec, context="exec", timeout=0.5)
    assert time.monotonic() - started < 5


async def test_exec_plugin_failure_shows_stderr_with_tokens_redacted(plugin: Path, tmp_path: Path) -> None:
    """Exit status 1: the message carries stderr, but never the token."""
    creds = Credentials(exec_context(plugin, tmp_path, "fail"))
    with pytest.raises(ConfigError) as caught:
        await creds.authorization()
    text = str(caught.value)
    assert "exited with status 1" in text and "expired" in text
    assert TOKEN not in text and "<redacted>" in text


async def test_exec_plugin_garbage_output_is_an_error(plugin: Path, tmp_path: Path) -> None:
    """Output that is not an ExecCredential is a clear error."""
    with pytest.raises(ConfigError, match="not JSON") as caught:
        await Credentials(exec_context(plugin, tmp_path, "garbage")).authorization()
    assert "html" not in str(caught.value)


async def test_exec_plugin_output_that_does_not_parse_is_never_echoed(plugin: Path, tmp_path: Path) -> None:
    """A broken plugin that prints its token as text: the error says what went wrong, and shows none of
    the output (it may be a credential), whatever the redaction patterns would have caught."""
    with pytest.raises(ConfigError) as caught:
        await Credentials(exec_context(plugin, tmp_path, "token-as-text")).authorization()
    text = f"{caught.value} {caught.value.hint}"
    assert "not JSON" in text and TOKEN not in text and "token:" not in text


async def test_missing_exec_command_is_an_error(tmp_path: Path) -> None:
    """A plugin that is not installed says so, with its install hint."""
    cfg = ExecConfig(command=str(tmp_path / "no-such-plugin"), install_hint="install it with brew")
    with pytest.raises(ConfigError, match="cannot be started") as caught:
        await run_exec_plugin(cfg, context="x")
    assert "brew" in str(caught.value)


def test_redact_hides_tokens() -> None:
    """Bearer values, token=... and long opaque strings are redacted; ordinary words are not."""
    text = redact(f"Authorization: Bearer abc.def token={TOKEN} eyJhbGciOiJSUzI1NiIsImtpZCI6Ij plain words")
    assert "abc.def" not in text and TOKEN not in text and "eyJhbGci" not in text
    assert "plain words" in text


# ---------------------------------------------------------------------------------------------- aio client


async def test_api_client_is_per_cluster_and_leaves_no_key_on_disk(tmp_path: Path) -> None:
    """Each client gets its own Configuration (the global default is untouched); key files are removed."""
    from kubernetes.aio.client import Configuration

    default_before = Configuration._default
    pytest.importorskip("cryptography")
    cert, key = _self_signed()
    ctx = ContextConfig(name="a", server="https://127.0.0.1:1", client_cert=cert, client_key=key, token="t")
    client = await build_api_client(ctx, Credentials(ctx))
    other = await build_api_client(ContextConfig(name="b", server="https://127.0.0.1:2"),
                                   Credentials(ContextConfig(name="b", server="https://127.0.0.1:2")))
    try:
        assert client.configuration is not other.configuration
        assert client.configuration.host == "https://127.0.0.1:1"
        assert client.configuration.api_key["BearerToken"] == "Bearer t"
        assert client.configuration.cert_file is None
        assert Configuration._default is default_before
        assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("fleetdeck-tls-*/client.key"))
    finally:
        await client.close()
        await other.close()


def _self_signed() -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def test_plugin_script_is_valid_python() -> None:
    """The generated plugin compiles (guards against a broken fixture masking real failures)."""
    compile(PLUGIN, "plugin.py", "exec")
    assert json.loads(json.dumps({"ok": True}))


# ---------------------------------------------------------------------------------------------- impersonation


async def test_kubeconfig_as_and_as_groups_become_session_headers(tmp_path: Path) -> None:
    """A user's ``as``/``as-groups`` impersonate (as kubectl does): one ``Impersonate-Group`` header per group
    on the client's session, which the generated client's one-value-per-name request headers cannot carry."""
    path = write(tmp_path / "config", config(
        clusters={"c": {"server": "https://127.0.0.1:6443"}},
        users={"u": {"token": TOKEN, "as": "alice", "as-groups": ["ops", "dev"]}},
        contexts={"ctx": {"cluster": "c", "user": "u"}}, current="ctx"))
    context = load_kubeconfig(path).context()
    assert (context.impersonate_user, context.impersonate_groups) == ("alice", ("ops", "dev"))
    assert context.impersonation == "alice (groups ops, dev)"
    client = await build_api_client(context, Credentials(context))
    try:
        session = client.rest_client._create_pool_manager()
        try:
            assert session.headers.getall("Impersonate-Group") == ["ops", "dev"]
            assert session.headers["Impersonate-User"] == "alice"
        finally:
            await session.close()
    finally:
        await client.close()
    plain = load_kubeconfig(write(tmp_path / "plain", config(
        clusters={"c": {"server": "https://127.0.0.1:6443"}}, users={"u": {"token": TOKEN}},
        contexts={"ctx": {"cluster": "c", "user": "u"}}, current="ctx"))).context()
    assert plain.impersonation == "" and plain.impersonate_groups == ()
