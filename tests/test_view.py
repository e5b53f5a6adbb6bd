"""The presentation model: every frame shows each table of a view, with its tones, escaped."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import Path

import msgspec
from rich.console import Console

from offbench.judge.compare import compare
from offbench.model import results
from offbench.model.catalog import Catalog, Entry
from offbench.model.results import (
    Breakdown,
    CallCost,
    Durations,
    Frame,
    LoopUtilisation,
    PoolCost,
    Quantiles,
    RunResult,
    StallEvidence,
)
from offbench.render import html as html_report
from offbench.render import markdown, terminal, view
from offbench.render.view import Table
from tests.builders import cell, run_of

ROOT = Path(__file__).resolve().parent.parent


def saved() -> RunResult:
    """docs/cpu.json with what it lacks added by hand: breakdown, utilisation, stall evidence, pool costs."""
    run = results.load(ROOT / "docs" / "cpu.json")
    split = Breakdown(queue_wait=Quantiles(p50=0.4, p99=0.9), run=Quantiles(p50=10.0, p99=10.2),
                      hop_back=Quantiles(p50=0.1, p99=0.3))
    busy = LoopUtilisation(busy=0.42, callbacks=100, callback_ms=Durations(p50=0.01, p99=5.5, max=52.3),
                           coverage="every callback", check_ms=5.0, stalls_checked=4, stalls_agreeing=3,
                           worst_gap_ms=7.25)
    stall = StallEvidence(duration_ms=48.0, frames=[Frame(file="app.py", line=3, function="f")])
    first, *rest = run.results
    first = msgspec.structs.replace(first, breakdown_ms=split, loop_utilisation=busy, stall_evidence=[stall])
    call = CallCost(payload_bytes=0, round_trip_ms=Quantiles(p50=0.21, p99=0.52), pickle_ms=0.0)
    costs = [PoolCost(pool="process-pool", start_method="forkserver", workers=2, startup_s=0.213,
                      calls=[call])]
    return msgspec.structs.replace(run, results=[first, *rest], pool_costs=costs)


def tables(shown: view.View) -> list[Table]:
    return [b for section in shown.sections for b in section.blocks if isinstance(b, Table)]


def texts(found: Table) -> list[list[str]]:
    return [[c.text for c in row] for row in found.rows]


def printed(shown: view.View) -> str:
    out = io.StringIO()
    terminal.print_view(shown, Console(file=out, width=400, color_system=None))
    return out.getvalue()


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Return each GFM table's body rows, cells unescaped and unbolded."""
    found: list[list[list[str]]] = []
    previous = ""
    for line in text.splitlines():
        if not line.startswith("| "):
            previous = line
            continue
        if not previous.startswith("| "):
            found.append([])
        previous = line
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        found[-1].append([re.sub(r"\\(.)", r"\1", re.sub(r"^\*\*(.*)\*\*$", r"\1", c)) for c in cells])
    return [rows[2:] for rows in found]  # less the header and the alignment row


class Page(HTMLParser):
    """Each table of a page: its rows' cell texts and classes."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[str, str]]]] = []
        self.heads: list[int] = []
        """How many rows of each table are its header."""
        self.cell: list[str] | None = None
        self.classes = ""
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
            self.heads.append(0)
        elif tag == "thead":
            self.heads[-1] = -1
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell, self.classes = [], dict(attrs).get("class") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self.heads[-1] = len(self.tables[-1])
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append(("".join(self.cell), self.classes))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)

    def bodies(self) -> list[list[list[str]]]:
        """Return each table's rows below the header, as texts."""
        pairs = zip(self.tables, self.heads, strict=True)
        return [[[text for text, _ in row] for row in rows[head:]] for rows, head in pairs]


def test_every_table_of_a_saved_run_reaches_every_frame_in_order() -> None:
    run = saved()
    shown = view.of_run(run)
    expected = [texts(t) for t in tables(shown)]
    headers = [[c.header for c in t.columns] for t in tables(shown)]
    assert headers[1][3:5] == ["wait p50", "wait p99"]  # the breakdown is there...
    assert headers[2][:2] == ["pool", "start"]  # ... and the pool costs
    assert expected[0][0][:2] == ["direct", "asyncio"]

    for found in tables(shown):  # the terminal: each rich table holds the view's cells
        drawn = terminal.table(found)
        columns = [[str(c) for c in column.cells] for column in drawn.columns]
        assert [list(row) for row in zip(*columns, strict=True)] == texts(found)
    out = printed(shown)
    position = 0
    for text in (c for rows in expected for row in rows for c in row if c):  # ... and prints them in order
        assert text in out[position:], text
        position = out.index(text, position) + len(text)

    assert markdown_tables(markdown.run(run)) == expected

    page = Page(html_report.render(run))
    assert page.bodies()[: len(expected)] == expected
    listed = [row[0] for row in page.bodies()[len(expected)]]  # then the machine, as a listing
    assert listed[:2] == ["python version", "python implementation"]


