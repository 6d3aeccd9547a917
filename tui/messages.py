"""Messages between the console's screens and the app: past-tense facts and ``…Requested`` requests.

Screens post requests up (``SyncRequested``); the app runs the engine calls in workers and posts facts
(``SnapshotChanged``, ``SyncProgressed``, ``SyncFinished``). "Latest state" messages are ``can_replace``
so a slow terminal never falls behind a fast fleet. Messages carry only frozen ``core.model`` values.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from core.model import FleetSnapshot, OperationState, SyncPlan
from tui.fleet_query import RowKey


@dataclass
class SnapshotChanged(Message):
    """The engine published a newer fleet snapshot."""

    snapshot: FleetSnapshot

    def can_replace(self, message: Message) -> bool:
        """A newer snapshot makes an older queued one pointless."""
        return isinstance(message, SnapshotChanged)


@dataclass
class SyncRequested(Message):
    """The operator confirmed these plans; run each of them."""

    plans: tuple[SyncPlan, ...]


@dataclass
class SyncProgressed(Message):
    """A running operation reported progress."""

    state: OperationState

    def can_replace(self, message: Message) -> bool:
        """Only the newest progress of the same operation matters."""
        return isinstance(message, SyncProgressed) and message.state.id == self.state.id


@dataclass
class SyncFinished(Message):
    """An operation ended; ``state`` is its final result (the drift clears only with a new snapshot)."""

    state: OperationState


@dataclass
class PauseRequested(Message):
    """Pause automated sync of these rows."""

    targets: tuple[RowKey, ...]
    reason: str
    expires_in: float | None = None


@dataclass
class ResumeRequested(Message):
    """Resume automated sync of these rows (and clear any rollback pin)."""

    targets: tuple[RowKey, ...]


@dataclass
class RefreshRequested(Message):
    """Fetch Git and recompute now, for one row or (when ``target`` is ``None``) the whole fleet."""

    target: RowKey | None = None
    hard: bool = False


@dataclass
class WorkerFailed(Message):
    """A screen's worker raised; the app shows it in an ErrorModal (``Worker.StateChanged`` does not bubble)."""

    error: BaseException
    description: str = ""
