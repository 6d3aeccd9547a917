"""Argo CD health.lua scripts run unmodified: layout, matching, obj/hs conventions, sandbox and budgets."""

from __future__ import annotations

import os
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.desired.fleet_file import load_fleet
from core.desired.health_scripts import ENV, load_health_checks, scripts_from_configmap
from core.errors import ConfigError
from core.model import Health, HealthStatus
from core.reconcile.health import health_of
from core.reconcile.health_lua import ARGOCD_CM, DIRECTORY, HealthScript, LuaHealthChecks
from core.settings import HealthSettings

# A certificate check in the style of Argo CD's cert-manager.io/Certificate script: conditions walked with
# ipairs, Issuing handled before Ready, a default when nothing matched.
CERTIFICATE = """
local hs = {}
if obj.status ~= nil then
  if obj.status.conditions ~= nil then
    for i, condition in ipairs(obj.status.conditions) do
      if condition.type == "Issuing" and condition.status == "True" then
        hs.status = "Progressing"
        hs.message = condition.message
        return hs
      end
    end
    for i, condition in ipairs(obj.status.conditions) do
      if condition.type == "Ready" and condition.status == "False" then
        hs.status = "Degraded"
        hs.message = condition.message
        return hs
      end
      if condition.type == "Ready" and condition.status == "True" then
        hs.status = "Healthy"
        hs.message = condition.message
        return hs
      end
    end
  end
end
hs.status = "Progressing"
hs.message = "Waiting for certificate"
return hs
"""

# A wildcard check in the style of Argo CD's _.crossplane.io/_ script: a set built with a table, string
# helpers, table.insert/concat, and # on the conditions list.
CROSSPLANE = """
health_status = {
  status = "Progressing",
  message = "Provisioning ..."
}
local no_status = {ProviderConfig = true, ProviderConfigUsage = true}
if no_status[obj.kind] then
  health_status.status = "Healthy"
  health_status.message = "Resource is up-to-date."
  return health_status
end
if obj.status == nil or obj.status.conditions == nil or #obj.status.conditions == 0 then
  return health_status
end
local problems = {}
for i, condition in ipairs(obj.status.conditions) do
  if condition.status == "False" then
    table.insert(problems, string.lower(condition.type) .. ": " .. (condition.reason or "?"))
  end
end
if #problems > 0 then
  health_status.status = "Degraded"
  health_status.message = table.concat(problems, "; ")
  return health_status
end
health_status.status = "Healthy"
health_status.message = string.format("%d conditions true", #obj.status.conditions)
return health_status
"""

ROLLOUT = """
hs = {}
if obj.spec.paused == true then
  hs.status = "Suspended"
  hs.message = "Rollout is paused"
  return hs
end
if obj.status ~= nil and obj.status.phase ~= nil then
  hs.status = obj.status.phase
  hs.message = obj.status.message or ""
  return hs
end
hs.status = "Progressing"
hs.message = "Waiting for rollout"
return hs
"""

DEPLOYMENT_OVERRIDE = """
hs = {}
if obj.metadata.annotations ~= nil and obj.metadata.annotations["example.com/frozen"] == "true" then
  hs.status = "Suspended"
  hs.message = "frozen by annotation"
else
  hs.status = "Healthy"
  hs.message = "replicas: " .. tostring(obj.spec.replicas)
end
return hs
"""


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def certificate(*conditions: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "tls", "namespace": "web"},
            "status": {"conditions": list(conditions)}}


def managed(group: str, kind: str, *conditions: dict[str, str]) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": f"{group}/v1beta1", "kind": kind, "metadata": {"name": "x"}}
    if conditions:
        obj["status"] = {"conditions": list(conditions)}
    return obj


DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "web", "generation": 2,
                 "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
    "spec": {"replicas": 3},
    "status": {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 1},
}