def test_the_verdict_block_and_the_summary_read_the_same_everywhere() -> None:
    run = saved()
    (verdict,) = view.of_run(run).section("verdict").blocks  # type: ignore[union-attr]
    assert isinstance(verdict, view.Verdicts)
    (item,) = verdict.verdicts
    assert item.headline.tone == "good"
    assert [line.tone for line in item.lines] == ["dim"] * 4
    frames = {"terminal": printed(view.of_run(run)), "markdown": markdown.run(run),
              "html": html_report.render(run).replace("&#39;", "'")}
    for name, text in frames.items():
        position = 0
        for line in (item.label, item.headline.text, *(line.text for line in item.lines)):
            assert line in text[position:], (name, line)
            position = text.index(line, position) + len(line)
        assert "10 cells, 10 ok, 0 failed in 16.4 s" in text, name


def test_tones_map_to_each_frames_styling() -> None:
    slower = cell(throughput=[50.0 + i % 3 for i in range(10)])
    fixed = cell("direct")
    found = compare(run_of(cell(), cell("direct", status="error")), run_of(slower, fixed),
                    base_label="a", new_label="b")
    shown = view.of_comparison(found, 10)
    tones = {c.text: c.tone for t in tables(shown) for row in t.rows for c in row}
    worse = next(text for text, tone in tones.items() if tone == "worse")
    assert worse.endswith("slower")
    assert tones["fixed"] == "good"
    assert "dim" in tones.values()  # the lag did not change significantly

    styled = {str(c): c.style for t in tables(shown) for column in terminal.table(t).columns
              for c in column.cells}
    assert styled[worse] == "red"
    assert styled["fixed"] == "green"
    assert {styled[text] for text, tone in tones.items() if tone == "dim"} == {"dim"}

    text = markdown.comparison(found, 10)
    assert f"**{worse}**" in text
    assert "| fixed |" in text  # good is not emphasised: markdown shows only what got worse

    page = Page(html_report.render(run_of(slower, fixed), run_of(cell(), cell("direct", status="error")),
                                   run_label="b", base_label="a"))
    classes = {text: classes for rows in page.tables for row in rows for text, classes in row}
    assert classes[worse] == "worse"
    assert classes["fixed"] == "good"
    assert classes["direct"] == "left"  # the columns' justification is a class too


def test_lag_tones_follow_the_budget_in_every_frame() -> None:
    over = msgspec.structs.replace(cell("direct"), loop_lag_ms=results.LoopLag(
        p50=0.5, p90=2.0, p99=30.0, p999=31.0, max=31.0, mean=1.0))
    run = run_of(over)
    (numbers, *_) = tables(view.of_run(run))
    row = numbers.rows[0]
    assert [c.tone for c in row[7:10]] == ["good", "bad", "bad"]  # p50 fine, p99 and max over 10 ms
    drawn = terminal.table(numbers)
    assert [next(iter(column.cells)).style for column in drawn.columns][7:10] == ["green", "red", "red"]
    assert "**" not in markdown.run(run).split("### Verdict")[0]  # a run's table stays plain in markdown
    page = Page(html_report.render(run))
    assert [classes for _, classes in page.tables[0][1][7:10]] == ["good", "bad", "bad"]


def test_names_from_a_results_file_are_escaped_in_every_frame() -> None:
    hostile = msgspec.structs.replace(cell("direct"), workload="[bold]x|y_z*[/]",
                                      params={"note": "<script>alert(1)</script>"})
    run = run_of(hostile)
    label = "[bold]x|y_z*[/] (note=<script>alert(1)</script>)"
    assert view.of_run(run).sections[0].heading == label

    out = printed(view.of_run(run))
    assert "[bold]x|y_z*[/]" in out  # rich markup shown, not applied
    assert "<script>" in out

    text = markdown.run(run)
    assert "### [bold]x\\|y\\_z\\*[/] (note=<script>alert(1)</script>)" in text

    page = html_report.render(run)
    assert "<script>" not in page
    assert "[bold]x|y_z*[/] (note=&lt;script&gt;alert(1)&lt;/script&gt;)" in page


def test_the_catalog_is_a_listing_per_shelf() -> None:
    entry = Entry(name="[red]mine", summary="a user's", available=False)
    shown = view.of_catalog(Catalog(workloads=[entry], strategies=[], loops=[], scenarios=[]))
    (listing, *_) = tables(shown)
    assert not listing.has_header
    drawn = terminal.table(listing)
    assert drawn.columns[0].style == "cyan"
    assert [str(c) for c in drawn.columns[0].cells] == ["[red]mine"]
    assert [c.style for c in drawn.columns[1].cells] == ["dim"]  # not available here
    assert "[red]mine" in printed(shown)
