"""benchmarks/quality.py: its arithmetic, its report, and the physics of its stall injection."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from offbench.measure.probe import NS_PER_MS
from offbench.stats import percentile

MS = NS_PER_MS


@pytest.fixture(scope="module")
def quality() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"
    spec = importlib.util.spec_from_file_location("offbench_quality", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_cv_is_the_relative_sample_spread_in_percent(quality: ModuleType) -> None:
    assert quality.cv([10.0, 10.0, 10.0]) == 0.0
    assert quality.cv([9.0, 11.0]) == pytest.approx(100 * 2**0.5 / 10)
    assert quality.cv([5.0]) == 0.0


def test_truth_waits_are_what_a_request_arriving_mid_stall_would_wait(quality: ModuleType) -> None:
    waits = quality.truth_waits([(100, 200)], start=0, end=300, step=10)
    assert len(waits) == 30
    # Arrivals at 100, 110, ... 190 wait until 200; the twenty others do not wait.
    assert sorted(w for w in waits if w) == list(range(10, 101, 10))
    assert waits.count(0) == 20


def test_the_report_marks_every_target_met_or_not_with_why(quality: ModuleType) -> None:
    section = quality.Section(1, "Accuracy", "how", ["a", "b"], rows=[["1", "2"]])
    section.targets = [
        quality.Target("fast", "1 ms", "< 2 ms", True),
        quality.Target("exact", "3 ms", "< 2 ms", False, "the phase"),
    ]
    text = quality.markdown([section], total_s=10, budget_s=300)
    assert "| 1 | fast | 1 ms | < 2 ms | met |" in text
    assert "| 1 | exact | 3 ms | < 2 ms | **not met**: the phase |" in text
    assert "## 1. Accuracy" in text
    assert "| 1 | 2 |" in text
    assert "within its 300 s budget" in text


def test_an_injected_stall_reads_as_its_length_within_one_tick(quality: ModuleType) -> None:
    pytest.importorskip("aiodebug")
    data = quality.child(quality._inject_child, quality.Injection(loop="asyncio", stall_ms=20, count=3))
    blocks = [end - start for start, end in data["truth"]]
    assert len(blocks) == 3
    assert all(block >= 20 * MS for block in blocks)
    # A tick can fall due at most one interval (1 ms) after a stall starts, so no stall
    # reads shorter than that; none can read longer than the stall plus scheduling noise.
    for block, seen in zip(blocks, quality.per_stall_reading(data), strict=True):
        assert block - 1.2 * MS <= seen <= block + 10 * MS
    # Coordinated omission: the stalls fill about a fifth of the window, so p90 of the wait
    # of a request arriving at a random moment is inside a stall. Corrected samples weigh
    # each stall by its length and agree; one sample per wake-up (uncorrected) does not.
    truth = quality.truth_waits(data["truth"], data["start"], data["end"])
    corrected = percentile(sorted(data["samples"]), 90)
    assert percentile(truth, 90) > 2 * MS
    assert abs(corrected - percentile(truth, 90)) < 3 * MS
    assert percentile(sorted(data["raw"]), 90) < corrected / 2


def test_drift_every_cell_shares_is_found_and_divided_out(quality: ModuleType) -> None:
    machine = [1.0, 0.8, 1.2]
    series = {
        ("cpu", "direct"): [100 * m for m in machine],
        ("cpu", "to-thread"): [50 * m for m in machine],
        ("cpu", "odd"): [70.0, 70.0, 70.0],
    }
    factors = quality.run_factors(series)
    assert factors == pytest.approx(machine)
    assert quality.cv(series[("cpu", "direct")]) > 10
    assert quality.cv([v / f for v, f in zip(series[("cpu", "direct")], factors, strict=True)]) < 1e-9


def test_the_budget_target_is_met_only_under_budget(quality: ModuleType) -> None:
    assert quality.budget_target(299, 300, []).met
    over = quality.budget_target(301, 300, [])
    assert not over.met
    assert "0 `offbench run`s" in over.why


def _fake_run(quality: ModuleType, speed: float, jitter: dict[str, float]) -> object:
    results = [
        {
            "workload": workload,
            "strategy": strategy,
            "loop": "asyncio",
            "concurrency": 1,
            "throughput_ops_s": 100 * (speed if workload == "cpu" else 1.0) * jitter.get(strategy, 1.0),
            "loop_lag_ms": {"p99": 0.1},
            "lag_samples": 200,
        }
        for workload in ("sleep", "socket", "cpu", "numpy")
        for strategy in ("direct", "to-thread", "process-pool")
    ]
    return quality.Timed(["--quick"], 30.0, {"results": results})


def test_repeatability_tells_shared_drift_from_each_cells_own_scatter(quality: ModuleType) -> None:
    speeds = [1.0, 0.8, 1.2, 1.0]
    runs = [_fake_run(quality, speed, {}) for speed in speeds]
    reference = [[speed * 1e6] * 20 for speed in speeds]
    section = quality.repeatability(runs, reference, (2.0, 2.0))
    cpu = next(t for t in section.targets if t.what == "throughput CV, cpu")
    assert not cpu.met
    assert "moved between runs" in cpu.why
    assert all(t.met for t in section.targets if "cpu" not in t.what)
    assert "cells moved together" in " ".join(section.findings)

    scattered = [_fake_run(quality, 1.0, {"direct": j, "to-thread": 2 - j}) for j in (1.0, 0.7, 1.3, 1.0)]
    section = quality.repeatability(scattered, reference, (2.0, 2.0))
    cpu = next(t for t in section.targets if t.what == "throughput CV, cpu")
    assert not cpu.met
    assert cpu.why == "see findings"
    assert "scattered each on its own" in " ".join(section.findings)
