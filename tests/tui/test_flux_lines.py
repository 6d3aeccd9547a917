"""The app screen's Flux lines and the status record of a flux-owned row: Flux's strings are untrusted."""

from __future__ import annotations

from core.model import (
    AppName,
    AppStatus,
    ClusterName,
    Health,
    HealthStatus,
    Owner,
    ResourceKey,
    SyncStatus,
)
from core.reconcile.flux_objects import flux_state
from tui.glyphs import ASCII
from tui.output import status_record
from tui.screens.app_screen import flux_lines

HOSTILE = "\x1b[31mred\x1b]8;;http://x\x07link\u202e[bold]markup[/bold]"


def row() -> AppStatus:
    ks = flux_state({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"sourceRef": {"kind": "GitRepository", "name": "config"}, "dependsOn": [{"name": HOSTILE}]},
        "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "BuildFailed", "message": HOSTILE}],
                   "lastAppliedRevision": "main@sha1:" + "a" * 40, "lastAttemptedRevision": HOSTILE,
                   "inventory": {"entries": [{"id": "apps_web__ConfigMap", "v": "v1"}]}}})
    src = flux_state({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                      "metadata": {"name": "config", "namespace": "apps"}, "spec": {"ref": {"commit": "b" * 40}},
                      "status": {"artifact": {"revision": "main@sha1:" + "b" * 40}}})
    return AppStatus(app=AppName("web"), cluster=ClusterName("c1"), namespace="apps", path="apps/web",
                     sync=SyncStatus.SYNCED, health=Health(HealthStatus.HEALTHY), revision=None, owner=Owner.FLUX,
                     flux=(ks, src))


def test_flux_lines_show_the_objects_and_never_raw_control_sequences() -> None:
    lines = [line.plain for line in flux_lines(row(), ASCII)]
    assert lines[0].startswith("flux Kustomization/apps/web: Not ready: BuildFailed main@sha1:aaaaaaa")
    assert "1 object(s) in its inventory" in lines[0]
    assert lines[1].startswith("     source GitRepository/apps/config: ")
    assert "pinned to bbbbbbbbbbbb" in lines[1]
    for line in lines:
        assert "\x1b" not in line and "\x07" not in line and "\u202e" not in line


def test_status_record_lists_the_flux_objects() -> None:
    record = status_record(row())
    assert [f["kind"] for f in record["flux"]] == ["Kustomization", "GitRepository"]
    assert record["flux"][0]["source"] == str(ResourceKey("source.toolkit.fluxcd.io", "GitRepository", "apps",
                                                          "config"))
    assert record["flux"][0]["ready"] == "False" and record["flux"][0]["inventory"] == 1
