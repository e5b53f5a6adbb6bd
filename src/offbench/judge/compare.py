"""Compare two runs (or the loops or interpreters of one run) cell by cell, with statistics on their units.

A cell is measured by units, one worker process per round; they are the independent
samples (:mod:`offbench.judge.precision`). A change of throughput is the ratio of the
two cells' mean throughput, each unit taken at one common host speed (its throughput
divided by its host's speed to the power of its CPU share: see
:func:`offbench.judge.precision.normalised`), with Welch's t-interval on the logarithms of
the units' throughputs: for separate runs, whose units are independent. Within one run
(``--by loop``, ``--by python``), the two sides of a pair were measured in the same
rounds, seconds apart: the change is the mean of the per-round log ratios, with its
t-interval, so the host's drift between rounds cancels. A change of loop lag p99 is that
of the pooled ticks of all units, with a bootstrap interval that resamples whole units
(rounds, when paired). Rate cells (``--rate``) pair by their offered rate as closed-loop
cells do by concurrency; their throughput is the rate they achieved, and their latency
p99 from intended start is compared too: the ratio of the pooled p99s, with the interval
of the units' own p99s (Welch on logarithms, or per round when paired). A change is
*significant* when its interval excludes zero; for loop lag the whole interval must also
lie beyond a floor in milliseconds, below which run-to-run noise is all there is to see.

Nothing here prints or exits: :func:`compare` and :func:`by_axis` return a
:class:`Comparison`, :func:`regressions` says which changes break a threshold.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterable, Sequence
from typing import Literal

import msgspec

from offbench.judge import precision
from offbench.model.params import Params
from offbench.model.results import CellResult, RunResult
from offbench.stats import Interval, mean_interval, percentile, weighted_percentile, welch_interval

DEFAULT_LAG_FLOOR_MS = 5.0
"""Lag p99 changes not surely larger than this are noise: one GIL switch interval (5 ms).

Measured between identical runs on a shared 2-vCPU machine (2 worker processes per
cell): a GIL-holding call's lag p99 settles per process on one or two switch intervals
(5.5 or 10 ms), and eight GIL-free threads on two CPUs move it by up to 3 ms (2.9 →
6 ms); intervals of such changes reached 2.7 ms from zero. Pass ``--lag-floor 1`` on a
quiet machine.
"""
CONFIDENCE = 0.95

Axis = Literal["loop", "python"]
"""What ``--by`` puts side by side within one run."""
Metric = Literal["throughput", "lag_p99", "latency_p99"]
Direction = Literal["faster", "slower", "not significant"]
PairStatus = Literal["compared", "now failing", "fixed", "both failing"]

Figures = tuple[Metric, float, float]
"""A change's metric, and its base and new whole-cell figures."""

class CellKey(msgspec.Struct, frozen=True, kw_only=True):
    """What names a cell across two runs: everything but its measurements."""

    workload: str
    params: Params
    strategy: str
    max_workers: int | None
    loop: str
    concurrency: int
    python: str = ""
    """The interpreter (``--python``); "" = the one that ran offbench."""
    rate: float | None = None
    """A rate cell's offered rate (calls/s); ``None`` for a concurrency cell."""


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """How one figure of a cell moved from base to new, and whether that is more than noise."""

    metric: Metric
    base: float
    """The base cell's whole-window figure (ops/s, or ms of lag p99)."""
    new: float
    percent: float | None
    """The change in per cent: for throughput the ratio of the units' geometric means (the mean
    per-round log ratio when both sides ran in the same rounds), for lag p99 the difference of
    the pooled p99s relative to the base's; None if the base figure is 0."""
    low: float | None
    """Lower end of the confidence interval of ``percent``."""
    high: float | None
    direction: Direction
    note: str = ""
    gated: bool = True
    """Whether ``--fail-on-regression`` may count it; loop lag over the budget in both runs is not."""


