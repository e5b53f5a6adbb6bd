"""What ``offbench check`` found, kept between runs: a strategy's semantics do not change from run to run.

Running the experiments costs a worker process and about a second and a half per
strategy and loop (13-15 s for a default run's 5 strategies on 2 loops), and their
answers depend only on the code that answered: the interpreter, the loop's version, the
strategy's and the experiments' own source. A run's check therefore reads a finding
from the cache where one was made by exactly that code, and stores what it measures
anew. ``offbench check`` itself always measures (it is what you run to see it happen),
and so does a check of a user's function (its answers depend on that function).

An entry is one JSON file named by the digest of its key: a changed key is a miss, never
a stale hit. Failed checks are not kept.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from pathlib import Path

import msgspec

from offbench import cache, loops
from offbench.model.semantics import StrategySemantics

_PACKAGE = Path(__file__).resolve().parent.parent
"""The ``offbench`` package: its strategies' and experiments' source make part of the key."""
VERSION = "1"
"""Bumped when what an entry holds changes shape."""


def folder() -> Path:
    """Return where findings are kept."""
    return cache.root() / "semantics"


def key(strategy: str, loop: str) -> str:
    """Return the digest naming the findings of ``strategy`` on ``loop`` made by the code here and now."""
    code = [cache.source_digest(_PACKAGE / part) for part in ("semantics", "strategies")]
    # The environment by its prefix, not by sys.executable: `offbench` runs as .venv/bin/python3,
    # `python -m offbench` as .venv/bin/python, one interpreter under two names.
    return cache.digest([
        VERSION, strategy, loop, loops.get(loop).version(), sys.prefix, platform.python_implementation(),
        platform.python_version(), str(os.cpu_count()), *code,
    ])


def load(strategy: str, loop: str) -> StrategySemantics | None:
    """Return the kept findings of ``strategy`` on ``loop``, if this code made some."""
    path = folder() / f"{key(strategy, loop)}.json"
    try:
        return msgspec.json.decode(path.read_bytes(), type=StrategySemantics)
    except (OSError, msgspec.DecodeError):
        return None


def store(found: StrategySemantics) -> None:
    """Keep ``found`` for later runs, written atomically; not a failed check, nor into an unwritable cache."""
    if found.error or found.target:
        return
    path = folder() / f"{key(found.strategy, found.loop)}.json"
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(msgspec.json.encode(found))
        os.replace(temporary, path)