@pytest.fixture
def customizations(tmp_path: Path) -> Path:
    """A directory laid out like Argo CD's resource_customizations."""
    root = tmp_path / "resource_customizations"
    write(root, "cert-manager.io/Certificate/health.lua", CERTIFICATE)
    write(root, "_.crossplane.io/_/health.lua", CROSSPLANE)
    write(root, "argoproj.io/Rollout/health.lua", ROLLOUT)
    write(root, "*.example.org/Widget/health.lua", 'return {status = "Healthy", message = "widget"}')
    write(root, "apps/Deployment/health.lua", DEPLOYMENT_OVERRIDE)
    write(root, "apps/Deployment/actions/restart/action.lua", "error('not a health script')")
    return root


@pytest.fixture
def checks(customizations: Path) -> LuaHealthChecks:
    loaded = load_health_checks(HealthSettings(customizations=(str(customizations),)), environ={})
    assert loaded is not None
    return loaded


# ---------------------------------------------------------------------------------------------- layout


def test_runtime_is_luajit_with_lua51_semantics(checks: LuaHealthChecks) -> None:
    assert checks.lua_implementation.startswith("LuaJIT 2.1")


def test_directory_scripts_judge_their_kind(checks: LuaHealthChecks) -> None:
    """Conditions walked with ipairs, messages passed through, the script named as the source."""
    where = "script: cert-manager.io/Certificate/health.lua"
    ready = {"type": "Ready", "status": "True", "message": "Certificate is up to date"}
    failing = {"type": "Ready", "status": "False", "message": "issuer not found"}
    issuing = {"type": "Issuing", "status": "True", "message": "renewing"}
    assert checks.check(certificate(ready)) == Health(HealthStatus.HEALTHY, "Certificate is up to date", where)
    assert checks.check(certificate(failing)) == Health(HealthStatus.DEGRADED, "issuer not found", where)
    assert checks.check(certificate(failing, issuing)) == Health(HealthStatus.PROGRESSING, "renewing", where)
    assert checks.check(certificate()) == Health(HealthStatus.PROGRESSING, "Waiting for certificate", where)
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "r"},
               "spec": {"paused": True}}
    assert checks.check(rollout) == Health(HealthStatus.SUSPENDED, "Rollout is paused",
                                           "script: argoproj.io/Rollout/health.lua")


def test_wildcard_directories_match_as_argo_cd_does(checks: LuaHealthChecks) -> None:
    """``_.crossplane.io/_`` stands for ``*.crossplane.io/*``; a literal ``*`` directory works too."""
    where = "script: _.crossplane.io/_/health.lua"
    bucket = managed("s3.aws.crossplane.io", "Bucket", {"type": "Ready", "status": "False", "reason": "Creating"},
                     {"type": "Synced", "status": "True"})
    assert checks.check(bucket) == Health(HealthStatus.DEGRADED, "ready: Creating", where)
    ok = managed("ec2.aws.crossplane.io", "VPC", {"type": "Ready", "status": "True"},
                 {"type": "Synced", "status": "True"})
    assert checks.check(ok) == Health(HealthStatus.HEALTHY, "2 conditions true", where)
    assert checks.check(managed("aws.crossplane.io", "ProviderConfig")) == Health(
        HealthStatus.HEALTHY, "Resource is up-to-date.", where)
    assert checks.check(managed("gcp.crossplane.io", "Network")) == Health(
        HealthStatus.PROGRESSING, "Provisioning ...", where)
    assert checks.check(managed("a.crossplane.io.evil.com", "Bucket")) is None
    assert checks.check(managed("shop.example.org", "Widget")) == Health(
        HealthStatus.HEALTHY, "widget", "script: *.example.org/Widget/health.lua")
    assert checks.check(managed("shop.example.org", "Gadget")) is None


