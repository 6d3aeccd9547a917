"""The open-file limit: raised at start, and a fleet too large for it is said in words (docs/reliability.md, K17)."""

from __future__ import annotations

import errno
import resource
import subprocess
import sys

from core.limits import files_needed, open_file_shortfall, os_error_text, out_of_files


def test_shortfall_names_the_limit_the_need_and_what_to_raise() -> None:
    assert open_file_shortfall(10, 10, limit=1024) == ""
    text = open_file_shortfall(500, 10, limit=1024)
    assert text.startswith("open-file limit 1,024 is below the about 6,064 this fleet needs (500 clusters × 12")
    assert "ulimit -Hn" in text and "LimitNOFILE=" in text
    assert files_needed(500, 10) == 6_064


def test_out_of_files_is_recognised_through_causes() -> None:
    cause = OSError(errno.EMFILE, "Too many open files")
    wrapped = RuntimeError("git failed")
    wrapped.__cause__ = cause
    assert out_of_files(wrapped) and not out_of_files(OSError(errno.ENOENT, "gone"))
    assert os_error_text(cause) == "Too many open files (raise the open-file limit, `ulimit -n`)"


def test_the_soft_limit_is_raised_to_the_hard_one_in_a_child() -> None:
    """Run in a child process under ``prlimit``-like limits, so this process's own limit is left alone."""
    code = ("import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (64, 2048)); "
            "from core.limits import raise_open_file_limit; print(raise_open_file_limit(), "
            "resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        code = code.replace("2048", str(hard))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == out[1] and int(out[0]) > 64
