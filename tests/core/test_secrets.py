"""Secret masking (N20): value-consistent masks, last-applied masking, and no leak anywhere."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping
from typing import Any

import pytest
from deepdiff import DeepDiff

from core.model import ResourceState
from core.reconcile.diff import compare, compare_predicted
from core.reconcile.drift_report import drift_report
from core.reconcile.secrets import MASK, mask_object, mask_secrets

CANARY = "canary-7f3e9b1c-do-not-leak"
CANARY_B64 = base64.b64encode(CANARY.encode()).decode()
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def b64(text: str) -> str:
    """Base64 of ``text``."""
    return base64.b64encode(text.encode()).decode()


def secret(data: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A Secret named db in namespace shop."""
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "shop"},
        "type": "Opaque",
    }
    if data is not None:
        obj["data"] = data
    obj.update(fields)
    return obj


def test_masks_grow_per_distinct_value_per_key() -> None:
    """Per key, the first distinct value is ++++++++ and each further one four + longer."""
    desired, live = secret({"a": b64("x"), "b": b64("same")}), secret({"a": b64("y"), "b": b64("same")})
    mask_secrets(desired, live)
    assert desired["data"] == {"a": MASK, "b": MASK}
    assert live["data"] == {"a": MASK + "++++", "b": MASK}


def test_last_applied_annotation_masked_consistently() -> None:
    """Values inside last-applied are masked with the same per-key masks as data."""
    applied = json.dumps(secret(stringData={"a": CANARY}, data={"b": b64("old")}))
    live = secret({"b": b64("old")}, metadata={"name": "db", "annotations": {LAST_APPLIED: applied}})
    mask_secrets(live)
    masked = json.loads(live["metadata"]["annotations"][LAST_APPLIED])
    assert masked["data"] == {"b": MASK} and masked["stringData"] == {"a": MASK}
    assert CANARY not in json.dumps(live)


def test_unparsable_last_applied_replaced_whole() -> None:
    """A last-applied annotation that is not JSON is replaced by a mask rather than kept."""
    live = secret({}, metadata={"name": "db", "annotations": {LAST_APPLIED: "{" + CANARY}})
    assert mask_object(live)["metadata"]["annotations"][LAST_APPLIED] == MASK


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(secret(stringData={"token": CANARY}), id="secret"),
        pytest.param(
            {"apiVersion": "v1", "kind": "SecretList", "items": [secret({"token": CANARY_B64})]},
            id="secret-list",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "List", "items": [secret({"token": CANARY_B64})]}, id="v1-list"
        ),
    ],
)
def test_mask_object_for_other_outputs(obj: dict[str, Any]) -> None:
    """mask_object hides Secret values (also inside lists) and leaves the input untouched."""
    before = copy.deepcopy(obj)
    masked = json.dumps(mask_object(obj))
    assert CANARY not in masked and CANARY_B64 not in masked and MASK in masked
    assert obj == before


def test_non_secrets_untouched() -> None:
    """ConfigMaps and other kinds are not masked."""
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    assert mask_object(cm) == cm


def assert_no_canary(value: Any) -> None:
    """Neither the canary nor its base64 appears in the repr of ``value``."""
    text = repr(value)
    assert CANARY not in text and CANARY_B64 not in text


def canary_pair() -> tuple[dict[str, Any], dict[str, Any]]:
    """Desired with the canary in stringData; live with another value and the canary in last-applied."""
    desired = secret(stringData={"password": CANARY, "user": "app"})
    applied = json.dumps(secret(stringData={"password": CANARY, "user": "app"}))
    live = secret(
        {"password": b64("previous"), "user": b64("app"), "extra": CANARY_B64},
        metadata={"name": "db", "namespace": "shop", "annotations": {LAST_APPLIED: applied},
                  "managedFields": [{"manager": "fleetdeck", "operation": "Apply", "time": "2026-05-01T00:00:00Z",
                                     "fieldsV1": {"f:data": {"f:password": {}, "f:user": {}, "f:extra": {}}}}]},
    )  # fmt: skip
    return desired, live


@pytest.mark.parametrize("through_deepdiff", [False, True])
def test_canary_never_leaks_from_local_diff(monkeypatch: pytest.MonkeyPatch, through_deepdiff: bool) -> None:
    """The planted value appears nowhere in the ResourceDiff, and deepdiff never receives it (the
    changes here are scalars, which ``_explain`` reports without deepdiff; the second run sends every
    differing field through deepdiff, as lists are)."""
    seen: list[str] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(repr(args))
        return DeepDiff(*args, **kwargs)

    monkeypatch.setattr("core.reconcile.diff.DeepDiff", spy)
    if through_deepdiff:
        monkeypatch.setattr("core.reconcile.diff._plain_op", lambda live, desired: None)
    desired, live = canary_pair()
    result = compare(desired, live)
    assert result.state is ResourceState.OUT_OF_SYNC
    for part in (result, result.changes, result.desired, result.live, result.message, result.warnings):
        assert_no_canary(part)
    assert bool(seen) is through_deepdiff
    assert all(CANARY not in args and CANARY_B64 not in args for args in seen)
    changes = {c.path: (c.op, c.desired, c.live) for c in result.changes}
    assert changes["/data/password"] == ("replace", MASK, MASK + "++++")
    assert changes["/data/extra"][0] == "remove"
    assert "/data/user" not in changes


