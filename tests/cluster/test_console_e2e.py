"""The real ``fleetdeck`` console in tmux against a real kube-apiserver, driven as an operator would.

A private tmux server (its own socket) runs ``fleetdeck console``; keys go in with ``send-keys`` and the
screen comes back with ``capture-pane``. Waits are bounded polls of the screen, never timing assertions.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devcluster import ClusterInfo, ControlPlane
from devcluster.audit import audit_events, mutating_events
from devcluster.binaries import Binaries
from tests.cluster.conftest import fleet_file
from tests.fixtures.tmux import TmuxSession

pytestmark = [pytest.mark.cluster, pytest.mark.tmux,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]

FLEETDECK = str(Path(sys.executable).with_name("fleetdeck"))


class Console(TmuxSession):
    """One ``fleetdeck`` process (``fleetdeck ARGS``) in a private tmux server, with a private journal, cache
    and log."""

    def __init__(self, tmp: Path, args: list[str], *, size: tuple[int, int] = (120, 36)) -> None:
        env = {**os.environ, "FLEETDECK_JOURNAL": str(tmp / "journal.jsonl"), "XDG_CACHE_HOME": str(tmp / "xdg"),
               "XDG_STATE_HOME": str(tmp / "state"), "TERM": "xterm-256color"}
        env.pop("COLORTERM", None)
        super().__init__(" ".join([FLEETDECK, *args]), env=env, size=size, name="fd-e2e")


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Callable[..., Console]]:
    """Start consoles; their tmux servers are stopped at the end."""
    started: list[Console] = []

    def start(*args: str) -> Console:
        started.append(Console(tmp_path, list(args)))
        return started[-1]

    yield start
    for c in started:
        c.close()


def app_line(screen: str, app: str) -> str:
    """The fleet table line of ``app`` (long names are cut in the table, so match a prefix)."""
    return next((line for line in screen.splitlines() if app[:20] in line and "fd-" in line), "")


def kubectl(cluster: ClusterInfo, binaries: Binaries, *args: str) -> None:
    subprocess.run([str(binaries.kubectl), "--kubeconfig", str(cluster.kubeconfig), "--context",
                    cluster.admin_context, *args], check=True, capture_output=True, timeout=60)


def test_console_shows_change_and_sync_clears_it(console: Callable[..., Console], tmp_path: Path, repo: Path,
                                                 cluster: ClusterInfo, namespace: str,
                                                 control_plane: ControlPlane) -> None:
    """The console lists the app; a sync from the console makes it Synced; a kubectl change shows as
    OutOfSync within seconds; a second sync from the console says it takes the field over from kubectl-edit,
    runs only after `a` confirms that, and clears it."""
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    c = console("console", "--fleet", str(fleet))
    c.wait_for(lambda s: "OutOfSync" in app_line(s, namespace), "the app, not yet synced")
    c.keys("s")
    c.wait_for(lambda s: "Press y" in s, "the sync confirmation")
    c.keys("y")
    c.wait_for(lambda s: "Synced" in app_line(s, namespace) and "OutOfSync" not in app_line(s, namespace),
               "the app synced")
    kubectl(cluster, control_plane.binaries, "-n", namespace, "patch", "deployment", "web", "--type", "merge",
            "-p", '{"spec":{"replicas":3}}', "--field-manager", "kubectl-edit")
    c.wait_for(lambda s: "OutOfSync" in app_line(s, namespace), "the kubectl change", timeout=20)
    c.keys("d")
    c.wait_for(lambda s: "kubectl-edit" in s and "/spec/replicas" in s, "the diff naming the manager")
    c.keys("Escape", "s")
    c.wait_for(lambda s: "takes over 1 field from kubectl-edit" in s and "press a to acknowledge" in s,
               "the second sync confirmation naming the field's other manager")
    c.keys("y")  # nothing runs until the takeover is confirmed
    time.sleep(1)
    assert "takes over 1 field from kubectl-edit" in c.screen()
    c.keys("a")
    c.wait_for(lambda s: "Press y" in s, "the takeover confirmed")
    c.keys("y")
    c.wait_for(lambda s: "OutOfSync" not in app_line(s, namespace) and "Synced" in app_line(s, namespace),
               "the drift cleared")


def test_read_only_walk_sends_no_mutation(console: Callable[..., Console], tmp_path: Path, repo: Path,
                                          cluster: ClusterInfo, namespace: str) -> None:
    """Walking every screen and pressing every action key in read-only mode with the viewer context
    leaves no mutating request from the viewer in the apiserver's audit log."""
    since = dt.datetime.now(dt.UTC)
    fleet = fleet_file(tmp_path, repo, cluster, namespace, viewer=True)
    c = console("--read-only", "console", "--fleet", str(fleet))
    c.wait_for(lambda s: namespace[:20] in s and "read-only" in s.lower(), "the read-only banner and the app")
    walk = ["Enter", "Escape", "d", "v", "c", "n", "Escape", "h", "Down", "Enter", "R", "y", "Escape",
            "Escape", "m", "m", "g", "g", "g", "o", "/", "w", "e", "b", "Escape", "?", "Escape",
            "s", "y", "p", "y", "P", "r", "space", "s", "y", "C-p", "s", "y", "n", "c", "Escape", ":", "Escape"]
    c.keys(*walk)
    time.sleep(2)  # let any request the keys might have caused reach the audit log
    assert namespace[:20] in c.screen()  # still running, still showing the fleet
    reviews = ("selfsubjectaccessreviews", "selfsubjectreviews")
    writes = [e for e in mutating_events(audit_events(cluster, since=since), user="fleetdeck-viewer")
              if (e.get("objectRef") or {}).get("resource") not in reviews]
    assert writes == []


