"""Charts drawn with matplotlib: their SVG structure, that they follow the data, and the physics."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import msgspec
import pytest

from offbench.model import histogram, results
from offbench.model.results import CellResult, RunResult
from offbench.render import plots
from tests.builders import SVG, cell, run_of, series, synthetic


def with_lags(base: CellResult, values: list[float]) -> CellResult:
    return msgspec.structs.replace(base, lag_histogram=histogram.encode(values))


def texts(svg_text: str) -> list[str]:
    return ["".join(t.itertext()) for t in ET.fromstring(svg_text).iter(f"{SVG}text")]


def path_of(group: ET.Element) -> str:
    return " ".join(p.get("d", "") for p in group.iter(f"{SVG}path"))


def row_svg(run: RunResult, index: int = 0, base: RunResult | None = None) -> str:
    return plots.svg(plots.row_figure(run, plots.groups(run)[index], base))


def test_one_spectrum_series_per_strategy_and_loop_and_axes_with_units() -> None:
    svg = row_svg(synthetic())
    found = series(svg)
    spectra = {k for k in found if ":spectrum:" in k}
    assert spectra == {f"row0:spectrum:{loop}:{s}" for loop in ("asyncio", "uvloop")
                       for s in ("direct", "to-thread", "process-pool")}
    bars = {k for k in found if re.fullmatch(r"row0:throughput:\w+:[\w-]+", k)}
    assert len(bars) == 6
    labels = texts(svg)
    for unit_label in ("loop lag (ms)", "percentile of probe ticks (%)", "throughput (ops/s)"):
        assert unit_label in labels
    assert {"0", "90", "99", "99.9", "99.99"} <= set(labels)  # the "nines" axis
    assert not any(":base-spectrum:" in k for k in found)


def test_same_results_same_svg_and_a_changed_cell_changes_only_its_line() -> None:
    assert row_svg(synthetic()) == row_svg(synthetic())
    # Both within one decade, so the axes (whole decades) stay the same.
    before, after = series(row_svg(synthetic(20.0))), series(row_svg(synthetic(40.0)))
    for key in before:
        if ":spectrum:" in key:
            changed = path_of(before[key]) != path_of(after[key])
            assert changed == key.endswith(":direct"), key


def test_the_spectrum_ends_at_the_maximum_on_the_right_edge() -> None:
    run = synthetic(25.0)
    figure = plots.row_figure(run, plots.groups(run)[0])
    line = next(a for ax in figure.axes for a in ax.get_lines()
                if a.get_gid() == "row0:spectrum:asyncio:direct")
    assert max(line.get_ydata()) == pytest.approx(25.0, rel=0.01)
    assert max(line.get_xdata()) == 10.0**plots.NINES


def test_nines_axis_gives_each_nine_the_same_room() -> None:
    positions = [plots.nines(p) for p in (0, 90, 99, 99.9, 99.99, 100)]
    assert positions == pytest.approx([1, 10, 100, 1000, 10000, 10000])


def test_a_baseline_is_drawn_dashed_beside_each_line() -> None:
    svg = row_svg(synthetic(10.0), base=synthetic(20.0))
    found = series(svg)
    assert {k.replace(":base-spectrum:", ":spectrum:") for k in found if ":base-spectrum:" in k} == {
        k for k in found if ":spectrum:" in k}
    assert "baseline" in texts(svg)


def test_files_without_histograms_are_drawn_from_their_percentiles() -> None:
    older = [msgspec.structs.replace(c, lag_histogram=None) for c in (cell("direct"), cell("to-thread"))]
    run = run_of(*older)
    points = plots.spectrum_points(run.results[0])
    assert [p.percentile for p in points] == [50, 90, 99, 99.9, 100]
    assert "row0:spectrum:asyncio:direct" in series(row_svg(run))


def test_the_run_figure_stacks_a_row_per_workload_and_concurrency(tmp_path: Path) -> None:
    two = run_of(*synthetic().results, msgspec.structs.replace(cell("direct"), concurrency=8))
    assert [(g.workload, g.concurrency) for g in plots.groups(two)] == [("sleep", 1), ("sleep", 8)]
    png = plots.save(plots.run_figure(two), tmp_path / "x.png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    svg = plots.save(plots.run_figure(two), tmp_path / "x.svg").decode()
    assert {k.split(":")[0] for k in series(svg)} == {"row0", "row1"}


def test_a_failed_cell_is_named_not_drawn() -> None:
    failed = msgspec.structs.replace(cell("process-pool"), status="timeout")
    run = run_of(*synthetic().results[:2], failed)
    svg = row_svg(run)
    assert "row0:spectrum:asyncio:process-pool" not in series(svg)
    assert " timeout" in texts(svg)


@pytest.mark.workers
def test_real_runs_direct_sleep_reaches_its_duration_offloaded_sleep_does_not(
    quick_run: Path,
) -> None:
    run = results.load(quick_run)
    sleep = next(g for g in plots.groups(run) if g.workload == "sleep" and g.concurrency == 1)
    duration = float(sleep.params["duration_ms"])  # type: ignore[arg-type]
    figure = plots.row_figure(run, sleep)
    lines = {a.get_gid(): a for ax in figure.axes for a in ax.get_lines()}
    for loop in plots.loops_of(run):
        direct = lines[f"{sleep.row_id}:spectrum:{loop}:direct"]
        # Every tick during a blocking sleep waits for it to end: the tail is the duration.
        assert max(direct.get_ydata()) >= 0.9 * duration
        offloaded = [p for p in plots.spectrum_points(
            next(c for c in sleep.cells(run) if c.strategy == "to-thread" and c.loop == loop))]
        median = next(p.lag_ms for p in offloaded if p.percentile >= 50)
        assert median < duration / 4


@pytest.mark.workers
def test_charts_of_two_real_runs_differ(small_runs: tuple[Path, Path]) -> None:
    first, second = (results.load(p) for p in small_runs)
    assert row_svg(first) == row_svg(results.load(small_runs[0]))
    assert row_svg(first) != row_svg(second)
