"""A run's charts drawn with matplotlib (the optional ``offbench[plot]`` extra), as SVG or PNG.

One row of charts per workload and concurrency: for each event loop the loop-lag
**percentile spectrum** (HdrHistogram style: lag on a log y axis, percentile on a log
"nines" x axis, so p99, p99.9 and p99.99 get equal room) with one line per strategy,
then the throughput of every strategy on every loop as bars, each unit as a dot.
Given a baseline run, its spectra are drawn dashed and its throughputs as hollow
diamonds. Each series carries an SVG id, ``<row>:<kind>:<loop>:<strategy>``, so the
structure can be checked (and styled) without reading pixels.

A workload with rate cells (``--rate``) also gets its knee (:func:`knee_figure`):
latency from intended start against offered rate, both on log axes, a line of p99 per
strategy (and loop) with its p50–p99.9 band, ✕ where the rate was not sustained, the
SLO dotted and each capacity (``--rate auto``) a dotted vertical; ids
``knee:<strategy · loop>`` (``:band``, ``:missed``, ``:capacity``).

Figures are built with :class:`matplotlib.figure.Figure` directly, never pyplot: no
GUI backend, no global state. SVG output is deterministic (fixed hash salt, no date).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from offbench.errors import UsageError
from offbench.formatting import loop_label, strategy_label, workload_label
from offbench.judge.compare import key_of
from offbench.model import histogram
from offbench.model.params import Params
from offbench.model.results import CellResult, LoopLag, RunResult
from offbench.render import rates, texts
from offbench.render.chart import MIN_LAG_SHOWN_MS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, FigureBase
    from matplotlib.ticker import Formatter

NINES = 4
"""The spectrum's x axis runs from 0 to 99.99 % (four nines); later points sit at its right edge."""
ROW_HEIGHT_IN = 3.8
COLUMN_WIDTH_IN = 5.2
FORMATS = (".svg", ".png", ".pdf")
INSTALL_HINT = "pip install 'offbench[plot]'"
_STYLE: dict[Any, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "offbench",
    "font.size": 9.0,
    "axes.autolimit_mode": "round_numbers",
    "axes.titlesize": 10.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def require() -> None:
    """Raise ``UsageError`` with the install command if matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(f"charts need matplotlib, which is not installed: {INSTALL_HINT}") from None


@dataclass(frozen=True)
class Group:
    """One row of charts: a workload (with its parameters) at one concurrency."""

    workload: str
    params: Params
    concurrency: int
    index: int
    """Position in the run, which makes the row's SVG ids unique within a page."""

    @property
    def title(self) -> str:
        """Return ``sleep (duration_ms=10.0) · c=8``."""
        return f"{workload_label(self.workload, self.params)} · c={self.concurrency}"

    @property
    def row_id(self) -> str:
        """Return the prefix of this row's SVG ids."""
        return f"row{self.index}"

    def cells(self, run: RunResult) -> list[CellResult]:
        """Return the row's cells in the order of the workload's table (strategy, pool size, loop)."""
        rows = texts.workload_rows(run, self.workload, self.params)
        return [r for r in rows if r.concurrency == self.concurrency]


def groups(run: RunResult) -> list[Group]:
    """Return the rows of charts of a run: each workload in measured order, its concurrencies rising."""
    rows = [
        (workload, params, level)
        for workload, params in texts.workloads_of(run)
        for level in sorted({r.concurrency for r in texts.workload_rows(run, workload, params)})
    ]
    return [Group(w, p, c, i) for i, (w, p, c) in enumerate(rows)]


def loops_of(run: RunResult) -> list[str]:
    """Return the run's loops that have at least one cell, in the run's order.

    Under ``--python`` each loop and interpreter is one: ``asyncio · 3.13.0``.
    """
    present = list(dict.fromkeys(_where(r) for r in run.results))
    pythons = [p.label for p in run.settings.pythons] or [""]
    order = [loop_label(loop, python) for loop in run.settings.loops for python in pythons]
    # A cell whose loop the settings do not name (a file put together by hand) comes last.
    return [name for name in order if name in present] + [name for name in present if name not in order]


def _where(cell: CellResult) -> str:
    return loop_label(cell.loop, cell.python)


def spectrum_points(cell: CellResult) -> list[histogram.Point]:
    """Return the lag spectrum of a cell: from its histogram, else its stored percentiles."""
    if cell.lag_histogram is not None:
        return histogram.spectrum(cell.lag_histogram)
    lag = cell.loop_lag_ms
    return [] if lag is None else _from_percentiles(lag)


def _from_percentiles(lag: LoopLag) -> list[histogram.Point]:
    # Files of schema version 2 kept only these; the line is coarse but in the right place.
    pairs = ((50.0, lag.p50), (90.0, lag.p90), (99.0, lag.p99), (99.9, lag.p999), (100.0, lag.max))
    return [histogram.Point(p, v) for p, v in pairs]


def nines(percentile: float) -> float:
    """Return the x position of a percentile on the "nines" axis: 1/(1 − p), capped at 99.99 %."""
    return min(10.0**NINES, 1.0 / max(1.0 - percentile / 100.0, 10.0**-NINES))


def run_figure(run: RunResult, base: RunResult | None = None) -> Figure:
    """Return every row of charts of a run in one figure (for ``-o report.png``)."""
    from matplotlib.figure import Figure

    rows = groups(run)
    knees = [(w, p) for w, p in texts.workloads_of(run) if rates.knee(run, w, p)]
    columns = max(len(loops_of(run)) + 1, 2) if rows else 2
    with _style():
        figure = Figure(figsize=(COLUMN_WIDTH_IN * columns, ROW_HEIGHT_IN * (len(rows) + len(knees))),
                        layout="constrained")
        if rows or knees:
            subfigures = figure.subfigures(len(rows) + len(knees), 1, squeeze=False)[:, 0]
            for subfigure, group in zip(subfigures, rows, strict=False):
                draw_row(subfigure, run, group, base)
            for subfigure, (workload, params) in zip(subfigures[len(rows):], knees, strict=True):
                draw_knee(subfigure.subplots(), run, workload, params)
    return figure


def row_figure(run: RunResult, group: Group, base: RunResult | None = None) -> Figure:
    """Return one row of charts (for one section of the HTML report)."""
    from matplotlib.figure import Figure

    columns = len(loops_of(run)) + 1
    with _style():
        figure = Figure(figsize=(COLUMN_WIDTH_IN * columns, ROW_HEIGHT_IN), layout="constrained")
        draw_row(figure, run, group, base)
    return figure


def draw_row(figure: FigureBase, run: RunResult, group: Group, base: RunResult | None) -> None:
    """Draw one row into ``figure``: a spectrum per loop, then the throughput bars."""
    loops = loops_of(run)
    axes = figure.subplots(1, len(loops) + 1, squeeze=False)[0]
    figure.suptitle(group.title, fontweight="bold", x=0.01, ha="left")
    cells = group.cells(run)
    colours = palette(cells)
    base_cells = _index(base)
    for ax, loop in zip(axes[:-1], loops, strict=False):
        draw_spectrum(ax, group, [c for c in cells if _where(c) == loop], loop, colours, base_cells,
                      run.settings.lag_budget_ms)
    spectra = [a for a in axes[:-1] if a.has_data()]
    if len(spectra) > 1:
        low = min(a.get_ylim()[0] for a in spectra)
        high = max(a.get_ylim()[1] for a in spectra)
        for a in spectra:
            a.set_ylim(low, high)
    draw_throughput(axes[-1], group, cells, loops, colours, base_cells)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles and base is not None:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="0.3", linestyle="--"))
        labels.append("baseline")
    if handles:
        figure.legend(handles, labels, loc="outside upper right", ncols=len(handles), frameon=False,
                      fontsize=8)