def test_a_script_overrides_the_built_in_rule(checks: LuaHealthChecks) -> None:
    """apps/Deployment/health.lua wins over the built-in Deployment rule (which says Progressing here)."""
    assert health_of(DEPLOYMENT).status is HealthStatus.PROGRESSING  # type: ignore[union-attr]
    assert health_of(DEPLOYMENT, checks) == Health(HealthStatus.HEALTHY, "replicas: 3",
                                                   "script: apps/Deployment/health.lua")
    frozen = {**DEPLOYMENT, "metadata": {**DEPLOYMENT["metadata"], "annotations": {"example.com/frozen": "true"}}}
    assert health_of(frozen, checks) == Health(HealthStatus.SUSPENDED, "frozen by annotation",
                                               "script: apps/Deployment/health.lua")
    pending = {**DEPLOYMENT, "metadata": {**DEPLOYMENT["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert health_of(pending, checks) == Health(HealthStatus.PROGRESSING, "Pending deletion",
                                                    source="metadata.deletionTimestamp")
    assert health_of({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}}, checks) \
        == health_of({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}})


def test_precedence_follows_argo_cd() -> None:
    """argocd-cm exact, argocd-cm wildcard, directory exact, directory wildcard; first source within a tier."""
    def script(pattern: str, tier: int, where: str) -> HealthScript:
        return HealthScript(pattern, f'return {{status = "Healthy", message = "{where}"}}', where, tier)

    checks = LuaHealthChecks([
        script("*.crossplane.io/*", DIRECTORY, "dir-wild"),
        script("s3.aws.crossplane.io/Bucket", DIRECTORY, "dir-exact"),
        script("s3.aws.crossplane.io/Bucket", DIRECTORY, "dir-exact-later"),
        script("*.aws.crossplane.io/*", ARGOCD_CM, "cm-wild-specific"),
        script("*", ARGOCD_CM, "cm-wild-any"),
        script("s3.aws.crossplane.io/Bucket", ARGOCD_CM, "cm-exact"),
    ])
    assert checks.check(managed("s3.aws.crossplane.io", "Bucket")).message == "cm-exact"  # type: ignore[union-attr]
    assert checks.check(managed("s3.aws.crossplane.io", "Other")).message == "cm-wild-specific"  # type: ignore[union-attr]
    assert checks.check(managed("example.com", "Thing")).message == "cm-wild-any"  # type: ignore[union-attr]
    directory_only = LuaHealthChecks([s for s in checks.scripts if s.tier == DIRECTORY])
    assert directory_only.check(managed("s3.aws.crossplane.io", "Bucket")).message == "dir-exact"  # type: ignore[union-attr]
    assert directory_only.check(managed("gcp.crossplane.io", "Bucket")).message == "dir-wild"  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------- conventions


def test_obj_tables_behave_as_in_gopher_lua() -> None:
    """Lists are sequences (# and ipairs), maps are tables, JSON null is nil, numbers are numbers."""
    script = """
    local names = {}
    for i, c in ipairs(obj.status.conditions) do names[#names + 1] = i .. "=" .. c.type end
    local keys = {}
    for k, _ in pairs(obj.metadata.labels) do table.insert(keys, k) end
    table.sort(keys)
    hs = {}
    hs.status = "Healthy"
    hs.message = table.concat(names, ",") .. " #" .. #obj.status.conditions .. " " .. table.concat(keys, ",")
      .. " " .. tostring(obj.status.gone == nil) .. " " .. type(obj.spec.replicas) .. " " .. obj.spec.replicas * 2
      .. " " .. string.upper(obj.metadata.name):sub(1, 2) .. " " .. math.max(1, 4) .. " " .. tostring(obj.spec.flag)
    return hs
    """
    obj = {"apiVersion": "example.com/v1", "kind": "Thing",
           "metadata": {"name": "web", "labels": {"b": "2", "a": "1"}},
           "spec": {"replicas": 3, "flag": False},
           "status": {"gone": None, "conditions": [{"type": "Ready"}, {"type": "Synced"}]}}
    checks = LuaHealthChecks([HealthScript("example.com/Thing", script, "t")])
    assert checks.check(obj) == Health(HealthStatus.HEALTHY, "1=Ready,2=Synced #2 a,b true number 6 WE 4 false",
                                       "script: t")


