"""The demo fleet's content: six apps as Kustomize bases and per-environment overlays, and their history.

Role: a small data model (``AppModel`` with one ``EnvSettings`` per environment) that turns into the
files of the config repo, and ``HISTORY``, the commits that change it over time (image releases,
replica counts, config, a crash-looping build on staging, a broken production overlay). Everything
is plain data and pure functions so the repo is byte-for-byte reproducible.

Constraint: pure; no I/O (``core.demo.repo`` writes the files and commits them).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

REGISTRY = "registry.example.com"
ENVIRONMENTS = ("dev", "staging", "production")
BROKEN_ENV_FILE = "ledger-prod.env"
"""The file the broken production overlay of ``ledger`` references but the repo never contains."""


@dataclass(frozen=True, slots=True)
class EnvSettings:
    """One app in one environment."""

    tag: str
    replicas: int | None = None
    """None leaves the replica count to the base (or to an HPA)."""
    config: Mapping[str, str] = field(default_factory=dict)
    """ConfigMap keys overridden in this environment."""
    hpa: tuple[int, int] | None = None
    """``(minReplicas, maxReplicas)`` when the app autoscales."""
    broken: bool = False
    """The overlay references a file that does not exist (a render error)."""


@dataclass(frozen=True, slots=True)
class AppModel:
    """An app of the demo fleet."""

    name: str
    description: str
    port: int | None
    """The container port, and a Service when set."""
    config: Mapping[str, str]
    envs: Mapping[str, EnvSettings]
    env_vars: Mapping[str, str] = field(default_factory=dict)
    """Container environment variables set in the base Deployment."""
    secret: Mapping[str, str] | None = None
    """Secret keys (clear text here, base64 in the manifest)."""
    cronjob: str | None = None
    """A CronJob schedule, when the app runs a periodic job."""

    def with_env(self, env: str, **changes: Any) -> AppModel:
        """A copy with the settings of ``env`` changed."""
        envs = dict(self.envs)
        envs[env] = replace(envs[env], **changes)
        return replace(self, envs=envs)

    def with_all_envs(self, **changes: Any) -> AppModel:
        """A copy with the same change in every environment."""
        return replace(self, envs={name: replace(s, **changes) for name, s in self.envs.items()})


# ---------------------------------------------------------------------------------------------- the apps


def _envs(tag: str, dev: int | None, staging: int | None, production: int | None) -> dict[str, EnvSettings]:
    return {"dev": EnvSettings(tag, dev), "staging": EnvSettings(tag, staging),
            "production": EnvSettings(tag, production)}


WEB = AppModel(
    name="web", description="the storefront", port=8080,
    config={"GREETING": "Welcome to the shop", "FEATURE_FLAGS": "search,reviews"},
    envs=_envs("1.4.2", 1, 2, 3),
)
API = AppModel(
    name="api", description="the public REST API", port=9090,
    config={"DB_HOST": "db.internal", "CACHE_TTL": "60"},
    env_vars={"LOG_LEVEL": "info", "MAX_CONNECTIONS": "200"},
    envs=_envs("2.7.0", 1, 2, 3),
)
WORKER = AppModel(
    name="worker", description="the order queue consumer", port=None,
    config={"QUEUE": "orders", "CONCURRENCY": "4"},
    envs=_envs("3.1.0", 1, 1, 2),
)
PAYMENTS = AppModel(
    name="payments", description="card payments", port=8443,
    config={"PROVIDER": "acme-pay", "IDEMPOTENCY": "off"},
    secret={"api-key": "demo-not-a-real-key", "webhook-secret": "demo-not-a-real-secret"},
    envs=_envs("1.9.0", 1, 2, 3),
)
SEARCH = AppModel(
    name="search", description="product search", port=7700,
    config={"INDEX": "products", "SHARDS": "2"},
    envs={"dev": EnvSettings("0.12.0", hpa=(1, 2)), "staging": EnvSettings("0.12.0", hpa=(2, 4)),
          "production": EnvSettings("0.12.0", hpa=(3, 6))},
)
LEDGER = AppModel(
    name="ledger", description="the accounting ledger", port=5050,
    config={"CURRENCY": "EUR", "RECONCILE_BATCH": "500"},
    cronjob="*/15 * * * *",
    envs=_envs("5.0.1", 1, 1, 2),
)


# ---------------------------------------------------------------------------------------------- history


@dataclass(frozen=True, slots=True)
class DemoCommit:
    """One commit of the demo repo: who, when (hours after the first commit) and what changes."""

    subject: str
    author: str
    hours: float
    change: Callable[[dict[str, AppModel]], dict[str, AppModel]]


def _set(app: str, fn: Callable[[AppModel], AppModel]) -> Callable[[dict[str, AppModel]], dict[str, AppModel]]:
    def change(apps: dict[str, AppModel]) -> dict[str, AppModel]:
        return {**apps, app: fn(apps[app])}

    return change


def _add(*models: AppModel) -> Callable[[dict[str, AppModel]], dict[str, AppModel]]:
    return lambda apps: {**apps, **{m.name: m for m in models}}


def _both(*changes: Callable[[dict[str, AppModel]], dict[str, AppModel]]) -> Callable[
        [dict[str, AppModel]], dict[str, AppModel]]:
    def change(apps: dict[str, AppModel]) -> dict[str, AppModel]:
        for step in changes:
            apps = step(apps)
        return apps

    return change


HISTORY: tuple[DemoCommit, ...] = (
    DemoCommit("Bootstrap the fleet: web, api and worker", "Ana Ops", 0, _add(WEB, API, WORKER)),
    DemoCommit("Add payments, search and ledger", "Ben Platform", 3, _add(PAYMENTS, SEARCH, LEDGER)),
    DemoCommit("web: release 1.5.0; api: run 4 replicas in production", "Chloe Release", 27,
               _both(_set("web", lambda m: m.with_all_envs(tag="1.5.0")),
                     _set("api", lambda m: m.with_env("production", replicas=4)))),
    DemoCommit("payments: release 1.10.0 with idempotency keys", "Chloe Release", 49,
               _set("payments", lambda m: replace(m.with_all_envs(tag="1.10.0"),
                                                  config={**m.config, "IDEMPOTENCY": "on"}))),
    DemoCommit("worker: try 3.2.0 on staging", "Dev Bot", 70,
               _set("worker", lambda m: m.with_env("staging", tag="3.2.0-crashloop"))),
    DemoCommit("search: release 0.13.0 and allow up to 8 replicas in production", "Ben Platform", 73,
               _set("search", lambda m: m.with_all_envs(tag="0.13.0").with_env("production", hpa=(3, 8)))),
    DemoCommit("ledger: move production settings into ledger-prod.env", "Ana Ops", 75,
               _set("ledger", lambda m: m.with_env("production", broken=True))),
)
"""Oldest first. The last commit breaks the production overlay of ``ledger`` (a missing file)."""


def states() -> list[dict[str, AppModel]]:
    """The apps as of each commit of ``HISTORY``."""
    apps: dict[str, AppModel] = {}
    out = []
    for commit in HISTORY:
        apps = commit.change(dict(apps))
        out.append(apps)
    return out


# ---------------------------------------------------------------------------------------------- files


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump(doc: Any) -> str:
    """YAML as a person would write it (keys in the given order)."""
    return yaml.dump(doc, Dumper=_DUMPER, sort_keys=False, default_flow_style=False, width=110)


def app_files(app: AppModel) -> dict[str, str]:
    """Every file of ``apps/<name>/``, by path relative to the repo root."""
    root = f"apps/{app.name}"
    base = _base_resources(app)
    files = {f"{root}/base/{name}": dump(doc) for name, doc in base.items()}
    files[f"{root}/base/kustomization.yaml"] = dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "labels": [{"pairs": {"app.kubernetes.io/part-of": "shop"}, "includeSelectors": False}],
        "resources": list(base),
    })
    for env, settings in app.envs.items():
        files.update(_overlay_files(app, env, settings, f"{root}/overlays/{env}"))
    return files


def _base_resources(app: AppModel) -> dict[str, dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = {
        "deployment.yaml": _deployment(app),
        "configmap.yaml": _configmap(f"{app.name}-config", dict(app.config)),
    }
    if app.port is not None:
        resources["service.yaml"] = _service(app)
    if app.secret is not None:
        resources["secret.yaml"] = _secret(app)
    if any(s.hpa for s in app.envs.values()):
        resources["hpa.yaml"] = _hpa(app)
    if app.cronjob is not None:
        resources["cronjob.yaml"] = _cronjob(app)
    return resources


def _container(app: AppModel) -> dict[str, Any]:
    container: dict[str, Any] = {"name": app.name, "image": f"{REGISTRY}/{app.name}:0.0.0"}
    if app.port is not None:
        container["ports"] = [{"name": "http", "containerPort": app.port}]
    container["envFrom"] = [{"configMapRef": {"name": f"{app.name}-config"}}]
    if app.env_vars:
        container["env"] = [{"name": k, "value": v} for k, v in app.env_vars.items()]
    if app.secret is not None:
        container.setdefault("env", []).append(
            {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": f"{app.name}-keys", "key": "api-key"}}})
    container["resources"] = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
    if app.port is not None:
        container["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10}
    return container


def _deployment(app: AppModel) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if not any(s.hpa for s in app.envs.values()):
        spec["replicas"] = 1
    spec["selector"] = {"matchLabels": {"app": app.name}}
    spec["template"] = {"metadata": {"labels": {"app": app.name}}, "spec": {"containers": [_container(app)]}}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": app.name, "labels": {"app": app.name},
                         "annotations": {"description": app.description}},
            "spec": spec}


def _configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def _service(app: AppModel) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": app.name, "labels": {"app": app.name}},
            "spec": {"selector": {"app": app.name},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def _secret(app: AppModel) -> dict[str, Any]:
    data = {k: base64.b64encode(v.encode()).decode() for k, v in (app.secret or {}).items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{app.name}-keys"}, "type": "Opaque",
            "data": data}


def _hpa(app: AppModel) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": app.name},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app.name},
                     "minReplicas": 1, "maxReplicas": 2,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}}


def _cronjob(app: AppModel) -> dict[str, Any]:
    job_container = {"name": "reconcile", "image": f"{REGISTRY}/{app.name}:0.0.0", "args": ["reconcile"],
                     "envFrom": [{"configMapRef": {"name": f"{app.name}-config"}}]}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": f"{app.name}-reconcile"},
            "spec": {"schedule": app.cronjob, "concurrencyPolicy": "Forbid",
                     "jobTemplate": {"spec": {"template": {"spec": {
                         "restartPolicy": "OnFailure", "containers": [job_container]}}}}}}


def _overlay_files(app: AppModel, env: str, settings: EnvSettings, root: str) -> dict[str, str]:
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": app.name,
        "resources": ["../../base"],
        "labels": [{"pairs": {"env": env}, "includeSelectors": False}],
        "images": [{"name": f"{REGISTRY}/{app.name}", "newTag": settings.tag}],
    }
    if settings.replicas is not None:
        kustomization["replicas"] = [{"name": app.name, "count": settings.replicas}]
    files = {f"{root}/config.yaml": dump(_configmap(f"{app.name}-config", {"ENVIRONMENT": env, **settings.config}))}
    patches = [{"path": "config.yaml"}]
    if settings.hpa is not None:
        low, high = settings.hpa
        patches.append({"path": "hpa.yaml"})
        files[f"{root}/hpa.yaml"] = dump({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                                          "metadata": {"name": app.name},
                                          "spec": {"minReplicas": low, "maxReplicas": high}})
    kustomization["patches"] = patches
    if settings.broken:
        kustomization["configMapGenerator"] = [{"name": f"{app.name}-settings", "envs": [BROKEN_ENV_FILE]}]
    files[f"{root}/kustomization.yaml"] = dump(kustomization)
    return files



# ---------------------------------------------------------------------------------------------- the fleet file

CLUSTERS: tuple[tuple[str, str, str], ...] = (
    ("dev-eu", "dev", "eu"),
    ("staging-eu", "staging", "eu"),
    ("prod-eu", "production", "eu"),
    ("prod-us", "production", "us"),
)
"""``(name, env, region)`` of each simulated cluster."""

PLACEMENT: Mapping[str, Mapping[str, Any]] = {
    "web": {"sync": {"automated": True, "prune": True}},
    "api": {},
    "worker": {"selector": {"region": "eu"}, "sync": {"automated": True, "selfHeal": True}},
    "payments": {"clusters": ["staging-eu"], "selector": {"env": "production"},
                 "sync": {"automated": True, "selfHeal": True}},
    "search": {"clusters": ["dev-eu", "staging-eu", "prod-us"]},
    "ledger": {"selector": {"region": "eu"}, "sync": {"automated": True, "prune": True}},
}
"""Where each app runs and how it is synced (fleet-file ``apps[]`` fields besides name, path, namespace)."""


def fleet_document(apps: Mapping[str, AppModel]) -> dict[str, Any]:
    """The ``fleetdeck.yaml`` of a revision that holds ``apps``."""
    return {
        "version": 1,
        "repo": {"url": ".", "branch": "main"},
        "clusters": [{"name": name, "context": name, "labels": {"env": env, "region": region}}
                     for name, env, region in CLUSTERS],
        "apps": [{"name": name, "path": f"apps/{name}/overlays/{{env}}", "namespace": name, **PLACEMENT[name]}
                 for name in apps],
    }


def fleet_text(apps: Mapping[str, AppModel]) -> str:
    """``fleetdeck.yaml`` with a header comment."""
    header = ("# The fleetdeck demo fleet: four simulated clusters, apps in Kustomize overlays per environment.\n"
              "# Paths take the cluster's env label: apps/<app>/overlays/{env}.\n")
    return header + dump(fleet_document(apps))