class Pair(msgspec.Struct, frozen=True, kw_only=True):
    """One cell present on both sides, and what changed."""

    key: CellKey
    new_loop: str
    """The new side's loop: the key's loop, except in a comparison ``by`` loop."""
    new_python: str = ""
    """The new side's interpreter: the key's, except in a comparison ``by`` python."""
    status: PairStatus
    throughput: Change | None = None
    lag_p99: Change | None = None
    latency_p99: Change | None = None
    """Rate cells: the change of their calls' latency p99 from intended start; ``None`` otherwise."""

    @property
    def changes(self) -> list[Change]:
        """Return the figures compared, in the table's order."""
        return [c for c in (self.throughput, self.lag_p99, self.latency_p99) if c is not None]


class Comparison(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of comparing a base with a new set of cells."""

    base: str
    new: str
    by: Literal["run", "loop", "python"]
    confidence: float
    lag_floor_ms: float
    pairs: list[Pair]
    only_base: list[CellKey]
    only_new: list[CellKey]
    notes: list[str]


def key_of(result: CellResult) -> CellKey:
    """Return the cross-run name of ``result``."""
    return CellKey(**{name: getattr(result, name) for name in CellKey.__struct_fields__})


def compare(
    base: RunResult,
    new: RunResult,
    *,
    base_label: str = "base",
    new_label: str = "new",
    lag_floor_ms: float = DEFAULT_LAG_FLOOR_MS,
) -> Comparison:
    """Match the cells of two runs by name and compare each pair's throughput and lag p99."""
    base_cells = {_name(key_of(r)): r for r in base.results}
    new_cells = {_name(key_of(r)): r for r in new.results}
    matched = [(base_cells[k], new_cells[k]) for k in base_cells if k in new_cells]
    rest_base = [r for k, r in base_cells.items() if k not in new_cells]
    rest_new = [r for k, r in new_cells.items() if k not in base_cells]
    renamed, notes = _changed_parameters(rest_base, rest_new)
    matched += renamed
    paired_base = {id(b) for b, _ in renamed}
    paired_new = {id(n) for _, n in renamed}
    return Comparison(
        base=base_label,
        new=new_label,
        by="run",
        confidence=CONFIDENCE,
        lag_floor_ms=lag_floor_ms,
        pairs=[pair(b, n, lag_floor_ms, base.settings.lag_budget_ms, across=_across(base, new, b, n))
               for b, n in matched],
        only_base=[key_of(r) for r in rest_base if id(r) not in paired_base],
        only_new=[key_of(r) for r in rest_new if id(r) not in paired_new],
        notes=notes + _differences(base, new, base_label, new_label),
    )


def _changed_parameters(
    base: Sequence[CellResult], new: Sequence[CellResult]
) -> tuple[list[tuple[CellResult, CellResult]], list[str]]:
    """Pair the unmatched cells of a workload measured with one (different) parameter set a side.

    Changing a workload's parameters (a larger query, a longer sleep) is a way to
    compare two versions of it; the pairing is said in a note.
    """
    pairs: list[tuple[CellResult, CellResult]] = []
    notes: list[str] = []
    for workload in dict.fromkeys(r.workload for r in base):
        base_sets = {_params(r): r.params for r in base if r.workload == workload}
        new_sets = {_params(r): r.params for r in new if r.workload == workload}
        if len(base_sets) != 1 or len(new_sets) != 1:
            continue
        new_by_key = {_name(key_of(r), params={}): r for r in new if r.workload == workload}
        for r in base:
            if r.workload == workload and (other := new_by_key.get(_name(key_of(r), params={}))):
                pairs.append((r, other))
        (before,), (after,) = base_sets.values(), new_sets.values()
        differ = [k for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
        notes.append(
            f"{workload}: parameters differ, compared {_param_text(before, differ)} "
            f"with {_param_text(after, differ)}"
        )
    return pairs, notes


def _params(r: CellResult) -> str:
    return msgspec.json.encode(r.params).decode()


def _param_text(params: Params, keys: Sequence[str]) -> str:
    return ", ".join(f"{k}={params.get(k, '(unset)')}" for k in keys)


def by_loop(run: RunResult, *, lag_floor_ms: float = DEFAULT_LAG_FLOOR_MS) -> Comparison:
    """Compare the loops of one run: the first loop of its settings against each other one."""
    return by_axis(run, "loop", lag_floor_ms=lag_floor_ms)


def by_axis(run: RunResult, axis: Axis, *, lag_floor_ms: float = DEFAULT_LAG_FLOOR_MS) -> Comparison:
    """Compare within one run: the first loop (or interpreter) against each other one, round by round.

    Under ``--python base=... --python new=...`` this is an A/B test in one run: both
    sides were measured in the same rounds, so the host's moods fall on both alike.
    """
    first_order = run.settings.loops if axis == "loop" else [p.label for p in run.settings.pythons]
    order = list(dict.fromkeys([*first_order, *(getattr(r, axis) for r in run.results)]))
    base_value = order[0] if order else ""
    others = order[1:]
    base_cells = {_name(key_of(r), **{axis: ""}): r for r in run.results if getattr(r, axis) == base_value}
    pairs: list[Pair] = []
    only_new: list[CellKey] = []
    matched: set[str] = set()
    for r in run.results:
        if getattr(r, axis) not in others:
            continue
        k = _name(key_of(r), **{axis: ""})
        if k in base_cells:
            matched.add(k)
            pairs.append(pair(base_cells[k], r, lag_floor_ms, run.settings.lag_budget_ms, paired=True))
        else:
            only_new.append(key_of(r))
    what = "loop" if axis == "loop" else "interpreter"
    notes = [] if others else [f"the run measured one {what} ({base_value or 'none'}): nothing to compare"]
    return Comparison(
        base=base_value,
        new=", ".join(others),
        by=axis,
        confidence=CONFIDENCE,
        lag_floor_ms=lag_floor_ms,
        pairs=pairs,
        only_base=[key_of(r) for k, r in base_cells.items() if k not in matched] if others else [],
        only_new=only_new,
        notes=notes,
    )


def pair(
    base: CellResult, new: CellResult, lag_floor_ms: float, lag_budget_ms: float, paired: bool = False,
    across: float | None = None,
) -> Pair:
    """Compare one cell of the base with its counterpart in the new run (or on the other side of one).

    ``paired``: both cells come from the same run, their units from the same rounds.
    ``across``: for cells of two runs under the same interpreter, how much slower the new
    run's host was than the base's (the ratio of their median references, :func:`_across`).
    A loop lag p99 over ``lag_budget_ms`` in both runs is compared but not gated: such a
    strategy is disqualified either way, and a loop held up by GIL convoys lags twice as
    much in one process as in another (measured 23 vs 47 ms for identical runs).
    """
    status = _STATUS[(base.ok, new.ok)]
    key, new_loop, new_python = key_of(base), new.loop, new.python
    if status != "compared":
        return Pair(key=key, new_loop=new_loop, new_python=new_python, status=status)
    base_lag = base.loop_lag_ms.p99 if base.loop_lag_ms else 0.0
    new_lag = new.loop_lag_ms.p99 if new.loop_lag_ms else 0.0
    return Pair(
        key=key, new_loop=new_loop, new_python=new_python,
        status=status,
        throughput=throughput_change(base, new, paired, across),
        lag_p99=lag_change(base, new, paired, floor=lag_floor_ms,
                           over_budget=min(base_lag, new_lag) > lag_budget_ms),
        latency_p99=latency_change(base, new, paired) if base.open_loop and new.open_loop else None,
    )


_STATUS: dict[tuple[bool, bool], PairStatus] = {
    (True, True): "compared",
    (True, False): "now failing",
    (False, True): "fixed",
    (False, False): "both failing",
}


def throughput_change(base: CellResult, new: CellResult, paired: bool, across: float | None = None) -> Change:
    """Return the change of throughput from ``base`` to ``new``, on their units at one host speed.

    Each side's units are at its own run's median host speed (:func:`~offbench.judge.precision.unit_values`);
    ``across`` brings the new run's to the base run's (see :func:`pair`).
    """
    figures: Figures = ("throughput", base.throughput_ops_s, new.throughput_ops_s)
    if not base.units or not new.units:
        return _unmeasured(figures)
    sides = [precision.unit_values(cell) for cell in (base, new)]
    if across is not None and new.host_sensitivity:
        sides[1] = [v * across ** (new.host_sensitivity * precision.elasticity(u))
                    for v, u in zip(sides[1], new.units, strict=True)]
    if paired:
        by_round = [dict(zip((u.round for u in cell.units), values, strict=True))
                    for cell, values in zip((base, new), sides, strict=True)]
        rounds = [r for r in by_round[0] if r in by_round[1] and by_round[0][r] > 0 and by_round[1][r] > 0]
        found = mean_interval([math.log(by_round[1][r] / by_round[0][r]) for r in rounds])
        # The figures shown beside the change are those of the rounds it compares.
        before, after = (statistics.fmean(u.throughput_ops_s for u in cell.units if u.round in rounds)
                         if rounds else cell.throughput_ops_s for cell in (base, new))
        figures = ("throughput", before, after)
    else:
        logs = [[math.log(v) for v in values if v > 0] for values in sides]
        found = welch_interval(logs[0], logs[1], CONFIDENCE)
    return _judged(figures, found, better_if_up=True)


def _across(base: RunResult, new: RunResult, b: CellResult, n: CellResult) -> float | None:
    """Return how much slower the new run's host was than the base run's, for this pair of cells.

    The ratio of the two runs' median speed references under the cells' interpreter, where
    both ran the same one (version and implementation); ``None`` otherwise: a reference
    timed by another interpreter measures that interpreter, and dividing it out would
    cancel the very change an interpreter upgrade is compared for.
    """
    sides = [_speed(run, cell) for run, cell in ((base, b), (new, n))]
    if sides[0] is None or sides[1] is None or sides[0][0] != sides[1][0]:
        return None
    return sides[1][1] / sides[0][1]


def _speed(run: RunResult, cell: CellResult) -> tuple[str, float] | None:
    """Return the interpreter ``cell`` ran under and its run's median reference under it."""
    found = [u.reference_ms for r in run.results if r.python == cell.python
             for u in r.units if u.reference_ms]
    if not found:
        return None
    named = [p for p in run.settings.pythons if p.label == cell.python]
    interpreter = (f"{named[0].implementation} {named[0].version}" if named
                   else f"{run.machine.python_implementation} {run.machine.python_version}")
    return interpreter, statistics.median(found)


def latency_change(base: CellResult, new: CellResult, paired: bool) -> Change:
    """Return the change of a rate cell's latency p99 (pooled), with the interval of its units' p99s."""
    before, after = (c.open_loop.latency_ms.p99 if c.open_loop and c.open_loop.latency_ms else 0.0
                     for c in (base, new))
    figures: Figures = ("latency_p99", before, after)
    sides = [{u.round: u.latency_p99_ms for u in cell.units if u.latency_p99_ms} for cell in (base, new)]
    if not all(sides) or before <= 0 or after <= 0:
        return _unmeasured(figures)
    if paired:
        rounds = [r for r in sides[0] if r in sides[1]]
        found = mean_interval([math.log(sides[1][r] / sides[0][r]) for r in rounds])
    else:
        found = welch_interval([math.log(v) for v in sides[0].values()],
                               [math.log(v) for v in sides[1].values()], CONFIDENCE)
    # The estimate is the pooled p99s' ratio; the interval, the units' spread around it.
    shift = math.log(after / before) - found.estimate
    found = Interval(found.estimate + shift, found.low + shift, found.high + shift, found.units)
    return _judged(figures, found, better_if_up=False)


def lag_change(base: CellResult, new: CellResult, paired: bool, floor: float = 0.0,
               over_budget: bool = False) -> Change:
    """Return the change of loop lag p99, pooled over units, with a bootstrap interval over units.

    ``floor`` is the least change that counts: the whole interval must lie beyond it.
    ``over_budget`` marks the change as not gated (see :func:`pair`).
    """
    base_lag = base.loop_lag_ms.p99 if base.loop_lag_ms else 0.0
    new_lag = new.loop_lag_ms.p99 if new.loop_lag_ms else 0.0
    figures: Figures = ("lag_p99", base_lag, new_lag)
    sides = [[precision.unit_lags(u) for u in cell.units] for cell in (base, new)]
    if not all(any(side) for side in sides):
        return _unmeasured(figures)
    low, high = lag_difference_interval(base, new, paired)
    estimate = new_lag - base_lag
    if paired:
        # Paired, the interval is of the rounds both sides measured; so is the estimate (a cell
        # that stopped later has units the other lacks).
        shared = {u.round for u in base.units} & {u.round for u in new.units}
        before, after = (_pooled_p99([precision.unit_lags(u) for u in cell.units if u.round in shared])
                         for cell in (base, new))
        estimate, figures = after - before, ("lag_p99", before, after)
    found = Interval(estimate, low, high, min(len(base.units), len(new.units)))
    change = _judged(figures, found, better_if_up=False, absolute=True)
    if change.direction != "not significant" and min(abs(low), abs(high)) < floor:
        change = msgspec.structs.replace(change, direction="not significant",
                                         note=f"within the {floor:g} ms floor")
    if over_budget:
        change = msgspec.structs.replace(change, gated=False,
                                         note="over the lag budget in both runs: not gated")
    return change


def lag_difference_interval(
    base: CellResult, new: CellResult, paired: bool, rounds: int = 400
) -> tuple[float, float]:
    """Return a 95 % bootstrap interval of ``p99(new) − p99(base)``, resampling units (rounds when paired)."""
    rng = random.Random(0)
    lags = [[precision.unit_lags(u) for u in cell.units] for cell in (base, new)]
    rounds_of = [[u.round for u in cell.units] for cell in (base, new)]
    shared = sorted(set(rounds_of[0]) & set(rounds_of[1])) if paired else []
    found: list[float] = []
    for _ in range(rounds):
        if shared:
            chosen = rng.choices(shared, k=len(shared))
            picks = [[i for r in chosen for i, ur in enumerate(side) if ur == r] for side in rounds_of]
        else:
            picks = [rng.choices(range(len(side)), k=len(side)) for side in lags]
        p99s = [_pooled_p99([side[i] for i in pick]) for side, pick in zip(lags, picks, strict=True)]
        found.append(p99s[1] - p99s[0])
    found.sort()
    tail = (1 - CONFIDENCE) / 2
    return percentile(found, 100 * tail), percentile(found, 100 * (1 - tail))


def _pooled_p99(units: Sequence[Sequence[tuple[float, int]]]) -> float:
    pooled: dict[float, int] = {}
    for unit in units:
        for value, count in unit:
            pooled[value] = pooled.get(value, 0) + count
    return weighted_percentile(sorted(pooled.items()), 99) if pooled else 0.0


def _unmeasured(figures: Figures) -> Change:
    metric, base, new = figures
    return Change(metric=metric, base=base, new=new, percent=None, low=None, high=None,
                  direction="not significant", note="no units (a file from an older offbench)")


def _judged(figures: Figures, found: Interval, better_if_up: bool, absolute: bool = False) -> Change:
    """Return a change from its interval: of logarithms (a ratio), or with ``absolute`` in the unit itself."""
    metric, base, new = figures
    if absolute:
        scale = 100 / base if base else None
        percent = found.estimate * scale if scale is not None else None
        low = _finite(found.low * scale) if scale is not None else None
        high = _finite(found.high * scale) if scale is not None else None
    else:
        percent = 100 * math.expm1(found.estimate)
        low = _finite(100 * math.expm1(found.low)) if math.isfinite(found.low) else None
        high = _finite(100 * math.expm1(found.high)) if math.isfinite(found.high) else None
    significant = found.excludes_zero
    up = found.estimate > 0
    note = "too few units for an interval" if math.isinf(found.low) else ""
    return Change(
        metric=metric,
        base=base,
        new=new,
        percent=percent,
        low=low,
        high=high,
        direction=("faster" if up == better_if_up else "slower") if significant else "not significant",
        note=note,
    )


def regressions(comparison: Comparison, percent: float) -> list[tuple[Pair, str]]:
    """Return the pairs that now fail, or got worse by more than ``percent`` with confidence.

    "With confidence" means the whole confidence interval lies beyond ``percent``,
    not just the estimate: the parts show the noise within a run and between its
    worker processes, and a run-to-run wobble must not fail a build. Changes that are
    not ``gated`` never count.
    """
    found: list[tuple[Pair, str]] = []
    for p in comparison.pairs:
        if p.status == "now failing":
            found.append((p, "now fails"))
            continue
        for c in p.changes:
            if c.gated and c.direction == "slower" and _least_worsening(c) > percent:
                found.append((p, _describe(c)))
    return found


def _least_worsening(c: Change) -> float:
    """Return the end of a worsening's interval nearest to no change, as a positive percentage."""
    if c.low is None or c.high is None:
        return float("inf") if c.percent is None else abs(c.percent)
    return min(abs(c.low), abs(c.high))


def _describe(c: Change) -> str:
    what = {"throughput": "throughput", "lag_p99": "loop lag p99", "latency_p99": "latency p99"}[c.metric]
    amount = f"{c.percent:+.1f}%" if c.percent is not None else "from zero"
    return f"{what} {amount}"


def _differences(base: RunResult, new: RunResult, base_label: str, new_label: str) -> list[str]:
    """Return one line per difference of machine or settings that could explain a change."""
    notes: list[str] = []
    for label, run in ((base_label, base), (new_label, new)):
        if not run.complete:
            notes.append(f"{label} is a partial run (interrupted)")
    fields: Iterable[tuple[str, object, object]] = (
        ("Python", base.machine.python_version, new.machine.python_version),
        ("CPU", base.machine.cpu_model, new.machine.cpu_model),
        ("CPUs", base.machine.cpu_count, new.machine.cpu_count),
        ("uvloop", base.machine.uvloop_version, new.machine.uvloop_version),
        ("numpy", base.machine.numpy_version, new.machine.numpy_version),
        ("offbench", base.offbench_version, new.offbench_version),
        ("window (s)", base.settings.duration_s, new.settings.duration_s),
        ("warm-up (s)", base.settings.warmup_s, new.settings.warmup_s),
        ("probe interval (ms)", base.settings.probe_interval_ms, new.settings.probe_interval_ms),
    )
    notes.extend(f"{name} differs: {a} vs {b}" for name, a, b in fields if a != b)
    for label, run in ((base_label, base), (new_label, new)):
        if run.host is not None and run.host.busy_cells:
            notes.append(f"{label}: other programs took more than a quarter of the CPUs during "
                         f"{run.host.busy_units} units ({run.host.busy_cells} cells)")
    if base.host is not None and new.host is not None and base.host.reference_ms > 0:
        moved = 100 * (new.host.reference_ms / base.host.reference_ms - 1)
        if abs(moved) >= 5:
            notes.append(f"the host ran pure Python {abs(moved):.0f} % {'slower' if moved > 0 else 'faster'} "
                         f"in {new_label} than in {base_label}; throughput is compared at one host speed")
    return notes


def _name(key: CellKey, **replaced: object) -> str:
    """Return ``key`` (with some fields replaced) as a string, to match cells by."""
    return msgspec.json.encode(msgspec.structs.replace(key, **replaced)).decode()


def _present(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def _finite(value: float) -> float | None:
    return value if value not in (float("inf"), float("-inf")) else None
