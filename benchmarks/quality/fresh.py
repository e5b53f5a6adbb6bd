"""Whether QUALITY.md describes the measuring code as it is: a digest of that code, blind to its prose.

QUALITY.md records, in its first lines, a digest of the code that decides what offbench
measures: the worker side (``measure/``), the parent that pools units and stops cells
(``run/``), the statistics of a cell and of a comparison (``judge/precision.py``,
``judge/compare.py``, ``stats.py``). ``tests/test_quality_fresh.py`` (and
``benchmarks/quality.py --check``) computes it again and fails when the two differ. Each file is read as its
syntax tree, with every docstring and every other bare string statement (the attribute
docstrings) dropped, and comments never reach the tree: rewording prose does not make the
report stale, changing code does.
The tree is written out field by field, leaving out empty fields, so Python 3.11 to 3.13
(which add empty fields and dump them differently) give the same digest.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository: ``benchmarks/quality/`` is two levels below it."""
MEASURING = (
    "src/offbench/measure/**/*.py",
    "src/offbench/run/*.py",
    "src/offbench/judge/precision.py",
    "src/offbench/judge/compare.py",
    "src/offbench/stats.py",
)
"""The measuring code, as globs under the repository."""
NOT_MEASURING = (
    "src/offbench/measure/attach.py",
    "src/offbench/measure/totals.py",
    "src/offbench/measure/watched.py",
    "src/offbench/run/watch.py",
)
"""Left out of the globs: ``offbench watch``'s and the pytest plugin's attachment to a program's
own loop. No run's worker, no parent and no part of the QUALITY harness imports them
(``tests/test_quality_fresh.py`` holds that), so no figure in QUALITY.md comes from them."""
REGENERATE = ".venv/bin/python benchmarks/quality.py"
"""The command that writes QUALITY.md again (on a quiet machine: it measures)."""
LINE = re.compile(r"^Measuring code digest: `(?P<digest>[0-9a-f]{16})` \((?P<mode>\w+) run\)")
FIRST_LINES = 8
"""The digest is looked for in this many first lines of QUALITY.md."""


def measuring_files(root: Path = ROOT) -> list[Path]:
    """Return the measuring code's files under ``root``, sorted by their path relative to it."""
    found = {path for pattern in MEASURING for path in root.glob(pattern) if path.is_file()}
    found -= {root / path for path in NOT_MEASURING}
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def canonical(source: str) -> str:
    """Return ``source``'s syntax tree as text, without docstrings, bare strings or comments."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            statements = getattr(node, name, None)
            if isinstance(statements, list):
                setattr(node, name, [s for s in statements if not _bare_string(s)])
    return _dump(tree)


def _bare_string(statement: object) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _dump(value: object) -> str:
    """Write a tree out with its fields, leaving out empty ones and the positions."""
    if isinstance(value, ast.AST):
        fields = [
            f"{name}={_dump(item)}"
            for name in value._fields
            if (item := getattr(value, name, None)) is not None
            and item != []
            and name not in ("kind", "type_comment")
        ]
        return f"{type(value).__name__}({', '.join(fields)})"
    if isinstance(value, list):
        return "[" + ", ".join(_dump(item) for item in value) + "]"
    return repr(value)


def digest(root: Path = ROOT, files: Iterable[Path] | None = None) -> str:
    """Return the 16-hex-digit digest of the measuring code under ``root``."""
    found = hashlib.sha256()
    for path in files if files is not None else measuring_files(root):
        found.update(path.relative_to(root).as_posix().encode())
        found.update(b"\0")
        found.update(canonical(path.read_text(encoding="utf-8")).encode())
        found.update(b"\0")
    return found.hexdigest()[:16]


def header_line(code_digest: str, mode: str) -> str:
    """Return the line QUALITY.md records the digest in (``mode``: ``full`` or ``smoke``)."""
    return (
        f"Measuring code digest: `{code_digest}` ({mode} run): the code of "
        f"{', '.join(f'`{p}`' for p in MEASURING)} but {', '.join(f'`{p}`' for p in NOT_MEASURING)}, "
        "without docstrings and comments "
        "(`benchmarks/quality/fresh.py`)."
    )


def recorded(text: str) -> tuple[str, str] | None:
    """Return the (digest, mode) a QUALITY.md's first lines record; ``None`` when they record none."""
    for line in text.splitlines()[:FIRST_LINES]:
        if match := LINE.match(line):
            return match["digest"], match["mode"]
    return None


def staleness(text: str, root: Path = ROOT) -> str | None:
    """Return why a QUALITY.md text is stale for the measuring code under ``root``; ``None`` if it is not.

    ``tests/test_quality_fresh.py`` fails with it, ``python benchmarks/quality.py --check``
    prints it.
    """
    found = recorded(text)
    if found is None:
        return (f"records no measuring-code digest in its first {FIRST_LINES} lines (it predates "
                f"benchmarks/quality/fresh.py): regenerate it on a quiet machine with {REGENERATE}")
    recorded_digest, mode = found
    if mode != "full":
        return f"is a {mode} run's report: regenerate it with {REGENERATE}"
    now = digest(root)
    if recorded_digest != now:
        return (f"describes older measuring code (digest {recorded_digest}; the code's is now {now}): "
                f"regenerate it on a quiet machine with {REGENERATE}")
    return None
