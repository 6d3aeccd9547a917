"""The fleet scenarios' smoke sizes run in seconds and report what the full runs report (``bench/``)."""

from __future__ import annotations

import json

from bench import churn_bench, scale_bench


def test_churn_smoke_counts_one_comparison_per_event_and_shows_every_change() -> None:
    out: list[str] = []
    assert churn_bench.main(["--quick"], out=out.append) == 0
    result = json.loads(out[0])
    steady, relist = result["steady"], result["relist"]
    assert steady["all_visible"] and steady["changes"] > 0
    assert steady["comparisons_per_event"] <= 1.05
    assert result["burst"]["all_visible"]
    assert relist["recovered"] and relist["comparisons_per_relisted_object"] < 0.1


def test_sim_l_smoke_evaluates_every_row() -> None:
    out: list[str] = []
    assert scale_bench.main(["--scale", "0.02", "--apps", "3"], out=out.append) == 0
    result = json.loads(out[0])
    assert result["complete"] and result["rows_synced"] == result["rows"] == 6
    assert result["gc"]["max_pause_ms"] >= 0
