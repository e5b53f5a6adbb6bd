"""A run's semantics check reads what the same code found before, and never what other code did."""

from __future__ import annotations

from pathlib import Path

import pytest

from offbench.model.semantics import StrategySemantics
from offbench.semantics import cache
from offbench.semantics.check import check


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFBENCH_CACHE", str(tmp_path))


@pytest.mark.workers
def test_a_second_run_reads_the_findings_and_a_changed_key_measures_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[str] = []
    first = check(["direct"], ["asyncio"], cached=True, on_start=lambda spec: started.append(spec.strategy))
    again = check(["direct"], ["asyncio"], cached=True, on_start=lambda spec: started.append(spec.strategy))
    assert started == ["direct"]  # measured once, then read
    assert again == first
    assert not first[0].error
    monkeypatch.setattr(cache, "VERSION", "another")  # what another offbench would key it by
    check(["direct"], ["asyncio"], cached=True, on_start=lambda spec: started.append(spec.strategy))
    assert started == ["direct", "direct"]


def test_one_environment_is_one_key_whatever_its_interpreter_is_called(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `offbench run` runs as .venv/bin/python3, `python -m offbench run` as .venv/bin/python: a run of
    # the one measured the check again after the other (13 s).
    mine = cache.key("direct", "asyncio")
    monkeypatch.setattr("sys.executable", "/elsewhere/bin/python3")
    assert cache.key("direct", "asyncio") == mine
    monkeypatch.setattr("sys.prefix", "/another/venv")
    assert cache.key("direct", "asyncio") != mine


def test_failed_checks_and_user_functions_are_not_kept() -> None:
    cache.store(StrategySemantics(strategy="direct", loop="asyncio", findings=[], error="worker died"))
    cache.store(StrategySemantics(strategy="to-thread", loop="asyncio", findings=[], target="mod:fn"))
    assert cache.load("direct", "asyncio") is None
    assert cache.load("to-thread", "asyncio") is None


def test_a_parallelism_timing_the_hypervisor_stole_from_says_nothing() -> None:
    # On a shared VM a stolen CPU is not in the run queue's wait: two calls that take turns
    # because the host took a CPU must not read as "this strategy runs one call at a time".
    from offbench.semantics.experiments import BUSY_WAITING, _waited

    took = 0.1
    assert _waited(took, [(None, 0)], stolen_s=2 * BUSY_WAITING * took)
    assert not _waited(took, [(None, 0)], stolen_s=BUSY_WAITING * took / 2)
    assert not _waited(took, [(None, 0)], stolen_s=None)
    assert _waited(took, [(None, int(2 * BUSY_WAITING * took * 1e9))], stolen_s=0.0)


@pytest.mark.parametrize(("speedup", "answer"), [(0.95, False), (1.1, False), (1.2, None), (1.39, None),
                                                 (1.4, True), (1.95, True)])
def test_a_speed_up_neither_in_turns_nor_at_once_is_unclear(speedup: float, answer: bool | None) -> None:
    # Two calls taking turns finish in the time of two in a row (1×), in parallel in that of one (2×).
    # A best of 1.2-1.4× over every round is the host sharing a CPU: "no" there was a wrong answer
    # for a process pool on 2 CPUs (the full suite, 2026-12-01).
    from offbench.semantics.experiments import parallel

    assert parallel(speedup) is answer


def test_a_best_speed_up_no_round_agrees_with_is_unclear() -> None:
    # The best single call and the best pair may come from different rounds: on a busy host the
    # loop's own direct once read "yes" so (2026-12-02). A "yes" needs rounds that show it alone.
    from offbench.semantics.experiments import AGREEING_ROUNDS, parallel
    assert parallel(1.9, agreeing=AGREEING_ROUNDS) is True
    assert parallel(1.9, agreeing=AGREEING_ROUNDS - 1) is None
    assert parallel(1.0, agreeing=0) is False


def test_the_parallelism_rounds_stop_on_kept_rounds_not_on_rounds_run() -> None:
    # A round left out for waiting on a CPU must not count towards a "no": with rounds *run*
    # counted, direct's pair read "CPUs busy" once on an idle machine (2026-12-02).
    from offbench.semantics.experiments import SERIAL_ROUNDS, settled
    one, two = 0.04, 0.08  # two calls in turns: a speed-up of 1.0
    turns = [2 * one / two] * SERIAL_ROUNDS
    assert settled([one] * SERIAL_ROUNDS, [two] * SERIAL_ROUNDS, turns)
    assert not settled([one] * SERIAL_ROUNDS, [two] * SERIAL_ROUNDS, turns[:-1])
    assert not settled([], [], [])  # every round left out: more rounds, not an answer
    assert not settled([one], [], [])
    # In turns by the best, but only a "no" once enough rounds kept both timings.
    assert not settled([one] * 5, [two], [1.0])


def test_the_parallelism_rounds_stop_early_only_on_a_clear_yes() -> None:
    from offbench.semantics.experiments import AGREEING_ROUNDS, settled
    one, two = 0.04, 0.021  # at once: 1.9×
    assert settled([one] * AGREEING_ROUNDS, [two] * AGREEING_ROUNDS, [2 * one / two] * AGREEING_ROUNDS)
    assert not settled([one] * 2, [two] * 2, [1.0, 2 * one / two])  # one round alone shows it
    assert not settled([one] * 6, [one / 1.3 * 2] * 6, [1.3] * 6)  # 1.3×: neither, keep going
