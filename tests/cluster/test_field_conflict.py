"""A server-side apply field-manager conflict against a real kube-apiserver: another manager owns a field
the sync would set. The plan names the fields and their manager; `sync` refuses (exit 3, nothing written
according to the audit log, journalled) until the operator passes `--force-conflicts`; `--dry-run` shows
the same takeover and writes nothing; the engine refuses an unconfirmed plan, checked again at execution."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from core.errors import FieldConflictError
from core.live.api import APIResource
from core.live.kube import KubeClient
from core.model import FieldTakeover, ResourceKey
from devcluster import ClusterInfo, audit_events, mutating_events, wait_for_audit_event
from tests.cluster.conftest import StartEngine, fleet_file
from tests.cluster.test_cli import run
from tests.cluster.test_preview_effect import deployment, scaled_by_other_manager, seen

pytestmark = pytest.mark.cluster

ADMIN = "fleetdeck-admin"
CM = APIResource(group="", version="v1", kind="ConfigMap", plural="configmaps", namespaced=True,
                 verbs=frozenset({"get"}))


def replicas_owners(obj: dict[str, object]) -> set[str]:
    """The field managers that own ``spec.replicas`` of a live Deployment."""
    fields = obj["metadata"]["managedFields"]  # type: ignore[index]
    return {e["manager"] for e in fields if "f:replicas" in e["fieldsV1"].get("f:spec", {})}  # type: ignore[attr-defined]


async def writes_since(cluster: ClusterInfo, api: KubeClient, namespace: str, since: dt.datetime) -> list[object]:
    """The admin's non-dry-run writes since ``since``, read once a marker request is in the audit log."""
    assert await api.get(CM, "audit-marker", namespace) is None
    await asyncio.to_thread(
        wait_for_audit_event, cluster,
        lambda e: e.get("verb") == "get" and (e.get("objectRef") or {}).get("name") == "audit-marker",
        since=since, timeout=20)
    return [(e.get("verb"), e.get("requestURI")) for e in mutating_events(audit_events(cluster, since=since),
                                                                         user=ADMIN)
            if "dryRun=All" not in str(e.get("requestURI"))]


async def test_cli_sync_refuses_to_take_fields_over_without_force_conflicts(
        tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str, api: KubeClient) -> None:
    """Sync; `hpa-test` takes spec.replicas (5) by server-side apply; the plan says "takes over 1 field from
    hpa-test"; `--dry-run` shows it and exits 0 writing nothing; `sync --yes` exits 3 and writes nothing
    (audit log); `--force-conflicts` syncs, replicas back to Git's 2 and owned by fleetdeck; the journal
    records the refusal with the field and its manager."""
    app = namespace
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    first = await asyncio.to_thread(run, tmp_path, "sync", app, "--fleet", str(fleet), "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    await scaled_by_other_manager(api, namespace, 5)

    since = dt.datetime.now(dt.UTC)
    dry = await asyncio.to_thread(run, tmp_path, "sync", app, "--fleet", str(fleet), "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "WARNING, this sync takes over 1 field from hpa-test:" in dry.stdout, dry.stdout
    assert f"Deployment/{namespace}/web spec.replicas (owned by hpa-test)" in dry.stdout, dry.stdout
    assert "--force-conflicts" not in dry.stdout  # a dry run writes nothing and needs no confirmation

    refused = await asyncio.to_thread(run, tmp_path, "sync", app, "--fleet", str(fleet), "--yes")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "WARNING, this sync takes over 1 field from hpa-test:" in refused.stdout
    assert "this sync runs only with --force-conflicts" in refused.stdout
    assert "refused" in refused.stderr and "--force-conflicts" in refused.stderr, refused.stderr
    assert await writes_since(cluster, api, namespace, since) == []
    live = await deployment(api, namespace)
    assert live["spec"]["replicas"] == 5 and replicas_owners(live) == {"hpa-test"}

    forced = await asyncio.to_thread(run, tmp_path, "sync", app, "--fleet", str(fleet), "--yes",
                                     "--force-conflicts")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "confirmed with --force-conflicts" in forced.stdout and "Succeeded" in forced.stdout
    live = await deployment(api, namespace)
    assert live["spec"]["replicas"] == 2 and replicas_owners(live) == {"fleetdeck"}

    journal = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    syncs = [e for e in journal if e["action"] == "sync" and e["app"] == app][-3:]
    assert [e["result"] for e in syncs] == ["refused", "started", "succeeded"]
    assert "takes over 1 field from hpa-test" in syncs[0]["message"]
    field = f"{ResourceKey('apps', 'Deployment', namespace, 'web')} /spec/replicas owned by hpa-test"
    for entry, confirmed in zip(syncs, (False, True, True), strict=True):
        assert entry["details"]["takeovers"] == [field]
        assert entry["details"]["force_conflicts"] is confirmed


async def test_engine_refuses_an_unconfirmed_takeover(
        engines: StartEngine, tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str,
        api: KubeClient) -> None:
    """Through the engine: the plan lists the takeover; executing it unconfirmed raises FieldConflictError
    before any write; the confirmed plan takes the field; an unconfirmed plan made before another manager
    took a field is refused at execution (the check is made again)."""
    key = ResourceKey("apps", "Deployment", namespace, "web")
    engine = await engines(fleet_file(tmp_path, repo, cluster, namespace))
    plan = await engine.plan_sync(namespace, cluster.name)
    assert plan.takeovers == () and not plan.needs_takeover_confirmation
    assert [s async for s in engine.execute_plan(plan)][-1].phase.successful

    early = await engine.plan_sync(namespace, cluster.name)  # planned before hpa-test acts
    scaled = await scaled_by_other_manager(api, namespace, 7)
    await seen(engine, cluster, key, scaled["metadata"]["resourceVersion"])
    async with asyncio.timeout(30):  # the row's diff names the writer
        while not (plan := await engine.plan_sync(namespace, cluster.name)).takeovers:
            await asyncio.sleep(0.1)
    assert plan.takeovers == (FieldTakeover(key, "/spec/replicas", "hpa-test"),)
    assert plan.takeover_summary == "takes over 1 field from hpa-test" and plan.needs_takeover_confirmation
    since = dt.datetime.now(dt.UTC)
    for unconfirmed in (plan, early):
        with pytest.raises(FieldConflictError, match="takes over 1 field from hpa-test"):
            [s async for s in engine.execute_plan(unconfirmed)]
    assert await writes_since(cluster, api, namespace, since) == []
    assert (await deployment(api, namespace))["spec"]["replicas"] == 7

    confirmed = await engine.plan_sync(namespace, cluster.name, force_conflicts=True)
    assert confirmed.takeovers_allowed and not confirmed.needs_takeover_confirmation
    assert [s async for s in engine.execute_plan(confirmed)][-1].phase.successful
    live = await deployment(api, namespace)
    assert live["spec"]["replicas"] == 2 and replicas_owners(live) == {"fleetdeck"}
