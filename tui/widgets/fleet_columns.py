"""Columns of the fleet table: what each cell shows, and which columns fit a given width.

Cells are built as ``rich.text.Text`` from ``formatting.safe`` (names come from clusters and Git) plus
glyph-and-word status labels, so nothing is parsed as markup and no state is shown by colour alone. The
layout drops low-priority columns first, so the table stays usable at 80 columns. No Textual here: the
table widget resolves styles and passes them in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text

from core.model import AppStatus, ConnectionState, HealthStatus, Owner, Severity, SyncStatus
from tui.fleet_query import FleetRow
from tui.formatting import fit, safe, short_age
from tui.glyphs import Glyphs

GAP = 1
"""Blank cells between two columns."""


@dataclass(frozen=True, slots=True)
class CellContext:
    """What a cell needs besides its row."""

    glyphs: Glyphs
    now: float
    styles: Mapping[str, Style]
    """Rich styles resolved from the table's component classes, by state name (``outofsync``…)."""

    def style(self, name: str) -> Style:
        """The style for ``name``, or the null style."""
        return self.styles.get(name, Style.null())


CellRenderer = Callable[[FleetRow, CellContext], Text]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the fleet table."""

    id: str
    title: str
    render: CellRenderer
    priority: int
    """0 is always shown; higher numbers are dropped first when the terminal is narrow."""
    min_width: int
    max_width: int
    variable: bool = False
    """Whether the natural width depends on the rows (names, badges) and is cached by the table."""
    flex: bool = False
    """Takes whatever width is left."""


def _loading(ctx: CellContext) -> Text:
    """A row the engine has not evaluated yet: no state at all, not even Unknown."""
    return Text(f"{ctx.glyphs.ellipsis} loading", style=ctx.style("dim"), end="")


def _sync_cell(row: FleetRow, ctx: CellContext) -> Text:
    if row.app.loading:
        return _loading(ctx)
    status = row.app.sync
    return Text(ctx.glyphs.sync_label(status), style=ctx.style(_SYNC_STYLE[status]), end="")


def _health_cell(row: FleetRow, ctx: CellContext) -> Text:
    if row.app.loading:
        return _loading(ctx)
    status = row.app.health.status
    return Text(ctx.glyphs.health_label(status), style=ctx.style(status.value.lower()), end="")


def _revision_cell(row: FleetRow, ctx: CellContext) -> Text:
    """What runs on the cluster (``AppStatus.running_revision``) and, when Git wants another one,
    ``running → desired``; never the desired revision alone as if it were running."""
    desired = row.app.revision
    running = row.app.running_revision
    if desired is None and not running:
        return Text("-", style=ctx.style("dim"), end="")
    if running and desired is not None and running == desired.sha:
        text = safe(desired.short)
        if desired.committed_at is not None:
            text.append(" " + short_age(ctx.now - desired.committed_at), style=ctx.style("dim"))
        return text
    # compact, so it fits the column's minimum width: ``9e8d7c→4f9d2c`` (running → desired)
    text = safe(running[:6]) if running else Text("-", style=ctx.style("dim"))
    text.append(ctx.glyphs.forward, style=ctx.style("outofsync"))
    text.append_text(safe(desired.sha[:6]) if desired is not None else Text("-", style=ctx.style("dim")))
    text.end = ""
    return text


def _drift_cell(row: FleetRow, ctx: CellContext) -> Text:
    count = row.app.drift_count
    if not count and (row.app.loading or row.app.sync is SyncStatus.UNKNOWN):
        return Text("-", style=ctx.style("dim"), end="")  # not compared: no claim of zero drift
    if not count:
        return Text("0", style=ctx.style("dim"), end="")
    return Text(str(count), style=ctx.style("outofsync"), end="")


def flags_text(app: AppStatus, ctx: CellContext) -> Text:
    """Badges for paused, pinned, stale (cluster or revision), rewritten history (the revision does not descend
    from the one synced), approximate and running, each a glyph and a word."""
    g = ctx.glyphs
    text = Text(end="")
    if app.operation is not None and not app.operation.phase.completed:
        text.append(f"{g.running} {app.operation.kind} ", style=ctx.style("progressing"))
    if app.control.paused:
        text.append(f"{g.paused} paused ", style=ctx.style("paused"))
    if app.control.pinned is not None:
        behind = f"+{app.behind}" if app.behind else ""
        text.append(f"{g.pinned} pin{behind} ", style=ctx.style("pinned"))
    if app.stale:
        text.append(f"{g.stale} stale ", style=ctx.style("stale"))
    if app.revision_stale:
        text.append(f"{g.stale} old rev ", style=ctx.style("stale"))
    if app.non_descendant:
        text.append(f"{g.warning} rewritten ", style=ctx.style("degraded"))
    if any(c.severity is Severity.ERROR for c in app.conditions):
        text.append(f"{g.warning} error ", style=ctx.style("degraded"))
    if app.approximate:
        text.append(f"{g.approximate} ", style=ctx.style("dim"))
    text.rstrip()
    return text


def _flags_cell(row: FleetRow, ctx: CellContext) -> Text:
    return flags_text(row.app, ctx)


def _connection_cell(row: FleetRow, ctx: CellContext) -> Text:
    if row.cluster is None:
        return Text("?", end="")
    state = row.cluster.connection
    style = "stale" if state is not ConnectionState.CONNECTED else "dim"
    return Text(ctx.glyphs.connection_label(state), style=ctx.style(style), end="")


def _message_cell(row: FleetRow, ctx: CellContext) -> Text:
    app = row.app
    if app.conditions:
        return safe(f"{app.conditions[0].type}: {app.conditions[0].message}", ctx.style("degraded"))
    if app.health.message and app.health.status is not HealthStatus.HEALTHY:
        return safe(app.health.message, ctx.style("dim"))
    if app.control.paused and app.control.reason:
        return safe(app.control.reason, ctx.style("dim"))
    return Text("", end="")


def _name_cell(row: FleetRow, _ctx: CellContext) -> Text:
    return safe(row.app.app)


def _cluster_cell(row: FleetRow, ctx: CellContext) -> Text:
    return safe(row.app.cluster, ctx.style("stale") if row.app.stale else "")


OWNER_LABELS = {Owner.FLEETDECK: "fd", Owner.ARGOCD: "argo", Owner.FLUX: "flux"}
"""The owner as the OWNER column shows it (docs/owners.md): fleetdeck itself, Argo CD or Flux."""


def _owner_cell(row: FleetRow, ctx: CellContext) -> Text:
    owner = row.app.owner
    return Text(OWNER_LABELS.get(owner, owner.value), style=ctx.style("dim") if owner is Owner.FLEETDECK else "",
                end="")


_SYNC_STYLE = {SyncStatus.SYNCED: "synced", SyncStatus.OUT_OF_SYNC: "outofsync", SyncStatus.UNKNOWN: "unknown"}

SELECT_WIDTH = 2
"""The leading cursor-and-mark cells."""

COLUMNS: tuple[Column, ...] = (
    Column("app", "APP", _name_cell, priority=0, min_width=8, max_width=32, variable=True),
    Column("cluster", "CLUSTER", _cluster_cell, priority=0, min_width=6, max_width=20, variable=True),
    Column("owner", "OWNER", _owner_cell, priority=0, min_width=5, max_width=5),
    Column("sync", "SYNC", _sync_cell, priority=0, min_width=11, max_width=11),
    Column("health", "HEALTH", _health_cell, priority=0, min_width=13, max_width=13),
    Column("flags", "FLAGS", _flags_cell, priority=1, min_width=8, max_width=30, variable=True),
    Column("revision", "REVISION", _revision_cell, priority=2, min_width=13, max_width=13),
    Column("drift", "DRIFT", _drift_cell, priority=3, min_width=5, max_width=5),
    Column("conn", "CLUSTER STATE", _connection_cell, priority=4, min_width=13, max_width=13),
    Column("message", "MESSAGE", _message_cell, priority=5, min_width=10, max_width=10_000, flex=True),
)
"""Columns in display order."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Which columns are shown, and how wide each is."""

    columns: tuple[Column, ...]
    widths: tuple[int, ...]
    hidden: tuple[Column, ...] = ()
    """Columns dropped for width, in display order; the header ends with ``›`` when there are any."""


