"""Files offbench writes and reads: outputs checked first, inputs read within limits.

offbench often runs as root in CI, where renaming a temporary file over ``-o /dev/null``
replaces the machine's ``/dev/null``. So an output path is looked at first: a regular
file (or nothing yet) is replaced atomically, through a temporary file and a rename, at
the path a symlink names (the link stays); a character device or a FIFO (``/dev/null``,
``/dev/stdout``, ``mkfifo``) is written directly, as a shell redirection would; anything
else (a directory, a block device, a socket) is refused with one line before anything
is measured.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from offbench.errors import OffbenchError, UsageError

MiB = 1 << 20


def _kind(mode: int) -> str:
    """Name a file type as a sentence would: ``a character device``."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return name
    return "not a regular file"


def _through_proc(path: Path) -> bool:
    """Return whether ``path`` reaches its file through ``/proc`` (``/dev/stdout``, ``/dev/fd/3``).

    Such a name stands for a file another process opened: it is written in place, as
    a shell redirection would, never renamed over (the rename would land elsewhere).
    """
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on symlinks in a row
        parent = os.path.realpath(os.path.dirname(current))
        if parent == "/proc" or parent.startswith("/proc/"):
            return True
        current = os.path.join(parent, os.path.basename(current))
        if not os.path.islink(current):
            return False
        current = os.path.join(parent, os.readlink(current))
    return False


def _target(path: Path) -> tuple[bool, Path]:
    """Return whether ``path`` is written directly (a device, a FIFO), and the path to write.

    A regular file, or nothing yet, is written at the real path a symlink names. Raise
    ``UsageError`` for what offbench never writes.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False, Path(os.path.realpath(path))  # nothing there, or a link to nothing yet
    except OSError as exc:
        raise UsageError(f"{path}: cannot be written: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode):
        return _through_proc(path), Path(os.path.realpath(path))
    if stat.S_ISDIR(mode):
        raise UsageError(f"{path}: is a directory")
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return True, path
    raise UsageError(f"{path}: is {_kind(mode)}: offbench writes only regular files, "
                     "character devices (/dev/null) and FIFOs")


def check_writable(path: Path) -> None:
    """Raise ``UsageError`` now if ``path`` could not be written later (missing or read-only dir).

    The directory is tried for real, with a temporary file created and removed beside
    where ``path`` will go: permission bits alone do not say (root passes them, and
    ``/proc`` or a read-only mount still refuse). A device or FIFO is only checked for
    write permission: opening one may block (a FIFO) or act (a tape rewinds).
    """
    direct, target = _target(path)
    if direct:
        if not os.access(path, os.W_OK):
            raise UsageError(f"{path}: not writable")
        return
    directory = target.parent
    if not directory.is_dir():
        raise UsageError(f"{path}: directory {str(directory)!r} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".check", dir=directory)
    except OSError as exc:
        raise UsageError(
            f"{path}: directory {str(directory)!r} is not writable: {exc.strerror or exc}"
        ) from None
    os.close(fd)
    os.unlink(probe)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``: a regular file atomically, a device or FIFO directly.

    A regular file goes through a temporary file and a rename (never a torn file), at the
    real path a symlink names (the link stays), with the permissions it had.
    """
    direct, target = _target(path)
    if direct:
        _write_directly(path, data)
        return
    try:
        existing: os.stat_result | None = os.stat(target)
    except OSError:
        existing = None
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        if existing is not None:
            os.fchmod(fd, stat.S_IMODE(existing.st_mode))
            with contextlib.suppress(OSError):  # only root may, and only root needs to
                os.fchown(fd, existing.st_uid, existing.st_gid)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_directly(path: Path, data: bytes) -> None:
    """Write to a device or FIFO as ``>>`` would: never created or truncated.

    A FIFO's open waits for its reader, as a shell redirection's does.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOCTTY)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def read_regular(path: Path, limit: int, what: str) -> bytes:
    """Return the contents of the regular file ``path``, at most ``limit`` bytes.

    Anything else is a one-line ``UsageError`` naming ``what`` the file should have been
    ("an offbench results file"): a device (``/dev/zero`` reads without end), a FIFO (it
    blocks), a directory, or a file larger than ``limit``. The type is checked before the
    file is opened (opening a device may act) and again on what was opened.
    """
    try:
        mode, size = (info := os.stat(path)).st_mode, info.st_size
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    _check_input(path, mode, size, limit, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(fd)
        _check_input(path, info.st_mode, info.st_size, limit, what)
        try:
            data = source.read(limit + 1)
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    _check_input(path, mode, len(data), limit, what)
    return data


def _check_input(path: Path, mode: int, size: int, limit: int, what: str) -> None:
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path}: {_kind(mode)}, not {what}")
    if size > limit:
        amount = f"{limit // MiB} MiB" if limit % MiB == 0 else f"{limit} bytes"
        raise UsageError(f"{path}: larger than {amount}, not {what}")


class Outputs:
    """The files a command writes besides its tables: checked before any work, written safely.

    At most one of them may be ``-`` (standard output); the tables then go to stderr.
    """

    def __init__(self, **targets: str | None) -> None:
        chosen = {name: target for name, target in targets.items() if target}
        on_stdout = [name for name, target in chosen.items() if target == "-"]
        if len(on_stdout) > 1:
            both = " and ".join(f"--{name}" for name in on_stdout)
            raise UsageError(f"only one output can be '-' (stdout), not {both}")
        self.to_stdout = bool(on_stdout)
        self._paths = {name: Path(target) for name, target in chosen.items() if target != "-"}
        self._stdout_name = on_stdout[0] if on_stdout else None
        self._pending = b""
        self.failed = False
        """True once writing an output failed (said on stderr); the command then exits 1."""
        for path in self._paths.values():
            check_writable(path)

    def write(self, name: str, render: Callable[[], bytes | None], empty: str = "") -> None:
        """Write what ``render`` makes where ``--name`` asked (a file now, stdout at the end).

        ``render`` runs only if the output was asked for; ``None`` from it means there
        is nothing to write, and ``empty`` says why.
        """
        if name not in self._paths and name != self._stdout_name:
            return
        data = render()
        if data is None:
            print(f"offbench: warning: --{name} not written: {empty}", file=sys.stderr)
        elif name == self._stdout_name:
            self._pending = data
        else:
            try:
                write_atomic(self._paths[name], data)
            except (OSError, OffbenchError) as exc:
                # Checked before the work, so rare (a full disk, /dev/full, a path changed
                # meanwhile): say it, and keep going so the tables (and any other output)
                # still show what was measured.
                self.failed = True
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                print(f"offbench: error: {self._paths[name]}: not written: {reason}", file=sys.stderr)

    def flush_stdout(self) -> None:
        """Write the output that goes to stdout, after the tables (which went to stderr)."""
        if self._pending:
            sys.stdout.buffer.write(self._pending)
            sys.stdout.flush()
