"""The read-only chokepoint: every mutating ``KubeAPI`` call passes through ``guard``.

Role: wrap a cluster's ``KubeAPI`` so that, in read-only mode, ``apply`` (dry runs included), ``delete``
and ``create`` raise ``ReadOnlyError`` *before* any request is sent, and report each refused attempt to
``on_refused`` (the operator journal records it). Reads pass through unchanged.

``can_i`` and ``whoami`` pass through too, deliberately: they POST SelfSubjectAccessReview and
SelfSubjectReview objects, which the API server evaluates and never stores (the audit log shows the
verb ``create`` on ``selfsubjectaccessreviews``/``selfsubjectreviews``, but nothing is persisted and no
other object changes). Read-only mode needs them: its start-up check (fault S2 in docs/reliability.md) asks whether the
credentials could write. ``create`` itself stays refused, reviews included: the reviews are reachable
only through these two methods.

Constraint: the classification below must cover every method of ``KubeAPI``; a unit test enumerates the
protocol and fails when a new method is added without being classified here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import ReadOnlyError
from core.live.api import JSON, APIResource, KubeAPI
from core.live.compact import WatchLine

MUTATING_METHODS = frozenset({"apply", "delete", "create", "patch"})
"""Methods that change cluster state; refused in read-only mode even as dry runs."""
READ_METHODS = frozenset({"discover", "list", "watch", "get", "ping", "can_i", "whoami", "close", "server_time"})
"""Methods that never change cluster state (``can_i``/``whoami`` are non-persisted reviews; ``server_time``
sends nothing: it reads the clock offset the last answer showed)."""


@dataclass(frozen=True, slots=True)
class RefusedRequest:
    """A mutating request the guard refused, for the operator journal."""

    cluster: str
    verb: str
    """``apply``, ``delete``, ``create`` or ``patch``."""
    kind: str
    api_version: str
    namespace: str
    name: str
    dry_run: bool

    def __str__(self) -> str:
        scope = f"{self.namespace}/" if self.namespace else ""
        dry = " (dry run)" if self.dry_run else ""
        return f"{self.verb} {self.kind}/{scope}{self.name} on {self.cluster}{dry}"


OnRefused = Callable[[RefusedRequest], None]


class GuardedAPI:
    """A ``KubeAPI`` that refuses mutations when ``read_only`` is set.

    Args:
        api: the real client.
        read_only: refuse ``apply``, ``delete`` and ``create``.
        on_refused: told about every refused request (before ``ReadOnlyError`` is raised).
    """

    def __init__(self, api: KubeAPI, *, read_only: bool, on_refused: OnRefused | None = None) -> None:
        self.inner = api
        self.cluster = api.cluster
        self.server = api.server
        self.read_only = read_only
        self._on_refused = on_refused

    def _refuse(self, verb: str, resource: APIResource, *, namespace: str, name: str, dry_run: bool) -> None:
        if not self.read_only:
            return
        refused = RefusedRequest(cluster=self.inner.cluster, verb=verb, kind=resource.kind,
                                 api_version=resource.api_version, namespace=namespace, name=name,
                                 dry_run=dry_run)
        if self._on_refused is not None:
            self._on_refused(refused)
        raise ReadOnlyError(str(refused))

    # ----- reads ------------------------------------------------------------------------------

    async def discover(self) -> tuple[APIResource, ...]:
        """Pass through."""
        return await self.inner.discover()

    async def list(self, resource: APIResource, *, label_selector: str = "", limit: int = 500,
                   continue_token: str = "") -> JSON:
        """Pass through."""
        return await self.inner.list(resource, label_selector=label_selector, limit=limit,
                                     continue_token=continue_token)

    def watch(self, resource: APIResource, *, resource_version: str, timeout_seconds: int,
              label_selector: str = "") -> AsyncIterator[JSON | WatchLine]:
        """Pass through."""
        return self.inner.watch(resource, resource_version=resource_version, timeout_seconds=timeout_seconds,
                                label_selector=label_selector)

    async def get(self, resource: APIResource, name: str, namespace: str = "") -> JSON | None:
        """Pass through."""
        return await self.inner.get(resource, name, namespace)

    async def ping(self, timeout: float) -> None:
        """Pass through (a read)."""
        await self.inner.ping(timeout)

    async def can_i(self, verb: str, resource: APIResource, namespace: str = "") -> bool:
        """Pass through: a SelfSubjectAccessReview is evaluated, never stored."""
        return await self.inner.can_i(verb, resource, namespace)

    async def whoami(self) -> str:
        """Pass through: a SelfSubjectReview is evaluated, never stored."""
        return await self.inner.whoami()

    def server_time(self) -> float:
        """Pass through."""
        return self.inner.server_time()

    async def close(self) -> None:
        """Pass through."""
        await self.inner.close()

    # ----- mutations --------------------------------------------------------------------------

    async def apply(self, resource: APIResource, obj: Mapping[str, Any], *, field_manager: str,
                    dry_run: bool = False, force: bool = True) -> JSON:
        """Refused in read-only mode (dry runs too: read-only never sends a PATCH)."""
        meta = obj.get("metadata") or {}
        self._refuse("apply", resource, namespace=str(meta.get("namespace") or ""),
                     name=str(meta.get("name") or ""), dry_run=dry_run)
        return await self.inner.apply(resource, obj, field_manager=field_manager, dry_run=dry_run, force=force)

    async def delete(self, resource: APIResource, name: str, namespace: str = "", *,
                     propagation: str = "Foreground", uid: str | None = None, dry_run: bool = False) -> None:
        """Refused in read-only mode."""
        self._refuse("delete", resource, namespace=namespace, name=name, dry_run=dry_run)
        await self.inner.delete(resource, name, namespace, propagation=propagation, uid=uid, dry_run=dry_run)

    async def create(self, resource: APIResource, obj: Mapping[str, Any], *, dry_run: bool = False) -> JSON:
        """Refused in read-only mode (reviews go through ``can_i``/``whoami`` instead)."""
        meta = obj.get("metadata") or {}
        self._refuse("create", resource, namespace=str(meta.get("namespace") or ""),
                     name=str(meta.get("name") or meta.get("generateName") or ""), dry_run=dry_run)
        return await self.inner.create(resource, obj, dry_run=dry_run)


    async def patch(self, resource: APIResource, name: str, namespace: str, patch: Mapping[str, Any], *,
                    dry_run: bool = False) -> JSON:
        """Refused in read-only mode (dry runs too)."""
        self._refuse("patch", resource, namespace=namespace, name=name, dry_run=dry_run)
        return await self.inner.patch(resource, name, namespace, patch, dry_run=dry_run)


def guard(api: KubeAPI, *, read_only: bool, on_refused: OnRefused | None = None) -> GuardedAPI:
    """Wrap ``api`` in the read-only chokepoint (always wrapped, so there is one path for writes).

    Args:
        api: the cluster's client.
        read_only: refuse every mutating method.
        on_refused: called with each refused request, e.g. to journal it.
    """
    return GuardedAPI(api, read_only=read_only, on_refused=on_refused)