MORE_WIDTH = 1
"""Cells of the header's hidden-columns sign (``›``, ASCII ``>``), kept free after a ``GAP``."""


def _wanted(column: Column, natural: Mapping[str, int]) -> int:
    """Cells a column needs before a lower-priority column may be shown: the natural width of an
    always-shown column (names are not cut to make room for extra columns), else the minimum."""
    return natural_width(column, natural) if column.priority == 0 and not column.flex else column.min_width


def full_width(natural: Mapping[str, int], columns: Sequence[Column] = COLUMNS) -> int:
    """The narrowest table (select cells included) that shows every column without cutting names."""
    return SELECT_WIDTH + sum(_wanted(c, natural) for c in columns) + GAP * (len(columns) - 1)


def _admit(width: int, natural: Mapping[str, int], columns: Sequence[Column]) -> tuple[set[str], int]:
    """Columns admitted in priority order, and the width used at their minimum widths.

    The always-shown columns (priority 0) are admitted at their minimum width while they fit; another
    column only while the always-shown ones still get their natural width (``_wanted``).
    """
    admitted: set[str] = set()
    used = wanted = 0
    for column in sorted(columns, key=lambda c: c.priority):
        cost = column.min_width + (GAP if admitted else 0)
        need = _wanted(column, natural) + (GAP if admitted else 0)
        if used + cost <= width and (column.priority == 0 or wanted + need <= width):
            admitted.add(column.id)
            used += cost
            wanted += need
    return admitted, used


