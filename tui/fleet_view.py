"""FleetView: the fleet table's ordered rows, kept up to date snapshot by snapshot.

``fleet_query.build_rows`` is the reference: it filters, sorts and groups a whole snapshot. A
``FleetView`` gives exactly the same rows in the same order, but a new snapshot costs O(changed rows ·
log N): the engine reuses the same ``AppStatus`` object for every row that did not change, so an identity
scan of ``snapshot.apps`` (C-level ``map``/``compress``, no Python per row) finds the changed ones, and
each changed row is removed from and re-inserted into its group's sorted list by bisecting on its sort
key. Header counts (``FleetCounts``) are kept the same way, by delta. A change of filter, sort or
grouping, clusters coming or going, duplicate keys or many changed rows (> ``FULL_REBUILD_FRACTION``) rebuild
everything from scratch.

Nothing here touches Textual; the screen hands the result of ``apply`` to the table.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, compress
from operator import attrgetter, is_not, not_
from typing import overload

from core.model import (
    AppStatus,
    ClusterName,
    ClusterStatus,
    ConnectionState,
    FleetSnapshot,
    HealthStatus,
    SyncStatus,
)
from tui.fleet_query import (
    _SYNC_ORDER,
    FleetCounts,
    FleetRow,
    GroupBy,
    GroupRow,
    Predicate,
    RowKey,
    SortKey,
    TableRow,
    listing_text,
    parse_filter,
)

FULL_REBUILD_FRACTION = 0.05
"""More changed rows than this fraction of the fleet: rebuild from scratch rather than row by row."""

SortValue = tuple[object, ...]


def sort_value(sort: SortKey) -> Callable[[AppStatus], SortValue]:
    """The ascending sort key of an app status (the same order as ``fleet_query``'s, over statuses)."""
    if sort is SortKey.CLUSTER:
        return attrgetter("cluster", "app")  # type: ignore[return-value]
    if sort is SortKey.SYNC:
        return lambda a: (_SYNC_ORDER[a.sync], -a.drift_count, a.app, a.cluster)
    if sort is SortKey.HEALTH:
        return lambda a: (-a.health.status.rank, a.app, a.cluster)
    return attrgetter("app", "cluster")  # type: ignore[return-value]


def group_label(app: AppStatus, group: GroupBy) -> str:
    """The heading an app's row sits under (``""`` when not grouping)."""
    if group is GroupBy.NONE:
        return ""
    if group is GroupBy.CLUSTER:
        return app.cluster
    return app.labels.get("env", "") or "(no env label)"


@dataclass(frozen=True, slots=True)
class ViewParams:
    """What decides which rows are shown and in which order."""

    filter_text: str = ""
    sort: SortKey = SortKey.NAME
    reverse: bool = False
    group: GroupBy = GroupBy.NONE


@dataclass(slots=True)
class _Group:
    """One group's rows in ascending sort order, with the numbers of its heading."""

    label: str
    values: list[SortValue] = field(default_factory=list)
    rows: list[AppStatus] = field(default_factory=list)
    """The statuses of the group's rows; ``FleetRow`` objects are made when a row is read."""
    out_of_sync: int = 0
    degraded: int = 0
    heading: GroupRow | None = None


@dataclass(frozen=True, slots=True)
class ViewChange:
    """What one ``apply`` did to the rows.

    ``full`` means everything may have moved (repaint all). Otherwise ``changed`` are rows replaced in
    place (same display position), ``removed`` rows that left, ``inserted`` rows that arrived or moved,
    and ``headings`` group headings whose numbers changed; ``moved`` is whether any display position
    shifted (an insertion, a removal or a move).
    """

    full: bool
    changed: tuple[FleetRow, ...] = ()
    replaced: tuple[FleetRow, ...] = ()
    """The rows ``changed`` replaced, in the same order."""
    removed: tuple[FleetRow, ...] = ()
    inserted: tuple[FleetRow, ...] = ()
    headings: tuple[GroupRow, ...] = ()

    @property
    def moved(self) -> bool:
        """Whether display positions shifted."""
        return self.full or bool(self.removed or self.inserted)


class _Counter:
    """``FleetCounts`` maintained by adding and removing app statuses."""

    def __init__(self) -> None:
        self.names: Counter[str] = Counter()
        self.rows = self.out_of_sync = self.degraded = self.unknown = self.paused = self.running = 0
        self.loading = 0

    def reset(self, apps: Sequence[AppStatus]) -> None:
        self.names = Counter(map(attrgetter("app"), apps))
        self.rows = len(apps)
        self.out_of_sync = self.unknown = self.degraded = self.paused = self.running = 0
        syncs = Counter(map(attrgetter("sync"), apps))
        self.out_of_sync = syncs[SyncStatus.OUT_OF_SYNC]
        self.loading = sum(map(attrgetter("loading"), apps))
        self.unknown = syncs[SyncStatus.UNKNOWN] - self.loading
        self.degraded = Counter(map(attrgetter("health.status"), apps))[HealthStatus.DEGRADED]
        self.paused = sum(map(attrgetter("control.paused"), apps))
        self.running = sum(1 for a in compress(apps, map(attrgetter("operation"), apps)) if _running(a))

    def add(self, app: AppStatus, sign: int) -> None:
        self.names[app.app] += sign
        if not self.names[app.app]:
            del self.names[app.app]
        self.rows += sign
        self.out_of_sync += sign * (app.sync is SyncStatus.OUT_OF_SYNC)
        self.unknown += sign * (app.sync is SyncStatus.UNKNOWN and not app.loading)
        self.loading += sign * app.loading
        self.degraded += sign * (app.health.status is HealthStatus.DEGRADED)
        self.paused += sign * bool(app.control.paused)
        self.running += sign * _running(app)

    def counts(self, clusters: Sequence[ClusterStatus]) -> FleetCounts:
        return FleetCounts(
            apps=len(self.names),
            rows=self.rows,
            out_of_sync=self.out_of_sync,
            degraded=self.degraded,
            unknown=self.unknown,
            paused=self.paused,
            unreachable=sum(1 for c in clusters if c.connection is ConnectionState.UNREACHABLE),
            running=self.running,
            loading=self.loading,
            listing=listing_text(clusters),
        )


def _running(app: AppStatus) -> bool:
    return app.operation is not None and not app.operation.phase.completed


class FleetView(Sequence[TableRow]):
    """The rows ``build_rows`` would give for the last snapshot, as a sequence, updated incrementally."""

    def __init__(self, params: ViewParams | None = None) -> None:
        self.params = params or ViewParams()
        self.counts: FleetCounts | None = None
        """Header counts of the last snapshot (``count_fleet`` of it)."""
        self.snapshot: FleetSnapshot | None = None
        self.full_rebuilds = 0
        """How many ``apply`` calls rebuilt everything (for tests)."""
        self._apps: tuple[AppStatus, ...] = ()
        self._clusters: dict[ClusterName, ClusterStatus] = {}
        self._rows: dict[RowKey, AppStatus] = {}
        """Statuses of the shown rows, by key."""
        self._made: dict[RowKey, FleetRow] = {}
        """Rows already handed out: the same object is returned while its status is unchanged."""
        self._groups: dict[str, _Group] = {}
        self._labels: list[str] = []
        self._offsets: list[int] = []
        self._length = 0
        self._unique = True
        self._keys: set[RowKey] = set()
        self._counter = _Counter()
        self._setup(self.params)

    def _setup(self, params: ViewParams) -> None:
        self.params = params
        self._predicate: Predicate | None = parse_filter(params.filter_text)
        self._value = sort_value(params.sort)
        self._grouped = params.group is not GroupBy.NONE

    # ------------------------------------------------------------------ updates

    def apply(self, snapshot: FleetSnapshot | None, params: ViewParams | None = None) -> ViewChange:
        """Show ``snapshot`` with ``params`` (the current ones when ``None``); say what changed."""
        params = params or self.params
        previous = self.snapshot
        self.snapshot = snapshot
        if snapshot is None:
            self._setup(params)
            self._reset_rows(())
            self._made = {}
            self._apps, self._clusters, self.counts, self._keys = (), {}, None, set()
            return ViewChange(full=True)
        moved = self._changed_clusters(snapshot.clusters)
        if params != self.params or previous is None or moved is None or not self._unique:
            return self._rebuild(snapshot, params)
        delta = self._delta(self._apps, snapshot.apps)
        if delta is None:
            return self._rebuild(snapshot, params)
        forced: list[AppStatus] = []
        if moved:  # every row on a cluster whose status changed gets that status, even if the app did not change
            apps = snapshot.apps
            forced = list(compress(apps, map(moved.__contains__, map(attrgetter("cluster"), apps))))
            if len(forced) + len(delta[1]) > max(1, int(FULL_REBUILD_FRACTION * len(apps))):
                return self._rebuild(snapshot, params)
            self._clusters.update((c.name, c) for c in snapshot.clusters if c.name in moved)
        self._apps = snapshot.apps
        change = self._apply_delta(*delta, forced)
        self.counts = self._counter.counts(snapshot.clusters)
        return change

    def _changed_clusters(self, clusters: Sequence[ClusterStatus]) -> set[ClusterName] | None:
        """Names of the clusters whose status changed (an equal new status is no change); ``None`` when
        clusters came or went."""
        by_name = {c.name: c for c in clusters}
        if by_name.keys() != self._clusters.keys() or len(by_name) != len(clusters):
            return None
        return {name for name, status in by_name.items()
                if status is not (old := self._clusters[name]) and status != old}

    def _delta(
        self, old: tuple[AppStatus, ...], new: tuple[AppStatus, ...]
    ) -> tuple[list[AppStatus], list[AppStatus]] | None:
        """(statuses gone, statuses new) between two snapshots, by identity; ``None`` when too many."""
        limit = max(1, int(FULL_REBUILD_FRACTION * max(len(old), len(new))))
        if len(old) == len(new):
            # a status made again but equal (a new evaluation after a Git poll) changes nothing shown
            positions = [i for i in compress(range(len(new)), map(is_not, new, old)) if new[i] != old[i]]
            if len(positions) > limit:
                return None
            return [old[i] for i in positions], [new[i] for i in positions]
        if abs(len(old) - len(new)) > limit:
            return None
        old_ids, new_ids = set(map(id, old)), set(map(id, new))
        gone = list(compress(old, map(not_, map(new_ids.__contains__, map(id, old)))))
        came = list(compress(new, map(not_, map(old_ids.__contains__, map(id, new)))))
        if len(gone) + len(came) > 2 * limit:
            return None
        return gone, came

    def _apply_delta(self, gone: list[AppStatus], came: list[AppStatus], forced: list[AppStatus]) -> ViewChange:
        """Move the rows of ``gone`` and ``came`` statuses, and re-make the rows in ``forced`` (their
        cluster's status changed)."""
        before = {a.id: a for a in gone}
        after = {a.id: a for a in came}
        keys = self._keys
        if len(after) != len(came) or any(k in keys for k in after.keys() - before.keys()):
            # a duplicate key arrived: only a full build shows both rows
            assert self.snapshot is not None
            return self._rebuild(self.snapshot, self.params)
        keys.difference_update(before.keys() - after.keys())
        keys.update(after.keys())
        changed: list[FleetRow] = []
        replaced: list[FleetRow] = []
        removed: list[FleetRow] = []
        inserted: list[FleetRow] = []
        touched: set[str] = set()
        forced_by_key = {a.id: a for a in forced}
        for key in before.keys() | after.keys() | forced_by_key.keys():
            old_status, new_status = before.get(key), after.get(key)
            if old_status is new_status:
                if key not in forced_by_key:
                    continue  # the same status at another index of the tuple
                old_status = new_status = forced_by_key[key]
            else:
                if old_status is not None:
                    self._counter.add(old_status, -1)
                if new_status is not None:
                    self._counter.add(new_status, 1)
            old_app = self._rows.get(key)
            new_app = None
            if new_status is not None:
                cluster = self._clusters.get(new_status.cluster)
                if self._predicate is None or self._predicate(new_status, cluster):
                    new_app = new_status
            if old_app is None and new_app is None:
                continue
            old_row = self._made.pop(key, None) if old_app is not None else None
            if old_app is not None and old_row is None:
                old_row = FleetRow.of(old_app, self._clusters.get(old_app.cluster))
            if old_app is not None and new_app is not None and self._same_place(old_app, new_app):
                assert old_row is not None
                group = self._groups[group_label(old_app, self.params.group)]
                index = self._find(group, old_app)
                group.rows[index] = new_app
                self._rows[key] = new_app
                self._count_heading(group, old_app, -1)
                self._count_heading(group, new_app, 1)
                touched.add(group.label)
                changed.append(self._row(new_app))
                replaced.append(old_row)
                continue
            if old_app is not None:
                assert old_row is not None
                touched.add(self._remove(old_app))
                removed.append(old_row)
            if new_app is not None:
                touched.add(self._insert(new_app))
                inserted.append(self._row(new_app))
        if removed or inserted:
            self._reindex()
        headings = []
        for label in touched:
            touched_group = self._groups.get(label)
            if touched_group is not None and self._grouped:
                previous = touched_group.heading  # None: never shown yet, nothing to refresh
                if previous is not None and self._heading(touched_group) is not previous:
                    headings.append(self._heading(touched_group))
        return ViewChange(False, tuple(changed), tuple(replaced), tuple(removed), tuple(inserted), tuple(headings))

    def _same_place(self, old: AppStatus, new: AppStatus) -> bool:
        group = self.params.group
        return self._value(old) == self._value(new) and group_label(old, group) == group_label(new, group)

    def _find(self, group: _Group, app: AppStatus) -> int:
        index = bisect_left(group.values, self._value(app))
        while group.rows[index] is not app:  # only with duplicate keys (a full build shows every one)
            index += 1
        return index

    def _row(self, app: AppStatus) -> FleetRow:
        """The row of ``app`` (made once, then the same object while the status is the same)."""
        key = (app.app, app.cluster)
        row = self._made.get(key)
        if row is None or row.app is not app:
            row = self._made[key] = FleetRow.of(app, self._clusters.get(app.cluster))
        return row

    def _remove(self, app: AppStatus) -> str:
        label = group_label(app, self.params.group)
        group = self._groups[label]
        index = self._find(group, app)
        del group.values[index]
        del group.rows[index]
        del self._rows[(app.app, app.cluster)]
        self._count_heading(group, app, -1)
        if not group.rows:
            del self._groups[label]
        return label

    def _insert(self, app: AppStatus) -> str:
        label = group_label(app, self.params.group)
        group = self._groups.get(label)
        if group is None:
            group = self._groups[label] = _Group(label)
        value = self._value(app)
        index = bisect_right(group.values, value)
        group.values.insert(index, value)
        group.rows.insert(index, app)
        self._rows[(app.app, app.cluster)] = app
        self._count_heading(group, app, 1)
        return label

    @staticmethod
    def _count_heading(group: _Group, app: AppStatus, sign: int) -> None:
        group.out_of_sync += sign * (app.sync is SyncStatus.OUT_OF_SYNC)
        group.degraded += sign * (app.health.status is HealthStatus.DEGRADED)

    def _rebuild(self, snapshot: FleetSnapshot, params: ViewParams) -> ViewChange:
        self.full_rebuilds += 1
        self._setup(params)
        self._apps = snapshot.apps
        self._clusters = {c.name: c for c in snapshot.clusters}
        self._counter.reset(snapshot.apps)
        self.counts = self._counter.counts(snapshot.clusters)
        predicate, clusters = self._predicate, self._clusters
        apps: Sequence[AppStatus] = snapshot.apps
        if predicate is not None:
            apps = [a for a in apps if predicate(a, clusters.get(a.cluster))]
        everything = snapshot.apps
        self._keys = set(zip(map(attrgetter("app"), everything), map(attrgetter("cluster"), everything), strict=True))
        self._unique = len(self._keys) == len(snapshot.apps)
        self._reset_rows(apps)
        made = self._made  # keep the rows already handed out whose status and cluster are the same
        self._made = {k: r for k, r in made.items() if self._rows.get(k) is r.app and clusters.get(k[1]) is r.cluster}
        return ViewChange(full=True)

    def _reset_rows(self, apps: Sequence[AppStatus]) -> None:
        ordered = list(apps)
        ordered.sort(key=self._value)  # stable: equal keys (duplicates only) keep the snapshot's order
        values = list(map(self._value, ordered))
        self._groups = {}
        if not self._grouped:
            if ordered:
                self._groups[""] = _Group("", values, ordered)
        else:
            for sort_value_, app in zip(values, ordered, strict=True):
                label = group_label(app, self.params.group)
                group = self._groups.get(label)
                if group is None:
                    group = self._groups[label] = _Group(label)
                group.values.append(sort_value_)
                group.rows.append(app)
                self._count_heading(group, app, 1)
        self._rows = dict(zip(zip(map(attrgetter("app"), ordered), map(attrgetter("cluster"), ordered), strict=True),
                              ordered, strict=True))
        self._reindex()

    def _reindex(self) -> None:
        self._labels = sorted(self._groups)
        offsets, total = [], 0
        extra = 1 if self._grouped else 0
        for label in self._labels:
            offsets.append(total)
            total += extra + len(self._groups[label].rows)
        self._offsets, self._length = offsets, total

    def _heading(self, group: _Group) -> GroupRow:
        heading = group.heading
        cluster = self._clusters.get(ClusterName(group.label)) if self.params.group is GroupBy.CLUSTER else None
        if (heading is None or heading.count != len(group.rows) or heading.out_of_sync != group.out_of_sync
                or heading.degraded != group.degraded or heading.cluster is not cluster):
            heading = GroupRow(group.label, len(group.rows), group.out_of_sync, group.degraded, cluster)
            group.heading = heading
        return heading

    # ------------------------------------------------------------------ reading

    @property
    def row_count(self) -> int:
        """How many app rows are shown (group headings not counted)."""
        return sum(len(group.rows) for group in self._groups.values())

    def exists(self, key: object) -> bool:
        """Whether the last snapshot has a row with ``key`` (shown or filtered out)."""
        return key in self._keys

    def __contains__(self, item: object) -> bool:
        if isinstance(item, FleetRow):
            return self._made.get(item.key) is item and self._rows.get(item.key) is item.app
        group = self._groups.get(item.label) if isinstance(item, GroupRow) and self._grouped else None
        return group is not None and self._heading(group) == item

    def has_key(self, key: object) -> bool:
        """Whether an app row with ``key`` is shown."""
        return key in self._rows

    def row(self, key: RowKey) -> FleetRow | None:
        """The shown row with ``key``."""
        app = self._rows.get(key)
        return self._row(app) if app is not None else None

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> TableRow: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[TableRow]: ...

    def __getitem__(self, index: int | slice) -> TableRow | Sequence[TableRow]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._length))]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(index)
        slot = bisect_right(self._offsets, index) - 1
        group = self._groups[self._labels[slot]]
        local = index - self._offsets[slot]
        if self._grouped:
            if local == 0:
                return self._heading(group)
            local -= 1
        return self._row(group.rows[len(group.rows) - 1 - local if self.params.reverse else local])

    def __iter__(self) -> Iterator[TableRow]:
        for label in self._labels:
            group = self._groups[label]
            if self._grouped:
                yield self._heading(group)
            yield from map(self._row, reversed(group.rows) if self.params.reverse else group.rows)

    def fleet_rows(self) -> Iterator[FleetRow]:
        """The app rows in display order (no headings)."""
        return map(self._row, self.statuses())

    def statuses(self) -> Iterator[AppStatus]:
        """The statuses of the app rows in display order, without making their rows."""
        groups = (self._groups[label].rows for label in self._labels)
        if self.params.reverse:
            return chain.from_iterable(reversed(rows) for rows in groups)
        return chain.from_iterable(groups)

    def index(self, value: object, start: int = 0, stop: int | None = None) -> int:
        """The display position of a row or heading (``ValueError`` when not shown)."""
        key = value.key if isinstance(value, FleetRow | GroupRow) else value
        position = self.position(key)  # type: ignore[arg-type]
        if position is None:
            raise ValueError(value)
        return position

    def position(self, key: object) -> int | None:
        """The display position of the row (or heading) with ``key``, in O(log N)."""
        if isinstance(key, tuple) and len(key) == 2 and key[0] == "\0group":
            label = key[1]
            if label not in self._groups or not self._grouped:
                return None
            return self._offsets[bisect_left(self._labels, label)]
        app = self._rows.get(key)  # type: ignore[call-overload]
        if app is None:
            return None
        label = group_label(app, self.params.group) if self._grouped else ""
        group = self._groups[label]
        local = self._find(group, app)
        if self.params.reverse:
            local = len(group.rows) - 1 - local
        return self._offsets[bisect_left(self._labels, label)] + (1 if self._grouped else 0) + local
