"""What offbench writes besides its tables: markdown, pyperf files, the JSON Schema, and 'show'."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from offbench.judge.compare import compare
from offbench.model import results, schema
from offbench.render import markdown
from offbench.render import pyperf as pyperf_export
from tests.run_cli import offbench
from tests.test_compare import cell, run_of

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["-w", "sleep", "-s", "direct", "-s", "to-thread", "-l", "asyncio", "-c", "1", "-d", "0.1",
         "--warmup", "0.02"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One small real run with every output asked for; returns its folder and terminal output."""
    folder = tmp_path_factory.mktemp("outputs")
    done = offbench("run", *SMALL, "-o", str(folder / "run.json"), "--markdown",
                    str(folder / "run.md"), "--pyperf", str(folder / "run.pyperf.json"))
    assert done.returncode == 0, done.stderr
    return folder, done.stdout


def test_show_renders_a_saved_file_exactly_as_run_did(small_run: tuple[Path, str]) -> None:
    folder, stdout = small_run
    shown = offbench("show", str(folder / "run.json"))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == stdout


def test_run_markdown_is_a_table_per_workload_with_the_verdict(small_run: tuple[Path, str]) -> None:
    folder, _ = small_run
    text = (folder / "run.md").read_text()
    assert text.startswith("## offbench run")
    assert "### sleep (duration\\_ms=10.0)" in text
    lines = text.splitlines()
    header = lines.index("| strategy | loop | conc | ops/s | ×direct | op p50 | op p99 | lag p50 "
                         "| lag p99 | lag max | avail |")
    assert lines[header + 1].startswith("| :--- | :--- | ---: |")
    rows = lines[header + 2: header + 4]
    assert [r.split(" | ")[0] for r in rows] == ["| direct", "| to-thread ★"]
    assert all(r.count("|") == 12 for r in rows)
    assert "Verdict" in text
    assert "use to-thread" in text
    shown = offbench("show", str(folder / "run.json"), "--markdown", "-")
    assert shown.stdout == text


def test_markdown_escapes_table_syntax() -> None:
    assert markdown.table(["a|b"], [["x"]]) == "| a\\|b |\n| :--- |\n| x |\n"


def test_compare_markdown_marks_what_got_worse() -> None:
    slow = cell(throughput=[50.0 + i % 3 for i in range(10)])
    text = markdown.comparison(compare(run_of(cell()), run_of(slow), base_label="a", new_label="b"), 10)
    assert text.startswith("## offbench compare: b vs a")
    (row,) = [line for line in text.splitlines() if line.startswith("| to-thread")]
    assert "slower**" in row
    assert "| **-" in row
    assert "1 regression(s) beyond 10%" in text


def test_pyperf_tools_accept_the_export(small_run: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = small_run
    path = folder / "run.pyperf.json"
    data = json.loads(path.read_text())
    names = [b["metadata"]["name"] for b in data["benchmarks"]]
    assert names == ["sleep (duration_ms=10.0)/direct/asyncio/c=1",
                     "sleep (duration_ms=10.0)/to-thread/asyncio/c=1"]
    for tool in (["stats", str(path)], ["hist", str(path)], ["compare_to", str(path), str(path)]):
        done = subprocess.run([sys.executable, "-m", "pyperf", *tool], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, (tool, done.stderr)
    stats = subprocess.run([sys.executable, "-m", "pyperf", "stats", str(path)], capture_output=True,
                           text=True, timeout=60).stdout
    # The values are op latencies of 10 ms sleeps.
    assert "Mean +- std dev: 10." in stats


def test_pyperf_values_are_the_parts_op_latency_in_seconds() -> None:
    run = run_of(cell(), cell(status="error"))
    suite = pyperf_export.suite(run)
    assert suite is not None
    (bench,) = suite.get_benchmarks()
    assert bench.get_values() == (0.01,) * 10
    assert bench.get_unit() == "second"
    assert bench.get_metadata()["offbench_strategy"] == "to-thread"
    assert pyperf_export.suite(run_of(cell(status="error"))) is None


def test_schema_descriptions_are_dedented_so_every_python_generates_the_same_schema() -> None:
    descriptions = [d["description"] for d in schema.generate()["$defs"].values() if "description" in d]
    assert any("\n\n" in text for text in descriptions)  # multi-paragraph docstrings are there
    assert not [text for text in descriptions if "\n " in text]  # 3.13 strips the indent, 3.11 must too


def test_shipped_schema_is_the_generated_one() -> None:
    assert schema.shipped() == schema.dumps(schema.generate()), (
        "src/offbench/model/results.schema.json is stale: regenerate it with "
        "python -c 'from offbench.model import schema; "
        "open(\"src/offbench/model/results.schema.json\", \"wb\").write(schema.dumps(schema.generate()))'"
    )


def test_real_output_validates_against_the_schema(small_run: tuple[Path, str]) -> None:
    folder, _ = small_run
    printed = offbench("schema")
    assert printed.returncode == 0
    document = json.loads(printed.stdout)
    jsonschema.Draft202012Validator.check_schema(document)
    data = json.loads((folder / "run.json").read_text())
    jsonschema.validate(data, document)
    data["schema_version"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, document)
    del data["results"][0]["status"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(dict(data, schema_version=results.SCHEMA_VERSION), document)


@pytest.mark.slow
def test_a_whole_quick_run_validates(quick_runs: tuple[Path, Path]) -> None:
    document = json.loads(schema.shipped())
    for path in quick_runs:
        jsonschema.validate(json.loads(path.read_text()), document)


def test_outputs_are_checked_before_measuring(tmp_path: Path) -> None:
    done = offbench("run", *SMALL, "--pyperf", str(tmp_path / "missing" / "x.json"))
    assert done.returncode == 2
    assert "does not exist" in done.stderr
    assert "direct" not in done.stdout
