"""Compact terminal charts: per cell, a throughput bar and a loop-lag percentile strip.

Printed after each workload's table by ``offbench run`` and ``offbench show``. The strip
spans p50 → max on a log scale shared by every chart of a run, shaded darker where more
ticks fall (█ p50–p90, ▓ –p99, ▒ –p99.9, ░ –max), with the lag budget marked; whatever
lies beyond the budget is red. In a terminal that cannot show these characters (rich's
``ascii_only``) the chart is drawn with ``# = - .`` instead, and piped it is plain text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from offbench.formatting import format_rate, loop_label
from offbench.model.results import CellResult, LoopLag

COLUMNS_PER_DECADE = 8
BAR_WIDTH = 20
MIN_DECADES = 3
MIN_LAG_SHOWN_MS = 0.01
"""The strip starts no lower than 10 µs: below that a lag is timer noise."""


@dataclass(frozen=True)
class Glyphs:
    """The characters a chart is drawn with: Unicode blocks, or ASCII for limited terminals."""

    zones: tuple[str, str, str, str]
    """p50–p90, p90–p99, p99–p99.9, p99.9–max."""
    budget: str
    dash: str
    arrow: str
    dot: str
    bar_eighths: tuple[str, ...]
    """A bar's last cell by eighths filled (index 1–7); index 8 is a full cell."""


UNICODE = Glyphs(zones=("█", "▓", "▒", "░"), budget="┊", dash="–", arrow="→", dot="·",
                 bar_eighths=("", "▏", "▎", "▍", "▌", "▋", "▊", "▉", "█"))
ASCII = Glyphs(zones=("#", "=", "-", "."), budget="|", dash="-", arrow="->", dot="|",
               bar_eighths=("", "", "", "", "#", "#", "#", "#", "#"))


@dataclass(frozen=True)
class LagScale:
    """A log scale of loop lag (ms): whole decades from ``low`` to ``high``, ``per_decade`` columns each."""

    low: float
    high: float
    per_decade: int = COLUMNS_PER_DECADE

    @classmethod
    def spanning(cls, lags: Iterable[LoopLag]) -> LagScale:
        """Return the scale of whole decades holding every p50 and max, at least three decades wide."""
        found = [v for lag in lags for v in (lag.p50, lag.max) if v > 0]
        if not found:
            return cls(0.1, 100.0)
        low = math.floor(math.log10(max(min(found), MIN_LAG_SHOWN_MS)))
        high = max(math.ceil(math.log10(max(found))), low + MIN_DECADES)
        return cls(10.0**low, 10.0**high)

    @property
    def decades(self) -> int:
        """Return how many decades the scale spans."""
        return round(math.log10(self.high / self.low))

    @property
    def width(self) -> int:
        """Return the strip's width in characters: a column per step, both ends included."""
        return self.decades * self.per_decade + 1

    def column(self, ms: float) -> int:
        """Return the character column of ``ms`` on the scale, clamped to the strip."""
        if ms <= self.low:
            return 0
        return min(self.width - 1, round(math.log10(ms / self.low) * self.per_decade))

    def ticks(self) -> list[tuple[int, str]]:
        """Return each decade's column and label: ``(0, "0.01"), (8, "0.1"), …``."""
        return [(k * self.per_decade, f"{self.low * 10**k:g}") for k in range(self.decades + 1)]


def strip(lag: LoopLag, scale: LagScale, budget_ms: float, glyphs: Glyphs = UNICODE) -> Text:
    """Return one cell's lag strip: blank below p50, then shaded by percentile band up to the max."""
    edges = [scale.column(v) for v in (lag.p50, lag.p90, lag.p99, lag.p999, lag.max)]
    budget = scale.column(budget_ms) if scale.low < budget_ms < scale.high else None
    text = Text()
    for col in range(scale.width):
        zone = next((z for z in range(4) if edges[0] <= col <= edges[z + 1]), None)
        if zone is None:
            text.append(glyphs.budget if col == budget else " ", style="dim")
        else:
            over = budget is not None and col > budget
            text.append(glyphs.zones[zone], style="red" if over else "green")
    return text


def bar(value: float, top: float, glyphs: Glyphs = UNICODE, width: int = BAR_WIDTH) -> Text:
    """Return a horizontal bar of ``value`` relative to ``top`` (a full bar), to an eighth of a cell."""
    eighths = round(8 * width * value / top) if top > 0 else 0
    full, part = divmod(max(0, min(eighths, 8 * width)), 8)
    drawn = glyphs.bar_eighths[8] * full + glyphs.bar_eighths[part]
    return Text(drawn.ljust(width), style="cyan")


def axis(scale: LagScale) -> Text:
    """Return the decade labels placed under a strip, in ms."""
    line = [" "] * (scale.width + 6)
    for col, label in scale.ticks():
        start = min(col, len(line) - len(label))
        if all(c == " " for c in line[max(0, start - 1) : start + len(label)]):
            line[start : start + len(label)] = label
    return Text("".join(line).rstrip() + " ms", style="dim")


class WorkloadChart:
    """One workload's chart: per concurrency, per strategy and loop, a throughput bar and a lag strip."""

    def __init__(self, rows: Sequence[CellResult], budget_ms: float, scale: LagScale) -> None:
        self.rows = rows
        self.budget_ms = budget_ms
        self.scale = scale

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Draw the chart with the glyphs the terminal can show."""
        glyphs = ASCII if options.ascii_only else UNICODE
        table = Table(box=box.SIMPLE_HEAD if not options.ascii_only else box.ASCII2, pad_edge=False)
        table.add_column("strategy", no_wrap=True)
        table.add_column("loop", no_wrap=True)
        table.add_column("conc", justify="right")
        table.add_column("throughput, ops/s", no_wrap=True)
        table.add_column(f"loop lag: p50 {glyphs.arrow} max", no_wrap=True)
        previous: tuple[int, str] | None = None
        for row in self.rows:
            if previous is not None and row.concurrency != previous[0]:
                table.add_section()
            same_strategy = previous == (row.concurrency, row.strategy)
            table.add_row(
                "" if same_strategy else row.strategy, loop_label(row.loop, row.python), str(row.concurrency),
                *self._cells(row, glyphs),
            )
            previous = (row.concurrency, row.strategy)
        table.add_row("", "", "", "", axis(self.scale))
        yield table
        yield Text(legend(self.budget_ms, glyphs), style="dim")

    def _cells(self, row: CellResult, glyphs: Glyphs) -> tuple[Text, Text]:
        if not row.ok:
            style = "red" if row.status == "error" else "yellow"
            return Text(row.status, style=style), Text("")
        top = max((r.throughput_ops_s for r in self.rows if r.concurrency == row.concurrency and r.ok),
                  default=0.0)
        rate = bar(row.throughput_ops_s, top, glyphs) + Text(f" {format_rate(row.throughput_ops_s):>6}")
        if row.loop_lag_ms is None:
            return rate, Text(glyphs.dash)
        return rate, strip(row.loop_lag_ms, self.scale, self.budget_ms, glyphs)


def legend(budget_ms: float, glyphs: Glyphs = UNICODE) -> str:
    """Return the line under a chart saying what its bars, shades and marks mean."""
    z, d, dot = glyphs.zones, glyphs.dash, glyphs.dot
    return (f"bar: ops/s vs the fastest at that concurrency {dot} lag (log): {z[0]} p50{d}p90 "
            f"{z[1]} {d}p99 {z[2]} {d}p99.9 {z[3]} {d}max {dot} {glyphs.budget} budget {budget_ms:g} ms, "
            "red beyond")
