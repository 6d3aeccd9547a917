"""Offline checks for scripts: one manifest against one live object, and one object's health.

Backs ``fleetdeck drift`` and ``fleetdeck health``: no cluster, no Git. Input files are loaded with the
same safe YAML loader as the config repo (no timestamp coercion, alias and size budgets), so a
malformed or hostile file is a ``ManifestError`` naming the file and line, never a hang or traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.desired.health_scripts import load_health_checks
from core.desired.yamlload import load_documents
from core.errors import ManifestError
from core.reconcile.drift_report import drift_report as _drift_report
from core.reconcile.health import health_of
from core.settings import HealthSettings


def _one_object(text: str, name: str) -> dict[str, Any]:
    docs = load_documents(text, name)
    if len(docs) != 1:
        raise ManifestError(f"expected exactly one object, found {len(docs)}", path=name)
    return dict(docs[0].obj)


def drift_report(desired: str, live: str, *, namespace: str, desired_name: str, live_name: str) -> dict[str, Any]:
    """``{"in_sync", "approximate", "changes"}`` for a desired manifest text and a live object text.

    Raises:
        ManifestError: either input is not exactly one valid Kubernetes object.
    """
    desired_obj = _one_object(desired, desired_name)
    live_obj = _one_object(live, live_name)
    if (desired_obj.get("kind"), desired_obj.get("apiVersion")) != (live_obj.get("kind"), live_obj.get("apiVersion")):
        raise ManifestError(
            f"{desired_name} is a {desired_obj.get('apiVersion')} {desired_obj.get('kind')} but {live_name} is a "
            f"{live_obj.get('apiVersion')} {live_obj.get('kind')}",
            hint="compare a manifest with the live object of the same kind",
        )
    return _drift_report(desired_obj, live_obj, namespace_default=namespace)


MISSING_SOURCE = "input"
"""The source of the Missing verdict for an empty input (the object does not exist)."""


def health_report(live: str, *, name: str, customizations: Sequence[str] = ()) -> dict[str, Any]:
    """``{"status", "message", "source"}`` for a live object text; kinds without a health rule report ``None``.

    An input with no object at all (what ``kubectl get --ignore-not-found -o yaml`` prints for an absent
    object) is Missing. Custom health scripts come from ``customizations`` and
    ``FLEETDECK_RESOURCE_CUSTOMIZATIONS``, loaded by the same ``core.desired.health_scripts.load_health_checks``
    the engine uses; ``source`` says which rule or script judged the object.

    Raises:
        ManifestError: the input holds more than one object, or one that is not a valid Kubernetes object.
        ConfigError: a customizations path does not exist or cannot be parsed.
    """
    if not load_documents(live, name):
        return {"status": "Missing", "message": "the input holds no object (not found)", "source": MISSING_SOURCE}
    obj = _one_object(live, name)
    scripts = load_health_checks(HealthSettings(customizations=tuple(customizations)))
    health = health_of(obj, scripts)
    if health is None:
        return {"status": None, "message": "this kind has no health rule", "source": ""}
    return {"status": health.status.value, "message": health.message, "source": health.source}