def test_maps_filled_as_read_are_indistinguishable_from_tables() -> None:
    """Deep maps (filled when touched), pairs/next/rawget/getmetatable on them, a map returned as hs,
    maps inside lists, null dropped from lists, and a map too large to pass flat."""
    script = """
    local deep = obj.spec.template.spec
    local keys = {}
    for k, v in pairs(obj.spec.template.metadata.labels) do keys[#keys + 1] = k .. "=" .. v end
    table.sort(keys)
    local first = next(obj.spec.selector)
    local raw = rawget(obj.spec.strategy, "type")
    local meta = getmetatable(obj.spec.other)
    local items = {}
    for i, item in ipairs(obj.spec.items) do items[#items + 1] = tostring(item.detail and item.detail.reason or item) end
    local count = 0
    for _ in pairs(obj.data) do count = count + 1 end
    obj.spec.result.message = table.concat({deep.containers[1].name, table.concat(keys, ","), first, raw,
      tostring(meta), #obj.spec.items, table.concat(items, ","), count}, " ")
    return obj.spec.result
    """
    obj = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"},
           "data": {f"k{i}": str(i) for i in range(3000)},
           "spec": {"template": {"metadata": {"labels": {"b": "2", "a": "1"}},
                                 "spec": {"containers": [{"name": "web", "image": "nginx"}]}},
                    "selector": {"app": "web"}, "strategy": {"type": "Recreate"}, "other": {"x": 1},
                    "items": [{"detail": {"reason": "deep"}}, None, "plain", {"detail": {"reason": "second"}}],
                    "result": {"status": "Healthy"}}}
    checks = LuaHealthChecks([HealthScript("example.com/Thing", script, "t")])
    assert checks.check(obj) == Health(HealthStatus.HEALTHY, "web a=1,b=2 app Recreate nil 3 deep,plain,second 3000",
                                       "script: t")


def test_globals_do_not_leak_between_calls_and_libraries_are_read_only() -> None:
    counting = LuaHealthChecks([HealthScript("example.com/Thing", """
    calls = (calls or 0) + 1
    local ok = pcall(function() string.upper = nil end)
    return {status = "Healthy", message = tostring(calls) .. " " .. tostring(ok) .. " " .. string.upper("x")}
    """, "t")])
    obj = managed("example.com", "Thing")
    assert [counting.check(obj).message for _ in range(3)] == ["1 false X"] * 3  # type: ignore[union-attr]


def test_scripts_are_compiled_once_per_runtime(checks: LuaHealthChecks) -> None:
    for i in range(5):
        checks.check(certificate({"type": "Ready", "status": "True", "message": str(i)}))
    assert len(checks._runtime().compiled) == 1