def draw_spectrum(ax: Axes, group: Group, cells: Sequence[CellResult], loop: str,
                  colours: dict[str, str], base: dict[bytes, CellResult], budget_ms: float) -> None:
    """Draw one loop's lag spectrum: a line per strategy, the baseline's dashed, the budget dotted."""
    for cell in cells:
        label = strategy_label(cell.strategy, cell.max_workers)
        _spectrum_line(ax, cell, colours[label], f"{group.row_id}:spectrum:{loop}:{label}", label, "-")
        before = base.get(_key(cell))
        if before is not None:
            _spectrum_line(ax, before, colours[label], f"{group.row_id}:base-spectrum:{loop}:{label}",
                           None, "--", alpha=0.6)
    ax.axhline(budget_ms, color="0.35", linestyle=":", linewidth=1, gid=f"{group.row_id}:budget:{loop}")
    ax.annotate(f"lag budget {budget_ms:g} ms", (1.0, budget_ms), xycoords=("axes fraction", "data"),
                ha="right", va="bottom", fontsize=7, color="0.35")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1.0, 10.0**NINES)
    ax.set_xticks([10.0**k for k in range(NINES + 1)], [_nines_label(k) for k in range(NINES + 1)])
    ax.minorticks_off()
    ax.set_xlabel("percentile of probe ticks (%)")
    ax.set_ylabel("loop lag (ms)")
    ax.set_title(f"{loop}: loop lag spectrum", loc="left")
    ax.grid(True, which="major", color="0.9", linewidth=0.6)
    ax.yaxis.set_major_formatter(_ms_formatter())
    if ax.has_data():
        # Below 10 µs a lag is timer noise; the line is clipped at the bottom edge.
        ax.set_ylim(bottom=max(ax.get_ylim()[0], MIN_LAG_SHOWN_MS))


