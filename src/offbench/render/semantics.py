"""Render semantics findings: one table per loop (strategies × experiments) and its footnotes.

Each cell reads ``✓`` or ``✗`` (the answer to the column's question, see
``offbench check --help``) and what was seen; every ``✗`` carries a footnote number,
one per distinct explanation, so a reason shared by several strategies is said once.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from offbench.model.semantics import Finding, StrategySemantics
from offbench.semantics.experiments import REGISTRY

MARKS = {True: "✓", False: "✗", None: ""}


def footnotes(sems: Sequence[StrategySemantics]) -> dict[tuple[str, str], int]:
    """Return a number for each distinct (experiment, explanation) of a ``✗`` or error, in order."""
    numbers: dict[tuple[str, str], int] = {}
    for s in sems:
        for f in s.findings:
            if f.why:
                numbers.setdefault((f.experiment, f.why), len(numbers) + 1)
    return numbers


def cell_text(f: Finding | None, numbers: dict[tuple[str, str], int]) -> str:
    """Return one cell: mark, value (µs per call for worker reuse), footnote mark."""
    if f is None:
        return ""
    shown = f"{f.measured:.0f}" if f.unit == "µs/call" and f.measured is not None else f.value
    text = " ".join(part for part in (MARKS[f.holds], shown) if part)
    if f.why:
        text += superscript(numbers[(f.experiment, f.why)])
    return text


def superscript(number: int) -> str:
    """Return ``number`` in superscript digits, the footnote mark."""
    return str(number).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


def tables(sems: Sequence[StrategySemantics]) -> RenderableType:
    """Return one table per loop, then the footnotes and the workers that failed."""
    numbers = footnotes(sems)
    parts: list[RenderableType] = [Text(
        "✓ = yes to the column's question (offbench check --help); workers reused: µs per call; "
        "∥: speed-up of two calls at once over two in a row", style="dim")]
    for loop in dict.fromkeys(s.loop for s in sems):
        rows = [
            [s.strategy, *(cell_text(s.finding(name), numbers) for name in REGISTRY)]
            for s in sems
            if s.loop == loop
        ]
        table = Table(title=f"[bold]Semantics[/] on {loop}", title_justify="left",
                      box=box.SIMPLE_HEAD, pad_edge=False)
        # Values keep their width; headers wrap to fit (they are explained in the footnotes).
        headers = ["strategy", *(e.column for e in REGISTRY.values())]
        for index, header in enumerate(headers):
            longest_word = max(len(word) for word in header.split())
            table.add_column(header, width=max(longest_word, *(len(row[index]) for row in rows)))
        for row in rows:
            table.add_row(*row)
        parts.append(table)
    parts.append(Text("\n".join(footnote_lines(sems, numbers)), style="dim"))
    return Group(*parts)


def footnote_lines(sems: Sequence[StrategySemantics], numbers: dict[tuple[str, str], int]) -> list[str]:
    """Return the footnotes as text, each naming its column and the strategies it applies to."""
    lines = []
    for (experiment, why), number in numbers.items():
        who = dict.fromkeys(
            s.strategy for s in sems
            if (f := s.finding(experiment)) is not None and f.why == why
        )
        lines.append(f"{superscript(number)} {REGISTRY[experiment].column} ({', '.join(who)}): {why}")
    lines.extend(
        f"{s.strategy} on {s.loop}: not checked: {s.error}" for s in sems if s.error
    )
    targets = {s.target for s in sems if s.target}
    if targets:
        marked = ", ".join(e.column for e in REGISTRY.values() if e.uses_target)
        lines.append(f"{', '.join(sorted(targets))} was the function called for: {marked}")
    return lines