def natural_width(column: Column, natural: Mapping[str, int]) -> int:
    """The width a column would like: its cached content width, within its bounds."""
    if column.flex:
        return column.max_width
    if not column.variable:
        return column.min_width
    wanted = max(natural.get(column.id, 0), len(column.title))
    return max(column.min_width, min(column.max_width, wanted))


def layout_columns(width: int, natural: Mapping[str, int], columns: Sequence[Column] = COLUMNS) -> Layout:
    """Fit ``columns`` into ``width`` cells, dropping the lowest priority first.

    Columns are admitted in priority order: the always-shown ones at their minimum width while they fit,
    the others only while the always-shown ones keep their natural width (a name cut to ``prod-…`` could
    be prod-eu or prod-us: a lower-priority column is hidden first). Then each admitted column grows
    towards its natural width, in priority order; a flex column takes what is left. When a column is
    dropped, room is kept at the right for the header's ``›`` sign.

    Args:
        width: cells available after the select column.
        natural: cached content widths of the variable columns, by column id.
        columns: the candidate columns, in display order.
    """
    admitted, used = _admit(width, natural, columns)
    if len(admitted) < len(columns):
        width -= GAP + MORE_WIDTH
        admitted, used = _admit(width, natural, columns)
    shown = [c for c in columns if c.id in admitted]
    widths = {c.id: c.min_width for c in shown}
    spare = width - used
    for column in sorted(shown, key=lambda c: c.priority):
        if column.flex:
            continue
        grow = min(spare, natural_width(column, natural) - widths[column.id])
        widths[column.id] += max(0, grow)
        spare -= max(0, grow)
    for column in shown:
        if column.flex:
            widths[column.id] += spare
            break
    return Layout(columns=tuple(shown), widths=tuple(widths[c.id] for c in shown),
                  hidden=tuple(c for c in columns if c.id not in admitted))


def render_cells(row: FleetRow, layout: Layout, ctx: CellContext) -> Text:
    """The row's cells fitted to the layout, separated by ``GAP`` blanks."""
    line = Text(no_wrap=True, end="")
    for index, (column, width) in enumerate(zip(layout.columns, layout.widths, strict=True)):
        if index:
            line.append(" " * GAP)
        line.append_text(fit(column.render(row, ctx), width, ctx.glyphs.ellipsis))
    return line


