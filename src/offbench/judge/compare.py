"""Compare two runs (or two loops of one run) cell by cell, with statistics on the samples.

Each cell's window is cut into parts (:class:`~offbench.model.results.Samples`); a change
of throughput or loop lag p99 is the Hodges–Lehmann shift between the two cells'
parts, with the distribution-free confidence interval that inverts the
Mann–Whitney U test (:func:`offbench.stats.shift`). A change is *significant* when
that interval excludes zero; for loop lag the whole interval must also lie beyond a
floor in milliseconds, below which run-to-run noise is all there is to see.

Nothing here prints or exits: :func:`compare` and :func:`by_loop` return a
:class:`Comparison`, :func:`regressions` says which changes break a threshold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import msgspec

from offbench.model.params import Params
from offbench.model.results import CellResult, RunResult
from offbench.stats import median, shift

DEFAULT_LAG_FLOOR_MS = 5.0
"""Lag p99 changes not surely larger than this are noise: one GIL switch interval (5 ms).

Measured between identical runs on a shared 2-vCPU machine (2 worker processes per
cell): a GIL-holding call's lag p99 settles per process on one or two switch intervals
(5.5 or 10 ms), and eight GIL-free threads on two CPUs move it by up to 3 ms (2.9 →
6 ms); intervals of such changes reached 2.7 ms from zero. Pass ``--lag-floor 1`` on a
quiet machine.
"""
CONFIDENCE = 0.95

Metric = Literal["throughput", "lag_p99"]
Direction = Literal["faster", "slower", "not significant"]
PairStatus = Literal["compared", "now failing", "fixed", "both failing"]


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


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """How one figure of a cell moved from base to new, and whether that is more than noise."""

    metric: Metric
    base: float
    """The base cell's whole-window figure (ops/s, or ms of lag p99)."""
    new: float
    percent: float | None
    """Hodges–Lehmann shift of the parts, relative to the base parts' median; None if that is 0."""
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
    status: PairStatus
    throughput: Change | None = None
    lag_p99: Change | None = None


