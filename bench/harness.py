"""Ratio benchmarks for a noisy two-core machine.

Every timing runs next to a calibration kernel measured in the same process on the same data,
interleaved ABAB, and is reported as the median of per-pair ratios with its MAD. Absolute times move
by 30% between runs here; ratios move by about 10% (see ``docs/performance.md``). Counters (calls made,
bytes written) are exact and reported as they are.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RatioResult:
    """The outcome of one ratio benchmark."""

    name: str
    ratio: float
    """Median of candidate/baseline over the pairs."""
    mad: float
    """Median absolute deviation of the ratios."""
    target: float
    """The ratio the candidate must stay under."""
    candidate_s: float
    baseline_s: float
    pairs: int
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the median ratio is within the target."""
        return self.ratio <= self.target

    @property
    def noisy(self) -> bool:
        """MAD above 15% of the median: the run should be repeated."""
        return self.mad > 0.15 * self.ratio

    def line(self) -> str:
        """One line for the report."""
        verdict = "ok" if self.ok else "OVER TARGET"
        noise = " (noisy)" if self.noisy else ""
        return (f"{self.name:<44} ratio {self.ratio:9.2f} ± {self.mad:6.2f}  target ≤ {self.target:<7g} "
                f"{verdict}{noise}   candidate {self.candidate_s * 1e3:9.2f} ms  baseline "
                f"{self.baseline_s * 1e3:9.2f} ms")


def _time(fn: Callable[[], object], *, cpu: bool) -> float:
    gc.collect()
    clock = time.process_time if cpu else time.perf_counter
    start = clock()
    fn()
    return clock() - start


def ratio(
    name: str,
    *,
    candidate: Callable[[], object],
    baseline: Callable[[], object],
    target: float,
    pairs: int = 7,
    cpu: bool = True,
    notes: dict[str, object] | None = None,
) -> RatioResult:
    """Measure ``candidate`` against ``baseline``, interleaved, ``pairs`` times."""
    candidate()
    baseline()  # warm both
    ratios, cand, base = [], [], []
    for _ in range(pairs):
        b = _time(baseline, cpu=cpu)
        c = _time(candidate, cpu=cpu)
        base.append(b)
        cand.append(c)
        ratios.append(c / max(b, 1e-9))
    median = statistics.median(ratios)
    mad = statistics.median(abs(r - median) for r in ratios)
    return RatioResult(name, median, mad, target, statistics.median(cand), statistics.median(base), pairs,
                       notes or {})
