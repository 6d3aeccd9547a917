"""Secret masking (N20): no Secret value ever leaves the reconciliation core in clear.

Role: replace every ``data``/``stringData`` value of a Secret (desired, live, predicted, and inside the
``kubectl.kubernetes.io/last-applied-configuration`` annotation) by a value-consistent mask, the way Argo
CD does: per key, the first distinct value becomes ``++++++++`` and each further distinct value four
``+`` longer. Equal values get equal masks and different values different masks, so masking preserves
equality per key: the diff compares masked objects (never raw values) and a changed key still shows as a
change between two different masks. Values are told apart by SHA-256 digest; no raw value is stored.

Credentials also end up in plain container environment variables (``env[].value``) of Pods and of every
workload's pod template. Those are masked the same way when the variable's name says it holds a secret
(``DB_PASSWORD``, ``API_TOKEN``, ``AWS_SECRET_ACCESS_KEY``…) or the value has the shape of a well-known
credential (GitHub, GitLab, Slack, npm, Stripe, Google and AWS keys, JWTs, PEM private keys, Vault tokens);
``valueFrom`` references are left alone (they hold no value).
Constraint: pure; inputs are masked in place only by ``mask_secrets``, on the caller's private copies.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from core.reconcile.jsonpath import copy_json

MASK = "++++++++"
"""The mask of the first distinct value of a key."""
MASK_GROWTH = "++++"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_SECRET_FIELDS = ("data", "stringData")

Obj = dict[str, Any]

SECRET_ENV_NAME = re.compile(
    r"secret|token|passw|pwd|passphrase|api_?key|access_?key|private_?key|credential|auth_?key|signing_?key"
    r"|session_?key|encryption_?key|dsn", re.IGNORECASE)
"""Environment variable names whose value is masked whatever it looks like."""
TOKEN_SHAPES = re.compile(
    r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{16,}|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|npm_[A-Za-z0-9]{30,}|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_-]{35}|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|hvs\.[A-Za-z0-9_-]{20,}|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----")
"""Values that look like a well-known credential, wherever they are in the value."""
_POD_SPEC_PATHS = (("spec",), ("spec", "template", "spec"), ("spec", "jobTemplate", "spec", "template", "spec"))
"""Where a pod spec sits: a Pod; a workload's (or Rollout's) template; a CronJob's job template."""
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def env_entries(obj: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """(container, env entry) for every ``env`` entry of every container list of ``obj``'s pod spec (a Pod,
    a workload's template, a CronJob's job template): the one walk both masking and error masking use."""
    for path in _POD_SPEC_PATHS:
        spec: Any = obj
        for part in path:
            spec = spec.get(part) if isinstance(spec, Mapping) else None
        if not isinstance(spec, Mapping):
            continue
        for field in _CONTAINER_LISTS:
            containers = spec.get(field)
            if not isinstance(containers, list | tuple):
                continue
            for container in containers:
                env = container.get("env") if isinstance(container, Mapping) else None
                if isinstance(env, list | tuple):
                    yield from ((container, entry) for entry in env if isinstance(entry, Mapping))


def env_value_is_secret(name: Any, value: Any) -> bool:
    """Whether an ``env`` entry's plain value is masked: a secret-sounding name or a credential-shaped value.
    A value that is not a string (``DB_PASSWORD: 12345`` unquoted, which the API server refuses while
    quoting it) is masked by its name all the same."""
    if value is None or value == "" or isinstance(value, (Mapping, list)):
        return False
    return bool(SECRET_ENV_NAME.search(str(name))) or (
        isinstance(value, str) and TOKEN_SHAPES.search(value) is not None)


def is_secret(obj: Any) -> bool:
    """Whether ``obj`` is a core/v1 Secret."""
    return isinstance(obj, Mapping) and obj.get("kind") == "Secret" and obj.get("apiVersion") in ("v1", None)


def _digest(value: Any) -> str:
    """A digest that tells values apart without keeping them."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


class _Masker:
    """Hands out value-consistent masks per Secret key."""

    def __init__(self) -> None:
        self._masks: dict[str, dict[str, str]] = {}

    def mask(self, key: str, value: Any) -> str:
        """The mask for ``value`` under ``key``: the same value always gets the same mask."""
        masks = self._masks.setdefault(key, {})
        digest = _digest(value)
        if digest not in masks:
            masks[digest] = MASK + MASK_GROWTH * len(masks)
        return masks[digest]

    def mask_env(self, obj: Obj, *, dry: bool = False) -> bool:
        """Mask, in place, the secret-looking plain ``env`` values of every container of ``obj``'s pod spec;
        whether any was (with ``dry``, whether any would be, changing nothing)."""
        masked = False
        for container, entry in env_entries(obj):
            if isinstance(entry, dict) and env_value_is_secret(entry.get("name"), entry.get("value")):
                if dry:
                    return True
                where = f"env:{container.get('name')}:{entry.get('name')}"
                entry["value"] = self.mask(where, entry["value"])
                masked = True
        return masked

    def mask_fields(self, obj: Obj) -> None:
        """Mask ``data`` and ``stringData`` of one Secret in place."""
        for field in _SECRET_FIELDS:
            values = obj.get(field)
            if isinstance(values, dict):
                obj[field] = {key: self.mask(key, value) for key, value in values.items()}


def _last_applied(obj: Obj) -> Obj | None:
    """The parsed last-applied annotation of ``obj``, or None when absent."""
    annotations = (
        obj.get("metadata", {}).get("annotations") if isinstance(obj.get("metadata"), dict) else None
    )
    if not isinstance(annotations, dict) or LAST_APPLIED not in annotations:
        return None
    try:
        parsed = json.loads(str(annotations[LAST_APPLIED]))
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {}


def _set_last_applied(obj: Obj, applied: Obj) -> None:
    """Write a masked last-applied configuration back (an unparsable one is replaced whole)."""
    text = json.dumps(applied, separators=(",", ":")) if applied else MASK
    obj["metadata"]["annotations"][LAST_APPLIED] = text


def mask_secrets(*objs: Obj | None) -> None:
    """Mask, in place and consistently across all of ``objs``, every Secret value they hold, and the
    secret-looking plain ``env`` values of their pod specs (their last-applied annotations included).

    Pass every side of one comparison together (desired, live, predicted) so that equal values get equal
    masks. Non-Secret objects and None are left alone.
    """
    masker = _Masker()
    for obj in objs:
        if isinstance(obj, dict) and not is_secret(obj):
            masker.mask_env(obj)
            applied = _last_applied(obj)
            if applied and masker.mask_env(applied):
                _set_last_applied(obj, applied)
    secrets = [obj for obj in objs if is_secret(obj)]
    for obj in secrets:
        assert obj is not None
        masker.mask_fields(obj)
    for obj in secrets:
        assert obj is not None
        applied = _last_applied(obj)
        if applied is not None:
            masker.mask_fields(applied)
            _set_last_applied(obj, applied)


def holds_secret_values(obj: Any) -> bool:
    """Whether ``mask_secrets`` would change ``obj`` (a Secret, or a pod spec with a secret-looking env value):
    callers that share an object read-only copy it first."""
    if is_secret(obj):
        return True
    if not isinstance(obj, dict):
        return False
    applied = _last_applied(obj)
    return _Masker().mask_env(obj, dry=True) or bool(applied and _Masker().mask_env(applied, dry=True))


def masked_copy(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``obj`` itself when it holds nothing to mask, else a masked copy (for display objects built alone)."""
    if not holds_secret_values(obj):
        return obj
    out: dict[str, Any] = copy_json(obj)
    mask_secrets(out)
    return out


def mask_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A masked copy of ``obj`` for any output path (logs, YAML views, history, JSON exports).

    Secrets are masked; the items of a ``List`` (``SecretList``, ``v1/List``) too; any other object is
    returned as a plain copy.
    """
    out: dict[str, Any] = copy_json(obj)
    if isinstance(out.get("items"), list) and str(out.get("kind", "")).endswith("List"):
        out["items"] = [mask_object(item) if isinstance(item, Mapping) else item for item in out["items"]]
    mask_secrets(out)
    return out