class Comparison(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of comparing a base with a new set of cells."""

    base: str
    new: str
    by: Literal["run", "loop"]
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
        pairs=[pair(b, n, lag_floor_ms, base.settings.lag_budget_ms) for b, n in matched],
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
    order = list(dict.fromkeys([*run.settings.loops, *(r.loop for r in run.results)]))
    base_loop = order[0] if order else ""
    others = order[1:]
    base_cells = {_name(key_of(r), loop=""): r for r in run.results if r.loop == base_loop}
    pairs: list[Pair] = []
    only_new: list[CellKey] = []
    matched: set[str] = set()
    for r in run.results:
        if r.loop not in others:
            continue
        k = _name(key_of(r), loop="")
        if k in base_cells:
            matched.add(k)
            pairs.append(pair(base_cells[k], r, lag_floor_ms, run.settings.lag_budget_ms))
        else:
            only_new.append(key_of(r))
    notes = [] if others else [f"the run measured one loop ({base_loop or 'none'}): nothing to compare"]
    return Comparison(
        base=base_loop,
        new=", ".join(others),
        by="loop",
        confidence=CONFIDENCE,
        lag_floor_ms=lag_floor_ms,
        pairs=pairs,
        only_base=[key_of(r) for k, r in base_cells.items() if k not in matched] if others else [],
        only_new=only_new,
        notes=notes,
    )


def pair(base: CellResult, new: CellResult, lag_floor_ms: float, lag_budget_ms: float) -> Pair:
    """Compare one cell of the base with its counterpart in the new run.

    A loop lag p99 over ``lag_budget_ms`` in both runs is compared but not gated: such a
    strategy is disqualified either way, and a loop held up by GIL convoys lags twice as
    much in one process as in another (measured 23 vs 47 ms for identical runs).
    """
    status = _STATUS[(base.ok, new.ok)]
    if status != "compared" or base.samples is None or new.samples is None:
        return Pair(key=key_of(base), new_loop=new.loop, status=status)
    base_lag = base.loop_lag_ms.p99 if base.loop_lag_ms else 0.0
    new_lag = new.loop_lag_ms.p99 if new.loop_lag_ms else 0.0
    return Pair(
        key=key_of(base),
        new_loop=new.loop,
        status=status,
        throughput=change(
            "throughput",
            base.throughput_ops_s,
            new.throughput_ops_s,
            base.samples.throughput_ops_s,
            new.samples.throughput_ops_s,
        ),
        lag_p99=change(
            "lag_p99",
            base_lag,
            new_lag,
            _present(base.samples.lag_p99_ms),
            _present(new.samples.lag_p99_ms),
            floor=lag_floor_ms,
            over_budget=min(base_lag, new_lag) > lag_budget_ms,
        ),
    )


_STATUS: dict[tuple[bool, bool], PairStatus] = {
    (True, True): "compared",
    (True, False): "now failing",
    (False, True): "fixed",
    (False, False): "both failing",
}


def change(
    metric: Metric,
    base: float,
    new: float,
    base_parts: Sequence[float],
    new_parts: Sequence[float],
    floor: float = 0.0,
    over_budget: bool = False,
) -> Change:
    """Return the change of one figure, judged on the parts.

    ``floor`` is the least change that counts: the whole interval must lie beyond it.
    ``over_budget`` marks a lag change as not gated (see :func:`pair`).
    """
    if not base_parts or not new_parts:
        return Change(metric=metric, base=base, new=new, percent=None, low=None, high=None,
                      direction="not significant", note="no samples")
    found = shift(base_parts, new_parts, CONFIDENCE)
    centre = median(base_parts)
    scale = 100.0 / centre if centre else None
    note = ""
    significant = found.significant
    if significant and min(abs(found.low), abs(found.high)) < floor:
        significant, note = False, f"within the {floor:g} ms floor"
    elif found.low == float("-inf"):
        note = "too few samples"
    if over_budget:
        note = "over the lag budget in both runs: not gated"
    better = found.estimate > 0 if metric == "throughput" else found.estimate < 0
    return Change(
        metric=metric,
        base=base,
        new=new,
        percent=found.estimate * scale if scale is not None else None,
        low=_finite(found.low * scale) if scale is not None else None,
        high=_finite(found.high * scale) if scale is not None else None,
        direction=("faster" if better else "slower") if significant else "not significant",
        note=note,
        gated=not over_budget,
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
        for c in (p.throughput, p.lag_p99):
            if c is not None and c.gated and c.direction == "slower" and _least_worsening(c) > percent:
                found.append((p, _describe(c)))
    return found


def _least_worsening(c: Change) -> float:
    """Return the end of a worsening's interval nearest to no change, as a positive percentage."""
    if c.low is None or c.high is None:
        return float("inf") if c.percent is None else abs(c.percent)
    return min(abs(c.low), abs(c.high))


def _describe(c: Change) -> str:
    what = "throughput" if c.metric == "throughput" else "loop lag p99"
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
        ("samples", base.settings.samples, new.settings.samples),
        ("worker processes per cell", base.settings.processes, new.settings.processes),
        ("probe interval (ms)", base.settings.probe_interval_ms, new.settings.probe_interval_ms),
    )
    notes.extend(f"{name} differs: {a} vs {b}" for name, a, b in fields if a != b)
    base_part = base.settings.duration_s / base.settings.samples
    new_part = new.settings.duration_s / new.settings.samples
    if abs(base_part - new_part) > 1e-9:
        notes.append(
            f"window parts are {base_part:g} s vs {new_part:g} s long: a part's lag p99 reads lower "
            "in shorter parts, so lag changes are biased; compare runs with equal window and samples"
        )
    return notes


def _name(key: CellKey, **replaced: object) -> str:
    """Return ``key`` (with some fields replaced) as a string, to match cells by."""
    return msgspec.json.encode(msgspec.structs.replace(key, **replaced)).decode()


def _present(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def _finite(value: float) -> float | None:
    return value if value not in (float("inf"), float("-inf")) else None
