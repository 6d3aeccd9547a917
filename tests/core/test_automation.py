"""Auto-sync decisions: Argo CD's autoSync safeguards, case by case."""

from __future__ import annotations

from typing import Any

import pytest

from core.model import (
    AppControl,
    AppName,
    AppStatus,
    ClusterName,
    Health,
    HealthStatus,
    OperationPhase,
    OperationState,
    ResourceDiff,
    ResourceKey,
    ResourceState,
    ResourceStatus,
    Revision,
    SyncStatus,
)
from core.sync.automation import (
    AppInputs,
    AutoSyncPolicy,
    LastOperation,
    decide_auto_sync,
    self_heal_delay,
    should_auto_sync,
)

SHA = "a" * 40
OTHER = "b" * 40
DEP = ResourceKey("apps", "Deployment", "web", "api")
CM = ResourceKey("", "ConfigMap", "web", "cfg")
OLD = ResourceKey("", "ConfigMap", "web", "old")
NOW = 1_000_000.0

AUTO = AutoSyncPolicy(enabled=True)
AUTO_PRUNE = AutoSyncPolicy(enabled=True, prune=True)
HEAL = AutoSyncPolicy(enabled=True, self_heal=True)


def _app(sync: SyncStatus = SyncStatus.OUT_OF_SYNC, *states: tuple[ResourceKey, ResourceState],
         **kw: Any) -> AppInputs:
    resources = states or ((DEP, ResourceState.OUT_OF_SYNC), (CM, ResourceState.SYNCED))
    return AppInputs(sync=sync, revision=SHA, resources=tuple(resources), **kw)


def _last(phase: OperationPhase, *, revision: str = SHA, finished: float = NOW - 1, attempts: int = 0,
          message: str = "") -> LastOperation:
    return LastOperation(revision=revision, phase=phase, finished_at=finished, self_heal_attempts=attempts,
                         message=message)


CASES = [
    pytest.param(_app(), AutoSyncPolicy(), None, False, "not enabled", id="automation-off"),
    pytest.param(_app(), AUTO, None, True, "OutOfSync", id="out-of-sync-first-time"),
    pytest.param(_app(SyncStatus.SYNCED, (DEP, ResourceState.SYNCED)), AUTO, None, False, "Synced", id="synced"),
    pytest.param(_app(SyncStatus.UNKNOWN, (DEP, ResourceState.UNKNOWN)), AUTO, None, False, "Unknown",
                 id="unknown-never-syncs"),
    pytest.param(_app(paused=True), AUTO, None, False, "paused", id="paused"),
    pytest.param(_app(suspended=True), AUTO, None, False, "suspended", id="suspended"),
    pytest.param(_app(operation_running=True), AUTO, None, False, "in progress", id="operation-running"),
    pytest.param(_app(deleting=True), AUTO, None, False, "deleted", id="deleting"),
    pytest.param(_app(automation_owner=False), AUTO, None, False, "lease", id="not-the-automation-owner"),
    pytest.param(_app(), AUTO, _last(OperationPhase.RUNNING), False, "in progress", id="last-still-running"),
    pytest.param(_app(), AUTO, _last(OperationPhase.SUCCEEDED, revision=OTHER), True, "OutOfSync",
                 id="new-revision-after-success"),
    pytest.param(_app(), AUTO, _last(OperationPhase.FAILED, revision=OTHER), True, "OutOfSync",
                 id="new-revision-after-failure"),
    pytest.param(_app(), AUTO, _last(OperationPhase.SUCCEEDED), False, "already to", id="once-per-revision"),
    pytest.param(_app(), AUTO, _last(OperationPhase.FAILED, message="Invalid"), False,
                 "Failed last sync attempt", id="failed-revision-not-retried"),
    pytest.param(_app(), HEAL, _last(OperationPhase.FAILED), False, "Failed last sync attempt",
                 id="failed-revision-not-retried-even-with-self-heal"),
    pytest.param(_app(), HEAL, _last(OperationPhase.SUCCEEDED, finished=NOW - 1), False, "backing off",
                 id="self-heal-backoff"),
    pytest.param(_app(), HEAL, _last(OperationPhase.SUCCEEDED, finished=NOW - 6), True, "self-heal",
                 id="self-heal-after-backoff"),
    pytest.param(_app(), HEAL, _last(OperationPhase.SUCCEEDED, finished=NOW - 15, attempts=2), False,
                 "backing off", id="self-heal-backoff-grows"),
    pytest.param(_app(SyncStatus.OUT_OF_SYNC, (DEP, ResourceState.SYNCED), (OLD, ResourceState.EXTRANEOUS)),
                 AUTO, None, False, "prune extra resources only", id="only-prunes-pending-auto-prune-off"),
    pytest.param(_app(SyncStatus.OUT_OF_SYNC, (DEP, ResourceState.SYNCED), (OLD, ResourceState.EXTRANEOUS)),
                 AUTO_PRUNE, None, True, "OutOfSync", id="only-prunes-pending-auto-prune-on"),
    pytest.param(_app(SyncStatus.OUT_OF_SYNC, (DEP, ResourceState.EXTRANEOUS), (OLD, ResourceState.EXTRANEOUS)),
                 AUTO_PRUNE, None, False, "wipe out all resources", id="refuse-wipe-out"),
    pytest.param(_app(SyncStatus.OUT_OF_SYNC, (DEP, ResourceState.EXTRANEOUS), (OLD, ResourceState.EXTRANEOUS)),
                 AutoSyncPolicy(enabled=True, prune=True, allow_empty=True), None, True, "OutOfSync",
                 id="wipe-out-with-allow-empty"),
    pytest.param(_app(SyncStatus.OUT_OF_SYNC, (DEP, ResourceState.MISSING)), AUTO, None, True, "OutOfSync",
                 id="missing-resource"),
    pytest.param(_app(non_descendant="bbbbbbbb does not descend from aaaaaaaa"), AUTO, None, False,
                 "waiting for an operator: bbbbbbbb does not descend", id="force-pushed-head-waits"),
    pytest.param(_app(non_descendant="gone"), HEAL, _last(OperationPhase.SUCCEEDED, finished=NOW - 60), False,
                 "waiting for an operator", id="force-pushed-head-not-self-healed"),
]