SECRET_CANARY = "canary-secret-7f3a9c"
TOKEN_CANARY = "canary-token-51d0e2"


def test_debug_log_of_the_console_holds_no_secret_or_token(console: Callable[..., Console], tmp_path: Path,
                                                           repo: Path, cluster: ClusterInfo, namespace: str) -> None:
    """The console at DEBUG level (``-vv``), synced, diffed and browsed, with a Secret whose value is a canary
    and a second cluster whose kubeconfig token is one (its server is down, so every retry carries it): the
    private log file has plenty of DEBUG lines and neither canary, plain or base64 (docs/reliability.md, S8)."""
    import base64

    import yaml

    from tests.cluster.conftest import app_objects, commit

    objects = app_objects(namespace)
    objects[2]["stringData"] = {"token": SECRET_CANARY}
    commit(repo, objects, "web: canary secret")
    kubeconfig = tmp_path / "token.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "down",
        "clusters": [{"name": "down", "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "tok", "user": {"token": TOKEN_CANARY}}],
        "contexts": [{"name": "down", "context": {"cluster": "down", "user": "tok"}}]}))
    fleet = fleet_file(tmp_path, repo, cluster, namespace)
    data = yaml.safe_load(fleet.read_text())
    data["clusters"].append({"name": "down", "kubeconfig": str(kubeconfig), "context": "down"})
    data["apps"][0]["clusters"] = [cluster.name]
    fleet.write_text(yaml.safe_dump(data))
    c = console("-vv", "console", "--fleet", str(fleet))
    c.wait_for(lambda s: "OutOfSync" in app_line(s, namespace), "the app, not yet synced")
    c.keys("s")
    c.wait_for(lambda s: "Press y" in s, "the sync confirmation")
    c.keys("y")
    c.wait_for(lambda s: "Synced" in app_line(s, namespace) and "OutOfSync" not in app_line(s, namespace),
               "the app synced")
    c.keys("Enter", "d", "Escape", "Escape", "h", "Escape", "q")
    time.sleep(1)
    log = tmp_path / "state" / "fleetdeck" / "fleetdeck.log"
    text = log.read_text(errors="replace")
    assert text.count(" DEBUG ") > 10, text[-2000:]
    for canary in (SECRET_CANARY, TOKEN_CANARY):
        for form in (canary, base64.b64encode(canary.encode()).decode()):
            assert form not in text, f"{form} in the console's log"
    assert "down" in text  # the dead cluster's retries were logged, so the token had its chance to leak
