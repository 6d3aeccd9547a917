"""How an operation's start and end change an app's shared state: pure transforms of ``AppState``.

Both are applied inside ``AppStateStore.update``, so each is one conditional write and is recomputed
on a fresh read after a conflict. Crash safety rests on two rules: the start writes ``operation``
(phase Running) before the first mutation, and the end appends the history entry in the same write
that clears ``operation`` (and only when ``operation`` is still this one), so a history entry is
written at most once however often the write is retried or the process is killed.

Constraint: pure; no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from core.model import AppControl, HistoryEntry, OperationPhase, ResourceKey, SyncAction, SyncResultEntry
from core.sync.state import AppState, InventoryItem, OperationRecord

APPLIED_ACTIONS = frozenset({SyncAction.CREATED, SyncAction.CONFIGURED, SyncAction.UNCHANGED})


@dataclass(frozen=True, slots=True)
class Pin:
    """A rollback's pin and pause, written with the operation's start."""

    revision: str
    reason: str
    by: str
    at: float


def begin(state: AppState, operation: OperationRecord, *, now: float, pin: Pin | None = None) -> AppState:
    """``state`` with ``operation`` in flight.

    A different operation still recorded as in flight (its process died: this one holds the lease
    now) is moved to ``last_operation`` as an Error saying where it was interrupted. A rollback's pin
    and pause are set in the same write.
    """
    last = state.last_operation
    if state.operation is not None and state.operation.id != operation.id:
        last = replace(state.operation, phase=OperationPhase.ERROR, finished_at=now, message=state.interrupted)
    control = state.control
    if pin is not None:
        control = AppControl(paused=True, reason=pin.reason, by=pin.by, at=pin.at, pinned=pin.revision)
    return replace(state, operation=operation, last_operation=last, control=control)


def at_wave(state: AppState, operation_id: str, *, wave: int | None, stage: str) -> AppState:
    """``state`` with the in-flight operation's progress updated (unchanged if it is not this one)."""
    op = state.operation
    if op is None or op.id != operation_id:
        return state
    return replace(state, operation=replace(op, wave=wave, stage=stage))


def inventory_after(
    previous: Iterable[InventoryItem],
    entries: Iterable[SyncResultEntry],
    *,
    api_versions: Mapping[ResourceKey, str],
) -> tuple[InventoryItem, ...]:
    """The inventory after an operation: applied objects ∪ (previous − pruned).

    Keys of the previous inventory that were neither applied nor pruned stay: they still exist and
    must remain prunable by a later sync (prune disabled now, a prune refused by a webhook or a
    finalizer, a failed wave).
    """
    by_key = {item.key: item for item in previous}
    for entry in entries:
        if entry.action is SyncAction.PRUNED:
            by_key.pop(entry.key, None)
        elif entry.action in APPLIED_ACTIONS and entry.key in api_versions:
            by_key[entry.key] = InventoryItem(entry.key, api_versions[entry.key])
    return tuple(sorted(by_key.values(), key=lambda item: item.key))


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an operation ended, for the final write."""

    operation: OperationRecord
    """The record with its final phase, message and finish time."""
    entries: tuple[SyncResultEntry, ...]
    api_versions: Mapping[ResourceKey, str]
    """apiVersion of every object the operation applied."""
    record_history: bool
    """Successful, not a dry run, and full or self-heal: append a history entry."""
    summary: str


def _next_history(history: tuple[HistoryEntry, ...], outcome: Outcome, *, limit: int) -> tuple[HistoryEntry, ...]:
    op = outcome.operation
    entry = HistoryEntry(id=max((h.id for h in history), default=0) + 1, revision=op.revision, kind=op.kind,
                         by=op.by, at=op.finished_at or op.started_at, result=op.phase.value,
                         summary=outcome.summary, trigger=op.trigger)
    return (*history, entry)[-limit:]


def finish(state: AppState, outcome: Outcome, *, history_limit: int) -> AppState:
    """``state`` after the operation: inventory, last operation, history (at most once), no operation."""
    op = outcome.operation
    ours = state.operation is not None and state.operation.id == op.id
    history = state.history
    if ours and outcome.record_history:
        history = _next_history(history, outcome, limit=history_limit)
    previous = state.last_operation
    attempts = 0
    if op.automated and previous is not None and previous.revision == op.revision and previous.automated:
        attempts = previous.self_heal_attempts + 1
    inventory = inventory_after(state.inventory, outcome.entries, api_versions=outcome.api_versions)
    return replace(
        state,
        inventory=inventory,
        history=history,
        operation=None if ours else state.operation,
        last_operation=replace(op, self_heal_attempts=attempts),
    )
