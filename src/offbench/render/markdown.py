"""GitHub-flavoured markdown of a run or a comparison, fit for ``$GITHUB_STEP_SUMMARY``.

The cells are the very strings the terminal tables show (:mod:`offbench.render.terminal`
makes them); only the frame differs, so a CI summary reads like the terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from offbench import formatting
from offbench.judge.compare import Comparison, Pair
from offbench.model.results import RunResult
from offbench.render import terminal as report


def run(result: RunResult) -> str:
    """Return a run as markdown: a table per workload, the verdicts, and the summary."""
    parts = [f"## offbench run{_scenario(result)}\n"]
    for workload, params in report.workloads_of(result):
        rows = report.workload_rows(result, workload, params)
        best = report.best_cells(rows, result.settings.lag_budget_ms)
        parts.append(f"### {_escape(formatting.workload_label(workload, params))}\n")
        parts.append(
            table(
                [header for header, _ in report.COLUMNS],
                [_escaped(report.row_cells(r, report.baseline(rows, r), r in best)) for r in rows],
                right_from=2,
            )
        )
        parts.append(f"<sub>{_escape(report.table_caption(result))}</sub>\n")
        split = report.breakdown_rows(result, workload, params)
        if split:
            parts.append(f"**{_escape(report.BREAKDOWN_TITLE.capitalize())}**\n")
            parts.append(table(list(report.BREAKDOWN_HEADERS), [_escaped(r) for r in split], right_from=2))
            parts.append(f"<sub>{_escape(report.BREAKDOWN_CAPTION)}</sub>\n")
        checked = report.utilisation_lines(result, workload, params)
        if checked:
            parts.append("".join(f"- {_escape(line)}\n" for line in checked))
        evidence = report.stall_lines(result, workload, params)
        if evidence:
            bullets = "".join(f"- {_escape(line)}\n" for line in evidence[1:])
            parts.append(f"**{_escape(evidence[0])}**\n\n{bullets}")
    costs = report.pool_cost_rows(result)
    if costs:
        parts.append(f"### {_escape(report.POOL_COST_TITLE.capitalize())}\n")
        parts.append(table(report.pool_cost_headers(result), [_escaped(r) for r in costs], right_from=2))
        parts.append(f"<sub>{_escape(report.pool_cost_caption(result))}</sub>\n")
        parts.append("".join(f"- {_escape(line)}\n" for line in report.steady_state_lines(result)))
    if result.verdicts:
        parts.append(_verdicts(result))
    parts.append(_lines(report.summary(result).plain.splitlines()))
    return "\n".join(parts)


def comparison(found: Comparison, fail_on_regression: float | None = None) -> str:
    """Return a comparison as markdown: a table per workload, then the tally."""
    parts = [f"## offbench compare: {_escape(report.comparison_title(found))}\n"]
    for label, pairs in report.comparison_groups(found):
        parts.append(f"### {_escape(label)}\n")
        parts.append(
            table(
                list(report.COMPARISON_HEADERS),
                [_bold_if_slower(report.comparison_row(found, p), p) for p in pairs],
                right_from=2,
            )
        )
    parts.append(_lines(report.comparison_tally(found, fail_on_regression)))
    return "\n".join(parts)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], right_from: int | None = None) -> str:
    """Return a GFM table of already escaped cells; columns from ``right_from`` on align right."""
    align = [
        "---:" if right_from is not None and i >= right_from else ":---" for i in range(len(headers))
    ]
    lines = [_row(_escaped(headers)), _row(align), *(_row(r) for r in rows)]
    return "\n".join(lines) + "\n"


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _escaped(cells: Iterable[str]) -> list[str]:
    return [_escape(c) for c in cells]


def _escape(text: str) -> str:
    """Escape what markdown would read as table syntax or emphasis."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def _bold_if_slower(cells: list[str], pair: Pair) -> list[str]:
    """Escape a comparison row and embolden what got worse."""
    marked = _escaped(cells)
    for index, change in ((4, pair.throughput), (6, pair.lag_p99)):
        if change is not None and change.direction == "slower":
            marked[index] = f"**{marked[index]}**"
    if pair.status in ("now failing", "both failing"):
        marked[3] = f"**{marked[3]}**"
    return marked


def _verdicts(result: RunResult) -> str:
    lines = [f"### Verdict (best throughput with loop lag p99 ≤ {result.settings.lag_budget_ms:g} ms)\n"]
    for verdict in result.verdicts:
        label = report.verdict_label(verdict)
        lines.append(f"- **{_escape(label)}**: {_escape(verdict.text)}")
        lines.extend(f"  - ⚠ {_escape(warning)}" for warning in verdict.warnings)
        for candidate in verdict.candidates:
            if candidate != verdict.winner:
                name = formatting.strategy_label(candidate.strategy, candidate.max_workers)
                lines.append(f"  - {_escape(name)}: {_escape(candidate.reason)}")
    return "\n".join(lines) + "\n"


def _scenario(result: RunResult) -> str:
    return f" ({_escape(result.settings.scenario)})" if result.settings.scenario else ""


def _lines(lines: Iterable[str]) -> str:
    return "\n".join(f"{_escape(line)}  " for line in lines) + "\n"
