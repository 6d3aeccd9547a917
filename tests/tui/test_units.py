"""Pure pieces of the console: filter/sort/group, column layout, diff rows, durations, glyphs, registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.style import Style

from core.api import FleetEngineAPI
from core.model import FieldChange
from tests.fixtures.snapshots import NOW, fleet_snapshot, rfc3339
from tests.tui.fakes import FakeEngine
from tui.actions import ACTIONS, actions_for, bindings_for
from tui.diff_model import RowKind, app_rows, diff_rows, emit_yaml, scalar, yaml_text
from tui.fleet_query import FleetRow, GroupBy, GroupRow, SortKey, build_rows, count_fleet
from tui.formatting import age_since, fit, parse_duration, safe, short_age
from tui.glyphs import ASCII, UNICODE, locale_is_utf8
from tui.screens.diff import write_sides
from tui.widgets.fleet_columns import (
    COLUMNS,
    SELECT_WIDTH,
    CellContext,
    full_width,
    layout_columns,
    render_cells,
    render_titles,
)
from tui.widgets.footer import fit_keys, key_width, more_text


def keys(text: str, **kwargs: object) -> list[tuple[str, str]]:
    return [r.key for r in build_rows(fleet_snapshot(), filter_text=text, **kwargs) if isinstance(r, FleetRow)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("degraded", [("api", "prod-eu")], id="state-word"),
        pytest.param("pinned", [("billing", "prod-eu")], id="pinned"),
        pytest.param("paused", [("api", "staging"), ("billing", "prod-eu")], id="paused"),
        pytest.param("stale", [("api", "edge-ap"), ("web", "edge-ap")], id="stale"),
        pytest.param("unreachable web", [("web", "edge-ap")], id="and-of-terms"),
        pytest.param("error", [("search", "staging")], id="error-condition"),
        pytest.param("running", [("ingress", "prod-us")], id="operation"),
        pytest.param("env=staging cluster:stag -synced", [("api", "staging"), ("search", "staging")],
                     id="label-field-negation"),
        pytest.param("app:bill", [("billing", "prod-eu"), ("billing", "prod-us")], id="app-field"),
        pytest.param("jobs", [("worker", "prod-eu"), ("worker", "staging")], id="namespace"),
    ],
)
def test_filter_terms(text: str, expected: list[tuple[str, str]]) -> None:
    """Each filter term kind selects the rows it names."""
    assert keys(text) == expected


def test_sort_health_puts_the_worst_first() -> None:
    """Sorting by health shows Unknown and Degraded first."""
    assert keys("", sort=SortKey.HEALTH)[:2] == [("search", "staging"), ("api", "prod-eu")]


def test_grouping_by_env_counts_each_group() -> None:
    """Group headings carry row, OutOfSync and Degraded counts."""
    rows = build_rows(fleet_snapshot(), group=GroupBy.ENV)
    headings = [r for r in rows if isinstance(r, GroupRow)]
    assert [(h.label, h.count, h.out_of_sync, h.degraded) for h in headings] == [
        ("prod", 12, 2, 1), ("staging", 4, 1, 0)]


def test_counts() -> None:
    """The header's numbers."""
    counts = count_fleet(fleet_snapshot())
    assert (counts.apps, counts.rows, counts.out_of_sync, counts.degraded, counts.unreachable) == (6, 16, 3, 1, 1)


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_layout_fits_and_keeps_priority_zero(width: int) -> None:
    """Columns never exceed the width; the name, cluster, sync and health columns always stay."""
    layout = layout_columns(width - SELECT_WIDTH, {"app": 12, "cluster": 8, "flags": 16})
    used = sum(layout.widths) + len(layout.widths) - 1
    assert used <= width - SELECT_WIDTH
    assert {"app", "cluster", "sync", "health"} <= {c.id for c in layout.columns}
    if width >= 120:
        assert len(layout.columns) == len(COLUMNS)
        assert used == width - SELECT_WIDTH


def test_layout_at_80_keeps_the_owner_and_drops_message_connection_and_drift() -> None:
    """At 80 columns the message, connection and drift columns go; the owner and revision stay."""
    ids = [c.id for c in layout_columns(80 - SELECT_WIDTH, {"app": 8, "cluster": 7, "flags": 16}).columns]
    assert ids == ["app", "cluster", "owner", "sync", "health", "flags", "revision"]


