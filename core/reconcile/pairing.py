"""Pair desired with live objects by ``ResourceKey``.

Role: decide which live objects belong in an app's comparison: the objects at desired keys, plus live
objects whose self-referencing tracking annotation names this app (prune candidates). An object tracked
by another app is never extraneous here, and one at a desired key is flagged as shared; an object with a
copied (non-self-referencing) annotation is ignored. Constraint: pure; no comparison happens here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.model import ResourceKey
from core.reconcile.jsonpath import get_in
from core.reconcile.tracking import is_tracked_by, tracking_of

Obj = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Pair:
    """One resource of an app: its desired manifest, its live object, or both."""

    key: ResourceKey
    desired: Obj | None
    live: Obj | None
    warnings: tuple[str, ...] = ()
    """E.g. ``SharedResourceWarning``: the live object is tracked by another app."""

    @property
    def missing(self) -> bool:
        """In Git, not in the cluster."""
        return self.live is None

    @property
    def extraneous(self) -> bool:
        """Tracked by the app in the cluster, no longer in Git: a prune candidate."""
        return self.desired is None


def _shared_warning(live: Obj, app: str) -> tuple[str, ...]:
    """A warning when ``live`` is tracked (self-referencing) by an app other than ``app``."""
    tracking = tracking_of(live)
    if tracking is None or not tracking.self_referenced or tracking.app == app:
        return ()
    return (
        f"SharedResourceWarning: also tracked by app {tracking.app!r}; it will never be pruned by {app!r}",
    )


def pair(
    desired: Mapping[ResourceKey, Obj], live: Mapping[ResourceKey, Obj], *, app: str
) -> tuple[Pair, ...]:
    """Match an app's desired objects with the cluster's live objects.

    Args:
        desired: the rendered manifests by key (scope resolved, tracking applied).
        live: the cluster cache's objects by key (at least the desired keys and the app's labelled ones).
        app: the app being reconciled.

    Returns:
        One ``Pair`` per desired key and per extraneous live object of the app, sorted by key. A live-only
        object with the same UID as a paired one (the same object served under a second API group) is
        left out.
    """
    pairs = [
        Pair(key, obj, live.get(key), _shared_warning(live[key], app) if key in live else ())
        for key, obj in desired.items()
    ]
    paired_uids = {get_in(p.live, "metadata", "uid") for p in pairs if p.live is not None} - {None}
    for key, obj in live.items():
        if (
            key not in desired
            and is_tracked_by(obj, app)
            and get_in(obj, "metadata", "uid") not in paired_uids
        ):
            pairs.append(Pair(key, None, obj))
    return tuple(sorted(pairs, key=lambda p: p.key))
