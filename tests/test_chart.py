"""Terminal charts: bars and lag strips placed by the numbers, readable piped and in ASCII."""

from __future__ import annotations

import io
import re

import msgspec
import pytest
from rich.console import Console

from offbench.model.results import LoopLag
from offbench.render import chart
from offbench.render import terminal as report
from tests.builders import cell, run_of

SCALE = chart.LagScale(0.01, 1000.0)


def lag(p50: float, p90: float, p99: float, p999: float, top: float) -> LoopLag:
    return LoopLag(p50=p50, p90=p90, p99=p99, p999=p999, max=top, mean=p50)


def drawn(text: object) -> str:
    return str(text)


def test_scale_spans_whole_decades_around_the_data_and_at_least_three() -> None:
    found = chart.LagScale.spanning([lag(0.05, 1, 2, 3, 170), lag(0.3, 1, 2, 3, 4)])
    assert (found.low, found.high) == (0.01, 1000.0)
    narrow = chart.LagScale.spanning([lag(2, 2, 2, 2, 3)])
    assert narrow.high / narrow.low == pytest.approx(1000)
    assert [label for _, label in SCALE.ticks()] == ["0.01", "0.1", "1", "10", "100", "1000"]


def test_columns_grow_with_the_log_of_the_lag_and_stay_on_the_strip() -> None:
    columns = [SCALE.column(v) for v in (0.001, 0.01, 0.1, 1, 10, 100, 1000, 1e6)]
    assert columns == sorted(columns)
    assert columns[0] == columns[1] == 0
    assert columns[-1] == columns[-2] == SCALE.width - 1
    # Equal ratios, equal distances.
    assert SCALE.column(10) - SCALE.column(1) == SCALE.column(100) - SCALE.column(10)


def test_strip_is_blank_below_p50_and_shaded_by_band_up_to_the_max() -> None:
    text = chart.strip(lag(0.1, 1, 10, 100, 1000), SCALE, budget_ms=1e9)
    line = drawn(text)
    assert len(line) == SCALE.width
    assert line[: SCALE.column(0.1)].strip() == ""
    bands = re.sub(r"(.)\1*", r"\1", line.strip())
    assert bands == "█▓▒░"


def test_a_larger_lag_draws_a_longer_strip_and_what_is_beyond_the_budget_is_red() -> None:
    short = drawn(chart.strip(lag(0.5, 1, 2, 3, 4), SCALE, budget_ms=10)).rstrip()
    long = chart.strip(lag(0.5, 1, 20, 30, 400), SCALE, budget_ms=10)
    assert len(drawn(long).rstrip()) > len(short)
    budget = SCALE.column(10)
    red = {i for span in long.spans if span.style == "red" for i in range(span.start, span.end)}
    drawn_columns = {i for i, c in enumerate(drawn(long)) if c != " "}
    assert red == {i for i in drawn_columns if i > budget}
    assert "┊" in short  # the budget is marked where nothing is drawn


def test_bar_is_proportional_to_the_fastest() -> None:
    full, half, none = (drawn(chart.bar(v, 200.0)) for v in (200.0, 100.0, 0.0))
    assert full == "█" * chart.BAR_WIDTH
    assert half.rstrip() == "█" * (chart.BAR_WIDTH // 2)
    assert none.strip() == ""
    assert drawn(chart.bar(101.0, 200.0)).rstrip().startswith("█" * (chart.BAR_WIDTH // 2))


class AsciiFile(io.StringIO):
    encoding = "ascii"


def render(run: object, file: io.StringIO, charts: bool = True) -> str:
    console = Console(file=file, width=160, color_system=None)
    report.print_run(run, console, charts=charts)  # type: ignore[arg-type]
    return file.getvalue()


def sample() -> object:
    slow = msgspec.structs.replace(cell("direct"), loop_lag_ms=lag(10, 12, 30, 31, 31))
    failed = cell("process-pool", status="error")
    return run_of(slow, cell("to-thread"), cell("to-thread", loop="uvloop"), failed)


def test_charts_follow_each_table_and_say_what_they_show() -> None:
    out = render(sample(), io.StringIO())
    assert out.index("budget 10 ms, red beyond") > out.index("lag p99")  # after the table
    assert "p50–p90" in out
    assert "error" in out.split("throughput, ops/s")[1]  # the failed cell is named, not drawn
    assert "\x1b[" not in out  # piped: plain text
    without = render(sample(), io.StringIO(), charts=False)
    assert "p50–p90" not in without


def test_a_terminal_without_unicode_gets_an_ascii_chart() -> None:
    out = render(sample(), AsciiFile())
    block = out[out.index("throughput, ops/s") : out.index("red beyond")]
    assert block.isascii(), {c for c in block if not c.isascii()}
    assert "#" in block
    assert "|" in block