def test_layout_hides_a_column_before_cutting_a_name() -> None:
    """Names keep their natural width: a cluster cut to `staging-…` could be any staging cluster, so the
    lower-priority columns go first; the hidden ones are listed and the header ends with `›`."""
    natural = {"app": 8, "cluster": 10, "flags": 8}
    layout = layout_columns(79 - SELECT_WIDTH, natural)  # an 80-column terminal, less the scrollbar
    widths = dict(zip([c.id for c in layout.columns], layout.widths, strict=True))
    assert widths["app"] == 8 and widths["cluster"] == 10
    assert [c.title for c in layout.hidden] == ["DRIFT", "CLUSTER STATE", "MESSAGE"]
    titles = render_titles(layout, Style(), UNICODE, 79).plain
    assert titles.endswith(" ›") and titles[:-1].rstrip().endswith("REVISION") and len(titles) == 79
    assert render_titles(layout, Style(), ASCII, 79).plain.endswith(" >")
    every = layout_columns(full_width(natural) - SELECT_WIDTH, natural)
    assert every.hidden == () and "›" not in render_titles(every, Style(), UNICODE, full_width(natural)).plain
    assert layout_columns(full_width(natural) - SELECT_WIDTH - 1, natural).hidden != ()


def test_footer_keeps_the_first_keys_and_counts_the_rest() -> None:
    """All keys when they fit; else the first ones and room for `? N more keys`."""
    widths = [key_width("enter", "Open"), key_width("s", "Sync"), key_width("p", "Pause"), key_width("q", "Quit")]
    assert widths[0] == 12

    def more(hidden: int) -> int:
        return key_width(*more_text(hidden, True)) if hidden else 0

    assert fit_keys(widths, sum(widths), more) == 4
    assert fit_keys(widths, sum(widths) - 1, more) == 2  # 12 + 8 + "? 2 more keys" (15) fit in 36
    assert fit_keys(widths, 34, more) == 1
    assert more_text(3, True) == ("?", "3 more keys")
    assert more_text(3, False) == ("", "3 more keys: ^p palette")


def test_cells_say_state_in_words_and_ascii() -> None:
    """A row renders glyph plus word; the ASCII set has no character outside ASCII."""
    row = next(r for r in build_rows(fleet_snapshot()) if isinstance(r, FleetRow) and r.key == ("billing", "prod-eu"))
    layout = layout_columns(118, {"app": 8, "cluster": 8, "flags": 20})
    for glyphs in (UNICODE, ASCII):
        text = render_cells(row, layout, CellContext(glyphs=glyphs, now=NOW, styles={"x": Style()})).plain
        assert "Synced" in text and "Healthy" in text and "paused" in text and "pin+3" in text
        assert "1a2b3c4d 1w" in text
    ascii_text = render_cells(row, layout, CellContext(glyphs=ASCII, now=NOW, styles={})).plain
    assert ascii_text.isascii()


def test_install_bindings_keeps_id_and_tooltip() -> None:
    """The one private Textual call (``docs/decisions.md``): the registry's bindings land on the instance
    only, with id, tooltip and key display, and the read-only ones lack the mutating actions."""
    from textual.binding import BindingsMap
    from textual.screen import Screen

    from tui.actions import install_bindings

    assert callable(getattr(BindingsMap, "_add_binding", None)), "Textual changed BindingsMap: see docs/decisions.md"
    writable, read_only, untouched = Screen[None](), Screen[None](), Screen[None]()
    install_bindings(writable, "fleet", read_only=False)
    install_bindings(read_only, "fleet", read_only=True)
    def bound(screen: Screen[None], key: str) -> list[Any]:
        return list(screen._bindings.key_to_bindings.get(key, []))

    assert [(b.action, b.id, b.tooltip) for b in bound(writable, "s")] == [
        ("sync_selected", "fleet.sync", ACTIONS["fleet.sync"].help)]
    assert bound(writable, "space")[0].key_display == "space"
    assert not bound(read_only, "s") and bound(read_only, "slash")
    assert not bound(untouched, "s")


