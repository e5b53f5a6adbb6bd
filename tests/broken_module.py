"""A module that cannot be imported: its import raises."""

raise RuntimeError("broken on import")


def call() -> None:
    """Never reached."""
