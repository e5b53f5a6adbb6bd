"""The ``offbench`` command line: parse, validate, delegate, render; the only place that exits.

Exit codes (documented in the README): 0 all cells ok; 1 some cell failed or timed
out; 2 bad input (one line on stderr, never a traceback); 130 interrupted by Ctrl-C;
143 stopped by SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from offbench import __version__, loops, results, runner, settings, strategies, workloads
from offbench.errors import OffbenchError
from offbench.progress import RunProgress
from offbench.report import print_run

EXIT_OK, EXIT_FAILED_CELLS, EXIT_USAGE = 0, 1, 2
EXIT_SIGINT, EXIT_SIGTERM = 130, 143

app = typer.Typer(
    name="offbench",
    help="Measure which asyncio offload strategy keeps your event loop responsive, "
    "and what each costs.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"offbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_version,
                     is_eager=True),
    ] = False,
) -> None:
    """Measure which asyncio offload strategy keeps your event loop responsive."""


@app.command()
def run(
    workload: Annotated[
        list[str] | None,
        typer.Option("-w", "--workload", metavar="NAME",
                     help=f"Workload to run, repeatable: {', '.join(workloads.names())}, "
                     "or module:function. Default: all built-in."),
    ] = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option("-s", "--strategy", metavar="NAME",
                     help=f"Strategy, repeatable: {', '.join(strategies.names())}. Default: all."),
    ] = None,
    loop: Annotated[
        list[str] | None,
        typer.Option("-l", "--loop", metavar="NAME",
                     help=f"Event loop, repeatable: {', '.join(loops.names())}. Default: all."),
    ] = None,
    concurrency: Annotated[
        list[int] | None,
        typer.Option("-c", "--concurrency", metavar="N",
                     help="Concurrent tasks calling the workload, repeatable. Default: 1 and 8."),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option("-d", "--duration", metavar="SECONDS",
                     help=f"Measured window per cell. Default: {settings.DEFAULT_WINDOW_S:g} s "
                     f"({settings.QUICK_WINDOW_S:g} s with --quick)."),
    ] = None,
    warmup: Annotated[
        float | None,
        typer.Option("--warmup", metavar="SECONDS",
                     help=f"Discarded warm-up before each window. Default: "
                     f"{settings.DEFAULT_WARMUP_S:g} s ({settings.QUICK_WARMUP_S:g} s with --quick)."),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Short windows, same matrix (about 30 s in all).")
    ] = False,
    json_path: Annotated[
        str | None,
        typer.Option("-o", "--json", metavar="PATH",
                     help="Write results as JSON ('-' = stdout, and then nothing else there)."),
    ] = None,
    probe_interval: Annotated[
        float,
        typer.Option("--probe-interval", metavar="MS", help="Probe tick interval."),
    ] = settings.DEFAULT_PROBE_INTERVAL_MS,
    stall_threshold: Annotated[
        float,
        typer.Option("--stall-threshold", metavar="MS",
                     help="A probe lag above this counts as a stall (for 'avail')."),
    ] = settings.DEFAULT_STALL_THRESHOLD_MS,
    cell_timeout: Annotated[
        float | None,
        typer.Option("--cell-timeout", metavar="SECONDS",
                     help="Kill a cell's worker after this long. Default: 15 s + 3 × (warm-up + window)."),
    ] = None,
) -> int:
    """Measure workloads × strategies × loops × concurrency; print tables, optionally save JSON."""
    run_settings = settings.build_settings(
        workload_names=workload or (),
        strategy_names=strategy or (),
        loop_names=loop or (),
        concurrency=concurrency or (),
        window_s=duration,
        warmup_s=warmup,
        quick=quick,
        probe_interval_ms=probe_interval,
        stall_threshold_ms=stall_threshold,
        cell_timeout_s=cell_timeout,
    )
    to_stdout = json_path == "-"
    out_path = Path(json_path) if json_path and not to_stdout else None
    if out_path is not None:
        results.check_writable(out_path)
    console = _console(stderr=to_stdout)
    stopped_by = _StopSignal()
    with stopped_by, RunProgress(_console(stderr=True), live=not _no_color()) as progress:
        run_result = runner.run(run_settings, progress)
    data = results.encode(run_result)
    if out_path is not None:
        results.write_atomic(out_path, data)
    print_run(run_result, console)
    if to_stdout:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    if stopped_by.signum is not None or not run_result.complete:
        return EXIT_SIGTERM if stopped_by.signum == signal.SIGTERM else EXIT_SIGINT
    return EXIT_OK if all(r.ok for r in run_result.results) else EXIT_FAILED_CELLS


class _StopSignal:
    """Turn SIGTERM into the same orderly stop as Ctrl-C, and remember which signal it was."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: object = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        raise KeyboardInterrupt

    def __enter__(self) -> _StopSignal:
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        signal.signal(signal.SIGTERM, self._previous)  # type: ignore[arg-type]


def _console(stderr: bool) -> Console:
    """Return a console; when not a terminal and no COLUMNS is set, wide enough for the tables."""
    stream = sys.stderr if stderr else sys.stdout
    wide = None if stream.isatty() or "COLUMNS" in os.environ else 160
    return Console(stderr=stderr, width=wide, color_system=None if _no_color() else "auto")


def _no_color() -> bool:
    """Return True when the user asked for no colours (https://no-color.org)."""
    return bool(os.environ.get("NO_COLOR"))


def main(argv: list[str] | None = None) -> NoReturn:
    """Console-script entry: run the CLI, mapping every user error to one line and exit 2."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="offbench", standalone_mode=False)
    except OffbenchError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(EXIT_SIGINT)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(EXIT_SIGINT)
    except Exception as exc:
        if _is_usage_error(exc):
            _fail(exc.format_message())  # type: ignore[attr-defined]
        raise
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def _is_usage_error(exc: Exception) -> bool:
    # Click's (or typer's vendored click's) UsageError, without importing either by name.
    return getattr(exc, "exit_code", None) == EXIT_USAGE and hasattr(exc, "format_message")


def _fail(message: str) -> NoReturn:
    first_line = message.strip().splitlines()[0] if message.strip() else "invalid usage"
    print(f"offbench: error: {first_line}", file=sys.stderr)
    sys.exit(EXIT_USAGE)