def test_each_thread_has_its_own_runtime(checks: LuaHealthChecks) -> None:
    results: list[Health | None] = []
    ready = certificate({"type": "Ready", "status": "True", "message": "ok"})
    workers = [threading.Thread(target=lambda: results.extend(checks.check(ready) for _ in range(50)))
               for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(results) == 150 and all(r is not None and r.message == "ok" for r in results)


# ---------------------------------------------------------------------------------------------- sandbox


def run_one(script: str, settings: HealthSettings | None = None) -> Health:
    checks = LuaHealthChecks([HealthScript("example.com/Thing", script, "example.com/Thing/health.lua")], settings)
    verdict = checks.check(managed("example.com", "Thing"))
    assert verdict is not None
    assert checks.check({**managed("example.com", "Other")}) is None
    return verdict


@pytest.mark.parametrize("script", [
    'os.execute("touch /tmp/fleetdeck-pwned")',
    'local f = io.open("/etc/passwd") return {status = "Healthy", message = f:read("*a")}',
    'local io = require("io") return {status = "Healthy"}',
    'require("os").execute("id")',
    'return loadstring("return 1")()',
    'return load(function() return nil end)',
    'dofile("/etc/passwd")',
    'loadfile("/etc/passwd")()',
    'debug.sethook()',
    'collectgarbage("stop")',
    'getfenv(0).io.open("/etc/passwd")',
    'setfenv(1, {})',
    'return package.loaded.io',
    'getmetatable("").__index.rep = nil',
    'return string.dump(function() end)',
    'coroutine.wrap(function() end)()',
    'jit.on()',
    'os.exit(1)',
], ids=lambda s: s[:24])
def test_dangerous_functions_are_refused(script: str) -> None:
    verdict = run_one(script)
    assert verdict.status is HealthStatus.UNKNOWN
    assert verdict.message.startswith("health script failed: ")
    assert verdict.source == "script: example.com/Thing/health.lua"
    assert not Path("/tmp/fleetdeck-pwned").exists()


def test_os_offers_argo_cd_safe_subset() -> None:
    """os.time and os.date as Argo CD's safe os library; require("os") returns it."""
    verdict = run_one('local os2 = require("os") '
                      'return {status = "Healthy", message = os.date("!%Y", 0) .. " " .. type(os2.time())}')
    assert verdict == Health(HealthStatus.HEALTHY, "1970 number", "script: example.com/Thing/health.lua")


def test_errors_and_bad_results_are_unknown_on_that_resource_only() -> None:
    assert run_one('error("boom")').message == "health script failed: example.com/Thing/health.lua:1: boom"
    assert run_one("this is not lua").message.startswith("health script failed: example.com/Thing/health.lua:1:")
    assert run_one("return 5").message == "health script failed: expect table output from Lua script, not number"
    assert run_one("return nil").message == "health script failed: it returned nothing"
    assert run_one('return {status = "Fine"}') == Health(HealthStatus.UNKNOWN, "Lua returned an invalid health status",
                                                          "script: example.com/Thing/health.lua")
    assert run_one("error({})").message == "health script failed: the script raised a table"


def test_an_object_python_cannot_pass_is_unknown_not_a_crash() -> None:
    deep: Any = "leaf"
    for _ in range(5000):
        deep = [deep]
    checks = LuaHealthChecks([HealthScript("example.com/Thing", 'return {status = "Healthy"}', "t")])
    verdict = checks.check({**managed("example.com", "Thing"), "spec": {"nested": deep}})
    assert verdict is not None and verdict.status is HealthStatus.UNKNOWN
    assert verdict.message.startswith("health script failed: ")


def test_script_output_is_sanitized() -> None:
    verdict = run_one('return {status = "Degraded", message = "\\27]0;owned\\7red\\27[31m!\\n" .. string.rep("x", 5000)}')
    assert verdict.status is HealthStatus.DEGRADED
    assert "\x1b" not in verdict.message and "\x07" not in verdict.message and "\n" not in verdict.message
    assert verdict.message.startswith("red! x") and len(verdict.message) <= 1000
    failed = run_one('error("\\27[2Jgone")')
    assert "\x1b" not in failed.message and failed.message.endswith("gone")
    mixed = run_one('return {status = "Healthy", message = "caf\\195\\169 " .. string.char(255) .. "!"}')
    assert mixed.message == "café \ufffd!"


# ---------------------------------------------------------------------------------------------- budgets


def test_an_endless_loop_exhausts_the_instruction_budget() -> None:
    start = time.monotonic()
    assert run_one("while true do end").message == "health script failed: instruction budget exhausted"
    assert time.monotonic() - start < 1.0


def test_the_budget_cannot_be_caught_with_pcall() -> None:
    script = "while true do pcall(function() while true do end end) end"
    assert run_one(script).message == "health script failed: instruction budget exhausted"
    assert run_one("while true do xpcall(function() while true do end end, function(e) return e end) end"
                   ).message == "health script failed: instruction budget exhausted"


def test_endless_allocation_exhausts_the_memory_budget() -> None:
    script = 'local t = {} local i = 0 while true do i = i + 1 t[i] = string.rep("x", 4096) .. i end'
    settings = HealthSettings(script_memory=8 * 1024 * 1024)
    assert run_one(script, settings).message == "health script failed: memory budget exhausted"
    caught = 'local t = {} pcall(function() local i = 0 while true do i = i + 1 t[i] = string.rep("y", 4096) .. i end end)'
    assert run_one(caught, settings).message == "health script failed: memory budget exhausted"
    assert run_one('return {status = "Healthy", message = string.rep("z", 10)}', settings).status is HealthStatus.HEALTHY


def test_a_slow_script_hits_the_wall_time_limit() -> None:
    settings = HealthSettings(script_instructions=10**12, script_seconds=0.2)
    start = time.monotonic()
    assert run_one("while true do end", settings).message == "health script failed: time limit exceeded"
    assert 0.2 <= time.monotonic() - start < 2.0


def test_the_runtime_keeps_working_after_failures() -> None:
    checks = LuaHealthChecks([
        HealthScript("example.com/Loop", "while true do end", "loop"),
        HealthScript("example.com/Hog", 'local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 999) .. i end', "hog"),
        HealthScript("example.com/Fine", 'return {status = "Healthy", message = obj.metadata.name}', "fine"),
    ], HealthSettings(script_memory=4 * 1024 * 1024))
    for _ in range(3):
        assert checks.check(managed("example.com", "Loop")).status is HealthStatus.UNKNOWN  # type: ignore[union-attr]
        assert checks.check(managed("example.com", "Hog")).status is HealthStatus.UNKNOWN  # type: ignore[union-attr]
        assert checks.check(managed("example.com", "Fine")) == Health(HealthStatus.HEALTHY, "x", "script: fine")


# ---------------------------------------------------------------------------------------------- configuration


ARGOCD_CM_FILE = {
    "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm", "namespace": "argocd"},
    "data": {
        "resource.customizations.health.cert-manager.io_Certificate": CERTIFICATE,
        "resource.customizations.health.ConfigMap": 'return {status = "Healthy", message = obj.data.mode}',
        "resource.customizations.useOpenLibs.cert-manager.io_Certificate": "true",
        "resource.customizations.ignoreDifferences.all": "jsonPointers: [/status]",
        "resource.customizations": yaml.safe_dump({
            "*.crossplane.io/*": {"health.lua": 'return {status = "Suspended", message = "block"}'},
            "cert-manager.io/Certificate": {"health.lua": 'return {status = "Degraded", message = "block loses"}'},
        }),
    },
}


