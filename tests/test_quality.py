"""benchmarks/quality: its arithmetic, its report, its judgements on made-up runs, the physics of its stalls.

Fast tier: nothing here starts a process (the stall injection runs on a loop in this process).
"""

from __future__ import annotations

import asyncio
import itertools
import math
from pathlib import Path

import msgspec
import pytest
from benchmarks.quality import answer, calibration, fresh, main, observer, repeat, report, stalls

from offbench.measure.probe import NS_PER_MS
from offbench.model.results import Candidate, Round, Verdict
from tests.builders import cell, run_of

MS = NS_PER_MS


def test_cv_is_the_relative_sample_spread_in_percent() -> None:
    assert report.cv([10.0, 10.0, 10.0]) == 0.0
    assert report.cv([9.0, 11.0]) == pytest.approx(100 * 2**0.5 / 10)
    assert report.cv([5.0]) == 0.0


def test_wilson_interval_matches_the_textbook_values() -> None:
    # Wilson 95 %: 0 of 20 → [0, 16.1 %]; 18 of 20 → [69.9 %, 97.2 %] (standard tables).
    assert report.wilson(0, 20) == pytest.approx((0.0, 0.161), abs=0.001)
    assert report.wilson(18, 20) == pytest.approx((0.699, 0.972), abs=0.001)
    assert report.proportion(1, 20).startswith("1 / 20 = 5 %")


def test_truth_waits_are_what_a_request_arriving_mid_stall_would_wait() -> None:
    waits = stalls.truth_waits([(100, 200)], start=0, end=300, step=10)
    assert len(waits) == 30
    # Arrivals at 100, 110, ... 190 wait until 200; the twenty others do not wait.
    assert sorted(w for w in waits if w) == list(range(10, 101, 10))
    assert waits.count(0) == 20


def test_a_stall_reads_as_its_largest_tick_lag_and_the_rest_is_the_phase() -> None:
    # A 10 ms stall from 1.3 ms: ticks every 1 ms fall due at 2, 3, ..., 11 ms; the one due at 2 waits 9.3 ms.
    data = {"truth": [(int(1.3 * MS), int(11.3 * MS))],
            "deadlines": [k * MS for k in range(15)],
            "samples": [max(0, int(11.3 * MS) - k * MS) if 2 <= k <= 11 else 50_000 for k in range(15)]}
    assert stalls.per_stall_reading(data) == [int(9.3 * MS)]
    assert stalls.under_reads_ms(data) == [pytest.approx(0.7)]
    # Its phase: the first tick fell due 0.7 ms in; the loop answered it the moment the stall ended.
    assert stalls.stall_parts(data) == [(pytest.approx(0.7), pytest.approx(0.0))]


def test_stalls_handed_over_from_a_thread_start_at_a_random_phase() -> None:
    pytest.importorskip("aiodebug")  # the module imports it only when asked; this run does not ask
    spec = stalls.Injection(loop="asyncio", stall_ms=5, count=8, seed=4)
    data = asyncio.run(stalls.inject(spec, aiodebug=False))
    blocks = [end - start for start, end in data["truth"]]
    assert len(blocks) == 8
    assert all(block >= 5 * MS for block in blocks)
    # Physics: the first tick inside a stall falls due at most one interval after it began, so no stall
    # reads shorter than that (0.05 ms: the clock reads around the block); a late wake-up can only add.
    assert all(under <= 1.05 for under in stalls.under_reads_ms(data))
    # A stall never runs into the next: the thread sleeps at least 30 ms after one ends before the next.
    truth = sorted(data["truth"])
    assert all(after[0] - before[1] >= 25 * MS for before, after in itertools.pairwise(truth))


def test_phase_findings_tell_a_random_phase_from_one_locked_to_the_ticks() -> None:
    parts = [(0.1, 0.05), (0.3, 0.05), (0.5, 0.1), (0.7, 0.0), (0.9, 0.2)]
    random_phase = stalls.phase_findings({1.0: parts})
    assert "the phase is random" in random_phase[0]
    assert "0.08 ms (mean; at most 0.20)" in random_phase[0]
    locked = stalls.phase_findings({1.0: [(0.9, 0.0), (0.92, 0.0), (0.95, 0.0)]})
    assert "not the spread a random phase gives" in locked[0]


def test_the_report_marks_every_target_and_records_the_code_digest() -> None:
    section = report.Section(1, "Accuracy", "how", ["a", "b"], rows=[["1", "2|3"]])
    section.targets = [
        report.Target("fast", "1 ms", "< 2 ms", True),
        report.Target("exact", "3 ms", "< 2 ms", False, "the phase"),
    ]
    text = report.markdown([section], total_s=10, budget_s=300, digest="0123456789abcdef", where="a test")
    assert "| 1 | fast | 1 ms | < 2 ms | met |" in text
    assert "| 1 | exact | 3 ms | < 2 ms | **not met**: the phase |" in text
    assert "| 1 | 2\\|3 |" in text
    assert "within its 300 s budget" in text
    assert fresh.recorded(text) == ("0123456789abcdef", "full")
    smoke = report.markdown([section], total_s=10, budget_s=300, digest="0123456789abcdef", smoke=True,
                            where="a test")
    assert fresh.recorded(smoke) == ("0123456789abcdef", "smoke")
    assert "**Smoke run**" in smoke


