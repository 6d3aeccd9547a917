"""The command line's options model, walked verb by verb and placement by placement.

Each case runs the installed ``fleetdeck`` executable, as a script would. The fleet's only cluster refuses
connections, so no case can reach a cluster: what is checked is that every global option binds every verb
wherever it is written, that every changing verb is refused first in read-only mode (exit 3, journalled)
whatever the source of read-only, and that a global option a verb cannot use is an error, not ignored. The
same walk against a real apiserver, with its audit log counted, is in ``tests/cluster/test_cli_truth.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from tests.engine.conftest import git
from tui.cli import main
from tui.cli.wall import CHANGING

FLEETDECK = str(Path(sys.executable).with_name("fleetdeck"))

LOOKING = {"status", "diff", "history", "events", "audit report", "console", "serve"}
"""Verbs that read a fleet and never change a cluster."""
OFFLINE = {"drift", "health", "schema", "audit journal", "demo", "completion"}
"""Verbs that read no fleet file."""
VERB_ARGS = {
    "status": [], "diff": ["web"], "history": ["web"], "events": ["web"], "audit report": [], "console": [], "serve": [],
    "sync": ["web", "--yes"], "rollback": ["web", "--previous", "--yes"], "pause": ["web"], "resume": ["web"],
    "agent": ["--once"],
}
PLACEMENTS = ("before", "after", "env")


def all_verbs(group: click.Group = main, prefix: str = "") -> set[str]:
    names = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            names |= all_verbs(command, f"{prefix}{name} ")
        else:
            names.add(f"{prefix}{name}")
    return names


def test_every_verb_is_classified() -> None:
    """A verb added later must say whether it changes clusters (then the wall guards it) or not."""
    assert all_verbs() == CHANGING | LOOKING | OFFLINE
    assert not CHANGING & (LOOKING | OFFLINE)
    assert set(VERB_ARGS) == CHANGING | LOOKING


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """A fleet whose repo is real and whose only cluster refuses connections."""
    repo = tmp_path / "repo"
    (repo / "apps" / "web").mkdir(parents=True)
    (repo / "apps" / "web" / "cm.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "web")
    kubeconfig = tmp_path / "dead.kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": "https://127.0.0.1:9", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "u"}}]}))
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump({"repo": {"url": str(repo)},
                                    "clusters": [{"name": "dead", "kubeconfig": str(kubeconfig)}],
                                    "apps": [{"name": "web", "path": "apps/web", "namespace": "web"}]}))
    return path


def run(tmp: Path, args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("FLEETDECK_")}
    full.update({"FLEETDECK_JOURNAL": str(tmp / "journal.jsonl"), "XDG_CACHE_HOME": str(tmp / "xdg"),
                 "XDG_STATE_HOME": str(tmp / "state"), **(env or {})})
    return subprocess.run([FLEETDECK, *args], capture_output=True, text=True, env=full, timeout=120,
                          stdin=subprocess.DEVNULL)


def placed(verb: str, flag: list[str], env_name: str, env_value: str, place: str) -> tuple[list[str], dict[str, str]]:
    """``fleetdeck FLAG VERB ARGS``, ``fleetdeck VERB ARGS FLAG`` or the environment variable."""
    words = verb.split() + VERB_ARGS.get(verb, [])
    if place == "before":
        return [*flag, *words], {}
    if place == "after":
        return [*words, *flag], {}
    return words, {env_name: env_value}


def journal(tmp: Path) -> list[dict[str, object]]:
    path = tmp / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("place", PLACEMENTS)
@pytest.mark.parametrize("verb", sorted(CHANGING))
def test_read_only_refuses_every_changing_verb_first(tmp_path: Path, fleet: Path, verb: str, place: str) -> None:
    """--read-only before or after the verb, or FLEETDECK_READ_ONLY: exit 3, the reason, one journal entry
    "refused" and nothing started (the cluster is never even contacted)."""
    args, env = placed(verb, ["--read-only"], "FLEETDECK_READ_ONLY", "1", place)
    result = run(tmp_path, ["--fleet", str(fleet), *args], env)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "refused: read-only mode" in result.stderr
    assert ("FLEETDECK_READ_ONLY" if place == "env" else "--read-only") in result.stderr
    entries = journal(tmp_path)
    assert [(e["action"], e["result"]) for e in entries] == [(verb, "refused")]


@pytest.mark.parametrize("verb", sorted(CHANGING))
def test_fleet_file_read_only_refuses_every_changing_verb(tmp_path: Path, fleet: Path, verb: str) -> None:
    """``readOnly: true`` in the fleet file, named by --fleet after the verb: refused the same way."""
    data = yaml.safe_load(fleet.read_text())
    fleet.write_text(yaml.safe_dump({**data, "readOnly": True}))
    args, _ = placed(verb, ["--fleet", str(fleet)], "", "", "after")
    result = run(tmp_path, args)
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"readOnly: true in {fleet}" in result.stderr
    assert [(e["action"], e["result"]) for e in journal(tmp_path)] == [(verb, "refused")]


@pytest.mark.parametrize("verb", sorted(CHANGING - {"agent"}))
def test_cluster_read_only_refuses_before_any_plan(tmp_path: Path, fleet: Path, verb: str) -> None:
    """A cluster marked readOnly refuses the verbs that target it, before any revision is resolved."""
    data = yaml.safe_load(fleet.read_text())
    data["clusters"][0]["readOnly"] = True
    fleet.write_text(yaml.safe_dump(data))
    result = run(tmp_path, ["--fleet", str(fleet), *verb.split(), *VERB_ARGS[verb]])
    assert result.returncode == 3, result.stdout + result.stderr
    assert "cluster dead is readOnly" in result.stderr
    assert [(e["action"], e["cluster"], e["result"]) for e in journal(tmp_path)] == [(verb, "dead", "refused")]


@pytest.mark.parametrize("place", PLACEMENTS)
@pytest.mark.parametrize("verb", sorted(CHANGING | LOOKING))
def test_fleet_binds_every_verb(tmp_path: Path, verb: str, place: str) -> None:
    """--fleet before or after the verb, or FLEETDECK_FLEET: the named file is the one read (here it is
    missing, and the error names it), never ./fleetdeck.yaml."""
    (tmp_path / "fleetdeck.yaml").write_text("this: is not the fleet file the command was given\n")
    missing = str(tmp_path / "named.yaml")
    args, env = placed(verb, ["--fleet", missing], "FLEETDECK_FLEET", missing, place)
    result = run(tmp_path, args, env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "named.yaml" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("place", ("before", "after"))
def test_output_binds_wherever_written(tmp_path: Path, fleet: Path, place: str) -> None:
    args, _ = placed("status", ["-o", "json"], "", "", place)
    result = run(tmp_path, ["--fleet", str(fleet), *args])
    assert result.returncode == 2  # the only cluster cannot be read
    assert json.loads(result.stdout)["apps"][0]["app"] == "web"


@pytest.mark.parametrize("place", PLACEMENTS)
def test_read_only_binds_looking_verbs(tmp_path: Path, fleet: Path, place: str) -> None:
    """status in read-only mode says so in its data (and sends no dry run; see the cluster test)."""
    args, env = placed("status", ["--read-only"], "FLEETDECK_READ_ONLY", "true", place)
    result = run(tmp_path, ["--fleet", str(fleet), "-o", "json", *args], env)
    assert json.loads(result.stdout)["read_only"] is True
    plain = run(tmp_path, ["--fleet", str(fleet), "-o", "json", "status"])
    assert json.loads(plain.stdout)["read_only"] is False


@pytest.mark.parametrize(("args", "message"), [
    (["-o", "json", "agent"], "agent has no --output"),
    (["-o", "markdown", "status"], "status speaks --output table|json|yaml, not markdown"),
    (["--fleet", "x.yaml", "drift", "a", "b"], "drift reads no fleet file"),
    (["--fleet", "x.yaml", "demo"], "demo reads no fleet file"),
    (["--fleet", "a.yaml", "status", "--fleet", "b.yaml"], "--fleet given twice"),
])
def test_an_option_a_verb_cannot_use_is_an_error(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(tmp_path, args)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_health_exit_codes(tmp_path: Path) -> None:
    """health: 1 for Degraded (a Deployment past its progress deadline), 0 for Healthy."""
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "generation": 2},
                  "spec": {"replicas": 1},
                  "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1,
                             "readyReplicas": 1, "conditions": [{"type": "Available", "status": "True"}]}}
    healthy = tmp_path / "healthy.yaml"
    healthy.write_text(yaml.safe_dump(deployment))
    stuck = tmp_path / "stuck.yaml"
    stuck.write_text(yaml.safe_dump({**deployment, "status": {
        "observedGeneration": 2, "replicas": 1, "updatedReplicas": 0,
        "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}}))
    degraded = run(tmp_path, ["health", str(stuck)])
    assert degraded.returncode == 1 and degraded.stdout.startswith("Degraded"), degraded.stdout + degraded.stderr
    ok = run(tmp_path, ["health", str(healthy), "-o", "json"])
    assert ok.returncode == 0 and json.loads(ok.stdout)["status"] == "Healthy", ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["source"] == "built-in: Deployment", ok.stdout
    assert degraded.stdout.rstrip().endswith("[built-in: Deployment]"), degraded.stdout


def test_health_missing_and_unknown_exit_codes(tmp_path: Path) -> None:
    """docs/cli.md: an empty input (the object does not exist) is Missing, exit 1; no rule and Unknown exit 0."""
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    missing = run(tmp_path, ["health", str(empty), "-o", "json"])
    assert missing.returncode == 1 and json.loads(missing.stdout)["status"] == "Missing", missing.stdout + missing.stderr
    config = tmp_path / "cm.yaml"
    config.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}))
    no_rule = run(tmp_path, ["health", str(config)])
    assert no_rule.returncode == 0 and "no health rule" in no_rule.stdout, no_rule.stdout + no_rule.stderr
    odd = tmp_path / "odd.yaml"
    odd.write_text(yaml.safe_dump({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                                   "status": {"phase": "Blooming"}}))
    unknown = run(tmp_path, ["health", str(odd)])
    assert unknown.returncode == 0 and unknown.stdout.startswith("Unknown"), unknown.stdout + unknown.stderr
    assert "[status.phase]" in unknown.stdout, unknown.stdout


def test_rollback_previous_picks_the_sync_before_the_current_one() -> None:
    """With syncs of A, B, C (C running), --previous is B, whatever order the history is stored in."""
    from dataclasses import replace

    from core.model import HistoryEntry
    from tests.fixtures.snapshots import fleet_snapshot
    from tui.cli.act import previous_revision

    entries = [HistoryEntry(id=i, revision=sha * 40, kind="sync", by="op", at=1000.0 + i, result="Succeeded")
               for i, sha in enumerate("abc", start=1)]
    row = fleet_snapshot().apps[0]
    for history in (tuple(entries), tuple(reversed(entries))):
        target = replace(row, history=history, synced_revision="c" * 40)
        assert previous_revision(target) == "b" * 40


def test_console_log_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The console's log file (it may quote cluster errors) is 0600 in a 0700 directory, whatever the umask."""
    import logging
    import stat

    from tui.cli.options import configure_logging, log_path

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    old = os.umask(0o022)
    try:
        configure_logging(0, to_file=True)
        logging.getLogger("fleetdeck.test").warning("hello")
    finally:
        os.umask(old)
        logging.basicConfig(handlers=[logging.NullHandler()], force=True)
    path = Path(log_path())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert "hello" in path.read_text()