def test_argocd_cm_file_keys(tmp_path: Path) -> None:
    cm = tmp_path / "argocd-cm.yaml"
    cm.write_text(yaml.safe_dump(ARGOCD_CM_FILE))
    checks = load_health_checks(HealthSettings(customizations=(str(cm),)), environ={})
    assert checks is not None and len(checks) == 4
    ready = certificate({"type": "Ready", "status": "True", "message": "up to date"})
    assert checks.check(ready) == Health(HealthStatus.HEALTHY, "up to date",
                                         "script: argocd-cm resource.customizations.health.cert-manager.io_Certificate")
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"mode": "blue"}}
    assert checks.check(config) == Health(HealthStatus.HEALTHY, "blue",
                                          "script: argocd-cm resource.customizations.health.ConfigMap")
    assert checks.check(managed("s3.aws.crossplane.io", "Bucket")) == Health(
        HealthStatus.SUSPENDED, "block", "script: argocd-cm resource.customizations *.crossplane.io/*")


def test_argocd_cm_beats_the_directory(tmp_path: Path, customizations: Path) -> None:
    cm = tmp_path / "argocd-cm.yaml"
    cm.write_text(yaml.safe_dump(ARGOCD_CM_FILE))
    checks = load_health_checks(HealthSettings(customizations=(str(customizations), str(cm))), environ={})
    assert checks is not None
    bucket = managed("s3.aws.crossplane.io", "Bucket")
    assert checks.check(bucket).source == "script: argocd-cm resource.customizations *.crossplane.io/*"  # type: ignore[union-attr]
    assert checks.check(DEPLOYMENT).source == "script: apps/Deployment/health.lua"  # type: ignore[union-attr]


