"""The read-only guard: every mutating KubeAPI method is refused before any request, reads pass through."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.errors import ReadOnlyError
from core.live.api import JSON, APIResource, KubeAPI
from core.live.guard import MUTATING_METHODS, READ_METHODS, RefusedRequest, guard

CM = APIResource(group="", version="v1", kind="ConfigMap", plural="configmaps", namespaced=True)
OBJ = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "ns"}}

CALLS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "discover": ((), {}),
    "list": ((CM,), {}),
    "watch": ((CM,), {"resource_version": "1", "timeout_seconds": 5}),
    "get": ((CM, "x", "ns"), {}),
    "ping": ((1.0,), {}),
    "apply": ((CM, OBJ), {"field_manager": "fleetdeck"}),
    "delete": ((CM, "x", "ns"), {}),
    "create": ((CM, OBJ), {}),
    "patch": ((CM, "x", "ns", {"data": {"a": "b"}}), {}),
    "can_i": (("create", CM, "ns"), {}),
    "whoami": ((), {}),
    "close": ((), {}),
    "server_time": ((), {}),
}
"""One valid call per KubeAPI method."""


class Recorder:
    """A KubeAPI that records which methods were reached."""

    cluster = "fd-a"
    server = "https://127.0.0.1:1"

    def __init__(self) -> None:
        self.reached: list[str] = []

    async def discover(self) -> tuple[APIResource, ...]:
        self.reached.append("discover")
        return (CM,)

    async def list(self, resource: APIResource, **kwargs: Any) -> JSON:
        self.reached.append("list")
        return {"items": [], "metadata": {}}

    async def watch(self, resource: APIResource, **kwargs: Any) -> AsyncIterator[JSON]:
        self.reached.append("watch")
        yield {"type": "BOOKMARK", "object": {}}

    async def get(self, resource: APIResource, name: str, namespace: str = "") -> JSON | None:
        self.reached.append("get")
        return None

    async def ping(self, timeout: float) -> None:
        self.reached.append("ping")

    async def apply(self, resource: APIResource, obj: Any, **kwargs: Any) -> JSON:
        self.reached.append("apply")
        return {}

    async def delete(self, resource: APIResource, name: str, namespace: str = "", **kwargs: Any) -> None:
        self.reached.append("delete")

    async def create(self, resource: APIResource, obj: Any, **kwargs: Any) -> JSON:
        self.reached.append("create")
        return {}

    async def patch(self, resource: APIResource, name: str, namespace: str, patch: Any, **kwargs: Any) -> JSON:
        self.reached.append("patch")
        return {}

    async def can_i(self, verb: str, resource: APIResource, namespace: str = "") -> bool:
        self.reached.append("can_i")
        return False

    async def whoami(self) -> str:
        self.reached.append("whoami")
        return "viewer"

    def server_time(self) -> float:
        self.reached.append("server_time")
        return 0.0

    async def close(self) -> None:
        self.reached.append("close")


def protocol_methods() -> set[str]:
    """Every callable member the KubeAPI protocol declares."""
    return {name for name, member in inspect.getmembers(KubeAPI, inspect.isfunction) if not name.startswith("_")}


async def invoke(api: Any, name: str) -> Any:
    args, kwargs = CALLS[name]
    result = getattr(api, name)(*args, **kwargs)
    if inspect.isasyncgen(result):
        return [item async for item in result]
    return await result if inspect.isawaitable(result) else result


def test_every_protocol_method_is_classified() -> None:
    """A new KubeAPI method must be declared mutating or read in core.live.guard (and tested here)."""
    assert protocol_methods() == MUTATING_METHODS | READ_METHODS
    assert not MUTATING_METHODS & READ_METHODS
    assert set(CALLS) == protocol_methods()


@pytest.mark.parametrize("name", sorted(MUTATING_METHODS))
@pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry-run"])
async def test_mutations_are_refused_in_read_only_mode(name: str, dry_run: bool) -> None:
    """apply/delete/create (dry runs included) raise ReadOnlyError, are journaled and never reach the API."""
    inner = Recorder()
    refused: list[RefusedRequest] = []
    api = guard(inner, read_only=True, on_refused=refused.append)
    args, kwargs = CALLS[name]
    with pytest.raises(ReadOnlyError):
        await getattr(api, name)(*args, **kwargs, dry_run=dry_run)
    assert inner.reached == []
    assert [(r.verb, r.kind, r.namespace, r.name, r.dry_run) for r in refused] == [(name, "ConfigMap", "ns", "x", dry_run)]
    assert "fd-a" in str(refused[0])


@pytest.mark.parametrize("name", sorted(READ_METHODS))
async def test_reads_and_reviews_pass_through_in_read_only_mode(name: str) -> None:
    """Reads (and the non-persisted can_i/whoami reviews) reach the API in read-only mode."""
    inner = Recorder()
    api = guard(inner, read_only=True, on_refused=lambda r: pytest.fail(f"refused a read: {r}"))
    await invoke(api, name)
    assert inner.reached == [name]


@pytest.mark.parametrize("name", sorted(MUTATING_METHODS | READ_METHODS))
async def test_everything_passes_when_writable(name: str) -> None:
    """Without read-only mode the guard is transparent."""
    inner = Recorder()
    api = guard(inner, read_only=False)
    await invoke(api, name)
    assert inner.reached == [name]


def test_guard_is_a_kube_api() -> None:
    """The guard exposes the wrapped cluster's identity."""
    api: KubeAPI = guard(Recorder(), read_only=True)
    assert (api.cluster, api.server) == ("fd-a", "https://127.0.0.1:1")