def test_a_target_keeps_its_why_only_when_missed() -> None:
    assert report.target("x", "1", "< 2", True, "why").why == ""
    assert report.target("x", "3", "< 2", False, "why").why == "why"


def test_the_digest_ignores_prose_and_sees_code(tmp_path: Path) -> None:
    source = ('def f(x):\n    """Say what."""\n    # a comment\n    y = 1\n'
              '    """An attribute docstring."""\n    return x + y\n')
    reworded = 'def f(x):\n    """Say it otherwise."""\n    y = 1  # another comment\n    return x + y\n'
    changed = 'def f(x):\n    """Say what."""\n    y = 2\n    return x + y\n'
    assert fresh.canonical(source) == fresh.canonical(reworded)
    assert fresh.canonical(source) != fresh.canonical(changed)
    root = tmp_path / "repo"
    target = root / "src" / "offbench" / "stats.py"
    target.parent.mkdir(parents=True)
    target.write_text(source)
    before = fresh.digest(root)
    target.write_text(reworded)
    assert fresh.digest(root) == before
    target.write_text(changed)
    assert fresh.digest(root) != before


def test_a_report_is_stale_unless_a_full_run_recorded_the_codes_digest(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    target = root / "src" / "offbench" / "stats.py"
    target.parent.mkdir(parents=True)
    target.write_text("x = 1\n")
    now = fresh.digest(root)
    assert fresh.staleness(f"# q\n\n{fresh.header_line(now, 'full')}\n", root) is None
    assert "smoke run" in (fresh.staleness(f"{fresh.header_line(now, 'smoke')}\n", root) or "")
    assert "no measuring-code digest" in (fresh.staleness("# q\nno digest here\n", root) or "")
    target.write_text("x = 2\n")
    assert f"digest {now}" in (fresh.staleness(f"{fresh.header_line(now, 'full')}\n", root) or "")


def test_the_measuring_code_is_the_issues_list() -> None:
    names = {p.relative_to(fresh.ROOT).as_posix() for p in fresh.measuring_files()}
    assert "src/offbench/measure/probe.py" in names
    assert "src/offbench/run/runner.py" in names
    judged = {"src/offbench/judge/precision.py", "src/offbench/judge/compare.py", "src/offbench/stats.py"}
    assert judged <= names
    assert "src/offbench/judge/verdict.py" not in names
    assert all(name.endswith(".py") for name in names)


def _cpu_run(to_thread: float, pool: float, sleep_scale: float = 1.0) -> object:
    cells = [
        cell("direct", throughput=[100.0, 100.0], workload="cpu", params={}, concurrency=8),
        cell("to-thread", throughput=[to_thread] * 2, workload="cpu", params={}, concurrency=8),
        cell("process-pool", throughput=[pool] * 2, workload="cpu", params={}, concurrency=8),
        cell("to-thread", throughput=[800 * sleep_scale, 800 * sleep_scale], concurrency=8),
    ]
    return run_of(*cells)


def test_forbidden_ratios_count_threads_beating_the_gil_and_an_idle_pool() -> None:
    runs = [_cpu_run(100.0, 190.0), _cpu_run(140.0, 120.0)]
    found = repeat.forbidden_ratios(runs)  # type: ignore[arg-type]
    threads = found["cpu to-thread above 1.3× direct"]
    pool = found["cpu process-pool under 1.3× direct at c=8"]
    assert threads[:2] == (1, 2)
    assert threads[2] == pytest.approx(1.4)
    assert pool[:2] == (1, 2)
    assert pool[2] == pytest.approx(1.2)


def test_repeatability_judges_the_median_normalised_cv_per_workload() -> None:
    runs = [_cpu_run(100.0, 190.0, scale) for scale in (1.0, 1.0, 1.0)]
    section = repeat.repeatability(runs, "offbench run --quick")  # type: ignore[arg-type]
    sleep = next(t for t in section.targets if t.what.startswith("normalised throughput CV, sleep"))
    assert sleep.met
    assert sleep.measured == "0.0 %"
    drifting = [_cpu_run(100.0, 190.0, scale) for scale in (1.0, 1.1, 0.9)]
    section = repeat.repeatability(drifting, "offbench run --quick")  # type: ignore[arg-type]
    sleep = next(t for t in section.targets if t.what.startswith("normalised throughput CV, sleep"))
    assert not sleep.met
    assert sleep.measured == "10.0 %"


def _verdict(strategy: str, max_workers: int | None = None, tied: list[str] | None = None,
             fix: str | None = None) -> Verdict:
    winner = Candidate(strategy=strategy, max_workers=max_workers, judgement="winner", reason="",
                       qualified=True, score=1.0, worst_lag_p99_ms=1.0)
    return Verdict(workload="sleep", params={}, lag_budget_ms=10.0, winner=winner, text="",
                   candidates=[winner], tied=tied or [], fix=fix)


def test_a_verdict_is_its_winner_or_its_tied_set_in_a_fixed_order() -> None:
    assert repeat.verdict_key(_verdict("to-thread", 8, tied=["to-thread (8)"])) == "to-thread (8)"
    assert repeat.verdict_key(_verdict("to-thread", tied=["to-thread", "default-executor"])) == (
        "default-executor = to-thread")
    assert repeat.sized_choice(_verdict("to-thread", 8)) == "pool of 8"
    assert repeat.sized_choice(_verdict("bounded-to-thread")) == "bounded-to-thread"
    assert repeat.sized_choice(_verdict("executor-per-call")) == "executor-per-call"
    assert repeat.sized_choice(_verdict("to-thread")) == "to-thread"


def test_a_loss_is_caught_only_by_a_regression_of_the_changed_workload() -> None:
    caught = calibration.Outcome("loss", 1, ["sleep direct c=1: throughput -16.7%"])
    wrong_cell = calibration.Outcome("loss", 1, ["cpu to-thread c=8: throughput -30.0%"])
    ab = calibration.Outcome("loss", 1, ["cifn:call to-thread c=8: throughput -16.7%"])
    passed = calibration.Outcome("loss", 0, [])
    assert caught.caught
    assert ab.caught
    assert not wrong_cell.caught
    assert wrong_cell.unchanged_failed
    assert not passed.caught
    assert not passed.failed


def test_the_recommended_usage_is_the_issues() -> None:
    assert " ".join(calibration.RECOMMENDED_RUN) == (
        "offbench run -w sleep -w cpu -s direct -s to-thread -s process-pool -l asyncio -c 1 -c 8 --quick "
        "--rounds 4 --no-semantics --no-pool-costs -o X.json")
    assert calibration.RECOMMENDED_COMPARE[-2:] == ["--fail-on-regression", "10"]


def test_calibration_targets_need_twenty_pairs_and_the_rates() -> None:
    good = calibration.Mode("separate runs", [calibration.Outcome("identical", 0, []) for _ in range(20)]
                            + [calibration.Outcome("loss", 1, ["sleep direct c=1: x"]) for _ in range(20)],
                            [10.0])
    few = calibration.Mode("A/B in one run", [
        calibration.Outcome("identical", 0, []), calibration.Outcome("loss", 1, ["cifn:call direct c=1: x"])],
        [10.0])
    section = calibration.calibration([good, few], "offbench run ...")
    met = {t.what: t.met for t in section.targets}
    assert met["identical code fails, separate runs"]
    assert met["20 % loss caught, separate runs"]
    assert not met["identical code fails, A/B in one run"]
    why = next(t.why for t in section.targets if t.what == "20 % loss caught, A/B in one run")
    assert "only 1 pairs" in why


def test_paired_effects_are_the_mean_log_ratio_with_an_interval() -> None:
    found = observer.effect("cpu/direct", "probe", [99.0, 101.0, 100.0], [100.0, 102.0, 101.0])
    assert found.pct == pytest.approx(-0.99, abs=0.005)
    assert found.low < found.pct < found.high
    assert found.resolved  # the three rounds agree: −1 % each


def test_eta_errors_are_estimates_against_the_time_really_left() -> None:
    log = [(10.0, 1, 10, 9.0), (11.0, 2, 8, 4.0), (20.0, 10, 10, 0.0)]
    first, second = answer.eta_errors(log)
    assert (first.share, first.estimate_s, first.real_s, first.units_expected, first.units_left) == (
        0.1, 9.0, 10.0, 9, 9)
    assert (second.units_expected, second.units_left) == (6, 8)
    assert second.error == pytest.approx(5 / 9)
    assert answer.eta_errors([]) == []


def test_measuring_time_is_the_rounds_and_half_widths_are_relative() -> None:
    run = msgspec.structs.replace(run_of(cell("direct", throughput=[90.0, 110.0])), rounds=[
        Round(index=0, started_s=0.5, wall_s=1.0, cells=[0], reference_ms=None, other_cpu=None),
        Round(index=1, started_s=1.6, wall_s=1.4, cells=[0], reference_ms=None, other_cpu=None)])
    assert answer.measuring_s(run) == pytest.approx(2.5)
    (width,) = answer.half_width_pct(run, "sleep")
    spread = run.results[0].spread
    assert spread is not None
    assert width == pytest.approx(100 * (spread.high - spread.low) / 200)
    assert math.isfinite(width)


def test_smoke_never_writes_the_committed_report(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main.parse(["--smoke"])
    with pytest.raises(SystemExit):
        main.parse(["--smoke", "-o", str(main.COMMITTED)])
    assert "never" in capsys.readouterr().err
    assert main.parse(["--smoke", "-o", "/tmp/q.md"]).output == Path("/tmp/q.md")
    assert main.parse([]).output == main.COMMITTED
