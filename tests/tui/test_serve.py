"""``fleetdeck serve`` without a cluster (R9, docs/reliability.md): a non-loopback address is refused with the
reason (no authentication) unless ``--allow-remote``; read-only with ``--as`` is refused before serving; the
command each browser tab runs carries exactly the global options, each argument shell-quoted."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tui.cli.options import Options
from tui.cli.serve import fleetdeck_executable, is_loopback, served_command

FLEETDECK = str(Path(sys.executable).with_name("fleetdeck"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FLEETDECK, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "bastion.example.com"])
def test_a_non_loopback_address_is_refused_and_says_why(host: str) -> None:
    result = run("serve", "--host", host)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"refusing to serve on {host}" in result.stderr and "no authentication" in result.stderr
    assert "ssh -L" in result.stderr and "Traceback" not in result.stderr


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com", ""))


def test_read_only_with_as_is_refused_before_serving(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("repo: {url: /nonexistent}\nclusters: [{name: a}]\napps: []\n")
    result = run("serve", "--fleet", str(fleet), "--read-only", "--as", "alice")
    assert result.returncode == 2 and "impersonation (--as) is disabled in read-only mode" in result.stderr, \
        result.stderr


def test_the_served_command_carries_every_global_option_quoted(tmp_path: Path) -> None:
    hostile = "bob; touch /tmp/pwned $(id)"
    options = Options(fleet="f.yaml", read_only=False, verbose=2, as_user=hostile, as_groups=("ops", "a b"),
                      memory_limit=512 * 1024**2)
    command = served_command(options, fleet_file=tmp_path / "f.yaml", read_only=False, mouse=True)
    argv = shlex.split(command)
    start = fleetdeck_executable()
    assert argv[:len(start)] == start
    assert argv[len(start):] == [
        "console", "--fleet", str((tmp_path / "f.yaml").resolve()), "--as", hostile, "--as-group", "ops",
        "--as-group", "a b", "-vv", "--memory-limit", str(512 * 1024**2), "--mouse"]
    read_only = shlex.split(served_command(Options(read_only=True), fleet_file=tmp_path / "f.yaml", read_only=True,
                                           mouse=False))
    assert read_only[len(start):] == ["console", "--fleet", str((tmp_path / "f.yaml").resolve()), "--read-only", "--no-mouse"]
