"""Targets: which app runs on which cluster from which path, and its rendered desired state.

A target is one row of the fleet: an ``AppSpec`` resolved against one ``ClusterSpec`` (the path
template filled from the cluster's labels). ``Desired`` is the render of a target at one revision,
tracked (fleetdeck's label and annotation added) and scope-resolved, ready to compare and apply.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.desired.spec import AppSpec, ClusterSpec, FleetConfig
from core.errors import ConfigError
from core.model import (
    AppName,
    AppStatus,
    ClusterName,
    ClusterStatus,
    ConnectionState,
    FleetSnapshot,
    Health,
    HealthStatus,
    ResourceKey,
    Revision,
    SyncStatus,
    frozen_mapping,
)
from core.reconcile.ignore import IgnoreRule
from core.settings import Impersonation


@dataclass(frozen=True, slots=True)
class Target:
    """One app on one cluster."""

    app: AppSpec
    cluster: ClusterSpec
    path: str
    ignore_rules: tuple[IgnoreRule, ...] = ()

    @property
    def id(self) -> tuple[str, str]:
        """``(app, cluster)``."""
        return (self.app.name, self.cluster.name)


@dataclass(frozen=True, slots=True)
class Desired:
    """The desired objects of a target at one revision, or why there are none."""

    revision: Revision | None
    objects: Mapping[ResourceKey, Mapping[str, Any]] = field(default_factory=dict)
    error: str = ""
    """The render failed: never prune, never auto-sync, state Unknown."""
    warnings: tuple[str, ...] = ()
    digests: Mapping[ResourceKey, str] = field(default_factory=dict)
    """Digest of each desired object, computed once per render: the key of cached verdicts."""

    def digest_of(self, key: ResourceKey) -> str:
        """The digest of the desired object at ``key``."""
        found = self.digests.get(key)
        return found if found is not None else digest(self.objects[key])

    @property
    def ok(self) -> bool:
        """Whether the render succeeded (possibly with zero objects)."""
        return not self.error and self.revision is not None


def digest(obj: Mapping[str, Any]) -> str:
    """A stable digest of an object (sorted keys), for caching dry-run verdicts."""
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def resolve_targets(apps: tuple[AppSpec, ...], clusters: tuple[ClusterSpec, ...]) -> tuple[list[Target], list[str]]:
    """Every (app, cluster) target, and the errors of apps whose templates cannot be filled."""
    targets: list[Target] = []
    errors: list[str] = []
    for app in apps:
        try:
            rules = tuple(IgnoreRule(group=i.group, kind=i.kind, name=i.name, namespace=i.namespace,
                                     json_pointers=i.json_pointers, managed_fields_managers=i.managed_fields_managers)
                          for i in app.ignore)
            for cluster, path in app.targets(clusters):
                targets.append(Target(app=app, cluster=cluster, path=path, ignore_rules=rules))
        except Exception as exc:  # ConfigError from a missing label: reported, other apps go on
            errors.append(str(exc))
    return targets, errors


LOADING_MESSAGE = "loading: not evaluated yet"


def loading_snapshot(fleet: FleetConfig, *, read_only: bool = False, taken_at: float | None = None) -> FleetSnapshot:
    """Every row of ``fleet`` with nothing known yet, for the console to show while the engine starts.

    Each row is ``loading`` (sync and health Unknown, no revision), each cluster Connecting, the repo not
    loaded (None). Generation 0: any snapshot the engine publishes replaces it. Apps imported from the
    repo are not listed (the repo has not been read).
    """
    targets, _ = resolve_targets(fleet.apps, fleet.clusters)
    rows = sorted((
        AppStatus(app=AppName(t.app.name), cluster=ClusterName(t.cluster.name), namespace=t.app.namespace,
                  path=t.path, sync=SyncStatus.UNKNOWN, health=Health(HealthStatus.UNKNOWN, LOADING_MESSAGE),
                  revision=None, labels=frozen_mapping(t.cluster.labels), automated=t.app.sync.automated,
                  loading=True)
        for t in targets), key=lambda a: a.id)
    clusters = tuple(ClusterStatus(name=ClusterName(c.name), connection=ConnectionState.CONNECTING,
                                   labels=frozen_mapping(c.labels), read_only=read_only or c.read_only)
                     for c in fleet.clusters)
    return FleetSnapshot(generation=0, taken_at=time.time() if taken_at is None else taken_at, apps=tuple(rows), clusters=clusters, repo=None,
                         read_only=read_only)


def check_impersonation(read_only: bool, impersonate: Impersonation | None) -> None:
    """The one rule: impersonation is disabled in read-only mode (an audit reads with its own identity).

    Raises:
        ConfigError: both were asked for.
    """
    if read_only and impersonate is not None:
        raise ConfigError("impersonation (--as) is disabled in read-only mode",
                          hint="audit with credentials that can only read, or drop --read-only to act as "
                               f"{impersonate.user}")
