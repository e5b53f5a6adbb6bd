"""The terminal frame: a :class:`~offbench.render.view.View` drawn with rich tables and styled text.

What is shown, and in which words, is :mod:`offbench.render.view`'s; this module only
says how a table, a note, the verdict block and the closing lines look in a terminal,
and puts each workload's chart (:mod:`offbench.render.chart`) under its table. A saved
run renders exactly as it did live, since both are drawn from the results alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table as RichTable
from rich.text import Text

from offbench.judge.compare import Comparison
from offbench.model.catalog import Catalog
from offbench.model.params import Params
from offbench.model.results import RunResult
from offbench.render import rates, texts, view
from offbench.render.chart import KneeChart, LagScale, WorkloadChart
from offbench.render.notes import breakdown_rows, stall_line, steady_state_lines, utilisation_lines
from offbench.render.view import Line, Notes, Section, Table, Tone, Verdicts, View

__all__ = [
    "STYLES", "breakdown_rows", "breakdown_table", "closing", "plan", "pool_cost_table", "print_catalog",
    "print_comparison", "print_run", "print_view", "stall_line", "steady_state_lines", "table",
    "utilisation_lines", "verdicts",
]
# breakdown_rows, stall_line, steady_state_lines and utilisation_lines live in texts; tests of
# other modules still reach them here.

STYLES: dict[Tone, str] = {
    "": "", "good": "green", "warn": "yellow", "bad": "red", "worse": "red", "dim": "dim",
    "strong": "bold", "alarm": "bold red", "accent": "cyan",
}
"""The rich style of each tone."""

Charts = Callable[[Section], RenderableType | None]


def print_run(run: RunResult, console: Console, charts: bool = True) -> None:
    """Print one table (and chart) per workload and parameter set, the verdicts, then the summary."""
    scale = LagScale.spanning(r.loop_lag_ms for r in run.results if r.loop_lag_ms is not None)

    def chart(section: Section) -> RenderableType | None:
        if not charts or section.workload is None:
            return None
        name, params = section.workload.name, section.workload.params
        if section.kind == "rates":
            return KneeChart(rates.knee(run, name, params), run.settings.slo_ms)
        return WorkloadChart(texts.workload_rows(run, name, params), run.settings.lag_budget_ms, scale)

    print_view(view.of_run(run), console, chart)


def print_comparison(
    comparison: Comparison, console: Console, fail_on_regression: float | None = None
) -> None:
    """Print one table per workload of what changed, what is only on one side, and the tally."""
    print_view(view.of_comparison(comparison, fail_on_regression), console)


def print_catalog(found: Catalog, console: Console) -> None:
    """Print the workloads, strategies, loops and shipped scenarios, one line each."""
    print_view(view.of_catalog(found), console)


def print_view(shown: View, console: Console, chart: Charts = lambda section: None) -> None:
    """Print each section's blocks (its chart after the first) and a blank line, then the closing lines.

    The terminal has no headings of its own: a table carries its title, and the verdict
    block its section's heading. A section with nothing in it is left out.
    """
    for section in shown.sections:
        if not section.blocks:
            continue
        for index, block in enumerate(section.blocks):
            if isinstance(block, Table):
                console.print(table(block))
            elif isinstance(block, Notes):
                _print_notes(block, console)
            else:
                console.print(verdicts(section.heading, block))
            drawn = chart(section) if index == 0 else None
            if drawn is not None:
                console.print(drawn)
        console.print()
    if shown.closing:
        console.print(closing(shown.closing), soft_wrap=True)


def table(found: Table) -> RichTable:
    """Return a table as rich draws it; one without a header row is a bare listing."""
    header = found.has_header
    drawn = RichTable(
        title=_line(found.title, "table.title") if found.title else None,
        title_justify="left",
        caption=Text(found.caption, style="table.caption") if found.caption else None,
        caption_justify="left",
        box=box.SIMPLE_HEAD if header else None,
        show_header=header,
        pad_edge=False,
    )
    for column in found.columns:
        drawn.add_column(Text(column.header), justify=column.justify, no_wrap=not column.wrap,
                         min_width=column.min_width, style=STYLES[column.tone])
    for index, group in enumerate(found.groups):
        if index:
            drawn.add_section()
        for row in group:
            drawn.add_row(*(Text(cell.text, style=STYLES[cell.tone]) for cell in row))
    return drawn


def _print_notes(notes: Notes, console: Console) -> None:
    # Notes may be long (stall evidence names source lines): the terminal wraps them, not rich.
    if notes.heading:
        console.print(Text(notes.heading, style="bold"))
    indent = "  " if notes.heading else ""
    for line in notes.lines:
        console.print(Text(f"{indent}{line}"), soft_wrap=True)


def verdicts(heading: str, found: Verdicts) -> Text:
    """Return the verdict block: its heading, then per verdict its headline and a line per remark."""
    text = Text()
    text.append(f"{heading}\n", style="bold")
    for verdict in found.verdicts:
        text.append(f"  {verdict.label}: ", style="bold")
        text.append(f"{verdict.headline.text}\n", style=STYLES[verdict.headline.tone])
        for line in verdict.lines:
            text.append(f"    {line.text}\n", style=STYLES[line.tone])
    text.rstrip()
    return text


def closing(lines: Sequence[Line]) -> Text:
    """Return the closing lines (summary, tally) as one styled text."""
    text = Text()
    for index, line in enumerate(lines):
        for position, cell in enumerate(line):
            end = "\n" if position == len(line) - 1 and index < len(lines) - 1 else ""
            text.append(cell.text + end, style=STYLES[cell.tone])
    text.rstrip()
    return text


def _line(line: Line, style: str) -> Text:
    text = Text(style=style)
    for cell in line:
        text.append(cell.text, style=STYLES[cell.tone])
    return text


def breakdown_table(run: RunResult, workload: str, params: Params | None = None) -> RichTable | None:
    """Return the terminal table of where the offloaded calls' time went; ``None`` if there is none."""
    found = view.breakdown_table(run, workload, params)
    return None if found is None else table(found)


def pool_cost_table(run: RunResult) -> RichTable | None:
    """Return the terminal table of the run's process-pool costs; ``None`` if none was measured."""
    found = view.pool_cost_table(run)
    return None if found is None else table(found)


def plan(headline: str, lines: Sequence[tuple[str, str]]) -> Text:
    """Return what a run would measure (:func:`offbench.plan.matrix.outline`) as the terminal shows it."""
    text = Text()
    text.append(f"{headline}\n", style="bold")
    for name, value in lines:
        text.append(f"  {name:<12}", style="dim")
        text.append(f"{value}\n")
    text.rstrip()
    return text
