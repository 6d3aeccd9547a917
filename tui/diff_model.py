"""Desired-against-live diffs as display rows: YAML lines with JSON-pointer paths, hunks, folds, blame.

Objects from ``ResourceDiff.desired``/``.live`` (already normalized and masked by the core) are emitted
as YAML-like lines by our own small emitter, so each line knows the JSON pointer it shows and every
scalar is quoted safely (JSON escapes make control characters visible instead of live). Lines are then
compared with ``difflib``; unchanged runs beyond the context are folded, and drifted fields get a line
saying who last wrote them (``FieldChange.manager``/``time``). Pure functions: no Textual, no Rich.

The direction is the sync's: the live (cluster) side is ``-``/left, the desired (Git) side is ``+``/right.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.model import FieldChange, ResourceDiff, ResourceKey, ResourceState, ResourceStatus
from core.sanitize import clean
from tui.formatting import age_since, parse_rfc3339

_PLAIN = re.compile(r"^[A-Za-z0-9_./@:+-][A-Za-z0-9_./@:+ -]*$")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "~", ""}
CONTEXT_LINES = 3


@dataclass(frozen=True, slots=True)
class YamlLine:
    """One emitted line: ``indent`` spaces, then ``key`` (may be empty), then ``value`` (may be empty)."""

    path: str
    indent: int
    key: str
    value: str
    value_kind: str = ""
    """``string``, ``number``, ``bool``, ``null`` or empty (a mapping or list follows)."""
    item: bool = False
    """Starts with ``- `` (a list item)."""

    @property
    def text(self) -> str:
        """The line as plain text, used for comparison."""
        dash = "- " if self.item else ""
        key = f"{self.key}:" if self.key else ""
        gap = " " if key and self.value else ""
        return f"{' ' * self.indent}{dash}{key}{gap}{self.value}"


def scalar(value: Any) -> tuple[str, str]:
    """A YAML scalar's text and kind; strings are quoted unless plainly safe."""
    if value is None:
        return "null", "null"
    if isinstance(value, bool):
        return ("true" if value else "false"), "bool"
    if isinstance(value, int | float):
        return json.dumps(value), "number"
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED and not _looks_numeric(text):
        return clean(text), "string"
    return clean(json.dumps(text, ensure_ascii=False), max_length=2_000), "string"


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _key(text: Any) -> str:
    rendered, _ = scalar(str(text))
    return rendered


def _pointer(path: str, part: object) -> str:
    return f"{path}/{str(part).replace('~', '~0').replace('/', '~1')}"


def emit_yaml(obj: Any, *, path: str = "", indent: int = 0) -> list[YamlLine]:
    """Emit ``obj`` (JSON-like data) as YAML lines that carry their JSON pointer."""
    lines: list[YamlLine] = []
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            lines.extend(_emit_entry(_key(key), value, _pointer(path, key), indent, item=False))
    elif isinstance(obj, list | tuple):
        for index, value in enumerate(obj):
            lines.extend(_emit_entry("", value, _pointer(path, index), indent, item=True))
    else:
        text, kind = scalar(obj)
        lines.append(YamlLine(path, indent, "", text, kind))
    return lines


def _emit_entry(key: str, value: Any, path: str, indent: int, *, item: bool) -> list[YamlLine]:
    if isinstance(value, Mapping | list | tuple) and value:
        if item and isinstance(value, Mapping):
            nested = emit_yaml(value, path=path, indent=indent + 2)
            first = nested[0]
            return [YamlLine(first.path, indent, first.key, first.value, first.value_kind, item=True), *nested[1:]]
        child_indent = indent + 2
        return [YamlLine(path, indent, key, "", "", item=item), *emit_yaml(value, path=path, indent=child_indent)]
    if isinstance(value, Mapping | list | tuple):
        return [YamlLine(path, indent, key, "{}" if isinstance(value, Mapping) else "[]", "", item=item)]
    text, kind = scalar(value)
    return [YamlLine(path, indent, key, text, kind, item=item)]


def yaml_text(obj: Mapping[str, Any] | None) -> str:
    """The whole object as YAML text (for ``$FLEETDECK_DIFF``); empty when absent."""
    if obj is None:
        return ""
    return "\n".join(line.text for line in emit_yaml(obj)) + "\n"