def test_emit_yaml_tracks_pointers_and_quotes() -> None:
    """Each emitted line knows its JSON pointer; risky strings are quoted and escapes made visible."""
    lines = emit_yaml({"spec": {"replicas": 3, "containers": [{"name": "web", "image": "a:b"}]},
                       "data": {"x": "true", "y": "\x1b[2J", "a/b": "1"}})
    by_path = {line.path: line.text for line in lines}
    assert by_path["/spec/replicas"] == "  replicas: 3"
    assert by_path["/spec/containers/0/name"] == "    - name: web"
    assert by_path["/spec/containers/0/image"] == "      image: a:b"
    assert by_path["/data/x"] == '  x: "true"'
    assert by_path["/data/y"] == '  y: "\\u001b[2J"'
    assert "/data/a~1b" in by_path
    assert scalar(None) == ("null", "null") and scalar(1.5) == ("1.5", "number")


def test_diff_rows_fold_and_blame() -> None:
    """Unchanged runs fold beyond 3 lines of context; the changed line gets its writer."""
    live = emit_yaml({f"k{i}": i for i in range(20)} | {"replicas": 5})
    desired = emit_yaml({f"k{i}": i for i in range(20)} | {"replicas": 3})
    change = FieldChange("/replicas", "replace", 3, 5, manager="kubectl-edit", time=rfc3339(NOW - 180))
    rows = diff_rows(live, desired, (change,), now=NOW)
    kinds = [r.kind for r in rows]
    assert kinds[0] is RowKind.FOLD and rows[0].hidden == 17
    assert kinds[1:4] == [RowKind.CONTEXT] * 3
    assert kinds[4:] == [RowKind.REMOVED, RowKind.BLAME, RowKind.ADDED]
    assert rows[5].text == "changed by kubectl-edit 3m ago"
    side = diff_rows(live, desired, (change,), now=NOW, side_by_side=True)
    assert [r.kind for r in side][-2:] == [RowKind.CHANGED, RowKind.BLAME]
    assert len(diff_rows(live, desired, fold=False)) == 22


def test_app_rows_skip_synced_resources() -> None:
    """The whole-app diff lists drifted resources and counts the rest."""
    app = fleet_snapshot().app("worker", "prod-eu")
    assert app is not None
    rows = app_rows(app.resources, now=NOW)
    titles = [r.text for r in rows if r.kind is RowKind.TITLE]
    assert titles == ["CronJob.batch/jobs/worker-nightly: Missing, 0 changes, server dry run",
                      "ConfigMap/jobs/worker-old: Extraneous, 0 changes, server dry run"]
    assert rows[-1].text == "1 resources in sync (not shown)"


def test_yaml_text_and_external_files(tmp_path: Path) -> None:
    """Both sides are written under safe file names for $FLEETDECK_DIFF."""
    live, desired = write_sides(tmp_path, "web/../../etc-prod us", "a: 1\n", "a: 2\n")
    assert live.parent == tmp_path and desired.parent == tmp_path
    assert live.name == "web_.._.._etc-prod_us.live.yaml"
    assert desired.read_text() == "a: 2\n"
    assert yaml_text({"a": [1, {"b": None}]}) == "a:\n  - 1\n  - b: null\n"


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400),
                                               ("15", 900), ("", None), ("  1w ", 604800)])