def test_exit_code_mapping_of_errors() -> None:
    """The one mapping from an error to an exit code: refusals are 3, everything else 2."""
    from core.errors import ClusterError, ConfigError, LockedError, NotAcknowledgedError, ReadOnlyError
    from tui.cli.options import Exit, exit_code_of

    assert exit_code_of(ReadOnlyError("sync web")) is Exit.REFUSED
    assert exit_code_of(NotAcknowledgedError("history replaced")) is Exit.REFUSED
    assert exit_code_of(KeyboardInterrupt()) is Exit.INTERRUPTED
    assert exit_code_of(ConfigError("bad fleet file")) is Exit.ERROR
    assert exit_code_of(ClusterError("down", cluster="a", status=None)) is Exit.ERROR
    assert exit_code_of(LockedError("web is being synced by ops@bastion", holder="ops@bastion")) is Exit.REFUSED


def test_shell_completion_offers_verbs_and_the_fleet_file_apps(tmp_path: Path, fleet: Path) -> None:
    """`fleetdeck completion bash` prints a script; completing APP lists the apps of the fleet file named
    by --fleet (before the verb) or FLEETDECK_FLEET."""
    script = run(tmp_path, ["completion", "bash"])
    assert script.returncode == 0 and "_FLEETDECK_COMPLETE=bash_complete" in script.stdout

    def complete(words: str, env: dict[str, str] | None = None) -> list[str]:
        cword = str(len(words.split()) - 1)
        result = run(tmp_path, [], {"_FLEETDECK_COMPLETE": "bash_complete", "COMP_WORDS": words,
                                    "COMP_CWORD": cword, **(env or {})})
        return [line.split(",", 1)[1] for line in result.stdout.splitlines() if line]

    assert "sync" in complete("fleetdeck sy")
    assert "events" in complete("fleetdeck ev")
    assert complete(f"fleetdeck --fleet {fleet} events w") == ["web"]
    assert complete(f"fleetdeck --fleet {fleet} diff w") == ["web"]
    assert complete("fleetdeck sync w", {"FLEETDECK_FLEET": str(fleet)}) == ["web"]
    assert complete("fleetdeck sync w") == []  # no fleet file here: nothing, and no error


