"""Run the offbench command line in a child process, as a user or CI would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def offbench(*args: str, cwd: Path | None = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``python -m offbench ARGS`` from the repository root, without the caller's COLUMNS.

    Piped output is then 160 columns wide, so no line the tests look for wraps.
    """
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run(
        [sys.executable, "-m", "offbench", *args],
        capture_output=True, text=True, timeout=600, cwd=cwd, env=env,
    )


def start_offbench(*args: str) -> subprocess.Popen[str]:
    """Start ``python -m offbench ARGS`` in the background, to signal it midway; pipes for its output.

    It gets SIGINT's default disposition (a shell may start tests with SIGINT ignored),
    and no COLUMNS, as :func:`offbench` does.
    """
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.Popen(
        [sys.executable, "-m", "offbench", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=ROOT, env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
