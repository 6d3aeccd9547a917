"""Filter, sort and group the fleet's rows: pure functions over a ``FleetSnapshot``.

The fleet screen turns a snapshot into the ordered list of rows the table shows. Nothing here touches
Textual or renders anything, so it is tested directly and stays O(rows) per snapshot.

Filter syntax (every term must match; a leading ``-`` negates a term):

* a bare word matches the app name, the cluster name or the namespace (substring, case-insensitive);
* ``key=value`` matches a cluster label (``env=prod``);
* ``app:web`` / ``cluster:prod-eu`` restrict to one field;
* a state word: ``synced``, ``outofsync``, ``unknown``, ``healthy``, ``progressing``, ``degraded``,
  ``missing``, ``suspended``, ``drifted``, ``paused``, ``pinned``, ``stale``, ``unreachable``,
  ``running``, ``error``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from core.model import (
    AppName,
    AppStatus,
    ClusterName,
    ClusterStatus,
    ConnectionState,
    FleetSnapshot,
    HealthStatus,
    Severity,
    SyncStatus,
)

RowKey = tuple[AppName, ClusterName]
"""Identity of a fleet row: ``(app, cluster)``."""


class SortKey(StrEnum):
    """Orders of the fleet table."""

    NAME = "name"
    CLUSTER = "cluster"
    SYNC = "sync"
    HEALTH = "health"

    def next(self) -> SortKey:
        """The next order in the cycle."""
        members = list(SortKey)
        return members[(members.index(self) + 1) % len(members)]


class GroupBy(StrEnum):
    """How the fleet table groups its rows."""

    NONE = "none"
    CLUSTER = "cluster"
    ENV = "env"

    def next(self) -> GroupBy:
        """The next grouping in the cycle."""
        members = list(GroupBy)
        return members[(members.index(self) + 1) % len(members)]


@dataclass(frozen=True, slots=True, eq=False)
class FleetRow:
    """One (app, cluster) row. Compared by identity: ``build_rows`` reuses the row object while the
    snapshot reuses the app's status, so "did this row change" is an ``is`` check."""

    key: RowKey
    app: AppStatus
    cluster: ClusterStatus | None

    @classmethod
    def of(cls, app: AppStatus, cluster: ClusterStatus | None) -> FleetRow:
        """The row of ``app`` on its cluster."""
        return cls((app.app, app.cluster), app, cluster)


@dataclass(frozen=True, slots=True)
class GroupRow:
    """A group heading (a cluster or an environment) above its rows."""

    label: str
    count: int
    out_of_sync: int
    degraded: int
    cluster: ClusterStatus | None = None

    @property
    def key(self) -> tuple[str, str]:
        """The heading's identity (never equal to a row key)."""
        return ("\0group", self.label)


TableRow = FleetRow | GroupRow
Predicate = Callable[[AppStatus, ClusterStatus | None], bool]


def _has_error(app: AppStatus, _cluster: ClusterStatus | None) -> bool:
    return any(c.severity is Severity.ERROR for c in app.conditions)


def _unreachable(_app: AppStatus, cluster: ClusterStatus | None) -> bool:
    return cluster is not None and cluster.connection is ConnectionState.UNREACHABLE


STATE_WORDS: dict[str, Predicate] = {
    "synced": lambda a, _c: a.sync is SyncStatus.SYNCED,
    "outofsync": lambda a, _c: a.sync is SyncStatus.OUT_OF_SYNC,
    "unknown": lambda a, _c: a.sync is SyncStatus.UNKNOWN or a.health.status is HealthStatus.UNKNOWN,
    "healthy": lambda a, _c: a.health.status is HealthStatus.HEALTHY,
    "progressing": lambda a, _c: a.health.status is HealthStatus.PROGRESSING,
    "degraded": lambda a, _c: a.health.status is HealthStatus.DEGRADED,
    "missing": lambda a, _c: a.health.status is HealthStatus.MISSING,
    "suspended": lambda a, _c: a.health.status is HealthStatus.SUSPENDED,
    "drifted": lambda a, _c: a.drift_count > 0,
    "paused": lambda a, _c: a.control.paused,
    "pinned": lambda a, _c: a.control.pinned is not None,
    "stale": lambda a, _c: a.stale,
    "unreachable": _unreachable,
    "running": lambda a, _c: a.operation is not None and not a.operation.phase.completed,
    "error": _has_error,
}


def _term_predicate(term: str) -> Predicate:
    """The predicate of one filter term (already lower-cased, without negation)."""
    if term in STATE_WORDS:
        return STATE_WORDS[term]
    if "=" in term:
        key, _, value = term.partition("=")
        return lambda a, _c: a.labels.get(key, "").lower() == value
    field, sep, value = term.partition(":")
    if sep and field == "app":
        return lambda a, _c: value in a.app.lower()
    if sep and field == "cluster":
        return lambda a, _c: value in a.cluster.lower()
    return lambda a, _c: term in a.app.lower() or term in a.cluster.lower() or term in a.namespace.lower()


def parse_filter(text: str) -> Predicate | None:
    """Compile a filter string (see the module docstring) into a row predicate.

    Args:
        text: what the operator typed after ``/``.

    Returns:
        A predicate that is true for rows to show; ``None`` for an empty filter (show everything).
    """
    checks: list[tuple[bool, Predicate]] = []
    for raw in text.lower().split():
        negate = raw.startswith("-") and len(raw) > 1
        checks.append((negate, _term_predicate(raw[1:] if negate else raw)))
    if not checks:
        return None

    def predicate(app: AppStatus, cluster: ClusterStatus | None) -> bool:
        return all(check(app, cluster) != negate for negate, check in checks)

    return predicate


