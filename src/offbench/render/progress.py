"""Progress display for a run: a rich progress bar at a terminal, one log line per cell elsewhere.

The bar never refreshes on its own (``auto_refresh=False``): rich's refresh thread
would compete for CPU with the worker being measured on a small machine. It is
redrawn when a cell starts or ends and a few times a second from the runner's
``waiting`` callback, which costs the parent only a few milliseconds a second.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from offbench.formatting import loop_label
from offbench.model.cells import CellSpec
from offbench.model.results import CellResult
from offbench.model.settings import Interpreter
from offbench.render.terminal import cell_line


class RunProgress:
    """A runner observer that shows the run's progress on ``console``."""

    def __init__(self, console: Console, live: bool = True) -> None:
        self.console = console
        self.live = live and console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            auto_refresh=False,
            transient=True,
            disable=not self.live,
        )
        self.task = self.progress.add_task("starting", total=None)

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def cell_started(self, index: int, total: int, cell: CellSpec) -> None:
        """Show which cell runs now."""
        loop = loop_label(cell.loop, cell.python)
        where = f"{cell.workload} · {cell.strategy} · {loop} · c={cell.concurrency}"
        self.progress.update(self.task, total=total, completed=index, description=escape(where))
        self.progress.refresh()

    def cell_finished(self, index: int, total: int, result: CellResult) -> None:
        """Advance the bar; without a terminal, log the cell's outcome on one line."""
        self.progress.update(self.task, completed=index + 1)
        self.progress.refresh()
        if not self.live:
            self.console.print(
                f"[{index + 1}/{total}] {cell_line(result)}", markup=False, soft_wrap=True
            )

    def waiting(self) -> None:
        """Redraw the elapsed time and ETA while a cell runs."""
        self.progress.refresh()

    def checking(self, strategy: str, loop: str) -> None:
        """Show which strategy's semantics are being checked; without a terminal, log it."""
        self.progress.update(self.task, description=escape(f"semantics · {strategy} · {loop}"))
        self.progress.refresh()
        if not self.live:
            self.console.print(f"checking semantics: {strategy} on {loop}", markup=False)

    def costing(self, pools: list[str], python: str) -> None:
        """Show that the run's process pools are being costed; without a terminal, log it."""
        where = f" under {python}" if python else ""
        self.progress.update(self.task, description=escape(f"pool costs · {', '.join(pools)}{where}"))
        self.progress.refresh()
        if not self.live:
            self.console.print(f"measuring pool costs: {', '.join(pools)}{where}", markup=False)

    def installing(self, python: Interpreter) -> None:
        """Say that a venv is being made for ``python`` (the first time only), on a line of its own."""
        self.console.print(f"preparing a venv for {python.given} (Python {python.label}, first time only)…",
                           markup=False, highlight=False)
