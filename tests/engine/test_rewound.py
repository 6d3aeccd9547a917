"""Row K14: the cluster's state goes back in time (etcd restored from a backup). The watch layer flags a
relist whose resourceVersion is older than one seen before (``tests/core/test_watching.py::
test_rewound_resource_version_is_flagged``); the engine then warns on every row of that cluster,
"cluster state rewound", and only there."""

from __future__ import annotations

from core.live.api import APIResource
from core.live.watch_events import Listed
from tests.engine.conftest import Fleet, StartEngine
from tests.engine.test_engine import app_row, wait_for

CM = APIResource("", "v1", "ConfigMap", "configmaps", True, frozenset({"list", "watch"}))


async def test_rewound_cluster_state_is_a_warning_on_its_rows(fleet: Fleet, started: StartEngine) -> None:
    engine = await started()
    cache = engine.clusters["dev"].cache
    items = tuple(cache.objects("", "ConfigMap").values())
    cache.apply(Listed(CM, items, "3", rewound=True))  # what continuous_watch yields after an etcd restore
    await engine.refresh()
    snap = await wait_for(engine, lambda s: any(c.type == "StateRewound" for c in app_row(s, "web", "dev").conditions))
    condition = next(c for c in app_row(snap, "web", "dev").conditions if c.type == "StateRewound")
    assert condition.message.startswith("cluster state rewound: ConfigMap was listed at resourceVersion 3")
    assert condition.severity.value == "warning"
    assert not any(c.type == "StateRewound" for c in app_row(snap, "web", "prod").conditions)
