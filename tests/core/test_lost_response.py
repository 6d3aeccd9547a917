"""Row O2: the connection drops after an apply was sent, so the apply landed but its response is lost.
fleetdeck assumes neither outcome: the (idempotent) server-side apply is sent again; the sync succeeds, the
object holds exactly the desired state once, and the result still says what this sync did to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from core.errors import ClusterError
from core.journal import Journal
from core.live.api import JSON, APIResource
from core.model import OperationPhase, ResourceKey
from tests.core.test_operation import NS, FaultyCluster, actions, cm, journal, namespace, sync  # noqa: F401


class LosingCluster(FaultyCluster):
    """Applies the object for real, then loses the response (status None, as a dropped connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.lose: dict[str, int] = {}

    async def apply(self, resource: APIResource, obj: Mapping[str, Any], *, field_manager: str,
                    dry_run: bool = False, force: bool = True) -> JSON:
        result = await super().apply(resource, obj, field_manager=field_manager, dry_run=dry_run, force=force)
        name = str(obj["metadata"]["name"])
        if not dry_run and self.lose.get(name, 0) > 0:
            self.lose[name] -= 1
            raise ClusterError("connection reset by peer", cluster=self.cluster, status=None)
        return result


@pytest.fixture
async def lossy() -> AsyncIterator[LosingCluster]:
    cluster = LosingCluster()
    yield cluster
    await cluster.close()


async def test_lost_apply_response_is_retried_and_reported_as_what_happened(
    lossy: LosingCluster, journal: Journal  # noqa: F811
) -> None:
    await sync(lossy, journal, namespace(), cm("kept"))
    lossy.lose = {"fresh": 1, "kept": 1}
    result = await sync(lossy, journal, namespace(), cm("fresh"), cm("kept", value="2"), revision="b" * 40)
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert [name for verb, name in lossy.real_writes() if name in ("fresh", "kept")].count("fresh") == 2
    fresh = lossy.get_object(ResourceKey("", "ConfigMap", NS, "fresh"))
    kept = lossy.get_object(ResourceKey("", "ConfigMap", NS, "kept"))
    assert fresh is not None and kept is not None and kept["data"] == {"v": "2"}
    assert actions(result)["fresh"] == "created" and actions(result)["kept"] == "configured", actions(result)
