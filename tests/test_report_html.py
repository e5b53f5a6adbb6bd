"""``offbench report``: a self-contained page, its error paths, and how a browser renders it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import msgspec
import pytest

from offbench.model import results
from offbench.model.results import RunResult
from offbench.render import html as html_report
from offbench.render import plots
from tests.builders import cell, run_of, series, synthetic
from tests.run_cli import offbench, offbench_here

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Page(HTMLParser):
    """The tags, links and inline SVG documents of an HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.feed(text)
        self.svgs = re.findall(r"<svg\b.*?</svg>", text, flags=re.S)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.links += [v for k, v in attrs if k in ("src", "href") and v]


def write(path: Path, run: RunResult) -> str:
    path.write_bytes(results.encode(run))
    return str(path)


def test_the_page_is_self_contained_with_a_chart_row_per_concurrency() -> None:
    page = Page(html_report.render(synthetic(), run_label="r.json"))
    assert "script" not in page.tags
    assert all(link.startswith("#") for link in page.links), page.links  # nothing loaded
    assert len(page.svgs) == len(plots.groups(synthetic())) == 1
    ids = series(page.svgs[0])  # each inline SVG is well-formed XML
    assert "row0:spectrum:uvloop:to-thread" in ids
    assert {"section", "table", "figure"} <= set(page.tags)


def test_strings_from_a_results_file_are_escaped() -> None:
    hostile = msgspec.structs.replace(cell("direct"), params={"note": "<script>alert(1)</script>"})
    text = html_report.render(run_of(hostile, cell("to-thread")))
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


@pytest.mark.workers
def test_with_a_baseline_the_page_adds_the_comparison(tmp_path: Path) -> None:
    new = write(tmp_path / "new.json", synthetic(20.0))
    base = write(tmp_path / "base.json", synthetic(10.0))
    done = offbench("report", new, base, "-o", str(tmp_path / "r.html"))
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "r.html").read_text()
    assert 'id="comparison"' in text
    assert "new.json vs base.json" in text
    assert ":base-spectrum:" in text
    assert done.stderr.strip() == f"offbench: wrote {tmp_path / 'r.html'}"


def test_charts_alone_as_svg_or_png_and_html_by_default_beside_the_results(tmp_path: Path) -> None:
    source = write(tmp_path / "run.json", synthetic())
    assert offbench_here("report", source, "-o", str(tmp_path / "c.svg")).returncode == 0
    ET.fromstring((tmp_path / "c.svg").read_bytes())
    assert offbench_here("report", source, "-o", str(tmp_path / "c.png")).returncode == 0
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")
    assert offbench_here("report", source).returncode == 0
    assert (tmp_path / "run.html").read_text().startswith("<!doctype html>")


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    source = write(tmp_path / "run.json", synthetic())
    old = tmp_path / "old.json"
    old.write_text('{"schema_version": 1}')
    cases = {
        ("report", source, "-o", str(tmp_path / "r.txt")): "must end in .html, .svg, .png, .pdf",
        ("report", str(tmp_path / "missing.json")): "cannot read",
        ("report", str(old)): "schema_version 1 is not supported",
        ("report", source, "-o", str(tmp_path / "no" / "r.html")): "does not exist",
        ("report", source, str(old)): "schema_version 1 is not supported",
        ("report", write(tmp_path / "empty.json", run_of()), "-o", str(tmp_path / "e.png")):
            "no cell was measured",
    }
    for args, message in cases.items():
        done = offbench_here(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.count("\n") == 1, done.stderr
        assert message in done.stderr
    assert set(tmp_path.iterdir()) == {tmp_path / "run.json", old, tmp_path / "empty.json"}


@pytest.mark.workers
def test_without_matplotlib_the_error_says_how_to_install_it(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('matplotlib is hidden by this test')\n")
    source = write(tmp_path / "run.json", synthetic())
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    done = subprocess.run([*offbench_command(), "report", source], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr == "offbench: error: charts need matplotlib, which is not installed: " \
        "pip install 'offbench[plot]'\n"
    # The terminal chart needs only rich: show still draws it.
    shown = subprocess.run([*offbench_command(), "show", source], capture_output=True, text=True,
                           env=env, timeout=120)
    assert shown.returncode == 0
    assert "p50–p90" in shown.stdout


def offbench_command() -> list[str]:
    return [sys.executable, "-m", "offbench"]


@pytest.mark.workers
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_a_real_quick_run_renders_in_headless_chromium(
    quick_run: Path, small_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    first, second = quick_run, small_runs[0]
    page = tmp_path / "report.html"
    done = offbench("report", str(first), str(second), "-o", str(page))
    assert done.returncode == 0, done.stderr
    run = results.load(first)

    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    # The browser parsed every chart as SVG, with a line per strategy and loop in each row.
    assert dom.count("<svg") == len(plots.groups(run))
    for group in plots.groups(run):
        for c in group.cells(run):
            if c.ok:
                assert f'id="{group.row_id}:spectrum:{c.loop}:{c.strategy}"' in dom
    for axis_label in ("loop lag (ms)", "percentile of probe ticks (%)", "throughput (ops/s)"):
        assert dom.count(axis_label) >= len(plots.groups(run))

    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,4000", page.as_uri())
    assert_shows_the_strategy_colours(shot)


def chromium(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with no network, no profile and its files in a short-named temp folder.

    Not in ``folder`` itself: Chromium's singleton socket lives in its TMPDIR, and a Unix socket's
    path may not pass 107 bytes, which pytest's nested folder names do (the test died with
    "Socket path too long" in CI). A folder made directly in the tests' TMPDIR is short enough.
    """
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="cr", ignore_cleanup_errors=True) as short:
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--hide-scrollbars", f"--user-data-dir={Path(short) / 'profile'}"]
        env = {**os.environ, "TMPDIR": short, "HOME": short}
        done = subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120,
                              env=env, cwd=folder)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def assert_shows_the_strategy_colours(png: Path) -> None:
    """Assert that the screenshot shows the charts: each strategy's line colour covers many pixels."""
    from matplotlib import colors, image

    pixels = image.imread(png)[:, :, :3]
    for name in ("C0", "C1", "C2", "C3", "C4"):  # the five strategies' colours
        rgb = colors.to_rgb(name)
        near = (abs(pixels - rgb).max(axis=2) < 0.08).sum()
        assert near > 200, f"{name} {rgb}: {near} pixels"
