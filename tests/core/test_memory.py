"""``core.memory``: sizes as operators write them, the cgroup's limit found from ``/proc/self/cgroup``, and the
default budget (R1, docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.memory import budget_for, cgroup_memory_limit, parse_size, statm


@pytest.mark.parametrize(("text", "size"), [
    ("512M", 512 * 1024**2), ("2G", 2 * 1024**3), ("1.5GiB", int(1.5 * 1024**3)), ("800MB", 800 * 1000**2),
    ("64k", 64 * 1024), ("1048576", 1048576), ("off", 0), ("0", 0), (" 3 Gi ", 3 * 1024**3),
])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "twelve", "12X", "-1G", "1e9"])
def test_not_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


def test_cgroup_v2_limit_is_the_smallest_on_the_way_up(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("0::/user.slice/fleetdeck.scope\n")
    (tmp_path / "user.slice" / "fleetdeck.scope").mkdir(parents=True)
    (tmp_path / "user.slice" / "fleetdeck.scope" / "memory.max").write_text("max\n")
    (tmp_path / "user.slice" / "memory.max").write_text(f"{768 * 1024**2}\n")
    assert cgroup_memory_limit(tmp_path, proc) == 768 * 1024**2


def test_cgroup_v1_unlimited_is_no_limit(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("4:memory:/box\n1:cpu:/\n")
    (tmp_path / "memory" / "box").mkdir(parents=True)
    (tmp_path / "memory" / "box" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert cgroup_memory_limit(tmp_path, proc) == 0
    (tmp_path / "memory" / "box" / "memory.limit_in_bytes").write_text("536870912\n")
    assert cgroup_memory_limit(tmp_path, proc) == 512 * 1024**2


def test_budget_settings() -> None:
    assert budget_for(0) == ()
    (limit,) = budget_for(256 * 1024**2)
    assert (limit.bytes, limit.source) == (256 * 1024**2, "--memory-limit")
    space, resident = statm()
    assert space >= resident > 0


def test_the_default_budget_follows_rlimit_as() -> None:
    """Under ``prlimit --as`` (and no cgroup limit here) the default budget is 75% of it."""
    import shutil
    import subprocess
    import sys

    prlimit = shutil.which("prlimit")
    assert prlimit, "prlimit (util-linux) is needed"
    code = "from core.memory import default_budget; print([(l.bytes, l.source) for l in default_budget()])"
    out = subprocess.run([prlimit, "--as=8000000000", sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert "(6000000000, '75% of RLIMIT_AS')" in out, out