def test_status_and_diff_exit_codes_follow_the_table() -> None:
    """0 in sync and healthy, 1 drift or Degraded/Missing, 2 when a cluster or the repo cannot be read (a
    fetch failing while the last revision is still compared counts: the verdict may be out of date)."""
    from dataclasses import replace

    from core.model import ConnectionState, Health, HealthStatus, SyncStatus
    from tests.fixtures.snapshots import fleet_snapshot
    from tui.cli.observe import fleet_exit, row_exit
    from tui.cli.options import Exit

    snap = fleet_snapshot()
    healthy = replace(snap.apps[0], sync=SyncStatus.SYNCED, health=Health(HealthStatus.HEALTHY), stale=False)
    on = {c.name for c in snap.clusters if c.connection is ConnectionState.CONNECTED}
    assert healthy.cluster in on
    assert row_exit(healthy) is Exit.OK
    assert row_exit(replace(healthy, sync=SyncStatus.OUT_OF_SYNC)) is Exit.PROBLEM
    assert row_exit(replace(healthy, health=Health(HealthStatus.DEGRADED))) is Exit.PROBLEM
    assert row_exit(replace(healthy, stale=True)) is Exit.ERROR
    assert fleet_exit(replace(snap, apps=(healthy,)), [healthy]) is Exit.OK
    assert fleet_exit(fleet_snapshot(repo_error="fetch failed"), [healthy]) is Exit.ERROR


