"""The presentation model: what a run, a comparison or the catalog shows, built once for every frame.

A :class:`View` is sections of tables of toned cells (:class:`Cell`), notes and the verdict
block, then closing lines. The builders here (:func:`of_run`, :func:`of_comparison`,
:func:`of_catalog`, :func:`machine`) decide what is shown and in which words; the frames
(:mod:`~offbench.render.terminal`, :mod:`~offbench.render.markdown`,
:mod:`~offbench.render.html`) only lay it out, as hyperfine's ``export/markup.rs`` builds
its table once and leaves a format to say how a header, a row and a divider look. So a
new measurement is one builder here, and every format shows it with the same words and
emphasis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import msgspec

from offbench.formatting import format_ms, load_label, loop_label, strategy_label, workload_label
from offbench.judge.compare import Comparison
from offbench.model.catalog import Catalog, Entry
from offbench.model.params import Params
from offbench.model.results import GateResult, Machine, RunResult
from offbench.render import changes, notes, rates, texts
from offbench.render.texts import BEST_MARK, Cell, Line, Tone

__all__ = ["Block", "Cell", "Column", "Line", "Notes", "Section", "Table", "Tone", "VerdictItem", "Verdicts",
           "View", "Workload", "machine", "of_catalog", "of_comparison", "of_run"]


@dataclass(frozen=True)
class Column:
    """One column of a table: its header and how its cells are laid out."""

    header: str = ""
    justify: Literal["left", "right"] = "right"
    wrap: bool = True
    """False for names: a name never breaks; in a narrow terminal the number headers wrap instead."""
    min_width: int | None = None
    tone: Tone = ""
    """A tone for the whole column (the catalog's names), on top of each cell's own."""


@dataclass(frozen=True)
class Table:
    """A table: rows of cells grouped (by concurrency), a divider between the groups."""

    kind: ClassVar[str] = "table"
    """What the HTML template tells blocks apart by (Jinja has no ``isinstance``)."""
    title: Line
    """Shown above the table where it stands alone (the terminal); in a document, the first
    table of a section is named by the section's heading instead."""
    columns: tuple[Column, ...]
    groups: tuple[tuple[tuple[Cell, ...], ...], ...]
    caption: str = ""
    caption_in_documents: bool = True
    """False for the comparison's legend, which only the terminal has repeated under each table."""

    @property
    def rows(self) -> list[tuple[Cell, ...]]:
        """Return every row, group after group."""
        return [row for group in self.groups for row in group]

    @property
    def has_header(self) -> bool:
        """Return whether the table has a header row; without one it is a listing of names."""
        return any(column.header for column in self.columns)


@dataclass(frozen=True)
class Notes:
    """Plain lines under a section's tables (the utilisation check, stall evidence, steady state)."""

    kind: ClassVar[str] = "notes"
    lines: tuple[str, ...]
    heading: str = ""


@dataclass(frozen=True)
class VerdictItem:
    """One verdict: what it is about, its headline, then a line per warning and per losing candidate."""

    label: str
    headline: Cell
    lines: tuple[Cell, ...]


@dataclass(frozen=True)
class Verdicts:
    """The verdict block: one verdict per workload (and interpreter)."""

    kind: ClassVar[str] = "verdicts"
    verdicts: tuple[VerdictItem, ...]


Block = Table | Notes | Verdicts


@dataclass(frozen=True)
class Workload:
    """The workload (and parameter set) a section is about: where its charts belong."""

    name: str
    params: Params


@dataclass(frozen=True)
class Section:
    """A heading and what stands under it: one workload, the pool costs, the verdicts, a comparison."""

    kind: Literal["workload", "rates", "pool-costs", "verdict", "rate-verdict", "comparison", "listing"]
    heading: str
    blocks: tuple[Block, ...]
    key: str = ""
    """A name unique in the view: the HTML anchor."""
    workload: Workload | None = None


@dataclass(frozen=True)
class View:
    """Everything one command shows: a title, its sections, then closing lines (summary, tally)."""

    title: str
    sections: tuple[Section, ...]
    closing: tuple[Line, ...] = ()

    def section(self, kind: str) -> Section | None:
        """Return the first section of ``kind``; ``None`` if there is none."""
        return next((s for s in self.sections if s.kind == kind), None)


def of_run(run: RunResult) -> View:
    """Return what a run shows: per workload its tables and notes, pool costs, verdicts, the summary.

    A workload's concurrency cells come first, then its rate cells and capacities; the rate
    verdict after the usual one.
    """
    sections = [
        section
        for index, (workload, params) in enumerate(texts.workloads_of(run))
        for section in (
            *([workload_section(run, workload, params, f"w{index}")]
              if texts.workload_rows(run, workload, params) else []),
            *([rates_section(run, workload, params, f"r{index}")]
              if rates.has_rates(run, workload, params) else []),
        )
    ]
    costs = pool_cost_table(run)
    if costs is not None:
        # The steady-state notes stay even when empty: markdown has always kept their (blank) place.
        steady = Notes(tuple(notes.steady_state_lines(run)))
        heading = notes.POOL_COST_TITLE.capitalize()
        sections.append(Section("pool-costs", heading, (costs, steady), "pool-costs"))
    sections.append(verdict_section(run))
    if run.rate_verdicts:
        sections.append(rate_verdict_section(run))
    scenario = f" ({run.settings.scenario})" if run.settings.scenario else ""
    return View(f"offbench run{scenario}", tuple(sections), tuple(summary(run)))


def workload_section(run: RunResult, workload: str, params: Params, key: str = "") -> Section:
    """Return one workload's section: its table, where the time went, utilisation check, stall evidence."""
    blocks: list[Block] = [workload_table(run, workload, params)]
    split = breakdown_table(run, workload, params)
    if split is not None:
        blocks.append(split)
    checked = notes.utilisation_lines(run, workload, params)
    if checked:
        blocks.append(Notes(tuple(checked)))
    evidence = notes.stall_lines(run, workload, params)
    if evidence:
        blocks.append(Notes(tuple(evidence), notes.stall_heading(run)))
    label = workload_label(workload, params)
    return Section("workload", label, tuple(blocks), key, Workload(workload, params))


def workload_table(run: RunResult, workload: str, params: Params) -> Table:
    """Return the table of one workload: one row per strategy × loop, a group per concurrency."""
    rows = texts.workload_rows(run, workload, params)
    budget = run.settings.lag_budget_ms
    best = texts.best_cells(rows, budget)
    # Room for the best mark on every name, so the table's width does not depend on who won.
    name_width = max((len(f"{strategy_label(r.strategy, r.max_workers)} {BEST_MARK}") for r in rows),
                     default=0)
    columns = tuple(Column(header, justify, wrap=index >= 2, min_width=name_width if index == 0 else None)
                    for index, (header, justify) in enumerate(texts.COLUMNS))
    cells = [tuple(texts.row_cells(r, texts.baseline(rows, r), r in best, budget)) for r in rows]
    return Table(_named(workload_label(workload, params)), columns,
                 _grouped(cells, [r.concurrency for r in rows]), texts.table_caption(run))


def rates_section(run: RunResult, workload: str, params: Params, key: str = "") -> Section:
    """Return one workload's open-loop section: its rate table, its capacity table, stall evidence."""
    label = workload_label(workload, params)
    blocks: list[Block] = []
    table = rate_table(run, workload, params)
    if table is not None:
        blocks.append(table)
    found = capacity_table(run, workload, params)
    if found is not None:
        blocks.append(found)
    evidence = [notes.stall_line(r) for r in rates.rate_rows(run, workload, params)
                if r.ok and r.stall_evidence]
    if evidence:
        blocks.append(Notes(tuple(evidence), notes.stall_heading(run)))
    return Section("rates", rates.rate_title(label), tuple(blocks), key, Workload(workload, params))


def rate_table(run: RunResult, workload: str, params: Params) -> Table | None:
    """Return one workload's rate table: a row per strategy × loop, a group per offered rate."""
    rows = rates.rate_rows(run, workload, params)
    if not rows:
        return None
    s = run.settings
    name_width = max(len(f"{strategy_label(r.strategy, r.max_workers)} {BEST_MARK}") for r in rows)
    columns = tuple(Column(header, justify, wrap=index >= 2, min_width=name_width if index == 0 else None)
                    for index, (header, justify) in enumerate(rates.RATE_COLUMNS))
    cells = [tuple(rates.rate_cells(r, rates.best_of(run, r), s.slo_ms, s.lag_budget_ms)) for r in rows]
    return Table(_named(rates.rate_title(workload_label(workload, params))), columns,
                 _grouped(cells, [r.rate for r in rows]), rates.rate_caption(run))


def capacity_table(run: RunResult, workload: str, params: Params) -> Table | None:
    """Return one workload's capacity table (``--rate auto``); ``None`` if the run searched none."""
    rows = rates.capacity_rows(run, workload, params)
    if not rows:
        return None
    return Table((Cell(rates.capacity_title(run)),), _columns(rates.CAPACITY_HEADERS),
                 (tuple(tuple(row) for row in rows),), rates.CAPACITY_CAPTION)


def rate_verdict_section(run: RunResult) -> Section:
    """Return the rate verdicts: per workload and offered rate, the strategy to use and why others fail."""
    found = tuple(
        VerdictItem(rates.verdict_label(v), Cell(ruling.text, "good" if ruling.best else "bad"),
                    tuple(rates.verdict_lines(ruling)))
        for v in run.rate_verdicts for ruling in v.rulings
    )
    return Section("rate-verdict", rates.verdict_heading(run), (Verdicts(found),) if found else (),
                   "rate-verdict")


def breakdown_table(run: RunResult, workload: str, params: Params | None = None) -> Table | None:
    """Return where the offloaded calls' time went; ``None`` if no cell has a breakdown or utilisation."""
    rows = notes.breakdown_rows(run, workload, params)
    if not rows:
        return None
    cells = [tuple(Cell(text) for text in row) for row in rows]
    return Table((Cell(notes.BREAKDOWN_TITLE),), _columns(notes.BREAKDOWN_HEADERS),
                 _grouped(cells, [row[2] for row in rows]), notes.BREAKDOWN_CAPTION)


def pool_cost_table(run: RunResult) -> Table | None:
    """Return the run's process-pool costs by start method; ``None`` if none was measured."""
    rows = notes.pool_cost_rows(run)
    if not rows:
        return None
    return Table((Cell(notes.POOL_COST_TITLE),), _columns(notes.pool_cost_headers(run)),
                 (tuple(tuple(Cell(text) for text in row) for row in rows),), notes.POOL_COST_CAPTION)


def verdict_section(run: RunResult) -> Section:
    """Return the verdicts: per workload, the strategy to use and why each other lost (no block if none)."""
    found = tuple(
        VerdictItem(
            texts.verdict_label(v),
            Cell(v.text, "good" if v.winner else "bad"),
            (*(Cell(line) for line in texts.verdict_details(v)),
             *(Cell(f"⚠ {warning}", "warn") for warning in v.warnings),
             *(Cell(f"{strategy_label(c.strategy, c.max_workers)}: {c.reason}", "dim")
               for c in v.candidates if c != v.winner)),
        )
        for v in run.verdicts
    )
    heading = f"Verdict (best throughput with loop lag p99 ≤ {run.settings.lag_budget_ms:g} ms)"
    return Section("verdict", heading, (Verdicts(found),) if found else (), "verdict")


def summary(run: RunResult) -> list[Line]:
    """Return the closing lines: cell counts, failures with their reasons, the gates, the machine."""
    failed = [r for r in run.results if not r.ok]
    state = "" if run.complete else " (interrupted: partial results)"
    lines: list[Line] = [(Cell(
        f"{len(run.results)} cells, {len(run.results) - len(failed)} ok, "
        f"{len(failed)} failed in {run.wall_s:.1f} s{state}",
        "strong" if not failed and run.complete else "alarm"),)]
    for r in failed:
        where = (f"{r.workload} / {strategy_label(r.strategy, r.max_workers)} / "
                 f"{loop_label(r.loop, r.python)} / {load_label(r.concurrency, r.rate)}")
        lines.append((Cell(f"  {where}: ", "bad"), Cell(f"{r.status}: {r.error}")))
    lines.extend(gate_lines(run.gates))
    m = run.machine
    lines.append((Cell(
        f"Python {m.python_version} on {m.cpu_model} ({m.cpu_count} CPUs); "
        f"default executor {m.default_executor_workers} threads; "
        f"GIL switch interval {m.gil_switch_interval_s * 1000:g} ms"
        + (f"; probe ticks on {m.probe_ticks}" if m.probe_ticks else ""), "dim"),))
    if run.settings.pythons:
        lines.append((Cell(texts.pythons_line(run), "dim"),))
    lines.extend((Cell(text, tone),) for text, tone in texts.host_lines(run))
    return lines


def gate_lines(found: Sequence[GateResult]) -> list[Line]:
    """Return one line per gate that held, per cell that broke one, per gate that chose no cell."""
    lines: list[Line] = []
    for result in found:
        for b in result.broken_by:
            where = (f"{workload_label(b.workload, b.params)} / {strategy_label(b.strategy, b.max_workers)}"
                     f" / {loop_label(b.loop, b.python)} / {load_label(b.concurrency, b.rate)}")
            lines.append((Cell(f'gate "{result.gate}" broken by {where}: ', "bad"),
                          Cell(format_ms(b.value) if b.value is not None else b.reason)))
        if not result.cells:
            lines.append((Cell(f'gate "{result.gate}": no cell measured to judge it on', "warn"),))
        elif not result.broken_by:
            cells = f"{result.cells} cell{'s' * (result.cells != 1)}"
            lines.append((Cell(f'gate "{result.gate}" held in {cells}'),))
    return lines


def of_comparison(comparison: Comparison, fail_on_regression: float | None = None) -> View:
    """Return what a comparison shows: a table per workload of what changed, then the tally."""
    title = changes.title(comparison)
    sections = tuple(
        Section("comparison", label, (Table(
            _named(label, f": {title}"), _columns(changes.HEADERS),
            _grouped([tuple(changes.row(comparison, p)) for p in pairs], [p.key.concurrency for p in pairs]),
            changes.caption(comparison), caption_in_documents=False,
        ),))
        for label, pairs in changes.groups(comparison)
    )
    return View(f"offbench compare: {title}", sections, tuple(changes.tally(comparison, fail_on_regression)))


CATALOG_SHELVES: tuple[tuple[str, Callable[[Catalog], list[Entry]]], ...] = (
    ("Workloads", lambda found: found.workloads),
    ("Strategies", lambda found: found.strategies),
    ("Loops", lambda found: found.loops),
    ("Scenarios (offbench run NAME)", lambda found: found.scenarios),
)


def of_catalog(found: Catalog) -> View:
    """Return the workloads, strategies, loops and shipped scenarios: a listing each, an entry a line."""
    columns = (Column(justify="left", wrap=False, tone="accent"), Column(justify="left"))
    sections = tuple(
        Section("listing", title, (Table((Cell(title, "strong"),), columns,
                                         (tuple((Cell(e.name), _entry(e)) for e in shelf(found)),)),))
        for title, shelf in CATALOG_SHELVES
    )
    return View("offbench list", sections)


def _entry(entry: Entry) -> Cell:
    detail = entry.summary
    if entry.params:
        detail += " [" + ", ".join(f"{k}={v!r}" for k, v in entry.params.items()) + "]"
    if entry.runs_on:
        detail += (f" (runs on the {entry.runs_on})" if entry.runs_on == "loop"
                   else f" (runs in a {entry.runs_on})")
    if entry.available and not entry.default:
        detail += " [only when named]"
    return Cell(detail, "" if entry.available else "dim")


def machine(run: RunResult) -> Section:
    """Return the machine's fields and the run's settings, as listings of name and value."""
    s = run.settings
    settings = [
        ("strategies", ", ".join(s.strategies)),
        ("loops", ", ".join(s.loops)),
        *([("pythons", texts.pythons_line(run).removeprefix("Pythons: "))] if s.pythons else []),
        ("concurrency", ", ".join(map(str, s.concurrency))),
        *texts.measuring_lines(s),
        ("probe", f"every {s.probe_interval_ms:g} ms; lag budget {s.lag_budget_ms:g} ms"),
        ("scenario", s.scenario or "command line"),
    ]
    return Section("listing", "Machine", (_listing((), machine_rows(run.machine)),
                                          _listing((Cell("Settings"),), settings)), "machine")


def machine_rows(found: Machine) -> list[tuple[str, str]]:
    """Return the machine's fields as ``(name, value)`` text."""
    fields = msgspec.structs.asdict(found)
    return [(name.replace("_", " "), _text(value)) for name, value in fields.items()]


def _text(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, list | dict):
        return msgspec.json.encode(value).decode()
    return str(value)


def _listing(title: Line, pairs: Sequence[tuple[str, str]]) -> Table:
    columns = (Column(justify="left", wrap=False), Column(justify="left"))
    return Table(title, columns, (tuple((Cell(name), Cell(value)) for name, value in pairs),))


def _named(label: str, context: str = "") -> Line:
    """Return a title whose first word (the workload's name) stands out: ``**sleep** (duration_ms=10.0)``."""
    name, _, rest = label.partition(" ")
    tail = (f" {rest}" if rest else "") + context
    return (Cell(name, "strong"), Cell(tail)) if tail else (Cell(name, "strong"),)


def _columns(headers: Sequence[str]) -> tuple[Column, ...]:
    """Return the columns of a table whose first two name the cell (strategy, loop), the rest figures."""
    return tuple(Column(header, "left" if index < 2 else "right", wrap=index >= 2)
                 for index, header in enumerate(headers))


Rows = tuple[tuple[Cell, ...], ...]


def _grouped(rows: Sequence[tuple[Cell, ...]], keys: Sequence[object]) -> tuple[Rows, ...]:
    """Return the rows in groups of equal consecutive keys (a concurrency level each)."""
    groups: list[list[tuple[Cell, ...]]] = []
    previous: object = object()
    for row, key in zip(rows, keys, strict=True):
        if not groups or key != previous:
            groups.append([])
        groups[-1].append(row)
        previous = key
    return tuple(tuple(group) for group in groups)
