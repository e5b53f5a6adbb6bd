"""Files offbench writes: checked before any work, written atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from offbench.errors import UsageError


def check_writable(path: Path) -> None:
    """Raise ``UsageError`` now if ``path`` could not be written later (missing or read-only dir).

    The directory is tried for real, with a temporary file created and removed beside
    where ``path`` will go: permission bits alone do not say (root passes them, and
    ``/proc`` or a read-only mount still refuse).
    """
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(f"{path}: directory {str(directory)!r} does not exist")
    if path.is_dir():
        raise UsageError(f"{path}: is a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".check", dir=directory)
    except OSError as exc:
        raise UsageError(
            f"{path}: directory {str(directory)!r} is not writable: {exc.strerror or exc}"
        ) from None
    os.close(fd)
    os.unlink(probe)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: never a torn file."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
