"""Credential hygiene (row S8): tokens, passwords, client keys and exec-plugin environment values never
appear in the ``repr()`` or ``str()`` of the objects that hold them, so a traceback, a log line or a
debugger listing cannot print them; and the kubeconfig file is never opened for writing."""

from __future__ import annotations

import base64
import traceback
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.errors import ConfigError
from core.live.kube import KubeClient
from core.live.kubeconfig import Credentials, ExecCredential, load_kubeconfig

CANARIES = {
    "token": "canary-token-7f3a9c",
    "password": "canary-password-51be",
    "key": "canary-client-key-0d2e",
    "env": "canary-exec-env-9a41",
}


KEY_DATA = base64.b64encode(f"-----BEGIN PRIVATE KEY-----\n{CANARIES['key']}\n-----END PRIVATE KEY-----\n".encode())
"""The ``client-key-data`` as written in the file."""


def kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig whose every secret is a canary."""
    key = KEY_DATA
    doc: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config", "current-context": "tok",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [
            {"name": "tok", "user": {"token": CANARIES["token"]}},
            {"name": "basic", "user": {"username": "ada", "password": CANARIES["password"]}},
            {"name": "cert", "user": {"client-certificate-data": base64.b64encode(b"CERT").decode(),
                                      "client-key-data": key.decode()}},
            {"name": "exec", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                               "command": "get-token",
                                               "env": [{"name": "API_SECRET", "value": CANARIES["env"]}]}}},
        ],
        "contexts": [{"name": n, "context": {"cluster": "c", "user": n}} for n in ("tok", "basic", "cert", "exec")],
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    return path


def leaks(text: str) -> list[str]:
    """The canaries (or the key's base64 form) found in ``text``."""
    found = [name for name, value in CANARIES.items() if value in text]
    return found + (["client-key-data"] if KEY_DATA.decode()[-40:] in text else [])


def test_loaded_kubeconfig_and_contexts_keep_secrets_out_of_repr(tmp_path: Path) -> None:
    """The merged kubeconfig, each resolved context and its exec stanza print without a secret."""
    config = load_kubeconfig(kubeconfig(tmp_path), environ={})
    assert leaks(repr(config)) == [] and leaks(str(config)) == []
    for name in ("tok", "basic", "cert", "exec"):
        context = config.context(name)
        assert leaks(repr(context)) == [], name
        assert leaks(str(context)) == [], name
        if context.exec is not None:
            assert leaks(repr(context.exec)) == []
            assert dict(context.exec.env) == {"API_SECRET": CANARIES["env"]}, "the plugin still gets the value"
    assert config.context("tok").token == CANARIES["token"], "the value is kept, only not printed"


def test_credentials_and_client_keep_secrets_out_of_repr(tmp_path: Path) -> None:
    """An exec credential, the Credentials holder and a KubeClient print without a secret."""
    config = load_kubeconfig(kubeconfig(tmp_path), environ={})
    cred = ExecCredential(token=CANARIES["token"], client_key=CANARIES["key"].encode())
    assert leaks(repr(cred)) == []
    for name in ("tok", "basic", "cert"):
        context = config.context(name)
        assert leaks(repr(Credentials(context))) == []
        client = KubeClient(cluster="c", context=context)
        assert leaks(repr(client)) == [] and leaks(repr(vars(client) if hasattr(client, "__dict__") else client)) == []


def test_errors_about_a_kubeconfig_name_no_secret(tmp_path: Path) -> None:
    """A missing context's error lists the known contexts, and its traceback holds no secret."""
    config = load_kubeconfig(kubeconfig(tmp_path), environ={})
    with pytest.raises(ConfigError) as caught:
        config.context("nope")
    text = "".join(traceback.format_exception(caught.value))
    assert "tok" in str(caught.value) or "tok" in caught.value.hint
    assert leaks(text) == [] and leaks(caught.value.hint) == []


def test_kubeconfig_is_never_opened_for_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading and resolving every context opens the file read-only (its mode and bytes are unchanged)."""
    path = kubeconfig(tmp_path)
    path.chmod(0o400)
    before = path.read_bytes()
    config = load_kubeconfig(path, environ={})
    for name in config.context_names():
        config.context(name)
    assert path.read_bytes() == before and (path.stat().st_mode & 0o777) == 0o400
