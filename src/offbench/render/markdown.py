"""The markdown frame: a :class:`~offbench.render.view.View` as GitHub-flavoured markdown.

Fit for ``$GITHUB_STEP_SUMMARY``: the cells are the very strings the terminal shows,
so a CI summary reads like the terminal. Markdown has no colour, so of the tones only
two show: ``strong`` and ``worse`` (what got worse) are bold.
"""

from __future__ import annotations

from collections.abc import Iterable

from offbench.judge.compare import Comparison
from offbench.model.results import RunResult
from offbench.render import view
from offbench.render.view import Cell, Notes, Section, Table, Verdicts, View

EMPHASIS = {"strong", "worse"}
"""The tones markdown shows, in bold."""


def run(result: RunResult) -> str:
    """Return a run as markdown: a section per workload, the pool costs, the verdicts, and the summary."""
    return render(view.of_run(result))


def comparison(found: Comparison, fail_on_regression: float | None = None) -> str:
    """Return a comparison as markdown: a table per workload, then the tally."""
    return render(view.of_comparison(found, fail_on_regression))


def render(shown: View) -> str:
    """Return a view as markdown: its title, each section under a heading, then the closing lines."""
    parts = [f"## {_escape(shown.title)}\n"]
    for section in shown.sections:
        if section.blocks:
            parts.extend(_section(section))
    if shown.closing:
        # The tally is a block of lines (a hard break each): its tones are colours, which markdown lacks.
        plain = "\n".join("".join(cell.text for cell in line) for line in shown.closing)
        parts.append("\n".join(f"{_escape(line)}  " for line in plain.splitlines()) + "\n")
    return "\n".join(parts)


def _section(section: Section) -> list[str]:
    if isinstance(section.blocks[0], Verdicts):
        return [_verdicts(section.heading, section.blocks[0])]
    parts = [f"### {_escape(section.heading)}\n"]
    for index, block in enumerate(section.blocks):
        if isinstance(block, Table):
            if index and block.title:
                title = "".join(cell.text for cell in block.title)
                parts.append(f"**{_escape(title[:1].upper() + title[1:])}**\n")
            parts.append(table(block))
            if block.caption and block.caption_in_documents:
                parts.append(f"<sub>{_escape(block.caption)}</sub>\n")
        elif isinstance(block, Notes):
            bullets = "".join(f"- {_escape(line)}\n" for line in block.lines)
            parts.append(f"**{_escape(block.heading)}**\n\n{bullets}" if block.heading else bullets)
    return parts


def table(found: Table) -> str:
    """Return a GFM table: escaped cells, left or right aligned as the columns say."""
    align = [":---" if column.justify == "left" else "---:" for column in found.columns]
    lines = [_row(_escape(column.header) for column in found.columns), _row(align),
             *(_row(_cell(cell) for cell in row) for row in found.rows)]
    return "\n".join(lines) + "\n"


def _cell(cell: Cell) -> str:
    text = _escape(cell.text)
    return f"**{text}**" if cell.tone in EMPHASIS and text else text


def _verdicts(heading: str, found: Verdicts) -> str:
    lines = [f"### {_escape(heading)}\n"]
    for verdict in found.verdicts:
        lines.append(f"- **{_escape(verdict.label)}**: {_escape(verdict.headline.text)}")
        lines.extend(f"  - {_escape(line.text)}" for line in verdict.lines)
    return "\n".join(lines) + "\n"


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _escape(text: str) -> str:
    """Escape what markdown would read as table syntax or emphasis."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")