_SYNC_ORDER = {SyncStatus.OUT_OF_SYNC: 0, SyncStatus.UNKNOWN: 1, SyncStatus.SYNCED: 2}


def _sort_key(sort: SortKey) -> Callable[[FleetRow], tuple[object, ...]]:
    """Worst first for sync and health, then by name and cluster."""
    if sort is SortKey.CLUSTER:
        return lambda r: (r.app.cluster, r.app.app)
    if sort is SortKey.SYNC:
        return lambda r: (_SYNC_ORDER[r.app.sync], -r.app.drift_count, r.app.app, r.app.cluster)
    if sort is SortKey.HEALTH:
        return lambda r: (-r.app.health.status.rank, r.app.app, r.app.cluster)
    return lambda r: (r.app.app, r.app.cluster)


def _group_label(row: FleetRow, group: GroupBy) -> str:
    if group is GroupBy.CLUSTER:
        return row.app.cluster
    return row.app.labels.get("env", "") or "(no env label)"


def _heading(label: str, rows: Sequence[FleetRow], cluster: ClusterStatus | None) -> GroupRow:
    return GroupRow(
        label=label,
        count=len(rows),
        out_of_sync=sum(1 for r in rows if r.app.sync is SyncStatus.OUT_OF_SYNC),
        degraded=sum(1 for r in rows if r.app.health.status is HealthStatus.DEGRADED),
        cluster=cluster,
    )


def build_rows(
    snapshot: FleetSnapshot | None,
    *,
    filter_text: str = "",
    sort: SortKey = SortKey.NAME,
    reverse: bool = False,
    group: GroupBy = GroupBy.NONE,
    previous: Mapping[RowKey, FleetRow] | None = None,
) -> tuple[TableRow, ...]:
    """The rows the fleet table shows, in order, with group headings when grouping.

    Args:
        snapshot: the current snapshot (``None`` before the first one arrives).
        filter_text: the ``/`` filter.
        sort: the order within each group.
        reverse: reverse that order.
        group: the grouping.
        previous: the last rows by key; a row whose app and cluster status are the same objects is reused.
    """
    if snapshot is None:
        return ()
    clusters = {c.name: c for c in snapshot.clusters}
    predicate = parse_filter(filter_text)
    previous = previous or {}
    rows: list[FleetRow] = []
    for app in snapshot.apps:
        cluster = clusters.get(app.cluster)
        if predicate is not None and not predicate(app, cluster):
            continue
        old = previous.get((app.app, app.cluster))
        rows.append(old if old is not None and old.app is app and old.cluster is cluster else FleetRow.of(app, cluster))
    rows.sort(key=_sort_key(sort), reverse=reverse)
    if group is GroupBy.NONE:
        return tuple(rows)
    return tuple(_grouped(rows, group, clusters))


def _grouped(
    rows: Sequence[FleetRow], group: GroupBy, clusters: dict[ClusterName, ClusterStatus]
) -> Iterable[TableRow]:
    groups: dict[str, list[FleetRow]] = {}
    for row in rows:
        groups.setdefault(_group_label(row, group), []).append(row)
    for label in sorted(groups):
        members = groups[label]
        cluster = clusters.get(ClusterName(label)) if group is GroupBy.CLUSTER else None
        yield _heading(label, members, cluster)
        yield from members


@dataclass(frozen=True, slots=True)
class FleetCounts:
    """The numbers in the header line."""

    apps: int
    rows: int
    out_of_sync: int
    degraded: int
    unknown: int
    paused: int
    unreachable: int
    running: int
    loading: int = 0
    """Rows listed but not evaluated yet (counted here, not as Unknown)."""
    listing: str = ""
    """The list under way, when one cluster is listing (``c1: listing ConfigMap: 1,500 objects so far``),
    or how many clusters are (``3 clusters listing``)."""


def count_fleet(snapshot: FleetSnapshot) -> FleetCounts:
    """Count what the header summarises (one pass over the rows)."""
    names: set[str] = set()
    out_of_sync = degraded = unknown = paused = running = loading = 0
    for app in snapshot.apps:
        names.add(app.app)
        out_of_sync += app.sync is SyncStatus.OUT_OF_SYNC
        unknown += app.sync is SyncStatus.UNKNOWN and not app.loading
        loading += app.loading
        degraded += app.health.status is HealthStatus.DEGRADED
        paused += app.control.paused
        running += app.operation is not None and not app.operation.phase.completed
    return FleetCounts(
        apps=len(names),
        rows=len(snapshot.apps),
        out_of_sync=out_of_sync,
        degraded=degraded,
        unknown=unknown,
        paused=paused,
        unreachable=sum(1 for c in snapshot.clusters if c.connection is ConnectionState.UNREACHABLE),
        running=running,
        loading=loading,
        listing=listing_text(snapshot.clusters),
    )


def listing_text(clusters: Sequence[ClusterStatus]) -> str:
    """The header's part about lists under way: the one cluster's progress, or how many clusters list."""
    listing = [c for c in clusters if c.listing]
    if len(listing) == 1:
        return f"{listing[0].name}: {listing[0].listing}"
    return f"{len(listing)} clusters listing" if listing else ""
