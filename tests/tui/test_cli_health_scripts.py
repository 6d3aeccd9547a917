"""``fleetdeck health`` runs Argo CD health scripts and says which one judged the object."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.tui.test_cli_options import run

SCRIPT = """
hs = {}
for i, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" and condition.status == "False" then
    hs.status = "Degraded"
    hs.message = condition.message
    return hs
  end
end
hs.status = "Healthy"
hs.message = "\\27[31mready"
return hs
"""


def certificate(status: str) -> dict[str, object]:
    return {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "tls"},
            "status": {"conditions": [{"type": "Ready", "status": status, "message": "issuer not found"}]}}


def test_health_shows_the_script_source(tmp_path: Path) -> None:
    root = tmp_path / "custom" / "cert-manager.io" / "Certificate"
    root.mkdir(parents=True)
    (root / "health.lua").write_text(SCRIPT)
    failing, ready = tmp_path / "failing.yaml", tmp_path / "ready.yaml"
    failing.write_text(yaml.safe_dump(certificate("False")))
    ready.write_text(yaml.safe_dump(certificate("True")))

    degraded = run(tmp_path, ["health", str(failing), "--customizations", str(tmp_path / "custom")])
    assert degraded.returncode == 1, degraded.stdout + degraded.stderr
    assert degraded.stdout.splitlines() == [  # the verdict and, in brackets, the rule or script behind it
        "Degraded: issuer not found  [script: cert-manager.io/Certificate/health.lua]"]

    healthy = run(tmp_path, ["health", str(ready), "-o", "json"],
                  env={"FLEETDECK_RESOURCE_CUSTOMIZATIONS": str(tmp_path / "custom")})
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert json.loads(healthy.stdout) == {"status": "Healthy", "message": "ready",
                                          "source": "script: cert-manager.io/Certificate/health.lua"}

    without = run(tmp_path, ["health", str(failing)])
    assert "script:" not in without.stdout, without.stdout + without.stderr

    missing = run(tmp_path, ["health", str(ready), "--customizations", str(tmp_path / "nope")])
    assert missing.returncode == 2 and "health customizations not found" in missing.stderr, missing.stderr
