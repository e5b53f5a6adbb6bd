"""Run the experiments: one fresh worker process per strategy and loop, like a cell of ``run``.

:func:`check` is the parent's side (never measures, never prints); :func:`child_main`
runs in the worker: it starts the strategy once on a loop of the chosen kind, runs
every experiment through it, runs the ``own_loop`` ones on loops of their own, and
reports a :class:`~offbench.semantics.StrategySemantics` over the pipe.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence

import msgspec

from offbench import loops, strategies
from offbench.model.semantics import Finding, StrategySemantics
from offbench.processes import report_and_exit, run_child
from offbench.semantics import cache
from offbench.semantics import callees as c
from offbench.semantics.experiments import REGISTRY, Experiment, Lab
from offbench.strategies import Call, Strategy
from offbench.workloads.user import UserCall

TIMEOUT_S = 60.0
"""A strategy's experiments on one loop take about a second; a hung user function is killed."""


class CheckSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What one worker checks: a strategy on a loop, optionally with the user's function."""

    strategy: str
    loop: str
    target: str | None = None


def check(
    strategy_names: Sequence[str],
    loop_names: Sequence[str],
    target: str | None = None,
    *,
    found: list[StrategySemantics] | None = None,
    on_start: Callable[[CheckSpec], None] = lambda spec: None,
    on_wait: Callable[[], None] = lambda: None,
    timeout_s: float = TIMEOUT_S,
    cached: bool = False,
) -> list[StrategySemantics]:
    """Run every experiment for each strategy on each loop, each pair in a fresh worker process.

    Results are appended to ``found`` (a new list if not given) as they arrive, so a
    caller interrupted by ``KeyboardInterrupt`` keeps what was checked so far. With
    ``cached`` (a run's check), findings the same code made before are read from the
    cache (:mod:`offbench.semantics.cache`) and new ones kept there.
    """
    found = [] if found is None else found
    for strategy in strategy_names:
        for loop in loop_names:
            spec = CheckSpec(strategy=strategy, loop=loop, target=target)
            kept = cache.load(strategy, loop) if cached and target is None else None
            if kept is not None:
                found.append(kept)
                continue
            on_start(spec)
            checked = check_one(spec, on_wait, timeout_s)
            if cached:
                cache.store(checked)
            found.append(checked)
    return found


def check_one(
    spec: CheckSpec, on_wait: Callable[[], None] = lambda: None, timeout_s: float = TIMEOUT_S
) -> StrategySemantics:
    """Run the experiments for one strategy on one loop in a worker; a crash becomes ``error``."""
    outcome = run_child(child_main, msgspec.json.encode(spec), timeout_s, on_wait)
    if outcome.report:
        try:
            return msgspec.json.decode(outcome.report, type=StrategySemantics)
        except msgspec.DecodeError as exc:
            return _failed(spec, f"the worker sent an unreadable report: {exc}")
    if outcome.timed_out:
        return _failed(spec, f"no answer within {timeout_s:g} s; worker killed")
    return _failed(spec, outcome.exit_summary())


def _failed(spec: CheckSpec, error: str) -> StrategySemantics:
    return StrategySemantics(
        strategy=spec.strategy, loop=spec.loop, target=spec.target, findings=[], error=error
    )


def run_experiments(spec: CheckSpec) -> StrategySemantics:
    """Run every registered experiment for ``spec`` in this process."""
    factory = loops.get(spec.loop).factory()
    new_strategy = strategies.get(spec.strategy)
    target: Call | None = UserCall(spec.target, [], {}, "", "thread") if spec.target else None
    shared = [e for e in REGISTRY.values() if not e.own_loop]
    with asyncio.Runner(loop_factory=factory) as runner:
        findings = runner.run(run_in_lab(shared, new_strategy, target))
    findings += [
        _guarded(e, lambda e=e: e.run_alone(new_strategy, factory))  # type: ignore[misc]
        for e in REGISTRY.values()
        if e.own_loop
    ]
    return StrategySemantics(strategy=spec.strategy, loop=spec.loop, target=spec.target,
                             findings=findings)


async def run_in_lab(
    experiments: Sequence[Experiment], new_strategy: Callable[[], Strategy], target: Call | None
) -> list[Finding]:
    """Start one strategy on the running loop and run ``experiments`` through it, in order."""
    strategy = new_strategy()
    await strategy.start(c.noop, c.noop)
    lab = Lab(strategy=strategy, new_strategy=new_strategy, target=target)
    try:
        return [await _guarded_async(e, lab) for e in experiments]
    finally:
        await strategy.stop()


async def _guarded_async(experiment: Experiment, lab: Lab) -> Finding:
    try:
        return await experiment.run(lab)
    except Exception as exc:
        return _broken(experiment, exc)


def _guarded(experiment: Experiment, run: Callable[[], Finding]) -> Finding:
    try:
        return run()
    except Exception as exc:
        return _broken(experiment, exc)


def _broken(experiment: Experiment, exc: BaseException) -> Finding:
    return Finding(experiment=experiment.name, holds=None, value="error",
                   why=f"the experiment failed: {type(exc).__name__}: {exc}")


def child_main(payload: bytes, report_fd: int) -> None:
    """Worker-process entry: run the experiments for the spec in ``payload``, report, exit."""
    spec = msgspec.json.decode(payload, type=CheckSpec)
    # As in offbench.measure.worker: process pools re-import __main__; make that an import-safe module.
    sys.modules["__main__"] = sys.modules[__name__]
    report_and_exit(report_fd, msgspec.json.encode(run_experiments(spec)))



