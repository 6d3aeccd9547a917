"""Secret values never leave fleetdeck, counted: every output of the real ``fleetdeck`` against a real
kube-apiserver is searched for planted canaries (docs/reliability.md, S4).

Git holds a Secret with canaries in ``data`` (base64) and ``stringData`` and a Deployment with a
``DB_PASSWORD`` env canary; two revisions are synced with ``sync --yes`` (so managedFields and a recorded
sync to roll back to exist); then another manager ``kubectl apply``s new canaries into the live Secret (a
client-side apply: its last-applied annotation holds them too). Every read verb in every output format it
offers, ``sync --dry-run``, a ``rollback --previous`` preview answered no, stdout and stderr at ``-vv``,
the journal, the console's ``-vv`` log file, every file of the cache and state directories and the
console's screens (fleet, app, the Secret's diff) are searched for each canary, plain and base64 (at each
of the three byte alignments). The number of outputs searched is printed and must reach the number built,
so a verb that silently drops out of the sweep fails the test.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import ClusterInfo, ControlPlane
from tests.cluster.conftest import app_objects, commit, fleet_file
from tests.cluster.test_cli import run
from tests.fixtures.tmux import TmuxSession

pytestmark = [pytest.mark.cluster, pytest.mark.tmux,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]

FLEETDECK = str(Path(sys.executable).with_name("fleetdeck"))

GIT_CANARIES = {  # revision -> (data, stringData, DB_PASSWORD env)
    1: ("cnrydata1x7f3a9c1e55", "cnrystr1x4b8d2e9a07", "cnryenv1x93c1f0b6d2"),
    2: ("cnrydata2x1e6b4a8c30", "cnrystr2x7d0c5f1e94", "cnryenv2x2a9e7b3c61"),
}
LIVE_CANARIES = ("cnrylivedatax5c2e8a1f4", "cnrylivestrx0b7f3d9e26")
"""Only in the cluster, put there by another manager: they may be in no file at all, Git copies included."""


def forms(canary: str) -> list[str]:
    """The canary plain and base64-encoded at each byte alignment (the stable middle of the encoding)."""
    raw = canary.encode()
    out = [canary, base64.b64encode(raw).decode()]
    for pad in (1, 2):
        encoded = base64.b64encode(b"\0" * pad + raw + b"\0\0").decode()
        out.append(encoded[4:-8])
    return out


def git_objects(namespace: str, revision: int) -> list[dict[str, Any]]:
    """The app with revision's canaries in the Secret's ``data`` and ``stringData`` and in ``DB_PASSWORD``."""
    data, string, env = GIT_CANARIES[revision]
    objects = app_objects(namespace, env={"MODE": "blue", "DB_PASSWORD": env})
    secret = next(o for o in objects if o["kind"] == "Secret")
    secret["data"] = {"password": base64.b64encode(data.encode()).decode()}
    secret["stringData"] = {"token": string}
    return objects


class Console(TmuxSession):
    """``fleetdeck ARGS`` in a private tmux server, sharing the CLI runs' journal, cache and state."""

    def __init__(self, tmp: Path, args: list[str]) -> None:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("FLEETDECK_")},
               "FLEETDECK_JOURNAL": str(tmp / "journal.jsonl"), "XDG_CACHE_HOME": str(tmp / "xdg"),
               "XDG_STATE_HOME": str(tmp / "state"), "TERM": "xterm-256color"}
        env.pop("COLORTERM", None)
        super().__init__(" ".join([FLEETDECK, *args]), env=env, size=(140, 40), name="fd-canary")


