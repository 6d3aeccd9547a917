"""Run fleetdeck's benchmarks: ``uv run python -m bench [--quick] [--scenarios LIST]``.

Timings are ratios against a baseline measured in the same run (see ``bench/harness.py``); counters
are exact. Results go to stdout and, as JSON, to ``bench/results/latest.json`` (git-ignored).

``--scenarios`` also runs the fleet scenarios, each its own module (``bench/README.md``): ``real-s``
(``bench.real_bench``: the local control plane against kubectl), ``sim-l`` (``bench.scale_bench``), ``churn``
(``bench.churn_bench``) and ``console`` (``bench.console_bench``: bytes at 100 row updates/s, idle);
``all`` is every one. With ``--quick`` each runs its smoke size (seconds; real-S about 30 s with the
control plane's start); ``--scenarios-only`` skips the core and console ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from bench import core_bench, engine_bench, health_bench


def main(argv: list[str] | None = None) -> int:
    """Run the suite; exit 1 when a ratio is over its target."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller workloads (a smoke run)")
    parser.add_argument("--scenarios", default="", help="comma-separated: real-s, sim-l, churn, console, all")
    parser.add_argument("--scenarios-only", action="store_true", help="only the scenarios")
    args = parser.parse_args(argv)
    scenarios = _scenarios(args.scenarios)
    if args.scenarios_only:
        return run_scenarios(scenarios, quick=args.quick)
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})  # one core for us, one for the OS
    scale = 5 if args.quick else 1
    results = [*core_bench.drift_pass(1000 // scale), *core_bench.ingest(5000 // scale),
               *health_bench.lua_vs_builtin(1000 // scale)]
    try:
        from bench import tui_bench
    except ImportError as exc:  # the console benchmarks need the console package
        print(f"console benchmarks skipped: {exc}", file=sys.stderr)
    else:
        results += tui_bench.run(quick=args.quick)
    memory = core_bench.memory(5000 // scale)
    churn = engine_bench.churn(100 // scale, 100 // scale)
    for result in results:
        print(result.line())
        for key, value in result.notes.items():
            print(f"    {key}: {value}")
    print(f"incremental evaluation: {churn['compares_per_event']:.2f} comparisons per watch event "
          f"(target ≤ 1.05) on {int(churn['targets'])} targets; {int(churn['reused_verdicts'])} verdicts reused; "
          f"{int(churn['snapshots'])} snapshots for {int(churn['events'])} events")
    print(f"cache memory: {memory['kib_per_object']:.1f} KiB per Pod "
          f"(JSON {memory['json_kib_per_object']:.1f} KiB; {int(memory['objects'])} objects)")
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps({"ratios": [asdict(r) for r in results], "memory": memory, "churn": churn},
                                                indent=2, default=str))
    ok = all(r.ok for r in results) and churn["compares_per_event"] <= 1.05
    return max(0 if ok else 1, run_scenarios(scenarios, quick=args.quick))


SCENARIOS = ("real-s", "sim-l", "churn", "console")


def _scenarios(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if "all" in names:
        return list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario {unknown[0]!r}: choose from {', '.join(SCENARIOS)}, all")
    return names


def run_scenarios(names: list[str], *, quick: bool) -> int:
    """Run each named scenario (its smoke size when ``quick``), one after another; the worst exit code."""
    code = 0
    for name in names:
        print(f"== scenario {name}{' (smoke)' if quick else ''}", flush=True)
        if name == "real-s":
            from bench import real_bench
            code = max(code, real_bench.main(["--smoke"] if quick else []))
        elif name == "sim-l":
            from bench import scale_bench
            code = max(code, scale_bench.main(["--scale", "0.02", "--apps", "5"] if quick else []))
        elif name == "churn":
            from bench import churn_bench
            code = max(code, churn_bench.main(["--quick"] if quick else []))
        elif name == "console":
            from bench import console_bench
            code = max(code, console_bench.main(["--quick"] if quick else []))
    return code


if __name__ == "__main__":
    sys.exit(main())
