"""User-style workloads for tests, importable as ``tests.helpers:NAME`` in worker processes."""

import os
import time


def noop() -> None:
    """Do nothing: the cheapest possible call."""


def boom() -> None:
    """Raise on every call."""
    raise ValueError("boom from the workload")


def hang() -> None:
    """Block far longer than any test's cell timeout."""
    time.sleep(3600)


def die() -> None:
    """Kill the calling process without cleanup, like a segfault would."""
    os._exit(3)


not_callable = 42
