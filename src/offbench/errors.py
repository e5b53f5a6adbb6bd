"""The exception hierarchy: every mistake a user can make is an ``OffbenchError``.

The CLI maps ``UsageError`` to exit code 2 in exactly one place; code below the CLI
raises and never exits.
"""

import difflib


class OffbenchError(Exception):
    """Base class of every error offbench raises on purpose."""


class UsageError(OffbenchError):
    """The user asked for something that cannot be done (bad name, bad value, bad path).

    ``key`` names the setting at fault (``"concurrency"``, ``"workloads[1].name"``) so
    that a scenario file can point at the key it came from.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def unknown_name(kind: str, name: str, known: list[str]) -> str:
    """Return the one-line message for an unknown ``kind`` name, suggesting the closest."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r} (choose from: {', '.join(known)}){hint}"
