"""The watched program's side of ``offbench watch``: every event loop it runs is measured, and reported.

``offbench watch`` (:mod:`offbench.run.watch`) starts the program with the folder
``measure/hook/`` first on ``PYTHONPATH`` and its :class:`WatchOptions` in ``OFFBENCH_WATCH``.
Python imports ``sitecustomize`` from there at start-up; that bootstrap (standard library
only) puts ``PYTHONPATH`` back as it was, takes its folder off ``sys.path``, calls
:func:`install`, then imports the ``sitecustomize`` it shadowed, if any. The program's
``sys.path``, environment and child processes are then as they would be without offbench.

:func:`install` wraps the function every event loop calls on its thread when it starts
and when it stops running, ``asyncio.events._set_running_loop``: asyncio's ``run_forever``
calls it, and so does uvloop's, which reads it from ``asyncio`` when uvloop is imported.
The wrapping happens when ``asyncio.events`` is first imported (at once, if it already
is), so a program that never imports asyncio imports nothing more, and offbench's
measuring code is imported only when a loop first starts. Each run of a loop gets an
:class:`~offbench.measure.attach.Attachment`; runs of the same thread and kind of loop
add up in one :class:`~offbench.measure.totals.Totals`.

The report (:class:`~offbench.model.watched.ProgramReport`, JSON) goes to the file the
options name: at exit (``atexit``, after the program's own exit hooks), and as a snapshot
every :data:`SNAPSHOT_S` from a thread of its own while a loop is attached, so that a
program killed by a signal it does not handle still leaves figures. A process forked
from the program reports nothing: it is not the program ``offbench watch`` started.

Nothing here may break the program: an error in the hook is written to the report, and
the hook stands aside from then on.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from offbench.measure import attach
    from offbench.measure.totals import Totals

ENV = "OFFBENCH_WATCH"
"""The environment variable that carries :class:`WatchOptions` to the program (removed at start-up)."""
SNAPSHOT_S = 5.0
"""How often the report is rewritten while a loop is attached, seconds."""
EVENTS = "asyncio.events"
Loop = Any
"""An event loop (asyncio's or another's): only ever handed on to :mod:`offbench.measure.attach`."""


class WatchOptions:
    """What ``offbench watch`` asks of the hook: where to report, and how to measure."""

    def __init__(self, report: str, interval_ms: float = 1.0, evidence_ms: float = 10.0,
                 pythonpath: str | None = None) -> None:
        self.report = report
        self.interval_ms = interval_ms
        self.evidence_ms = evidence_ms
        self.pythonpath = pythonpath
        """The program's own ``PYTHONPATH`` (``None``: unset), put back at start-up."""

    def to_env(self) -> str:
        """Return the options as the value of :data:`ENV`."""
        return json.dumps(vars(self))

    @classmethod
    def from_env(cls, text: str) -> WatchOptions:
        """Return the options :meth:`to_env` wrote."""
        return cls(**json.loads(text))


def write_report(path: str, data: bytes) -> None:
    """Write the report through a temporary file and a rename: the parent never reads a torn one.

    No ``fsync``: the parent reads it on the same machine, and a sync could stall the program.
    """
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


