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
)

from offbench.formatting import load_label, loop_label, strategy_label
from offbench.model.cells import CellSpec
from offbench.model.results import CellResult
from offbench.model.settings import Interpreter
from offbench.render.texts import cell_line


class RunProgress:
    """A runner observer that shows the run's progress on ``console``."""

    def __init__(self, console: Console, live: bool = True) -> None:
        self.console = console
        self.live = live and console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("units"),
            TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),
            console=console,
            auto_refresh=False,
            transient=True,
            disable=not self.live,
        )
        self.task = self.progress.add_task("starting", total=None, eta="–")
        self.cells_done = 0

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

    def round_started(self, index: int, cells: int) -> None:
        """Without a terminal, log the start of each round on a line of its own."""
        if not self.live:
            self.console.print(f"round {index + 1}: {cells} cell{'s' * (cells != 1)}", markup=False)

    def unit_started(self, done: int, planned: int, cell: CellSpec, round_index: int) -> None:
        """Show which cell a unit measures now, and in which round."""
        loop = loop_label(cell.loop, cell.python)
        strategy = strategy_label(cell.strategy, cell.max_workers)
        where = (f"round {round_index + 1} · {cell.workload} · {strategy} · {loop} · "
                 f"{load_label(cell.concurrency, cell.rate)}")
        self.progress.update(self.task, total=planned, completed=done, description=escape(where))
        self.progress.refresh()

    def unit_finished(self, done: int, planned: int, seconds_left: float | None) -> None:
        """Advance the bar, and show the runner's estimate of the time left (it knows each cell's units)."""
        eta = "–" if seconds_left is None else _clock(seconds_left)
        self.progress.update(self.task, total=planned, completed=done, eta=eta)
        self.progress.refresh()

    def cell_finished(self, index: int, total: int, result: CellResult) -> None:
        """Without a terminal, log a cell's outcome on one line when it gets no more units."""
        self.cells_done += 1
        if not self.live:
            units = f" ({len(result.units)} units, {result.stopped})" if result.ok else ""
            self.console.print(
                f"[{self.cells_done}/{total}] {cell_line(result)}{units}", markup=False, soft_wrap=True
            )

    def waiting(self) -> None:
        """Redraw the elapsed time while a unit runs."""
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

    def searching(self, cell: CellSpec, probe: int) -> None:
        """Show which strategy's capacity is being searched, at which rate; without a terminal, log it."""
        where = (f"capacity · {cell.workload} · {strategy_label(cell.strategy, cell.max_workers)} · "
                 f"{loop_label(cell.loop, cell.python)} · {load_label(cell.concurrency, cell.rate)}")
        self.progress.update(self.task, description=escape(where))
        self.progress.refresh()
        if not self.live and probe == 0:
            self.console.print(f"searching capacity: {where.removeprefix('capacity · ')}", markup=False)

    def installing(self, python: Interpreter) -> None:
        """Say that a venv is being made for ``python`` (the first time only), on a line of its own."""
        self.console.print(f"preparing a venv for {python.given} (Python {python.label}, first time only)…",
                           markup=False, highlight=False)


def _clock(seconds: float) -> str:
    """Format a duration as ``0:01:23``."""
    whole = max(0, round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
