"""docs/reference.md's tables of the results file and of `offbench run`'s options match the code.

The JSON Schema (generated from the result types' docstrings) and the options registry are
the truth; the reference restates them for readers, so it is held to them here: every field
the tables name exists, every field of a run and of a cell is named, every option is listed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from offbench.model import schema
from offbench.plan.options import OPTIONS

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference.md"


def table_names(heading: str) -> set[str]:
    """Return the backticked names in the first column of the table under ``heading``."""
    text = REFERENCE.read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([a-z_0-9]+)`", row.split(" | ")[0])}


def properties(name: str) -> set[str]:
    return set(json.loads(schema.shipped())["$defs"][name]["properties"])


def test_the_run_table_names_every_field_of_a_run_and_no_other() -> None:
    assert table_names("### The run") == properties("RunResult")


def test_the_cell_table_names_every_field_of_a_cell_and_no_other() -> None:
    assert table_names("### One cell") == properties("CellResult")


def test_every_run_option_is_in_the_reference() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    # A boolean's flag is "--x/--no-x"; the reference writes it "--x / --no-x".
    missing = [o.name for o in OPTIONS
               if not any(f"`{flag.replace('/', ' / ')}" in text or f"`{flag}" in text for flag in o.flags)]
    assert not missing


def test_the_readmes_ci_commands_are_the_usage_quality_md_calibrates() -> None:
    from benchmarks.quality.calibration import FAIL_ON, RECOMMENDED_OPTIONS

    readme = (REFERENCE.parent.parent / "README.md").read_text(encoding="utf-8")
    (run,) = [line.split() for line in readme.splitlines() if line.startswith("offbench run --python base=")]
    # Both sides' interpreters, then your workload, then exactly the calibrated options.
    assert run[2:6] == ["--python", "base=base/.venv/bin/python", "--python", "new=new/.venv/bin/python"]
    assert run[6] == "-w"
    assert run[8:-2] == RECOMMENDED_OPTIONS
    assert f"offbench compare RUN.json --by python --fail-on-regression {FAIL_ON}" in readme
    assert f"--fail-on-regression {FAIL_ON}`" in readme  # the separate runs' compare, in the prose
