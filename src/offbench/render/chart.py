"""Compact terminal charts: per cell, a throughput bar and a loop-lag percentile strip; the knee.

Printed after each workload's table by ``offbench run`` and ``offbench show``. The strip
spans p50 → max on a log scale shared by every chart of a run, shaded darker where more
ticks fall (█ p50–p90, ▓ –p99, ▒ –p99.9, ░ –max), with the lag budget marked; whatever
lies beyond the budget is red. In a terminal that cannot show these characters (rich's
``ascii_only``) the chart is drawn with ``# = - .`` instead, and piped it is plain text.

After a workload's rate table, :class:`KneeChart` draws the knee: latency p99 (log)
against offered rate, a marker per strategy at each rate, the SLO as a dotted line;
where a strategy gives out its markers climb, and a rate it did not sustain is an ✗.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from offbench.formatting import format_offered, format_rate, loop_label
from offbench.model.results import CellResult, LoopLag
from offbench.render.rates import KneeSeries

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


KNEE_ROWS_PER_DECADE = 4
KNEE_WIDTH = 64
"""Characters the knee's rate axis spans."""
KNEE_COLOURS = ("cyan", "magenta", "yellow", "green", "blue", "bright_red", "bright_cyan", "bright_magenta")


@dataclass(frozen=True)
class KneeGlyphs:
    """The characters the knee is drawn with: Unicode, or ASCII for limited terminals."""

    markers: tuple[str, ...]
    """One per series, in turn."""
    missed: str
    """A rate the series did not sustain."""
    slo: str
    tick: str
    rule: str
    corner: str
    axis: str


KNEE_UNICODE = KneeGlyphs(markers=("●", "■", "▲", "◆", "▼", "★", "✚", "◉"), missed="✗", slo="┄",
                          tick="┤", rule="│", corner="└", axis="─")
KNEE_ASCII = KneeGlyphs(markers=("o", "#", "^", "*", "v", "@", "+", "%"), missed="x", slo="-",
                        tick="+", rule="|", corner="+", axis="-")


class KneeChart:
    """The knee of one workload: latency p99 against offered rate, both on log scales, a marker per series.

    A series is a strategy (at a pool size, on a loop). Where two markers would share a
    character the later one moves aside by one; rows step a quarter of a decade of latency.
    """

    def __init__(self, series: Sequence[KneeSeries], slo_ms: float, width: int = KNEE_WIDTH) -> None:
        self.series = series
        self.slo_ms = slo_ms
        self.width = width

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Draw the knee with the glyphs the terminal can show."""
        g = KNEE_ASCII if options.ascii_only else KNEE_UNICODE
        rates = sorted({p.rate for s in self.series for p in s.points})
        values = [p.p99 for s in self.series for p in s.points if p.p99 > 0]
        if not rates or not values:
            return
        low = math.floor(math.log10(max(min(values), MIN_LAG_SHOWN_MS)))
        high = max(math.ceil(math.log10(max([*values, self.slo_ms]))), low + 1)
        rows = (high - low) * KNEE_ROWS_PER_DECADE + 1
        x = RateScale(rates[0], rates[-1], self.width)

        def row_of(ms: float) -> int:
            return max(0, min(rows - 1, round((math.log10(max(ms, 10.0**low)) - low) * KNEE_ROWS_PER_DECADE)))

        blank = (" ", "")
        grid: list[list[tuple[str, str]]] = [[blank] * (self.width + 2) for _ in range(rows)]
        grid[row_of(self.slo_ms)] = [(g.slo, "dim")] * (self.width + 2)
        for index, found in enumerate(self.series):
            colour = KNEE_COLOURS[index % len(KNEE_COLOURS)]
            for point in found.points:
                cells = grid[row_of(point.p99)]
                column = x.column(point.rate) + 1
                free = [c for c in (column, column + 1, column - 1) if cells[c][0] in (" ", g.slo)]
                glyph = g.markers[index % len(g.markers)] if point.sustained else g.missed
                cells[free[0] if free else column] = (glyph, colour)
        yield Text(f"knee: latency p99 against offered rate (log scales; {g.missed} not sustained; "
                   f"{g.slo * 2} SLO {self.slo_ms:g} ms)", style="dim")
        for number in range(rows - 1, -1, -1):
            decade = number % KNEE_ROWS_PER_DECADE == 0
            label = f"{10.0 ** (low + number // KNEE_ROWS_PER_DECADE):g}" if decade else ""
            line = Text(f"{label:>7} {g.tick if decade else g.rule}", style="dim")
            for glyph, style in grid[number]:
                line.append(glyph, style=style)
            yield line
        yield Text(f"{'ms':>7} {g.corner}{g.axis * (self.width + 2)}", style="dim")
        yield Text(f"{'':9}{x.labels(rates)}  calls/s", style="dim")
        legend = Text(" " * 9)
        for index, found in enumerate(self.series):
            legend.append(g.markers[index % len(g.markers)], style=KNEE_COLOURS[index % len(KNEE_COLOURS)])
            capacity = f" (capacity {format_offered(found.capacity)}/s)" if found.capacity is not None else ""
            legend.append(f" {found.label}{capacity}  ")
        yield legend


@dataclass(frozen=True)
class RateScale:
    """The knee's rate axis: a log scale from ``low`` to ``high`` calls/s over ``width`` characters."""

    low: float
    high: float
    width: int

    def column(self, rate: float) -> int:
        """Return the character column of ``rate`` (the middle when the axis is one rate)."""
        span = math.log10(self.high / self.low)
        if span <= 0:
            return self.width // 2
        return round(math.log10(rate / self.low) / span * (self.width - 1))

    def labels(self, rates: Sequence[float]) -> str:
        """Return the axis labels: each offered rate where it fits (a rate cell sweep), else whole decades."""
        line = [" "] * (self.width + 8)
        shown = rates if len(rates) <= 8 else [10.0**k for k in range(math.ceil(math.log10(self.low)),
                                                                     math.floor(math.log10(self.high)) + 1)]
        for rate in shown:
            text = format_offered(rate)
            start = max(0, self.column(rate) + 1 - len(text) // 2)
            if all(c == " " for c in line[max(0, start - 1): start + len(text) + 1]):
                line[start: start + len(text)] = text
        return "".join(line).rstrip()
