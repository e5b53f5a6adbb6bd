"""``offbench report``: one self-contained HTML page of a run (and its comparison with a baseline).

The page is the HTML frame of :mod:`offbench.render.view`: the run's view (its verdicts
first, where a reader of a report looks), the charts of :mod:`offbench.render.plots` as
inline SVG beside each workload's tables, the comparison's view, and the machine. It
loads nothing from the network, so it can be attached to a CI run and opened years later.
The markup is a Jinja2 template (``templates/report.html.j2``, one macro for every
table) with autoescaping on: every string from a results file is escaped, only the SVG
made here is inserted raw. A cell's tone is its CSS class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from offbench.errors import UsageError
from offbench.judge import compare
from offbench.model.results import RunResult
from offbench.render import changes, plots, rates, view

if TYPE_CHECKING:
    import jinja2

TEMPLATE = "report.html.j2"


@dataclass(frozen=True)
class Chart:
    """One row of charts, as inline SVG, with the heading above it."""

    title: str
    svg: str


def render(run: RunResult, base: RunResult | None = None, *, run_label: str = "results",
           base_label: str = "base") -> str:
    """Return the HTML page of ``run``, compared with ``base`` when one is given."""
    require()
    shown = view.of_run(run)
    compared, compared_title = None, ""
    if base is not None:
        found = compare.compare(base, run, base_label=base_label, new_label=run_label)
        compared, compared_title = view.of_comparison(found), changes.title(found)
    return _environment().get_template(TEMPLATE).render(
        run=run,
        title=run_label,
        verdict=shown.section("verdict"),
        summary=_lines(shown.closing),
        sections=[s for s in shown.sections if s.kind != "verdict"],
        charts=charts(run, shown.sections, base),
        comparison=compared,
        comparison_title=compared_title,
        tally=_lines(compared.closing) if compared is not None else [],
        base_label=base_label,
        machine=view.machine(run),
    )


def charts(run: RunResult, sections: Sequence[view.Section],
           base: RunResult | None) -> dict[str, list[Chart]]:
    """Return each workload section's rows of charts (one per concurrency), by the section's key."""
    found: dict[str, list[Chart]] = {}
    for section in sections:
        if section.workload is None:
            continue
        where = (section.workload.name, section.workload.params)
        if section.kind == "rates":
            knee = rates.knee(run, *where)
            found[section.key] = [Chart(f"{section.heading}: the knee", inline_svg(plots.svg(
                plots.knee_figure(run, *where))))] if knee else []
            continue
        found[section.key] = [
            Chart(group.title, inline_svg(plots.svg(plots.row_figure(run, group, base))))
            for group in plots.groups(run) if (group.workload, group.params) == where
        ]
    return found


def _lines(lines: tuple[view.Line, ...]) -> list[str]:
    """Return closing lines as plain text: the page sets them as a block."""
    return "\n".join("".join(cell.text for cell in line) for line in lines).splitlines()


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