class Hook:
    """The program's attachments, their totals, and the report."""

    def __init__(self, options: WatchOptions) -> None:
        self.options = options
        self.pid = os.getpid()
        self.totals: dict[tuple[str, str], Totals] = {}
        self.local = threading.local()
        self.lock = threading.Lock()
        self.error: str | None = None
        self.snapshots: threading.Thread | None = None

    def active(self) -> bool:
        """Return whether to measure: not after an error, nor in a process forked from the program."""
        return self.error is None and os.getpid() == self.pid

    def safely(self, action: Callable[[Loop], None], loop: Loop) -> None:
        """Run ``action(loop)``; an error stops the hook and goes into the report, never to the program.

        After an error, attachments already started are still stopped (their probe and
        watchdog put away), and no new one starts.
        """
        if os.getpid() != self.pid or (self.error is not None and action != self.stopped):
            return
        try:
            action(loop)
        except Exception as exc:
            where = exc.__traceback__
            while where is not None and where.tb_next is not None:
                where = where.tb_next
            place = f" ({where.tb_frame.f_code.co_filename}:{where.tb_lineno})" if where else ""
            hint = (f" (offbench's dependencies must be installed for the program's Python, {sys.executable})"
                    if isinstance(exc, ImportError) else "")
            self.error = self.error or f"offbench's hook failed: {type(exc).__name__}: {exc}{place}{hint}"

    def started(self, loop: Loop) -> None:
        """Attach to ``loop``, which starts running on this thread."""
        from offbench.measure import attach
        from offbench.measure.totals import Totals

        thread = threading.current_thread().name
        family = attach.loop_family(loop)
        with self.lock:
            totals = self.totals.get((thread, family))
            if totals is None:
                totals = self.totals[thread, family] = Totals(
                    loop=family, thread=thread, evidence_ms=self.options.evidence_ms)
        # The snapshot thread before the probe: Thread.start() waits until the new thread runs,
        # which a busy host delayed by 15 ms and more. Started after, that wait was a stall of
        # the program's, and the watchdog's one sample of it (taken in Thread.start) then named
        # the whole stall, the program's own 200 ms sleep after it included (busy-core series,
        # 2026-12-02; the attachment starts its watchdog first for the same reason).
        if self.snapshots is None:
            self.snapshots = threading.Thread(target=self._snapshot, name="offbench-snapshot", daemon=True)
            self.snapshots.start()
        options = attach.Options(interval_ms=self.options.interval_ms, evidence_ms=self.options.evidence_ms)
        attachment = attach.Attachment(loop, totals, options)
        attachment.start()
        self.local.current = attachment

    def stopped(self, loop: Loop) -> None:
        """Detach from ``loop``, which stopped running on this thread."""
        attachment: attach.Attachment | None = getattr(self.local, "current", None)
        self.local.current = None
        if attachment is not None:
            attachment.stop()

    def _snapshot(self) -> None:
        while True:
            time.sleep(SNAPSHOT_S)
            if self.active():
                self.write(final=False)

    def write(self, final: bool) -> None:
        """Write the report: every loop's figures so far (and the hook's error, if any)."""
        if os.getpid() != self.pid:
            return
        with self.lock:
            try:
                data = self._encode(final)
            except Exception as exc:
                self.error = self.error or f"offbench's hook failed to report: {type(exc).__name__}: {exc}"
                data = json.dumps({"loops": [], "final": final, "error": self.error}).encode()
            with contextlib.suppress(OSError):  # offbench is gone (killed): no one to report to
                write_report(self.options.report, data)

    def _encode(self, final: bool) -> bytes:
        if not self.totals:  # no loop ran: offbench's measuring code was never imported
            return json.dumps({"loops": [], "final": final, "error": self.error}).encode()
        import msgspec

        from offbench.model.watched import ProgramReport

        loops = [totals.figures() for totals in self.totals.values()]
        return msgspec.json.encode(ProgramReport(loops=loops, final=final, error=self.error))


HOOK: Hook | None = None


def install(options: WatchOptions) -> Hook:
    """Measure every event loop this program runs, and write the report at exit (see the module's doc)."""
    global HOOK
    hook = HOOK = Hook(options)
    atexit.register(hook.write, True)
    events = sys.modules.get(EVENTS)
    if events is not None:
        _wrap(events, hook)
    else:
        sys.meta_path.insert(0, _AfterImport(EVENTS, lambda module: _wrap(module, hook)))
    return hook


def _wrap(events: ModuleType, hook: Hook) -> None:
    """Wrap ``events._set_running_loop`` for ``hook``; an error goes into the report, not to the import."""
    try:
        _wrap_unsafely(events, hook)
    except Exception as exc:
        hook.error = f"offbench's hook could not wrap asyncio: {type(exc).__name__}: {exc}"


def _wrap_unsafely(events: ModuleType, hook: Hook) -> None:
    """Replace ``events._set_running_loop`` (and asyncio's copy of it) by one that tells ``hook``."""
    original: Callable[[Any], None] = events._set_running_loop
    running: Callable[[], Any] = events._get_running_loop

    def _set_running_loop(loop: Any) -> None:
        if loop is None:
            stopping = running()
            original(None)
            if stopping is not None:
                hook.safely(hook.stopped, stopping)
        else:
            original(loop)
            hook.safely(hook.started, loop)

    events._set_running_loop = _set_running_loop  # type: ignore[attr-defined]
    package = sys.modules.get("asyncio")
    if package is not None and getattr(package, "_set_running_loop", None) is original:
        package._set_running_loop = _set_running_loop  # type: ignore[attr-defined]


class _AfterImport:
    """A meta-path finder that runs ``then(module)`` right after the module ``name`` is first executed.

    It finds the module with the finders after it, and wraps the loader it got; the
    module's ``__loader__`` and ``__spec__.loader`` are put back to that loader.
    """

    def __init__(self, name: str, then: Callable[[ModuleType], None]) -> None:
        self.name = name
        self.then = then

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None and spec.loader is not None:
                spec.loader = _ThenLoader(spec.loader, self.then)
                return spec
        return None


class _ThenLoader:
    def __init__(self, loader: Any, then: Callable[[ModuleType], None]) -> None:
        self.loader = loader
        self.then = then

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.then(module)
