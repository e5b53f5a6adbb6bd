"""benchmarks/QUALITY.md describes the measuring code as it is: the digest it records is the code's.

The digest (``benchmarks/quality/fresh.py``) covers what decides offbench's figures: ``measure/``,
``run/``, ``judge/precision.py``, ``judge/compare.py`` and ``stats.py``, read without docstrings
and comments, so rewording prose never makes the report stale. A change of that code does: then
QUALITY.md must be measured again, on a quiet machine, by the full script (a ``--smoke`` report
does not count). That takes over an hour on the project's machine: it is the price the project
chose (issue 21) for never publishing figures of code that no longer ships.
"""

from __future__ import annotations

from benchmarks.quality import fresh

QUALITY = fresh.ROOT / "benchmarks" / "QUALITY.md"


def test_quality_md_was_measured_with_the_measuring_code_as_it_is() -> None:
    stale = fresh.staleness(QUALITY.read_text(encoding="utf-8"))
    assert stale is None, f"{QUALITY} {stale}"
