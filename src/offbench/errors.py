"""The exception hierarchy: every mistake a user can make is an ``OffbenchError``.

The CLI maps ``UsageError`` to exit code 2 in exactly one place; code below the CLI
raises and never exits.
"""

import difflib


class OffbenchError(Exception):
    """Base class of every error offbench raises on purpose."""


class UsageError(OffbenchError):
    """The user asked for something that cannot be done (bad name, bad value, bad path)."""


def unknown_name(kind: str, name: str, known: list[str]) -> str:
    """Return the one-line message for an unknown ``kind`` name, suggesting the closest."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r} (choose from: {', '.join(known)}){hint}"
