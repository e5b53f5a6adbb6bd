"""Which speed reference predicts a unit's throughput: one taken before its window, after it, or both?

offbench times its speed reference (``offbench.measure.reference.spin_ms``) once per unit,
before the warm-up, and corrects pure-Python throughput by it (docs/methodology.md). On a
host whose speed flips between two states faster than a unit lasts, that snapshot may not
say what the window met. This study measures it without the rest of offbench: ``--units``
times, a reference, a window of the ``cpu`` workload's calls on this thread, a reference
again, and a pause as between a run's units. It prints how much of the windows' scatter
each predictor explains (the CV left after dividing by it, with the slope fitted), so a
change to the correction can be judged on a number first.

    python benchmarks/host_gauge.py --units 150 --window-ms 50

No target: a study, whose figures go into the notes and docs/methodology.md with their date.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Sequence

from offbench.measure.reference import spin_ms
from offbench.workloads.cpu import spin


def unit(window_s: float, iterations: int) -> tuple[float, float, float]:
    """Return (reference before ms, calls per second in the window, reference after ms)."""
    before = spin_ms()
    calls = 0
    began = time.perf_counter()
    end = began + window_s
    while time.perf_counter() < end:
        spin(iterations)
        calls += 1
    took = time.perf_counter() - began
    return before, calls / took, spin_ms()


def left_cv(ys: Sequence[float], xs: Sequence[float]) -> tuple[float, float]:
    """Return (slope, CV % of ``ys`` left) after regressing log y on log x (a control variate)."""
    ly = [math.log(y) for y in ys]
    lx = [math.log(x) for x in xs]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    sxx = sum((x - mx) ** 2 for x in lx)
    slope = sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / sxx if sxx else 0.0
    left = [y - slope * (x - mx) for x, y in zip(lx, ly, strict=True)]
    return slope, 100 * statistics.stdev(left)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=150)
    parser.add_argument("--window-ms", type=float, default=50.0)
    parser.add_argument("--gap-ms", type=float, default=100.0, help="pause between units")
    parser.add_argument("--iterations", type=int, default=20_000, help="steps of one cpu call")
    args = parser.parse_args()
    found = []
    for _ in range(args.units):
        found.append(unit(args.window_ms / 1000, args.iterations))
        time.sleep(args.gap_ms / 1000)
    before = [b for b, _, _ in found]
    rates = [r for _, r, _ in found]
    after = [a for _, _, a in found]
    both = [math.sqrt(b * a) for b, _, a in found]
    print(f"{args.units} units of {args.window_ms:g} ms, {args.gap_ms:g} ms apart, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    middle = statistics.median(before)
    print(f"reference ms: min {min(before):.2f}, median {middle:.2f}, max {max(before):.2f}")
    print(f"throughput CV as measured: {100 * statistics.stdev(math.log(r) for r in rates):.1f} %")
    predictors = (("before the window", before), ("after the window", after), ("both (geometric mean)", both))
    for name, xs in predictors:
        slope, cv = left_cv(rates, xs)
        print(f"divided by the reference {name}: CV {cv:.1f} % left (slope {slope:+.2f})")


if __name__ == "__main__":
    main()
