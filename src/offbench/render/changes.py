"""What a comparison reads as: each pair's cells and the tally, with their tones.

Written once for every frame, as :mod:`offbench.render.texts` is for a run; the
judging itself (significance, regressions) is :mod:`offbench.judge.compare`'s.
"""

from __future__ import annotations

from offbench.formatting import format_ms, format_rate, load_label, loop_label, strategy_label, workload_label
from offbench.judge.compare import CellKey, Change, Comparison, Pair, regressions
from offbench.render.texts import Cell, Line, Tone

HEADERS = ("strategy", "loop", "conc", "ops/s", "change", "lag p99", "change")
DIRECTION_TONE: dict[str, Tone] = {"faster": "good", "slower": "worse", "not significant": "dim"}


def groups(comparison: Comparison) -> list[tuple[str, list[Pair]]]:
    """Return the pairs grouped by workload (and parameters), in the order they were measured."""
    found: dict[str, list[Pair]] = {}
    for p in comparison.pairs:
        found.setdefault(workload_label(p.key.workload, p.key.params), []).append(p)
    return list(found.items())


def title(comparison: Comparison) -> str:
    """Return what is compared with what: ``new.json vs base.json`` or ``uvloop vs asyncio``."""
    return f"{comparison.new} vs {comparison.base}"


def caption(comparison: Comparison) -> str:
    """Return the legend of a comparison table: what a change and its interval are."""
    unit = ("per-round ratio of the units (paired: measured in the same rounds)" if comparison.by != "run"
            else "ratio of the units' means (Welch)")
    return (
        f"change: throughput at one host speed, {unit}; lag p99 of the pooled ticks, bootstrap over units "
        f"[{comparison.confidence:.0%} confidence interval]; n.s. = not significant"
        + (f"; lag changes under {comparison.lag_floor_ms:g} ms count as noise"
           if comparison.lag_floor_ms else "")
    )


def row(comparison: Comparison, p: Pair) -> list[Cell]:
    """Return the cells of one pair: the changes toned by direction, a failure by what it means."""
    loop = p.new_loop if comparison.by == "loop" else p.key.loop
    python = p.new_python if comparison.by == "python" else p.key.python
    head = [Cell(strategy_label(p.key.strategy, p.key.max_workers)), Cell(loop_label(loop, python)),
            Cell(str(p.key.concurrency) if p.key.rate is None else load_label(0, p.key.rate))]
    if p.status != "compared" or p.throughput is None or p.lag_p99 is None:
        tone: Tone = "good" if p.status == "fixed" else (
            "worse" if p.status in ("now failing", "both failing") else "bad")
        return [*head, Cell(p.status, tone), Cell(""), Cell(""), Cell("")]
    tp, lag = p.throughput, p.lag_p99
    return [
        *head,
        Cell(f"{format_rate(tp.base)} → {format_rate(tp.new)}"),
        Cell(format_change(tp), DIRECTION_TONE[tp.direction]),
        Cell(f"{format_ms(lag.base)} → {format_ms(lag.new)}"),
        Cell(format_change(lag), DIRECTION_TONE[lag.direction]),
    ]


def format_change(c: Change) -> str:
    """Format a change as ``+12.3% [+8.1, +15.0] slower``; ``n.s.`` when not significant.

    A ``*`` marks a significant change that ``--fail-on-regression`` does not count.
    """
    if c.percent is None:
        return "n/a" + (f" ({c.note})" if c.note else "")
    interval = (
        f" [{_signed(c.low)}, {_signed(c.high)}]" if c.low is not None and c.high is not None else ""
    )
    word = "n.s." if c.direction == "not significant" else c.direction + ("" if c.gated else "*")
    return f"{c.percent:+.1f}%{interval} {word}"


def _signed(value: float) -> str:
    return f"{value:+.1f}"


def tally(comparison: Comparison, fail_on_regression: float | None) -> list[Line]:
    """Return the closing lines: counts, one-sided cells, notes, regressions."""
    changes = [c for p in comparison.pairs for c in p.changes]
    count = {d: sum(c.direction == d for c in changes) for d in DIRECTION_TONE}
    failing = sum(p.status == "now failing" for p in comparison.pairs)
    lines: list[Line] = [(Cell(
        f"{len(comparison.pairs)} cells compared ({title(comparison)}): "
        f"{count['faster']} figures faster, {count['slower']} slower, "
        f"{count['not significant']} not significant" + (f"; {failing} now failing" if failing else ""),
        "strong"),)]
    for side, keys in ((comparison.base, comparison.only_base), (comparison.new, comparison.only_new)):
        lines.extend((Cell(f"only in {side}: {_key_text(key)}", "bad"),) for key in keys)
    lines.extend((Cell(f"note: {note}", "dim"),) for note in comparison.notes)
    ungated = sum(not c.gated and c.direction != "not significant" for c in changes)
    if ungated:
        lines.append((Cell(
            f"note: {ungated} change(s) marked * are of loop lag over the lag budget in both runs: "
            "shown, not gated (a strategy over budget is disqualified either way)", "dim"),))
    if fail_on_regression is not None:
        found = regressions(comparison, fail_on_regression)
        lines.append((Cell(f"{len(found)} regression(s) beyond {fail_on_regression:g}%", "worse")
                      if found else
                      Cell(f"no significant regression beyond {fail_on_regression:g}%", "strong"),))
        lines.extend((Cell(f"regression: {_key_text(p.key, p.new_loop, p.new_python)}: {why}", "worse"),)
                     for p, why in found)
    return lines


def _key_text(key: CellKey, loop: str | None = None, python: str | None = None) -> str:
    return (
        f"{workload_label(key.workload, key.params)} / {strategy_label(key.strategy, key.max_workers)}"
        f" / {loop_label(loop or key.loop, python or key.python)} / {load_label(key.concurrency, key.rate)}"
    )
