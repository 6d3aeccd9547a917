"""Rollback of a HelmRelease-owned app against the REAL helm-controller (v1.4.3) and source-controller.

The chart comes from a HelmRepository served on 127.0.0.1: 0.1.0 is installed, 0.2.0 published and synced,
then ``fleetdeck rollback APP 0.1.0`` pins ``spec.chart.spec.version`` to that chart version of the
HelmRelease's ``status.history`` (the constraint it replaced recorded in ``fleetdeck.io/pinned-from``) and
helm-controller installs 0.1.0 again; ``fleetdeck resume`` puts the constraint back and 0.2.0 returns. On
the way, Argo CD's sync options and dry run are refused for this Flux-owned app (exit 2, nothing sent). All
through the real ``fleetdeck`` command; the effects read on the HelmRelease, the ConfigMap the chart renders,
the apiserver's audit log and the journal. The intervals are 10 minutes: what happens, fleetdeck asked for.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest

from devcluster.flux import FluxInfo
from tests.cluster.test_argocd_owner import merged
from tests.cluster.test_cli import run
from tests.cluster.test_flux_controllers import get_or_none, wait_for
from tests.cluster.test_flux_owner import GREETER, flux_writes, greeter_app, install_greeter
from tests.fixtures.chart_servers import write_chart

pytestmark = pytest.mark.cluster


def printed_patches(stdout: str) -> list[dict[str, Any]]:
    lines = stdout.splitlines()
    return [json.loads(lines[i + 1].strip()) for i, line in enumerate(lines) if line.strip().startswith("write ")]


def test_rollback_pins_the_chart_version_of_a_history_release_and_resume_restores_it(
    flux_plane: FluxInfo, tmp_path: Path, helm_binary: Path
) -> None:
    ns, fleet, serving, home, release_path = greeter_app(flux_plane, tmp_path, helm_binary, prefix="hb",
                                                          chart="0.2.0")
    rest = flux_plane.cluster.rest()

    def cli(*args: str) -> Any:
        return run(tmp_path, *args, "--fleet", str(fleet))

    def chart() -> str | None:
        cm = get_or_none(rest, f"/api/v1/namespaces/{ns}/configmaps/{ns}-greeting")
        return None if cm is None else str(cm["data"]["chart"])

    def history() -> list[str]:
        return [str(h.get("chartVersion")) for h in (rest.get(release_path).get("status") or {}).get("history") or []]

    def journal() -> list[dict[str, Any]]:
        path = tmp_path / "journal.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []

    with serving.running():
        install_greeter(rest, ns, serving.url)
        wait_for("0.1.0 installed", lambda: chart() == "0.1.0")
        serving.publish(helm_binary, home, [write_chart(tmp_path / "c2", "greeter", "0.2.0", GREETER,
                                                        "greeting: x\n")])
        synced = cli("sync", ns, "--yes")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        wait_for("0.2.0 installed", lambda: chart() == "0.2.0", timeout=90)
        wait_for("both releases in status.history", lambda: history()[:2] == ["0.2.0", "0.1.0"] or None)

        # Argo CD's options on a Flux-owned app: refused with the reason, nothing sent (not even a dry run)
        since = dt.datetime.now(dt.UTC)
        for args in (("--sync-option", "CreateNamespace=true", "--yes"), ("--controller-dry-run", "--yes"),
                     ("--sync-option", "Replace=true", "--dry-run")):
            refused = cli("sync", ns, *args)
            assert refused.returncode == 2, (args, refused.stdout + refused.stderr)
            assert "blocked: " in refused.stdout and "HelmRelease" in refused.stdout, refused.stdout
        # an unknown chart version: refused, naming the ones status.history has
        unknown = cli("rollback", ns, "9.9.9", "--yes")
        assert unknown.returncode == 2 and "known: 0.2.0, 0.1.0" in unknown.stdout, unknown.stdout + unknown.stderr
        time.sleep(1.0)
        assert flux_writes(flux_plane, since) == []

        before = rest.get(release_path)
        since = dt.datetime.now(dt.UTC)
        rolled = cli("rollback", ns, "0.1.0", "--yes")
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        [patch] = printed_patches(rolled.stdout)
        after = rest.get(release_path)
        expected = merged(before, patch)
        assert after["spec"] == expected["spec"] and after["metadata"]["annotations"] == \
            expected["metadata"]["annotations"]  # preview = effect
        assert after["spec"]["chart"]["spec"]["version"] == "0.1.0"
        notes = after["metadata"]["annotations"]
        assert json.loads(notes["fleetdeck.io/pinned-from"]) == {"version": ">=0.1.0"}
        assert notes["fleetdeck.io/pinned"] == "0.1.0" and notes["fleetdeck.io/paused"] == "true"
        wait_for("0.1.0 installed again", lambda: chart() == "0.1.0", timeout=90)
        writes = wait_for("the audit log", lambda: flux_writes(flux_plane, since) or None, timeout=10)
        assert writes == [("patch", "helmreleases", ns)]
        row = json.loads(cli("status", "-o", "json").stdout)["apps"][0]
        assert row["owner"] == "flux" and row["paused"] is True

        resumed = cli("resume", ns)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        release = rest.get(release_path)
        assert release["spec"]["chart"]["spec"]["version"] == ">=0.1.0"
        assert release["spec"]["suspend"] is False
        assert not any(k.startswith("fleetdeck.io/") for k in release["metadata"].get("annotations") or {})
        wait_for("0.2.0 installed again", lambda: chart() == "0.2.0", timeout=90)

    entries = [e for e in journal() if e["app"] == ns]
    rollback = [e for e in entries if e["action"] == "rollback"]
    assert [e["result"] for e in rollback] == ["started", "succeeded"]  # a blocked plan does not run
    assert '"version":"0.1.0"' in rollback[-1]["details"]["patches"][0]
    assert ("resume", "succeeded") in [(e["action"], e["result"]) for e in entries]
    rest.delete(f"/api/v1/namespaces/{ns}")
