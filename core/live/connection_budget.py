"""A connection budget for a fleet whose open-file limit is too low (fault K17 in docs/reliability.md).

Every request to a cluster needs a socket, and aiohttp has no HTTP/2 to share one. When even the hard
open-file limit is below what the fleet needs (``core.limits.open_file_shortfall``), the engine gives every
cluster's ``KubeClient`` one shared ``ConnectionBudget``: a request (a list page, a get, a dry run, a
heartbeat, a whole watch stream) holds one of its slots while its connection is open, connections are not
kept alive afterwards, and what does not fit waits its turn. Clusters are then queued (slower) instead of
failing one by one with "Too many open files".

A heartbeat waits for its slot before its deadline starts: a queued cluster is not a hung one.
"""

from __future__ import annotations

from core.aio import CountedSlots


class ConnectionBudget(CountedSlots):
    """At most ``slots`` open connections to clusters in the whole process (``in_flight``, ``peak``,
    ``waiting`` and ``queued`` count them).

    Args:
        slots: connections at once (at least 1).
    """

    def __init__(self, slots: int) -> None:
        super().__init__(slots, what="a connection budget's slots")
