"""ForwardsWorkerErrors: screens and dialogs pass their workers' failures up to the app.

``Worker.StateChanged`` does not bubble, so without this a failed engine call in a screen's worker would
vanish; the app's single handler turns ``WorkerFailed`` into an ``ErrorModal``.
"""

from __future__ import annotations

from typing import cast

from textual.message_pump import MessagePump
from textual.worker import Worker, WorkerState

from tui.messages import WorkerFailed


class ForwardsWorkerErrors:
    """Mixin for a ``Screen``: post ``WorkerFailed`` when one of its workers ends in error."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Forward a worker's error to the app."""
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            # The mixin is only ever combined with a Screen, which is a MessagePump.
            cast(MessagePump, self).post_message(WorkerFailed(event.worker.error, event.worker.description))
