"""Finding operations a crash left behind: the app's state says Running, but nobody holds its lease.

The engine calls ``interrupted_operation`` when it loads an app's state (at start, after a reconnect)
to show "sync op-… was interrupted at wave 3" instead of a sync that looks as if it were still running.
Nothing is changed here: the next operation of the app records the interruption in ``last_operation``
when it starts (``core.sync.record.begin``). Constraint: reads only.
"""

from __future__ import annotations

from collections.abc import Callable

from core.live.api import KubeAPI
from core.sync.lease import LeaseClient, operation_lease_name
from core.sync.state import AppState, OperationRecord


async def interrupted_operation(
    api: KubeAPI,
    state: AppState,
    *,
    clock: Callable[[], float] | None = None,  # injected in tests
) -> OperationRecord | None:
    """The app's in-flight operation if its process is gone (its lease expired or was taken), else None.

    Args:
        api: the destination cluster.
        state: the app's state, as just loaded.
        clock: wall clock (default: the API server's).
    """
    op = state.operation
    if op is None:
        return None
    leases = LeaseClient(api, clock=clock)
    lease = await leases.read(operation_lease_name(state.app))
    if lease is not None and not lease.expired(leases.clock()) and lease.token == op.id:
        return None
    return op