def render_titles(layout: Layout, style: Style, glyphs: Glyphs | None = None, width: int = 0) -> Text:
    """The header line of the table; with columns hidden, ``›`` ends it at ``width`` (bold).

    Args:
        layout: the columns shown and hidden.
        style: the header style.
        glyphs: for the hidden-columns sign (``›`` or ``>``); ``None`` leaves the sign out.
        width: the whole line's width, select cells included.
    """
    line = Text(" " * SELECT_WIDTH, style=style, no_wrap=True, end="")
    for index, (column, cells) in enumerate(zip(layout.columns, layout.widths, strict=True)):
        if index:
            line.append(" " * GAP, style=style)
        line.append(column.title[:cells].ljust(cells), style=style)
    mark = glyphs.more if glyphs is not None and layout.hidden else ""
    if mark:
        line.append(" " * max(GAP, width - line.cell_len - len(mark)), style=style)
        line.append(mark, style=style + Style(bold=True))
    return line


def content_widths(rows: Sequence[FleetRow], ctx: CellContext) -> dict[str, int]:
    """Natural widths of the variable columns over ``rows``.

    Names are measured raw (an upper bound of their cleaned width); badges are rendered only for rows
    that have any, so a 100k-row fleet is measured without building 100k texts per column.
    """
    app_width = cluster_width = flags_width = 0
    for row in rows:
        app = row.app
        app_width = max(app_width, cell_len(app.app))
        cluster_width = max(cluster_width, cell_len(app.cluster))
        if app.stale or app.control.paused or app.control.pinned or app.approximate or app.operation or app.conditions:
            flags_width = max(flags_width, flags_text(app, ctx).cell_len)
    return {"app": app_width, "cluster": cluster_width, "flags": flags_width}


def _has_flags(app: AppStatus) -> bool:
    return bool(app.stale or app.control.paused or app.control.pinned or app.approximate or app.operation
                or app.conditions)


def _by_width(names: Counter[str]) -> Counter[int]:
    widths: Counter[int] = Counter()
    for name, count in names.items():
        widths[cell_len(name)] += count
    return widths


class ContentWidths:
    """The natural widths of ``content_widths``, kept by counting: rows come and go one at a time.

    Each variable column keeps a count of rows per width, so removing the widest row shrinks the column
    exactly as measuring every row again would, at the cost of the changed rows only.
    """

    def __init__(self) -> None:
        self._app: Counter[int] = Counter()
        self._cluster: Counter[int] = Counter()
        self._flags: Counter[int] = Counter()

    def reset(self, apps: Iterable[AppStatus], ctx: CellContext) -> None:
        """Count every row's status (names without building a text per row; badges only where there are any)."""
        apps = list(apps)
        self._app = _by_width(Counter(map(attrgetter("app"), apps)))
        self._cluster = _by_width(Counter(map(attrgetter("cluster"), apps)))
        self._flags = Counter(flags_text(a, ctx).cell_len for a in apps if _has_flags(a))

    def add(self, rows: Iterable[FleetRow], ctx: CellContext, sign: int = 1) -> None:
        """Count ``rows`` in (``sign`` 1) or out (-1)."""
        for row in rows:
            app = row.app
            self._app[cell_len(app.app)] += sign
            self._cluster[cell_len(app.cluster)] += sign
            if _has_flags(app):
                self._flags[flags_text(app, ctx).cell_len] += sign

    def remove(self, rows: Iterable[FleetRow], ctx: CellContext) -> None:
        """Count ``rows`` out."""
        self.add(rows, ctx, -1)

    def natural(self) -> dict[str, int]:
        """The widest row of each variable column (0 for none)."""
        return {name: max((w for w, n in counter.items() if n > 0), default=0)
                for name, counter in (("app", self._app), ("cluster", self._cluster), ("flags", self._flags))}