def _spectrum_line(ax: Axes, cell: CellResult, colour: str, gid: str, label: str | None, style: str,
                   alpha: float = 1.0) -> None:
    points = [p for p in spectrum_points(cell) if p.lag_ms > 0]
    if not cell.ok or not points:
        return
    xs = [nines(p.percentile) for p in points]
    ys = [p.lag_ms for p in points]
    ax.plot(xs, ys, color=colour, linestyle=style, linewidth=1.6, alpha=alpha, label=label,
            gid=gid)


def draw_throughput(ax: Axes, group: Group, cells: Sequence[CellResult], loops: Sequence[str],
                    colours: dict[str, str], base: dict[bytes, CellResult]) -> None:
    """Draw throughput bars per strategy and loop, each unit as a dot, the baseline as ◇."""
    labels = list(dict.fromkeys(strategy_label(c.strategy, c.max_workers) for c in cells))
    height = 0.8 / max(1, len(loops))
    for cell in cells:
        label = strategy_label(cell.strategy, cell.max_workers)
        y = labels.index(label) + (loops.index(_where(cell)) - (len(loops) - 1) / 2) * height
        gid = f"{group.row_id}:throughput:{_where(cell)}:{label}"
        if not cell.ok:
            ax.text(0, y, f" {cell.status}", va="center", fontsize=7, color="red", gid=gid)
            continue
        hatch = "////" if loops.index(_where(cell)) % 2 else None
        ax.barh(y, cell.throughput_ops_s, height=height * 0.9, color=colours[label], alpha=0.75,
                hatch=hatch, edgecolor="white", gid=gid)
        parts = [unit.throughput_ops_s for unit in cell.units]
        ax.plot(parts, [y] * len(parts), linestyle="none", marker="o", markersize=2.2, color="0.15",
                gid=f"{gid}:parts")
        before = base.get(_key(cell))
        if before is not None and before.ok:
            ax.plot([before.throughput_ops_s], [y], linestyle="none", marker="D", markersize=5,
                    markerfacecolor="none", markeredgecolor="black", gid=f"{gid}:base")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("throughput (ops/s)")
    ax.set_title(_throughput_title(loops, base), loc="left")
    ax.grid(True, axis="x", color="0.9", linewidth=0.6)


def _throughput_title(loops: Sequence[str], base: dict[bytes, CellResult]) -> str:
    shown = " · ".join(f"{loop}{' (hatched)' if i % 2 else ''}" for i, loop in enumerate(loops))
    return f"throughput: {shown}" + (" · ◇ baseline" if base else "")


def palette(cells: Sequence[CellResult]) -> dict[str, str]:
    """Return a colour per strategy label: the same strategy has the same colour in every row."""
    names = _strategy_order([c.strategy for c in cells])
    colours: dict[str, str] = {}
    for cell in cells:
        colours.setdefault(strategy_label(cell.strategy, cell.max_workers),
                           _colour(names, cell.strategy, cell.max_workers))
    return colours


def _strategy_order(found: Sequence[str]) -> list[str]:
    from offbench import strategies
    return list(dict.fromkeys([*strategies.names(), *found]))


