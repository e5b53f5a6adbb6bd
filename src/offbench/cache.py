"""Where offbench keeps what is slow to make and safe to reuse: venvs per interpreter, semantics findings.

``$OFFBENCH_CACHE`` if set, else ``$XDG_CACHE_HOME/offbench``, else ``~/.cache/offbench``.
Everything in it is keyed by what it depends on, so a stale entry is never read: it
is simply not found, and made again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path


def root() -> Path:
    """Return offbench's cache folder (not created)."""
    if os.environ.get("OFFBENCH_CACHE"):
        return Path(os.environ["OFFBENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "offbench"


def digest(parts: Iterable[str | bytes], length: int = 16) -> str:
    """Return a short hex digest naming ``parts`` (each kept apart from the next)."""
    found = hashlib.sha256()
    for part in parts:
        found.update(part.encode() if isinstance(part, str) else part)
        found.update(b"\0")
    return found.hexdigest()[:length]


def source_digest(folder: Path, pattern: str = "*.py") -> str:
    """Return a digest of the files under ``folder`` matching ``pattern``: it changes when the code does."""
    files = sorted(folder.rglob(pattern))
    return digest(part for path in files for part in (str(path.relative_to(folder)), path.read_bytes()))
