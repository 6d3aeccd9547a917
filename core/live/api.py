"""The ``KubeAPI`` protocol: the only surface through which the core talks to a cluster.

Two implementations exist: ``core.live.kube.KubeClient`` over ``kubernetes.aio`` for real clusters, and
``core.simulated.simulated_cluster.SimulatedCluster`` for ``fleetdeck demo`` and fast engine tests. Everything is raw
JSON (``dict``), never generated client models. Errors are raised as ``core.errors.ClusterError`` with
the HTTP status. Mutations (``apply``, ``delete``, ``create``) go through ``core.live.guard`` which
refuses them in read-only mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from core.live.compact import WatchLine

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class APIResource:
    """A kind served by a cluster, from discovery."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: frozenset[str] = frozenset()

    @property
    def api_version(self) -> str:
        """``group/version``, or just ``version`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_kind(self) -> tuple[str, str]:
        """``(group, kind)``: the identity used to look a kind up."""
        return (self.group, self.kind)

    @property
    def watchable(self) -> bool:
        """Whether the kind can be listed and watched."""
        return {"list", "watch"} <= self.verbs


class KubeAPI(Protocol):
    """What the core needs from one cluster."""

    cluster: str
    """The cluster's name in the fleet."""
    server: str
    """The API server URL, for display."""

    async def discover(self) -> tuple[APIResource, ...]:
        """Every kind served, preferred versions only, subresources excluded."""
        ...

    async def list(
        self,
        resource: APIResource,
        *,
        label_selector: str = "",
        limit: int = 500,
        continue_token: str = "",
    ) -> JSON:
        """One page of a cluster-wide list: ``{"items": [...], "metadata": {"resourceVersion", "continue"}}``."""
        ...

    def watch(
        self,
        resource: APIResource,
        *,
        resource_version: str,
        timeout_seconds: int,
        label_selector: str = "",
    ) -> AsyncIterator[JSON | WatchLine]:
        """Raw watch events ``{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": {...}}``, or the same
        event with its object kept compact (``core.live.compact.WatchLine``: what ``KubeClient`` yields).

        Bookmarks are requested. The iterator ends when the server closes the watch; a 410 arrives as
        an ``ERROR`` event whose object has ``code: 410`` (or as a ``ClusterError`` with status 410).
        """
        ...

    async def get(self, resource: APIResource, name: str, namespace: str = "") -> JSON | None:
        """The object, or None when it does not exist."""
        ...

    async def ping(self, timeout: float) -> None:
        """Heartbeat: return once the API server answered a cheap request (``GET /version``).

        Raises:
            ClusterError: status None when there is no answer within ``timeout`` seconds.
        """
        ...

    async def apply(
        self,
        resource: APIResource,
        obj: Mapping[str, Any],
        *,
        field_manager: str,
        dry_run: bool = False,
        force: bool = True,
    ) -> JSON:
        """Server-side apply (``application/apply-patch+yaml``, strict field validation); the result."""
        ...

    async def delete(
        self,
        resource: APIResource,
        name: str,
        namespace: str = "",
        *,
        propagation: str = "Foreground",
        uid: str | None = None,
        dry_run: bool = False,
    ) -> None:
        """Delete the object (with a UID precondition when given). A missing object is not an error."""
        ...

    async def create(self, resource: APIResource, obj: Mapping[str, Any], *, dry_run: bool = False) -> JSON:
        """Create an object (used for reviews and first writes of shared state)."""
        ...

    async def patch(self, resource: APIResource, name: str, namespace: str, patch: Mapping[str, Any], *,
                    dry_run: bool = False) -> JSON:
        """A JSON merge patch (RFC 7386) of an existing object: the writes fleetdeck makes to a controller's
        object (an Argo CD Application, a Flux Kustomization) on the operator's behalf; the result."""
        ...

    async def can_i(self, verb: str, resource: APIResource, namespace: str = "") -> bool:
        """SelfSubjectAccessReview: may these credentials ``verb`` this kind?"""
        ...

    async def whoami(self) -> str:
        """The authenticated user's name (SelfSubjectReview), or ``""`` when the server does not say."""
        ...

    def server_time(self) -> float:
        """The API server's clock now (Unix time), as estimated from its answers; the local clock before any.

        Leases are written and judged on this clock, so two bastions whose clocks disagree still agree on
        whether a lease has expired (docs/reliability.md, K15).
        """
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