class RowKind(StrEnum):
    """Kinds of diff display rows."""

    TITLE = "title"
    """A resource heading."""
    NOTE = "note"
    """A message, warning or change summary under the heading."""
    CONTEXT = "context"
    REMOVED = "removed"
    """Only on the live side."""
    ADDED = "added"
    """Only on the desired side."""
    CHANGED = "changed"
    """Side by side: a live line and the desired line replacing it."""
    FOLD = "fold"
    BLAME = "blame"
    """Who last wrote a drifted field."""


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One display row; ``left`` is live, ``right`` is desired (either may be absent)."""

    kind: RowKind
    left: YamlLine | None = None
    right: YamlLine | None = None
    text: str = ""
    """For TITLE, NOTE, FOLD and BLAME rows (already sanitized)."""
    hidden: int = 0
    """For FOLD rows: how many unchanged lines are folded."""

    @property
    def is_change(self) -> bool:
        """Whether the row shows a difference."""
        return self.kind in (RowKind.REMOVED, RowKind.ADDED, RowKind.CHANGED)


def describe_change(change: FieldChange, now: float) -> str:
    """``changed by kubectl-edit 3m ago``, the cause the core found (``changed in Git``, ``order differs``,
    ``not set live``, ``removed from Git``), or just the op when the writer is unknown."""
    if change.note:
        return clean(change.note, max_length=80)
    if not change.manager:
        return f"{change.op} (writer unknown)"
    when = age_since(parse_rfc3339(change.time), now) if change.time else "at an unknown time"
    return f"changed by {clean(change.manager, max_length=80)} {when}"


def _value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return clean(text, max_length=60)


def change_summary(change: FieldChange, now: float) -> str:
    """``/spec/replicas: live 5 -> desired 3, changed by kubectl-edit 3m ago``."""
    path = clean(change.path, max_length=120)
    if change.note == "order differs":
        values = f"live order {_value(change.live)} -> desired order {_value(change.desired)}"
    elif change.op == "add":
        values = f"missing live -> desired {_value(change.desired)}"
    elif change.op == "remove":
        values = f"live {_value(change.live)} -> removed"
    else:
        values = f"live {_value(change.live)} -> desired {_value(change.desired)}"
    return f"{path}: {values}, {describe_change(change, now)}"


def _blame_for(line: YamlLine, changes: Sequence[FieldChange], used: set[int]) -> FieldChange | None:
    """The first not-yet-annotated change whose path is this line's path or an ancestor of it."""
    for index, change in enumerate(changes):
        if index in used:
            continue
        if line.path == change.path or line.path.startswith(change.path + "/"):
            used.add(index)
            return change
    return None


def _fold(rows: list[DiffRow], context: Sequence[DiffRow], *, first: bool, last: bool, fold: bool) -> None:
    """Append an unchanged run, keeping ``CONTEXT_LINES`` next to changes and folding the rest."""
    keep_head = 0 if first else CONTEXT_LINES
    keep_tail = 0 if last else CONTEXT_LINES
    if not fold or len(context) <= keep_head + keep_tail + 1:
        rows.extend(context)
        return
    rows.extend(context[:keep_head])
    hidden = len(context) - keep_head - keep_tail
    rows.append(DiffRow(RowKind.FOLD, text=f"{hidden} unchanged lines", hidden=hidden))
    rows.extend(context[len(context) - keep_tail :])


def diff_rows(
    live: Sequence[YamlLine],
    desired: Sequence[YamlLine],
    changes: Sequence[FieldChange] = (),
    *,
    now: float = 0.0,
    fold: bool = True,
    side_by_side: bool = False,
) -> list[DiffRow]:
    """Compare two emitted objects line by line.

    Args:
        live: the live object's lines (the ``-`` / left side).
        desired: the desired object's lines (the ``+`` / right side).
        changes: the core's field changes, for the blame rows.
        now: the time ages are computed from.
        fold: fold unchanged runs longer than the context.
        side_by_side: pair replaced lines as CHANGED rows instead of REMOVED then ADDED.
    """
    matcher = difflib.SequenceMatcher(a=[x.text for x in live], b=[x.text for x in desired], autojunk=False)
    opcodes = matcher.get_opcodes()
    rows: list[DiffRow] = []
    used: set[int] = set()
    for position, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            context = [DiffRow(RowKind.CONTEXT, live[i], desired[j]) for i, j in zip(range(i1, i2), range(j1, j2), strict=True)]
            _fold(rows, context, first=position == 0, last=position == len(opcodes) - 1, fold=fold)
            continue
        rows.extend(_change_rows(live[i1:i2], desired[j1:j2], changes, used, now, side_by_side=side_by_side))
    return rows


