"""Masking secret values an API error quotes back, where API errors become fleetdeck errors.

The API server's messages may echo what was sent: a typed-patch failure prints the offending value
(``.stringData.token: expected string, got &value.valueUnstructured{Value:…}``), a validation error quotes
an ``Invalid value: "…"``. Kubernetes redacts some Secret contents itself, not all. ``KubeClient`` builds
every ``ClusterError`` from a non-2xx answer in one place (``_status_error``) and passes the request body
here first: every secret value the body carries (each Secret's ``data`` and ``stringData`` values, their
base64 or decoded forms, and the plain ``env`` values ``core.reconcile.secrets`` masks: secret-sounding
names or credential-shaped values, whatever their type) is replaced in the message by ``<masked>`` before
it reaches the console, the CLI, the journal or a log. Values shorter than ``MIN_LENGTH`` characters are
left alone (masking ``1`` or ``on`` would mangle every number and word of the message).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from typing import Any, Final

from core.reconcile.secrets import SECRET_ENV_NAME, TOKEN_SHAPES, env_entries, is_secret

MASKED: Final = "<masked>"
MIN_LENGTH: Final = 4


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _forms(value: Any, *, encoded: bool) -> Iterator[str]:
    """``value`` as sent and as the server may print it: its base64 form, or its decoded text."""
    text = _text(value)
    yield text
    if encoded:
        try:
            decoded = base64.b64decode(text, validate=True).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            decoded = ""
        yield decoded
    else:
        yield base64.b64encode(text.encode()).decode()


def _env_values(obj: Mapping[str, Any]) -> Iterator[str]:
    for _, entry in env_entries(obj):
        if entry.get("value") in (None, ""):
            continue
        value = _text(entry["value"])
        if SECRET_ENV_NAME.search(str(entry.get("name"))) or TOKEN_SHAPES.search(value):
            yield value


def secret_values(body: Any) -> set[str]:
    """The secret values ``body`` (a request body: one object, or a list of them) carries."""
    found: set[str] = set()
    objects = body if isinstance(body, list) else [body]
    for obj in objects:
        if not isinstance(obj, Mapping):
            continue
        if is_secret(obj):
            for field, encoded in (("data", True), ("stringData", False)):
                values = obj.get(field)
                if isinstance(values, Mapping):
                    for value in values.values():
                        found.update(_forms(value, encoded=encoded))
        found.update(_env_values(obj))
    return {v for v in found if len(v) >= MIN_LENGTH}


def mask_message(message: str, body: Any) -> str:
    """``message`` with every secret value of ``body`` replaced by ``<masked>`` (longest first)."""
    if body is None:
        return message
    for value in sorted(secret_values(body), key=len, reverse=True):
        message = message.replace(value, MASKED)
    return message