def _colour(names: Sequence[str], strategy: str, max_workers: int | None) -> str:
    return f"C{(names.index(strategy) + 3 * (max_workers is not None)) % 10}"


def knee_figure(run: RunResult, workload: str, params: Params) -> Figure:
    """Return one workload's knee: latency from intended start against offered rate, a line per strategy."""
    from matplotlib.figure import Figure

    with _style():
        figure = Figure(figsize=(COLUMN_WIDTH_IN * 1.6, ROW_HEIGHT_IN), layout="constrained")
        draw_knee(figure.subplots(), run, workload, params)
    return figure


def draw_knee(ax: Axes, run: RunResult, workload: str, params: Params) -> None:
    """Draw one workload's knee into ``ax`` (:func:`knee_figure`)."""
    series = rates.knee(run, workload, params)
    names = _strategy_order([s.strategy for s in series])
    slo = run.settings.slo_ms
    for found in series:
        _knee_line(ax, found, _colour(names, found.strategy, found.max_workers))
    ax.axhline(slo, color="0.35", linestyle=":", linewidth=1, gid="knee:slo")
    ax.annotate(f"SLO {slo:g} ms", (1.0, slo), xycoords=("axes fraction", "data"), ha="right",
                va="bottom", fontsize=7, color="0.35")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered rate (calls/s)")
    ax.set_ylabel("latency from intended start (ms)")
    ax.set_title(f"{workload_label(workload, params)}: latency p99 (band p50–p99.9) against offered rate;"
                 " ✕ not sustained", loc="left")
    ax.grid(True, which="major", color="0.9", linewidth=0.6)
    ax.xaxis.set_major_formatter(_ms_formatter())
    ax.yaxis.set_major_formatter(_ms_formatter())
    if series:
        ax.legend(frameon=False, fontsize=8)


def _knee_line(ax: Axes, found: rates.KneeSeries, colour: str) -> None:
    """Draw one series of the knee: its p99 line, its p50–p99.9 band, ✕ where not sustained, its capacity."""
    gid = f"knee:{found.label}"
    ax.plot([p.rate for p in found.points], [p.p99 for p in found.points], color=colour, marker="o",
            markersize=3.5, linewidth=1.6, label=found.label, gid=gid)
    band = [(p.rate, p.p50, p.p999) for p in found.points if p.p50 is not None and p.p999 is not None]
    if band:
        xs, lows, highs = zip(*band, strict=True)
        ax.fill_between(xs, lows, highs, color=colour, alpha=0.12, linewidth=0, gid=f"{gid}:band")
    missed = [p for p in found.points if not p.sustained]
    if missed:
        ax.plot([p.rate for p in missed], [p.p99 for p in missed], linestyle="none", marker="x", markersize=7,
                color=colour, gid=f"{gid}:missed")
    if found.capacity is not None:
        ax.axvline(found.capacity, color=colour, linestyle=":", linewidth=1, gid=f"{gid}:capacity")


def svg(figure: Figure) -> str:
    """Return the figure as SVG text (text kept as text, ids stable, no date)."""
    out = io.StringIO()
    with _style():
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def save(figure: Figure, path: Path) -> bytes:
    """Return the figure's bytes in the format named by ``path``'s suffix (svg, png, pdf)."""
    out = io.BytesIO()
    suffix = path.suffix.lower()
    metadata = {"Date": None} if suffix == ".svg" else {"CreationDate": None} if suffix == ".pdf" else {}
    with _style():
        figure.savefig(out, format=suffix[1:], dpi=110, metadata=metadata)
    return out.getvalue()


def _index(run: RunResult | None) -> dict[bytes, CellResult]:
    return {} if run is None else {_key(r): r for r in run.results}


def _key(cell: CellResult) -> bytes:
    # A cell's name across runs; its params are a dict, so the key is its JSON.
    return msgspec.json.encode(key_of(cell))


def _nines_label(k: int) -> str:
    return "0" if k == 0 else f"{100 - 100 / 10.0**k:.{max(0, k - 2)}f}"


def _ms_formatter() -> Formatter:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _pos: f"{value:g}")


def _style() -> AbstractContextManager[None]:
    import matplotlib

    return matplotlib.rc_context(_STYLE)