def test_canary_never_leaks_from_dry_run_or_cli() -> None:
    """The dry-run comparison and the drift CLI report mask just the same."""
    desired, live = canary_pair()
    predicted = copy.deepcopy(live)
    predicted["data"]["password"] = CANARY_B64
    result = compare_predicted(predicted, live)
    assert result.state is ResourceState.OUT_OF_SYNC
    assert_no_canary(result)
    report = drift_report(desired, live)
    assert_no_canary(json.dumps(report))
    assert report["in_sync"] is False


def test_missing_and_extraneous_secrets_masked() -> None:
    """One-sided results (Missing, Extraneous) are masked too."""
    desired, live = canary_pair()
    assert_no_canary(compare(desired, None))
    assert_no_canary(compare(None, live))


def test_equal_secret_values_are_synced() -> None:
    """Masking preserves equality: the same value in stringData and base64 data is Synced."""
    desired = secret(stringData={"password": CANARY})
    live = secret({"password": CANARY_B64})
    result = compare(desired, live)
    assert result.state is ResourceState.SYNCED
    assert result.desired is not None and result.desired["data"] == {"password": MASK}


# ---------------------------------------------------------------------------------------------- env values


GITHUB_TOKEN_SHAPE = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
JWT_SHAPE = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkZXBsb3kifQ.c2lnbmF0dXJl"


def plain(value: Any) -> Any:
    """A frozen or lazily built mapping as plain JSON data (reading every field)."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def workload(kind: str, env: list[dict[str, Any]], *, init: bool = False) -> dict[str, Any]:
    """A Deployment, CronJob or Pod whose container ``app`` has ``env``."""
    pod = {"initContainers" if init else "containers": [{"name": "app", "image": "app:1", "env": env}]}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"}, "spec": pod}
    if kind == "CronJob":
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "shop"},
                "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": pod}}}}}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "w", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": pod}}}


@pytest.mark.parametrize(("kind", "init"), [("Deployment", False), ("StatefulSet", True), ("CronJob", False),
                                            ("Pod", False), ("Rollout", False)])
def test_secret_env_values_are_masked_in_every_pod_spec(kind: str, init: bool) -> None:
    """A secret-sounding env name, or a credential-shaped value under any name, is masked like Secret data
    (value-consistent: equal values stay equal, a change shows as two different masks); plain settings and
    ``valueFrom`` references are left as they are."""
    env: list[dict[str, Any]] = [{"name": "DB_PASSWORD", "value": CANARY}, {"name": "GIT", "value": GITHUB_TOKEN_SHAPE},
           {"name": "LOG_LEVEL", "value": "debug"}, {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {
               "name": "db", "key": "token"}}}, {"name": "SESSION", "value": f"Bearer {JWT_SHAPE}"}]
    changed = [dict(e) for e in env]
    changed[0]["value"] = CANARY + "-rotated"
    result = compare(workload(kind, env, init=init), workload(kind, changed, init=init))
    assert result.state is ResourceState.OUT_OF_SYNC
    for secret_text in (CANARY, GITHUB_TOKEN_SHAPE, JWT_SHAPE):
        assert secret_text not in repr(result), secret_text
    changes = {c.path: (c.desired, c.live) for c in result.changes}
    assert list(changes.values()) == [(MASK, MASK + "++++")], changes
    shown = repr(result.desired)
    assert "'debug'" in shown and "secretKeyRef" in shown
    same = compare(workload(kind, env, init=init), workload(kind, [dict(e) for e in env], init=init))
    assert same.state is ResourceState.SYNCED  # the drifted comparison before left the kernel's cache intact
    for side in (same.desired, same.live):  # the in-sync kernel's display objects are masked as well
        assert CANARY not in json.dumps(plain(side)) and GITHUB_TOKEN_SHAPE not in json.dumps(plain(side))
        assert MASK in json.dumps(plain(side))


def test_secret_env_values_in_last_applied_are_masked() -> None:
    """kubectl's last-applied annotation of a workload carries the env too: masked the same way."""
    env: list[dict[str, Any]] = [{"name": "STRIPE", "value": "sk_live_" + "x" * 24}]
    live = workload("Deployment", env)
    live["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(workload("Deployment", env))}
    out = mask_object(live)
    assert "sk_live_" not in json.dumps(out)
    assert json.loads(out["metadata"]["annotations"][LAST_APPLIED])["spec"]["template"]["spec"]["containers"][0][
        "env"][0]["value"] == MASK
    plain = workload("Deployment", [{"name": "MODE", "value": "blue"}])
    plain["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(workload("Deployment", []), indent=2)}
    assert mask_object(plain) == plain  # nothing to mask: the annotation is left byte for byte


def test_drift_cli_report_masks_env_values() -> None:
    """The offline drift report (the `drift` verb) never carries an env canary."""
    env: list[dict[str, Any]] = [{"name": "AWS_SECRET_ACCESS_KEY", "value": CANARY}]
    report = drift_report(workload("Deployment", env), workload("Deployment", [{**env[0], "value": "other"}]))
    assert CANARY not in json.dumps(report) and report["in_sync"] is False