def test_fleet_conditions_are_an_error_exit_and_shown() -> None:
    """Apps the config defines but fleetdeck could not read (``ImportError``, ``ConfigError``: fleet-level
    conditions) make ``status`` exit 2 and are shown on the console's repo line, escaped; a warning alone
    does not change the exit code."""
    from dataclasses import replace

    from core.model import Condition, Health, HealthStatus, Severity, SyncStatus
    from tests.fixtures.snapshots import NOW, fleet_snapshot
    from tui.cli.observe import fleet_exit
    from tui.cli.options import Exit
    from tui.glyphs import ASCII
    from tui.widgets.header import repo_text

    snap = fleet_snapshot()
    healthy = replace(snap.apps[0], sync=SyncStatus.SYNCED, health=Health(HealthStatus.HEALTHY), stale=False)
    failed = Condition("ImportError", "reading Argo CD/Flux apps at abc123: \x1b[2J[bold]boom[/]", Severity.ERROR)
    warned = Condition("Notice", "something to know", Severity.WARNING)
    assert fleet_exit(replace(snap, apps=(healthy,), conditions=(warned,)), [healthy]) is Exit.OK
    assert fleet_exit(replace(snap, apps=(healthy,), conditions=(failed,)), [healthy]) is Exit.ERROR
    line = repo_text(snap.repo, NOW, ASCII, (failed, warned)).plain
    assert "ImportError: reading Argo CD/Flux apps at abc123:" in line and "(+1 more)" in line
    assert "\x1b" not in line and "[bold]boom[/]" in line  # shown as text, never as markup or control


def test_health_exit_code_table_matches_the_code() -> None:
    """docs/cli.md's `health` row puts exactly the problem health states (PROBLEM_HEALTH) under exit 1."""
    from tui.cli.options import PROBLEM_HEALTH

    doc = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    row = next(line for line in doc.splitlines() if line.startswith("| `health` |"))
    ok, problem = (cell.strip() for cell in row.split("|")[2:4])
    states = ("Healthy", "Progressing", "Suspended", "Unknown", "Degraded", "Missing")
    assert {s for s in states if s in problem} == set(PROBLEM_HEALTH), row
    assert not {s for s in states if s in ok} & set(PROBLEM_HEALTH), row


def test_events_of_an_unreachable_cluster_exit_2(tmp_path: Path, fleet: Path) -> None:
    """`events` is a looking verb: its cluster refuses connections, so it says so and exits 2 (never a
    traceback), with the reason in JSON too."""
    result = run(tmp_path, ["--fleet", str(fleet), "events", "web", "-o", "json"])
    assert result.returncode == 2, result.stdout + result.stderr
    target = json.loads(result.stdout)["targets"][0]
    assert target["cluster"] == "dead" and target["events"] == [] and not target["listed"]
    assert target["error"].startswith("events not readable"), target
    table = run(tmp_path, ["--fleet", str(fleet), "events", "web"])
    assert table.returncode == 2 and "cluster dead: events not readable" in table.stderr, table.stderr
    assert "Traceback" not in table.stderr


@pytest.mark.parametrize("verb", ["demo", "console"])
def test_the_console_without_a_terminal_says_what_to_use(tmp_path: Path, fleet: Path, verb: str) -> None:
    """Piped (no terminal), the console would write escape codes into a file: it refuses with exit 2 and names
    the verbs that print text and JSON, before building anything."""
    result = run(tmp_path, ["--fleet", str(fleet), verb] if verb == "console" else [verb])
    assert result.returncode == 2, result.stdout + result.stderr
    assert "the console needs a terminal" in result.stderr and "fleetdeck status" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