def _change_rows(
    removed: Sequence[YamlLine],
    added: Sequence[YamlLine],
    changes: Sequence[FieldChange],
    used: set[int],
    now: float,
    *,
    side_by_side: bool,
) -> Iterable[DiffRow]:
    if side_by_side:
        for index in range(max(len(removed), len(added))):
            left = removed[index] if index < len(removed) else None
            right = added[index] if index < len(added) else None
            kind = RowKind.CHANGED if left and right else RowKind.REMOVED if left else RowKind.ADDED
            yield DiffRow(kind, left, right)
            yield from _blame_rows([x for x in (left, right) if x], changes, used, now)
        return
    for line in removed:
        yield DiffRow(RowKind.REMOVED, left=line)
        yield from _blame_rows([line], changes, used, now)
    for line in added:
        yield DiffRow(RowKind.ADDED, right=line)
        yield from _blame_rows([line], changes, used, now)


def _blame_rows(
    lines: Sequence[YamlLine], changes: Sequence[FieldChange], used: set[int], now: float
) -> Iterable[DiffRow]:
    for line in lines:
        change = _blame_for(line, changes, used)
        if change is not None:
            yield DiffRow(RowKind.BLAME, text=describe_change(change, now), left=line)
            return


def align_keys(live: Any, desired: Any) -> Any:
    """``live`` with its map keys in ``desired``'s order (keys only live has come last), recursively.

    Map key order carries no meaning; emitting both sides in one order keeps the line diff to real
    differences instead of blocks of keys that merely moved. Lists keep their order (it can matter).
    """
    if isinstance(live, Mapping) and isinstance(desired, Mapping):
        ordered = [key for key in desired if key in live] + [key for key in live if key not in desired]
        return {key: align_keys(live[key], desired.get(key)) for key in ordered}
    if isinstance(live, list | tuple) and isinstance(desired, list | tuple):
        return [align_keys(item, desired[i] if i < len(desired) else None) for i, item in enumerate(live)]
    return live


def resource_title(key: ResourceKey, diff: ResourceDiff) -> str:
    """``Deployment/shop/web: OutOfSync, 2 changes, server dry run``."""
    how = "server dry run" if not diff.approximate else "local comparison (approximate)"
    count = len(diff.changes)
    noun = "change" if count == 1 else "changes"
    return f"{clean(str(key))}: {diff.state.value}, {count} {noun}, {how}"


def resource_rows(
    status: ResourceStatus, *, now: float, fold: bool = True, side_by_side: bool = False
) -> list[DiffRow]:
    """The heading, notes, change summary and line diff of one resource."""
    diff = status.diff
    rows = [DiffRow(RowKind.TITLE, text=resource_title(status.key, diff))]
    if diff.message:
        rows.append(DiffRow(RowKind.NOTE, text=clean(diff.message, max_length=500)))
    rows.extend(DiffRow(RowKind.NOTE, text="warning: " + clean(w, max_length=500)) for w in diff.warnings)
    if diff.state is ResourceState.MISSING:
        rows.append(DiffRow(RowKind.NOTE, text="not in the cluster: a sync creates it"))
    elif diff.state is ResourceState.EXTRANEOUS:
        rows.append(DiffRow(RowKind.NOTE, text="no longer in Git: a sync with prune deletes it"))
    rows.extend(DiffRow(RowKind.NOTE, text=change_summary(c, now)) for c in diff.changes)
    if diff.desired is None and diff.live is None:
        rows.append(DiffRow(RowKind.NOTE, text="no object to show (the core sent field changes only)"))
        return rows
    if diff.state is ResourceState.SYNCED and not diff.changes:
        shown = diff.desired if diff.desired is not None else diff.live
        lines = emit_yaml(shown)
        rows.extend(diff_rows(lines, lines, now=now, fold=fold, side_by_side=side_by_side))
        return rows
    live = emit_yaml(align_keys(diff.live, diff.desired)) if diff.live is not None else []
    desired = emit_yaml(diff.desired) if diff.desired is not None else []
    rows.extend(diff_rows(live, desired, diff.changes, now=now, fold=fold, side_by_side=side_by_side))
    return rows


def app_rows(
    resources: Sequence[ResourceStatus], *, now: float, fold: bool = True, side_by_side: bool = False
) -> list[DiffRow]:
    """Every drifted (or not comparable) resource of an app; in-sync ones are counted, not shown."""
    shown = [r for r in resources if r.managed and r.state is not ResourceState.SYNCED]
    rows: list[DiffRow] = []
    for status in shown:
        rows.extend(resource_rows(status, now=now, fold=fold, side_by_side=side_by_side))
    in_sync = sum(1 for r in resources if r.managed and r.state is ResourceState.SYNCED)
    if not shown:
        rows.append(DiffRow(RowKind.NOTE, text="no difference: every resource matches Git"))
    if in_sync:
        rows.append(DiffRow(RowKind.NOTE, text=f"{in_sync} resources in sync (not shown)"))
    return rows