def test_no_secret_canary_in_any_output(tmp_path: Path, repo: Path, cluster: ClusterInfo, namespace: str,
                                        control_plane: ControlPlane) -> None:
    started = time.monotonic()
    app = namespace
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    fleet_args = ("--fleet", str(fleet))
    outputs: list[tuple[str, str]] = []  # (what, text)
    built = 0  # the outputs the sweep is built to search

    def fleetdeck(*args: str, stdin: str | None = None, codes: tuple[int, ...] = (0, 1)) -> str:
        nonlocal built
        built += 2
        result = run(tmp_path, "-vv", *args, stdin=stdin)
        name = " ".join(a for a in args if a not in fleet_args)
        assert result.returncode in codes, f"{name}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr
        outputs.extend([(f"{name} (stdout)", result.stdout), (f"{name} (stderr)", result.stderr)])
        return result.stdout

    def kubectl(*args: str, stdin: str | None = None) -> str:
        return subprocess.run(
            [str(control_plane.binaries.kubectl), "--kubeconfig", str(cluster.kubeconfig), "--context",
             cluster.admin_context, "-n", namespace, *args],
            check=True, capture_output=True, text=True, timeout=60, input=stdin).stdout

    # Two revisions synced: managedFields on every object, and a previous sync to roll back to.
    for revision in (1, 2):
        commit(repo, git_objects(namespace, revision), f"web: secret revision {revision}")
        synced = fleetdeck("sync", app, *fleet_args, "--yes", codes=(0,))
        assert "Succeeded" in synced, synced
    secret = json.loads(kubectl("get", "secret", "web-secret", "-o", "json", "--show-managed-fields"))
    assert secret["metadata"]["managedFields"]
    assert base64.b64decode(secret["data"]["token"]).decode() == GIT_CANARIES[2][1]

    # Another manager changes the Secret's values in the cluster (client-side apply: last-applied too).
    live_data, live_string = LIVE_CANARIES
    drifted = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-secret", "namespace": namespace},
               "data": {"password": base64.b64encode(live_data.encode()).decode()},
               "stringData": {"token": live_string}}
    kubectl("apply", "-f", "-", stdin=json.dumps(drifted))
    live_secret = kubectl("get", "secret", "web-secret", "-o", "yaml", "--show-managed-fields")
    assert "kubectl.kubernetes.io/last-applied-configuration" in live_secret and live_string in live_secret
    live_deployment = kubectl("get", "deployment", "web", "-o", "yaml", "--show-managed-fields")
    assert GIT_CANARIES[2][2] in live_deployment

    # Inputs for the file verbs (inputs, not outputs: never searched).
    files = tmp_path / "inputs"
    files.mkdir()
    (files / "live-secret.yaml").write_text(live_secret)
    (files / "live-deployment.yaml").write_text(live_deployment)
    desired = git_objects(namespace, 2)
    for obj in desired:
        obj["metadata"]["namespace"] = namespace
    (files / "desired-secret.yaml").write_text(yaml.safe_dump(next(o for o in desired if o["kind"] == "Secret")))
    (files / "desired-deployment.yaml").write_text(
        yaml.safe_dump(next(o for o in desired if o["kind"] == "Deployment")))

    # Every read verb in every format it offers.
    for fmt in ("table", "json", "yaml"):
        fleetdeck("status", *fleet_args, "-o", fmt)
        diff = fleetdeck("diff", app, *fleet_args, "-o", fmt)
        assert "web-secret" in diff, diff  # the drifted Secret is in the diff it must not leak from
        fleetdeck("history", app, *fleet_args, "-o", fmt)
        fleetdeck("events", app, *fleet_args, "-o", fmt)
        fleetdeck("audit", "journal", "--limit", "0", "-o", fmt)
        fleetdeck("sync", app, *fleet_args, "--dry-run", "-o", fmt)
        fleetdeck("rollback", app, "--previous", *fleet_args, "-o", fmt, stdin="n\n", codes=(3,))
    for fmt in ("markdown", "json"):
        fleetdeck("audit", "report", *fleet_args, "-o", fmt)
    for fmt in ("text", "json", "yaml"):
        for kind in ("secret", "deployment"):
            out = fleetdeck("drift", str(files / f"desired-{kind}.yaml"), str(files / f"live-{kind}.yaml"),
                            "-o", fmt)
            if kind == "secret":
                assert "password" in out and "token" in out, out  # the changed keys are named, not their values
            fleetdeck("health", str(files / f"live-{kind}.yaml"), "-o", fmt)
    # Read-only mode answers the same reads from another code path (the access review first).
    for verb in (("status",), ("diff", app), ("sync", app, "--dry-run")):
        fleetdeck("--read-only", *verb, *fleet_args, "-o", "json", codes=(0, 1, 3))

    # The console at -vv: fleet, the app, the Secret's diff (unified, then side by side).
    screens = 4
    built += screens
    c = Console(tmp_path, ["-vv", "console", *fleet_args])
    try:
        outputs.append(("console fleet screen",
                        c.wait_for(lambda s: app[:20] in s and "OutOfSync" in s, "the drifted app")))
        c.keys("Enter")
        outputs.append(("console app screen", c.wait_for(lambda s: "web-secret" in s, "the app's objects")))
        c.keys("D")  # the whole app's diff: the drifted Secret is its only change
        outputs.append(("console diff", c.wait_for(
            lambda s: "web-secret" in s and "change block" in s and " 0 change blocks" not in s,
            "the Secret's diff")))
        c.keys("v")
        time.sleep(1)
        outputs.append(("console diff side by side", c.screen()))
        c.keys("Escape", "Escape", "q")
        time.sleep(1)
    finally:
        c.close()

    # Files: the journal, the console's log, and every file of the cache and state directories.
    journal = tmp_path / "journal.jsonl"
    log = tmp_path / "state" / "fleetdeck" / "fleetdeck.log"
    cache = tmp_path / "xdg" / "fleetdeck"
    # Git's own objects (a mirror, for a remote repo) and the materialized trees hold what Git holds, nothing
    # rendered (core/desired/repo.py); everything else must hold no canary at all.
    git_copies = [cache / "git" / "git", cache / "git" / "trees"]
    written = sorted(p for p in [*(tmp_path / "xdg").rglob("*"), *(tmp_path / "state").rglob("*")] if p.is_file())
    assert journal.is_file() and log.is_file() and any(p.is_relative_to(cache) for p in written)
    assert log.read_text(errors="replace").count(" DEBUG ") >= 5
    built += 1 + len(written)
    outputs.append(("journal", journal.read_text(errors="replace")))
    git_only: list[tuple[str, str]] = []
    for path in written:
        text = path.read_bytes().decode("latin-1")
        in_git = any(path.is_relative_to(g) for g in git_copies)
        (git_only if in_git else outputs).append((str(path.relative_to(tmp_path)), text))

    git_forms = [f for revision in GIT_CANARIES.values() for canary in revision for f in forms(canary)]
    live_forms = [f for canary in LIVE_CANARIES for f in forms(canary)]
    found = [(what, form) for what, text in outputs for form in [*git_forms, *live_forms] if form in text]
    found += [(what, form) for what, text in git_only for form in live_forms if form in text]
    checked = len(outputs) + len(git_only)
    elapsed = time.monotonic() - started
    print(f"\nsecret canary sweep: {checked} outputs checked ({len(outputs)} fully, {len(git_only)} Git copies "
          f"for the live-only canaries), {len(GIT_CANARIES) * 3 + len(LIVE_CANARIES)} canaries × "
          f"{len(forms(LIVE_CANARIES[0]))} forms, canaries found: {len(found)}, {elapsed:.1f} s")
    assert found == [], found
    # The search finds what is there: the inputs hold the live canaries, the Git trees the Git ones.
    inputs = "".join(p.read_text() for p in files.iterdir())
    assert all(any(f in inputs for f in forms(c)) for c in LIVE_CANARIES)
    trees = "".join(text for _, text in git_only)
    assert all(any(f in trees for f in forms(c)) for revision in GIT_CANARIES.values() for c in revision)
    assert checked >= built, (checked, built)