def test_parse_duration(text: str, seconds: float | None) -> None:
    """Expiry durations as operators type them."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5m", "0h", "2x"])
def test_parse_duration_rejects(text: str) -> None:
    """Nonsense is an error, not a silent zero."""
    with pytest.raises(ValueError):
        parse_duration(text)


def test_ages_and_fit() -> None:
    """Compact ages from an injected now; fit cuts with an ellipsis and pads."""
    assert [short_age(s) for s in (1, 45, 180, 7200, 3 * 86400, 30 * 86400)] == ["now", "45s", "3m", "2h", "3d", "4w"]
    assert age_since(NOW - 180, NOW) == "3m ago" and age_since(None, NOW) == "-"
    assert fit(safe("abcdefgh"), 5).plain == "abcd…"
    assert fit(safe("ab"), 4).plain == "ab  "


def test_the_repo_line_says_the_fetch_age_in_minutes() -> None:
    """Seconds would rewrite the repo line on every repaint of an idle console (the repo is polled every
    minute): within a minute it reads ``<1m ago``, then as other ages do."""
    from tui.widgets.header import fetch_age

    assert fetch_age(NOW, NOW) == fetch_age(NOW - 59, NOW) == "<1m ago"
    assert fetch_age(NOW - 60, NOW) == "1m ago" and fetch_age(NOW - 3 * 3600, NOW) == "3h ago"
    assert fetch_age(None, NOW) == "-"


def test_safe_never_parses_markup() -> None:
    """safe() keeps markup literal and removes escapes."""
    text = safe("\x1b]0;title\x07[bold]x[/bold]")
    assert text.plain == "[bold]x[/bold]" and not text.spans


@pytest.mark.parametrize(("env", "utf8"), [({"LANG": "C"}, False), ({"LANG": "en_US.UTF-8"}, True),
                                           ({"LC_ALL": "POSIX", "LANG": "en_US.UTF-8"}, False),
                                           ({"LC_CTYPE": "de_DE.utf8"}, True)])
def test_locale_decides_the_glyph_set(env: dict[str, str], utf8: bool) -> None:
    """LC_ALL, then LC_CTYPE, then LANG decide whether glyphs are Unicode."""
    assert locale_is_utf8(env) is utf8


def test_ascii_glyphs_are_ascii() -> None:
    """Every ASCII glyph is plain ASCII."""
    values = [*ASCII.sync.values(), *ASCII.health.values(), *ASCII.resource.values(), *ASCII.connection.values(),
              *ASCII.action.values(), ASCII.cursor, ASCII.marked, ASCII.paused, ASCII.pinned, ASCII.stale,
              ASCII.fold, ASCII.separator, ASCII.arrow, ASCII.ellipsis, ASCII.group_mark]
    assert all(v.isascii() for v in values)


def test_registry_titles_ids_and_keys() -> None:
    """Every action has a "group: verb" title and a unique id; keys do not clash within a scope."""
    for action in ACTIONS.values():
        assert ": " in action.title and action.id.startswith(action.scope + ".")
    for scope in {a.scope for a in ACTIONS.values()}:
        seen: set[str] = set()
        for binding in bindings_for(scope, read_only=False):
            for key in binding.key.split(","):
                assert key not in seen, (scope, key)
                seen.add(key)
    assert not [a for a in actions_for("fleet", read_only=True) if a.mutating]
    assert all(b.id and b.tooltip for b in bindings_for("fleet", read_only=False))


def test_fake_engine_implements_the_protocol() -> None:
    """The fake is a FleetEngineAPI (checked by mypy --strict on this assignment, and at runtime here)."""
    engine: FleetEngineAPI = FakeEngine([fleet_snapshot()])
    assert callable(engine.snapshots) and not engine.read_only


def test_synced_resource_with_keys_in_another_order_renders_no_change_lines() -> None:
    """An in-sync object whose live map keys come in another order shows no +/- lines (only context)."""
    from core.model import ResourceDiff, ResourceKey, ResourceState, ResourceStatus

    desired = {"metadata": {"name": "web", "labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 2, "paused": False}}
    live = {"spec": {"paused": False, "replicas": 2}, "metadata": {"labels": {"b": "2", "a": "1"}, "name": "web"}}
    status = ResourceStatus(ResourceKey("apps", "Deployment", "ns", "web"), "apps/v1", ResourceState.SYNCED, None,
                            ResourceDiff(ResourceState.SYNCED, desired=desired, live=live))
    from tui.diff_model import resource_rows

    rows = resource_rows(status, now=0.0, fold=False)
    assert not [r for r in rows if r.is_change]


def test_drifted_resource_shows_only_the_real_change_despite_key_order() -> None:
    """Keys that merely moved are aligned; only the changed value gives +/- lines."""
    from core.model import FieldChange, ResourceDiff, ResourceKey, ResourceState, ResourceStatus
    from tui.diff_model import resource_rows

    desired = {"metadata": {"name": "web"}, "spec": {"replicas": 3, "paused": False, "minReadySeconds": 1}}
    live = {"spec": {"minReadySeconds": 1, "paused": False, "replicas": 5}, "metadata": {"name": "web"}}
    change = FieldChange("/spec/replicas", "replace", 3, 5, "kubectl-edit")
    status = ResourceStatus(ResourceKey("apps", "Deployment", "ns", "web"), "apps/v1", ResourceState.OUT_OF_SYNC,
                            None, ResourceDiff(ResourceState.OUT_OF_SYNC, (change,), desired=desired, live=live))
    changed = [r for r in resource_rows(status, now=0.0, fold=False) if r.is_change]
    lines = [(r.kind.value, line.text.strip()) for r in changed if (line := r.left or r.right) is not None]
    assert lines == [("removed", "replicas: 5"), ("added", "replicas: 3")]


def test_time_left_is_never_shown_shorter_than_it_is() -> None:
    """A 2 h pause set a moment ago reads "in 2h", not "in 1h" (time left rounds up, in two units)."""
    from tui.formatting import age_until, remaining

    assert age_until(NOW + 7200 - 3, NOW) == "in 2h"
    assert remaining(7200 - 61) == "1h 59m"
    assert remaining(59.2) == "1m" and remaining(45) == "45s"
    assert remaining(3 * 86400 + 4 * 3600 - 10) == "3d 4h"
    assert age_until(NOW - 1, NOW) == "expired"


def test_revision_shows_what_runs_and_what_git_wants() -> None:
    """OutOfSync after a commit: ``running → desired``; Synced (the new commit rendered the same objects):
    the desired revision alone, since that is what runs; never synced here: ``- → desired``."""
    from dataclasses import replace as change

    from core.model import SyncStatus
    from tui.output import revision_text

    row = fleet_snapshot().apps[0]
    assert row.revision is not None
    old = "0" * 40
    pending = change(row, sync=SyncStatus.OUT_OF_SYNC, synced_revision=old)
    assert pending.running_revision == old
    assert revision_text(pending) == f"{old[:8]} → {row.revision.short}"
    same = change(row, sync=SyncStatus.SYNCED, synced_revision=old)
    assert same.running_revision == row.revision.sha and revision_text(same) == row.revision.short
    never = change(row, sync=SyncStatus.OUT_OF_SYNC, synced_revision=None)
    assert revision_text(never) == f"- → {row.revision.short}"


def test_health_detail_names_the_rule_escaped() -> None:
    """The resource detail shows the health and the rule that judged it; a hostile source is escaped."""
    from core.model import Health, HealthStatus, ResourceDiff, ResourceKey, ResourceState, ResourceStatus
    from tests.fixtures.snapshots import HOSTILE
    from tui.widgets.resource_tree import health_detail

    key = ResourceKey("argoproj.io", "Rollout", "shop", "web")

    def status(health: Health | None) -> ResourceStatus:
        return ResourceStatus(key=key, api_version="argoproj.io/v1alpha1", state=ResourceState.SYNCED,
                              health=health, diff=ResourceDiff(state=ResourceState.SYNCED))

    degraded = health_detail(status(Health(HealthStatus.DEGRADED, "aborted", "built-in: Rollout (argoproj.io)")),
                             glyphs=ASCII)
    assert degraded is not None and degraded.plain == "! Degraded (built-in: Rollout (argoproj.io))"
    plain = health_detail(status(Health(HealthStatus.HEALTHY)), glyphs=ASCII)
    assert plain is not None and plain.plain == f"{ASCII.health[HealthStatus.HEALTHY]} Healthy"
    hostile = health_detail(status(Health(HealthStatus.HEALTHY, "", HOSTILE)), glyphs=UNICODE)
    assert hostile is not None and "\x1b" not in hostile.plain and "\x07" not in hostile.plain
    assert health_detail(status(None), glyphs=ASCII) is None


def test_app_detail_shows_depends_on_only_when_set() -> None:
    """The source line ends with the apps an app comes after (Flux dependsOn), cleaned; nothing otherwise."""
    import dataclasses

    from tui.screens.app_screen import source_line

    row = fleet_snapshot().apps[0]
    assert "after" not in source_line(row, NOW, UNICODE).plain
    ordered = dataclasses.replace(row, depends_on=("infra", "data/db\x1b[31m"))
    assert source_line(ordered, NOW, UNICODE).plain.endswith("after infra, data/db")  # the escape is dropped


def test_a_row_that_was_not_compared_claims_no_drift_count() -> None:
    """The app screen's status line says "drift not compared" for a row whose sync is Unknown (or still
    loading) instead of "0 drifted"; a compared row keeps its count."""
    from dataclasses import replace

    from core.model import SyncStatus
    from tui.screens.app_screen import status_line

    compared = fleet_snapshot().apps[0]
    assert f"{compared.drift_count} drifted" in status_line(compared, UNICODE).plain
    unknown = replace(compared, sync=SyncStatus.UNKNOWN, resources=())
    assert unknown.drift_count == 0
    assert "drift not compared" in status_line(unknown, UNICODE).plain
    assert "drifted" not in status_line(unknown, UNICODE).plain
