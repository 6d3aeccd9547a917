"""Health scripts named by the fleet file judge the engine's rows and a sync's health waits alike."""

from __future__ import annotations

import yaml

from core.model import HealthStatus, ResourceKey, SyncStatus
from tests.engine.conftest import CONFIG, WEB, Fleet, StartEngine, write_app
from tests.engine.test_engine import app_row, wait_for

CONFIGMAP_SCRIPT = """
hs = {}
hs.status = "Healthy"
hs.message = "mode " .. obj.data.mode
return hs
"""

HELD_DEPLOYMENT = """
hs = {}
if obj.spec.replicas ~= nil and obj.spec.replicas > 1 then
  hs.status = "Degraded"
  hs.message = string.format("held by policy: %d replicas", obj.spec.replicas)
  return hs
end
hs.status = "Healthy"
return hs
"""


def with_customizations(fleet: Fleet, scripts: dict[str, str]) -> None:
    root = fleet.tmp / "customizations"
    for relative, text in scripts.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    config = yaml.safe_load(fleet.fleet_file.read_text())
    config["health"] = {"customizations": ["customizations"]}
    fleet.fleet_file.write_text(yaml.safe_dump(config))


async def test_rows_show_script_health_and_its_source(fleet: Fleet, started: StartEngine) -> None:
    with_customizations(fleet, {"ConfigMap/health.lua": CONFIGMAP_SCRIPT})
    engine = await started()
    plan = await engine.plan_sync("web", "dev")
    states = [s async for s in engine.execute_plan(plan)]
    assert states[-1].phase.successful, states[-1].message
    snap = await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.SYNCED
                          and app_row(s, "web", "dev").health.status is HealthStatus.HEALTHY)
    row = app_row(snap, "web", "dev")
    config = next(r for r in row.resources if r.key == ResourceKey("", "ConfigMap", "web", "web-config"))
    assert config.health is not None
    assert (config.health.status, config.health.message, config.health.source) == (
        HealthStatus.HEALTHY, "mode blue", "script: ConfigMap/health.lua")


async def test_sync_health_wait_uses_the_same_scripts(fleet: Fleet, started: StartEngine) -> None:
    """The built-in rule would call the Deployment Healthy; the script holds it Degraded and the sync stops
    before the next wave."""
    later = {**CONFIG, "metadata": {**CONFIG["metadata"], "annotations": {"argocd.argoproj.io/sync-wave": "1"}}}
    write_app(fleet.repo, [WEB, later], "web: config in a later wave")
    with_customizations(fleet, {"apps/Deployment/health.lua": HELD_DEPLOYMENT})
    engine = await started()
    plan = await engine.plan_sync("web", "dev")
    states = [s async for s in engine.execute_plan(plan)]
    assert not states[-1].phase.successful
    assert "is Degraded: held by policy: 2 replicas" in states[-1].message
    snap = await wait_for(engine, lambda s: app_row(s, "web", "dev").health.status is HealthStatus.DEGRADED)
    web = next(r for r in app_row(snap, "web", "dev").resources if r.key.kind == "Deployment")
    assert web.health is not None and web.health.source == "script: apps/Deployment/health.lua"


def with_live_argocd_cm(fleet: Fleet, cluster: str = "prod") -> None:
    config = yaml.safe_load(fleet.fleet_file.read_text())
    config["health"] = {"argocdConfigMap": {"cluster": cluster}}
    fleet.fleet_file.write_text(yaml.safe_dump(config))


async def test_argocd_cm_read_live_from_a_cluster(fleet: Fleet, started: StartEngine) -> None:
    """The argocd-cm named by the fleet file is read (GET) from its cluster; its scripts judge every cluster."""
    fleet.clusters["prod"].seed_apply({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm", "namespace": "argocd"},
        "data": {"resource.customizations.health.ConfigMap": CONFIGMAP_SCRIPT}})
    with_live_argocd_cm(fleet)
    engine = await started()
    plan = await engine.plan_sync("web", "dev")
    states = [s async for s in engine.execute_plan(plan)]
    assert states[-1].phase.successful, states[-1].message
    snap = await wait_for(engine, lambda s: app_row(s, "web", "dev").sync is SyncStatus.SYNCED)
    config = next(r for r in app_row(snap, "web", "dev").resources if r.key.kind == "ConfigMap")
    assert config.health is not None
    assert (config.health.message, config.health.source) == (
        "mode blue", "script: argocd-cm resource.customizations.health.ConfigMap")
    assert not [c for c in snap.conditions if c.type == "HealthScripts"]


async def test_a_missing_live_argocd_cm_is_a_warning(fleet: Fleet, started: StartEngine) -> None:
    with_live_argocd_cm(fleet)
    engine = await started()
    snap = await wait_for(engine, lambda s: any(c.type == "HealthScripts" for c in s.conditions))
    warning = next(c for c in snap.conditions if c.type == "HealthScripts")
    assert "argocd/argocd-cm on prod" in warning.message and "not found" in warning.message
    assert engine.health_checks is None


async def test_an_unreachable_argocd_cluster_does_not_hold_up_the_start(fleet: Fleet, started: StartEngine) -> None:
    fleet.clusters["prod"].set_reachable(False)
    with_live_argocd_cm(fleet)
    engine = await started()
    snap = await wait_for(engine, lambda s: any(c.type == "HealthScripts" for c in s.conditions))
    warning = next(c for c in snap.conditions if c.type == "HealthScripts")
    assert warning.message.startswith("health scripts of argocd/argocd-cm on prod not loaded: ")
    assert app_row(snap, "web", "dev") is not None
