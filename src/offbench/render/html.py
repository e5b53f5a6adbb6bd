"""``offbench report``: one self-contained HTML page of a run (and its comparison with a baseline).

The page holds everything inline: the charts of :mod:`offbench.render.plots` as SVG, the
numbers of the terminal tables, the verdicts, the comparison and the machine. It loads
nothing from the network, so it can be attached to a CI run and opened years later.
The markup is a Jinja2 template (``templates/report.html.j2``) with autoescaping on:
every string from a results file is escaped, only the SVG made here is inserted raw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from offbench.errors import UsageError
from offbench.formatting import strategy_label, workload_label
from offbench.judge import compare
from offbench.model.params import Params
from offbench.model.results import Machine, RunResult
from offbench.render import plots
from offbench.render import terminal as report

if TYPE_CHECKING:
    import jinja2

TEMPLATE = "report.html.j2"


@dataclass(frozen=True)
class Table:
    """A table as plain strings: what the template lays out."""

    headers: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass(frozen=True)
class Chart:
    """One row of charts, as inline SVG, with the heading above it."""

    title: str
    svg: str


@dataclass(frozen=True)
class Section:
    """One workload (with its parameters): its charts and its table of numbers."""

    anchor: str
    title: str
    charts: list[Chart]
    table: Table
    details: list[tuple[str, Table]] = field(default_factory=list)
    """Titled tables below the numbers: where the offloaded calls' time went."""
    notes: list[str] = field(default_factory=list)
    """Lines below those: the stall evidence, the loop-utilisation cross-check."""


@dataclass(frozen=True)
class Comparison:
    """The comparison of the run with a baseline: a table per workload and the tally."""

    title: str
    tables: list[tuple[str, Table]]
    tally: list[str]


def render(run: RunResult, base: RunResult | None = None, *, run_label: str = "results",
           base_label: str = "base") -> str:
    """Return the HTML page of ``run``, compared with ``base`` when one is given."""
    require()
    environment = _environment()
    return environment.get_template(TEMPLATE).render(
        run=run,
        title=run_label,
        sections=sections(run, base),
        pool_costs=pool_costs(run),
        pool_costs_title=report.POOL_COST_TITLE,
        steady_state=report.steady_state_lines(run),
        comparison=comparison(run, base, run_label, base_label) if base is not None else None,
        base_label=base_label,
        settings=settings_rows(run),
        machine=machine_rows(run.machine),
        summary=report.summary(run).plain.splitlines(),
        workload_label=workload_label,
        strategy_label=strategy_label,
    )


def sections(run: RunResult, base: RunResult | None) -> list[Section]:
    """Return one section per workload, with a row of charts per concurrency."""
    found: list[Section] = []
    rows = plots.groups(run)
    for index, (workload, params) in enumerate(report.workloads_of(run)):
        cells = report.workload_rows(run, workload, params)
        best = report.best_cells(cells, run.settings.lag_budget_ms)
        charts = [
            Chart(group.title, inline_svg(plots.svg(plots.row_figure(run, group, base))))
            for group in rows if (group.workload, group.params) == (workload, params)
        ]
        table = Table(
            headers=[header for header, _ in report.COLUMNS],
            rows=[report.row_cells(c, report.baseline(cells, c), c in best) for c in cells],
            caption=report.table_caption(run),
        )
        found.append(Section(f"w{index}", workload_label(workload, params), charts, table,
                             details(run, workload, params), report.workload_notes(run, workload, params)))
    return found


def details(run: RunResult, workload: str, params: Params) -> list[tuple[str, Table]]:
    """Return the titled tables under a workload's numbers: where the offloaded calls' time went."""
    rows = report.breakdown_rows(run, workload, params)
    if not rows:
        return []
    table = Table(list(report.BREAKDOWN_HEADERS), rows, report.BREAKDOWN_CAPTION)
    return [(report.BREAKDOWN_TITLE, table)]


def pool_costs(run: RunResult) -> Table | None:
    """Return the pool-cost table, as the terminal shows it; ``None`` when nothing was costed."""
    rows = report.pool_cost_rows(run)
    if not rows:
        return None
    return Table(report.pool_cost_headers(run), rows, report.pool_cost_caption(run))


def comparison(run: RunResult, base: RunResult, run_label: str, base_label: str) -> Comparison:
    """Return the comparison of ``run`` with ``base``, as ``offbench compare`` shows it."""
    found = compare.compare(base, run, base_label=base_label, new_label=run_label)
    tables = [
        (label, Table(list(report.COMPARISON_HEADERS), [report.comparison_row(found, p) for p in pairs]))
        for label, pairs in report.comparison_groups(found)
    ]
    return Comparison(report.comparison_title(found), tables, report.comparison_tally(found, None))


def settings_rows(run: RunResult) -> list[tuple[str, str]]:
    """Return what was measured and how, one ``(name, value)`` per line."""
    s = run.settings
    return [
        ("strategies", ", ".join(s.strategies)),
        ("loops", ", ".join(s.loops)),
        *([("pythons", report.pythons_line(run).removeprefix("Pythons: "))] if s.pythons else []),
        ("concurrency", ", ".join(map(str, s.concurrency))),
        ("window", f"{s.duration_s:g} s after {s.warmup_s:g} s warm-up, {s.samples} parts, "
                   f"{s.processes} worker process(es) per cell"),
        ("probe", f"every {s.probe_interval_ms:g} ms; lag budget {s.lag_budget_ms:g} ms"),
        ("scenario", s.scenario or "command line"),
    ]


def machine_rows(machine: Machine) -> list[tuple[str, str]]:
    """Return the machine's fields as ``(name, value)`` text, for the page's last table."""
    fields = msgspec.structs.asdict(machine)
    return [(name.replace("_", " "), _text(value)) for name, value in fields.items()]


def _text(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, list | dict):
        return msgspec.json.encode(value).decode()
    return str(value)


def inline_svg(document: str) -> str:
    """Return an SVG document without its XML prolog, fit to sit inside HTML."""
    start = document.find("<svg")
    if start < 0:
        raise ValueError("not an SVG document")
    return document[start:]


def check_target(path: Path) -> str:
    """Return the format ``path`` names (``.html``, ``.svg``, …); ``UsageError`` for any other."""
    suffix = path.suffix.lower()
    if suffix not in (".html", *plots.FORMATS):
        formats = ", ".join((".html", *plots.FORMATS))
        raise UsageError(f"{path}: the report's name must end in {formats}")
    return suffix


def require() -> None:
    """Raise ``UsageError`` with the install command if matplotlib or Jinja2 is missing."""
    try:
        import jinja2  # noqa: F401
    except ImportError:
        raise UsageError(f"the HTML report needs Jinja2, which is not installed: {plots.INSTALL_HINT}"
                         ) from None
    plots.require()


def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("offbench.render", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
