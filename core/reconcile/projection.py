"""Projection of live onto desired for the local structural diff (rule N11 of core/reconcile/normalize.py).

Role: keep only the parts of the live object that Git specifies, so fields the API server or other
controllers add (defaults, injected sidecars, extra labels) are not drift, exactly as a server-side apply
would leave them alone. Constraint: pure; works on canonical objects (associative lists already keyed, see
``canonical.py``), so keyed list items live has and Git does not are dropped like extra map keys.
"""

from __future__ import annotations

from typing import Any

from core.reconcile.canonical import MERGE_KEYS, MergeKeys, keyed
from core.reconcile.jsonpath import SCALARS, Json

_SCALAR_TYPES = frozenset(SCALARS)


def is_zero(value: Json) -> bool:
    """Whether ``value`` is a Go zero value that ``omitempty`` drops: null, {}, [], "", 0, false.

    A map whose values are all zero counts as zero too (``resources: {limits: {}}``).
    """
    if isinstance(value, bool):
        return value is False
    if isinstance(value, int | float):
        return value == 0
    if isinstance(value, dict):
        return all(is_zero(item) for item in value.values())
    if isinstance(value, list):
        return not value
    return value is None or value == ""


def drop_nulls(value: Json) -> Json:
    """A copy of ``value`` without null map values: in a manifest, ``field: null`` means "not set"."""
    if isinstance(value, dict):
        return {key: drop_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [drop_nulls(item) for item in value]
    return value


def project(live: Json, desired: Json) -> Json:
    """The part of ``live`` that ``desired`` specifies.

    Maps keep only desired's keys; a key live lacks is filled with desired's value when that value is a
    zero value (N11: ``initialDelaySeconds: 0``, ``resources: {}``), so it compares equal. Atomic lists
    project item by item and keep live's extra items, which then show as drift (gitops-engine
    ``RemoveListFields``). Anything else is live's value as is.

    Args:
        live: the canonical live value.
        desired: the canonical desired value (nulls dropped).

    Returns:
        A new value shaped like ``desired`` wherever live has the same shape.
    """
    if isinstance(desired, dict) and isinstance(live, dict):
        return _project_map(live, desired)
    if isinstance(desired, list) and isinstance(live, list):
        head = [project(item, wanted) for item, wanted in zip(live, desired, strict=False)]
        return head + live[len(desired) :]
    return live


def _project_map(live: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """Project a map: desired's keys only, zero values standing in for keys live omits."""
    out: dict[str, Any] = {}
    for key, wanted in desired.items():
        if key in live:  # a desired leaf keeps live's value as it is (what ``project`` returns)
            out[key] = live[key] if type(wanted) in _SCALAR_TYPES else project(live[key], wanted)
        elif is_zero(wanted):
            out[key] = wanted
    return out


def project_plain(
    live: Json, desired: Json, merge_keys: MergeKeys = MERGE_KEYS, *, keep: frozenset[str] = frozenset(),
    field: str = "", at: str = "",
) -> Json:
    """``project`` on plain (normalized, not canonical) objects, for display: what of live a diff shows.

    Maps keep desired's keys (zero values standing in for keys live omits, as ``project`` does);
    associative lists keep the items desired names, in live's order (so a reorder stays visible); atomic
    lists project item by item and keep live's extra items. Server defaults and fields other managers
    added are thus left out, and the diff body shows only what the apply would change.

    Args:
        live: the normalized live value.
        desired: the normalized desired value (nulls dropped).
        merge_keys: the list-key table.
        keep: JSON pointers into live kept although desired lacks them (fleetdeck's pending removals).
        field: the field name ``live`` sits under.
        at: the JSON pointer of ``live``.
    """
    if isinstance(desired, dict) and isinstance(live, dict):
        out: dict[str, Any] = {}
        for key, value in live.items():
            pointer = f"{at}/{_escape(key)}"
            if key in desired:
                out[key] = project_plain(value, desired[key], merge_keys, keep=keep, field=key, at=pointer)
            elif pointer in keep:
                out[key] = value
        for key, wanted in desired.items():
            if key not in live and is_zero(wanted):
                out[key] = wanted
        return out
    if isinstance(desired, list) and isinstance(live, list):
        by_key = keyed(desired, merge_keys[field]) if desired and field in merge_keys else None
        live_keyed = keyed(live, merge_keys[field]) if live and field in merge_keys else None
        if by_key is not None and live_keyed is not None:
            return [
                project_plain(item, by_key[token], merge_keys, keep=keep, at=f"{at}/{index}")
                if token in by_key else item
                for index, (token, item) in enumerate(live_keyed.items())
                if token in by_key or f"{at}/{index}" in keep
            ]
        head = [
            project_plain(item, wanted, merge_keys, keep=keep, at=f"{at}/{index}")
            for index, (item, wanted) in enumerate(zip(live, desired, strict=False))
        ]
        return head + live[len(desired) :]
    return live


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