@pytest.mark.parametrize(("app", "policy", "last", "expected", "reason"), CASES)
def test_should_auto_sync(app: AppInputs, policy: AutoSyncPolicy, last: LastOperation | None,
                          expected: bool, reason: str) -> None:
    """Each safeguard gives the expected verdict and says why."""
    sync, why = should_auto_sync(app=app, policy=policy, last_operation=last, now=NOW)
    assert sync is expected
    assert reason in why


def test_failed_revision_is_an_error_condition() -> None:
    """A failed revision becomes a SyncError the console shows, with the last message."""
    decision = decide_auto_sync(app=_app(), policy=AUTO,
                                last_operation=_last(OperationPhase.FAILED, message="webhook denied"), now=NOW)
    assert decision.error
    assert "webhook denied" in decision.reason


def test_self_heal_syncs_only_drifted_resources() -> None:
    """Self-heal selects only the non-Synced resources of the same revision."""
    decision = decide_auto_sync(app=_app(), policy=HEAL,
                                last_operation=_last(OperationPhase.SUCCEEDED, finished=NOW - 60), now=NOW)
    assert decision.sync and decision.self_heal
    assert decision.resources == (DEP,)


def test_self_heal_backoff_reports_when_to_retry() -> None:
    """During self-heal backoff the decision says when to look again."""
    decision = decide_auto_sync(app=_app(), policy=HEAL,
                                last_operation=_last(OperationPhase.SUCCEEDED, finished=NOW - 2), now=NOW)
    assert decision.retry_after == pytest.approx(3.0)


def test_self_heal_delay_is_exponential_and_capped() -> None:
    """Backoff is base * factor**attempts, capped."""
    assert [self_heal_delay(n, HEAL) for n in range(8)] == [5, 10, 20, 40, 80, 160, 180, 180]


def test_inputs_from_app_status() -> None:
    """AppInputs.of reads sync, revision, managed resources, pause and a running operation."""
    diff = ResourceDiff(state=ResourceState.OUT_OF_SYNC)
    status = AppStatus(
        app=AppName("web"), cluster=ClusterName("prod"), namespace="web", path="apps/web",
        sync=SyncStatus.OUT_OF_SYNC, health=Health(HealthStatus.HEALTHY), revision=Revision(sha=SHA),
        resources=(
            ResourceStatus(key=DEP, api_version="apps/v1", state=ResourceState.OUT_OF_SYNC, health=None, diff=diff),
            ResourceStatus(key=CM, api_version="v1", state=ResourceState.SYNCED, health=None, diff=diff,
                           managed=False),
        ),
        control=AppControl(paused=True),
        operation=OperationState(id="op", app=AppName("web"), cluster=ClusterName("prod"), kind="sync",
                                 revision=SHA, phase=OperationPhase.RUNNING),
    )
    inputs = AppInputs.of(status)
    assert inputs.revision == SHA
    assert inputs.resources == ((DEP, ResourceState.OUT_OF_SYNC),)
    assert inputs.paused and inputs.operation_running


def test_non_descendant_head_is_an_error_condition_and_read_from_the_row() -> None:
    """A head that does not descend from the synced revision is never synced automatically: the decision is
    an error condition naming why, and AppInputs.of carries the row's message."""
    decision = decide_auto_sync(app=_app(non_descendant="force-pushed"), policy=AUTO_PRUNE, last_operation=None,
                                now=NOW)
    assert not decision.sync and decision.error
    status = AppStatus(app=AppName("web"), cluster=ClusterName("prod"), namespace="web", path="apps/web",
                       sync=SyncStatus.OUT_OF_SYNC, health=Health(HealthStatus.HEALTHY), revision=Revision(sha=SHA),
                       non_descendant="force-pushed")
    assert AppInputs.of(status).non_descendant == "force-pushed"


def test_an_app_sharing_objects_with_another_app_is_never_synced_automatically() -> None:
    """B8: while another app tracks one of its objects, the app is left alone (no flip-flop), with the reason."""
    shared = ("ConfigMap/web/cfg is also tracked by app 'billing': automated sync leaves it to that app",)
    decision = decide_auto_sync(app=_app(shared=shared), policy=HEAL, last_operation=None, now=NOW)
    assert not decision.sync and "another app tracks its objects" in decision.reason and "billing" in decision.reason
    assert decide_auto_sync(app=_app(), policy=HEAL, last_operation=None, now=NOW).sync
