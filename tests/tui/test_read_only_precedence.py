"""Row S3: a cluster's own ``readOnly: false`` never weakens a global read-only (the fleet file's
``readOnly: true``, ``--read-only`` or ``FLEETDECK_READ_ONLY``). Each case runs the installed executable
against a fleet whose only cluster refuses connections, so nothing could be written anyway: what is checked
is the refusal (exit 3, the reason, one ``refused`` journal entry) before any plan."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.tui.test_cli_options import fleet, journal, run  # noqa: F401  (fleet is a fixture)

SOURCES = {
    "fleet-file": ([], {}),
    "flag": (["--read-only"], {}),
    "environment": ([], {"FLEETDECK_READ_ONLY": "1"}),
}


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("verb", [["sync", "web", "--yes"], ["pause", "web"]], ids=["sync", "pause"])
def test_cluster_read_only_false_does_not_weaken_a_global_read_only(
    tmp_path: Path, fleet: Path, source: str, verb: list[str]  # noqa: F811
) -> None:
    data = yaml.safe_load(fleet.read_text())
    data["clusters"][0]["readOnly"] = False
    if source == "fleet-file":
        data["readOnly"] = True
    fleet.write_text(yaml.safe_dump(data))
    flags, env = SOURCES[source]
    result = run(tmp_path, [*flags, "--fleet", str(fleet), *verb], env)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "refused: read-only mode" in result.stderr, result.stderr
    assert [(e["action"], e["result"]) for e in journal(tmp_path)] == [(verb[0], "refused")]
