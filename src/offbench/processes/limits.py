"""The limit on open files, raised for the processes a run starts."""

from __future__ import annotations

import contextlib
import resource

OPEN_FILES_CAP = 1 << 16
"""The soft limit to aim for where the hard limit is unlimited (macOS)."""


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files toward the hard one; return the limit now in force.

    Worker, pool and server processes inherit it, so concurrency in the hundreds does not
    fail with "too many open files" under a default soft limit of 1024 (or 256 on macOS).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = open_files_ceiling()
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_files_ceiling() -> int:
    """Return the most open files a process here may have: the hard limit (or a cap, if unlimited)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return OPEN_FILES_CAP if hard == resource.RLIM_INFINITY else hard