def test_bad_configmap_keys_and_missing_paths_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"resource\.customizations\.health\.a_b_c"):
        scripts_from_configmap({"resource.customizations.health.a_b_c": "return {}"})
    with pytest.raises(ConfigError, match="health customizations not found"):
        load_health_checks(HealthSettings(customizations=(str(tmp_path / "nope"),)), environ={})
    not_cm = tmp_path / "deploy.yaml"
    not_cm.write_text(yaml.safe_dump(DEPLOYMENT))
    with pytest.raises(ConfigError, match="no ConfigMap"):
        load_health_checks(HealthSettings(customizations=(str(not_cm),)), environ={})
    assert load_health_checks(HealthSettings(), environ={}) is None


def test_environment_variable_lists_paths_first_wins(tmp_path: Path, customizations: Path) -> None:
    other = tmp_path / "other"
    write(other, "cert-manager.io/Certificate/health.lua", 'return {status = "Degraded", message = "other"}')
    write(other, "example.com/Thing/health.lua", 'return {status = "Healthy", message = "only here"}')
    environ = {ENV: os.pathsep.join([str(other), "", str(customizations)])}
    checks = load_health_checks(HealthSettings(), environ=environ)
    assert checks is not None
    assert checks.check(certificate()).message == "other"  # type: ignore[union-attr]
    assert checks.check(managed("example.com", "Thing")).message == "only here"  # type: ignore[union-attr]
    assert checks.check(managed("gcp.crossplane.io", "Network")).source == "script: _.crossplane.io/_/health.lua"  # type: ignore[union-attr]


def test_fleet_file_names_customizations_relative_to_itself(tmp_path: Path, customizations: Path) -> None:
    fleet_file = tmp_path / "fleetdeck.yaml"
    fleet_file.write_text(yaml.safe_dump({
        "repo": {"url": str(tmp_path)}, "clusters": [{"name": "dev"}],
        "health": {"customizations": ["resource_customizations"]},
    }))
    fleet = load_fleet(fleet_file)
    assert fleet.health.customizations == ("resource_customizations",)
    checks = load_health_checks(HealthSettings(), fleet, environ={})
    assert checks is not None
    assert checks.check(certificate()).source == "script: cert-manager.io/Certificate/health.lua"  # type: ignore[union-attr]
    fleet_file.write_text(yaml.safe_dump({
        "repo": {"url": str(tmp_path)}, "clusters": [{"name": "dev"}], "health": {"customization": ["x"]},
    }))
    with pytest.raises(ConfigError, match="customization"):
        load_fleet(fleet_file)
    fleet_file.write_text(yaml.safe_dump({
        "repo": {"url": str(tmp_path)}, "clusters": [{"name": "dev"}], "health": {"argocdConfigMap": {"cluster": "nope"}},
    }))
    with pytest.raises(ConfigError, match="unknown cluster 'nope'"):
        load_fleet(fleet_file)
    fleet_file.write_text(yaml.safe_dump({
        "repo": {"url": str(tmp_path)}, "clusters": [{"name": "dev"}], "health": {"argocdConfigMap": {"cluster": "dev"}},
    }))
    ref = load_fleet(fleet_file).health.argocd_config_map
    assert ref is not None and (ref.cluster, ref.namespace, ref.name) == ("dev", "argocd", "argocd-cm")
