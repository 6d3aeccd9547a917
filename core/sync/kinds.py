"""Which API resource serves each kind an operation touches, from the cluster's discovery.

A sync resolves kinds once before its preflight and again after it created CRDs (their kinds appear
only once they are ``Established``). Constraint: reads only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from core.errors import ClusterError
from core.live.api import APIResource, KubeAPI
from core.model import ResourceKey
from core.sync.retry import with_retries

CRD_GROUP: Final = "apiextensions.k8s.io"
CRDS: Final = APIResource(group=CRD_GROUP, version="v1", kind="CustomResourceDefinition",
                          plural="customresourcedefinitions", namespaced=False,
                          verbs=frozenset({"get", "list", "watch", "create", "patch", "delete"}))


def is_namespace(key: ResourceKey) -> bool:
    """Whether ``key`` is a Namespace."""
    return (key.group, key.kind) == ("", "Namespace")


def is_crd(key: ResourceKey) -> bool:
    """Whether ``key`` is a CustomResourceDefinition."""
    return (key.group, key.kind) == (CRD_GROUP, "CustomResourceDefinition")


def crd_kind(crd: Mapping[str, Any]) -> tuple[str, str]:
    """``(group, kind)`` a CRD defines."""
    spec = crd.get("spec") or {}
    return str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", ""))


def established(crd: Mapping[str, Any] | None) -> bool:
    """Whether a CRD's ``Established`` condition is True."""
    conditions = ((crd or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


class KindResolver:
    """``(group, kind)`` → ``APIResource`` from ``discover()``, refreshed on demand.

    Args:
        api: the cluster.
        attempts: request attempts for transient errors.
    """

    def __init__(self, api: KubeAPI, *, attempts: int = 3) -> None:
        self.api = api
        self.attempts = attempts
        self._kinds: dict[tuple[str, str], APIResource] | None = None

    async def refresh(self) -> None:
        """Read discovery again."""
        served = await with_retries(self.api.discover, attempts=self.attempts)
        self._kinds = {r.group_kind: r for r in served}

    async def resolve(self, key: ResourceKey, *, refresh_missing: bool = False) -> APIResource | None:
        """The resource serving ``key``'s kind, or None when the cluster does not serve it.

        Args:
            key: the object.
            refresh_missing: re-read discovery once when the kind is unknown.
        """
        if self._kinds is None:
            await self.refresh()
        assert self._kinds is not None
        found = self._kinds.get((key.group, key.kind))
        if found is None and refresh_missing:
            await self.refresh()
            found = self._kinds.get((key.group, key.kind))
        return found


async def wait_established(
    api: KubeAPI,
    name: str,
    *,
    timeout: float,
    interval: float = 0.25,
    monotonic: Callable[[], float] = time.monotonic,  # injected in tests
) -> None:
    """Poll the CRD ``name`` until it is ``Established`` (Argo ``ensureCRDReady``).

    Raises:
        ClusterError: not established within ``timeout`` seconds (status 504).
    """
    deadline = monotonic() + timeout
    while True:
        if established(await with_retries(lambda: api.get(CRDS, name), attempts=3)):
            return
        if monotonic() >= deadline:
            raise ClusterError(f"CustomResourceDefinition {name} was not Established within {timeout:.0f}s",
                               cluster=api.cluster, status=504, reason="Timeout")
        await asyncio.sleep(interval)
