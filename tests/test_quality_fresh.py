"""benchmarks/QUALITY.md describes the measuring code as it is: the digest it records is the code's.

The digest (``benchmarks/quality/fresh.py``) covers what decides offbench's figures: ``measure/``,
``run/``, ``judge/precision.py``, ``judge/compare.py`` and ``stats.py`` (but the attachment of
``offbench watch`` and the pytest plugin, which no run uses), read without docstrings and
comments, so rewording prose never makes the report stale. A change of that code does: then
QUALITY.md must be measured again, on a quiet machine, by the full script (a ``--smoke`` report
does not count). That takes over an hour on the project's machine: it is the price the project
chose (issue 21) for never publishing figures of code that no longer ships.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
from benchmarks.quality import fresh

QUALITY = fresh.ROOT / "benchmarks" / "QUALITY.md"


def test_quality_md_was_measured_with_the_measuring_code_as_it_is() -> None:
    stale = fresh.staleness(QUALITY.read_text(encoding="utf-8"))
    assert stale is None, f"{QUALITY} {stale}"


@pytest.mark.workers
def test_what_the_digest_leaves_out_no_run_and_no_quality_figure_imports() -> None:
    # The attachment of `offbench watch` and the pytest plugin is left out of the digest: true only
    # while the worker, the parent's runner and the QUALITY harness load none of it.
    code = (
        "import sys, importlib, pkgutil\n"
        "import offbench.measure.worker, offbench.run.runner, offbench.cli\n"
        "from benchmarks import quality\n"
        "for found in pkgutil.iter_modules(quality.__path__):\n"
        "    importlib.import_module('benchmarks.quality.' + found.name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('offbench.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=fresh.ROOT,
                          timeout=120, check=True)
    loaded = {name.replace(".", "/") for name in ast.literal_eval(done.stdout)}
    left_out = {path.removeprefix("src/").removesuffix(".py") for path in fresh.NOT_MEASURING}
    assert loaded, done.stderr
    assert not loaded & left_out, sorted(loaded & left_out)
