"""The ``offbench`` command line: parse, validate, delegate, render; the only place that exits.

Exit codes (documented in docs/reference.md): 0 all cells ok; 1 some cell failed or timed
out; 2 bad input (one line on stderr, never a traceback); 130 interrupted by Ctrl-C;
143 stopped by SIGTERM.
"""

from __future__ import annotations

import inspect
import os
import platform
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import msgspec
import typer
from rich.console import Console

from offbench import __version__, loops, outputs, strategies, workloads
from offbench.errors import OffbenchError, UsageError
from offbench.judge import compare as compare_
from offbench.judge import gates
from offbench.model import results
from offbench.model import schema as schema_
from offbench.model.semantics import CheckReport, StrategySemantics
from offbench.model.settings import WorkloadSpec
from offbench.plan import catalog, matrix, options, scenario, settings
from offbench.processes import (
    adopt_orphans,
    install_stop_signals,
    raise_open_files_limit,
    stop_signal,
    sweep_stale_scratch,
)
from offbench.render import html as html_report
from offbench.render import markdown, plots
from offbench.render import pyperf as pyperf_export
from offbench.render import semantics as semantics_table
from offbench.render import terminal as report
from offbench.render.progress import RunProgress
from offbench.run import runner
from offbench.semantics import check as semantics_check
from offbench.semantics import experiments
from offbench.workloads import user

EXIT_OK, EXIT_FAILED_CELLS, EXIT_USAGE = 0, 1, 2
CHART_HELP = ("After each workload's table, a chart: throughput bars and loop-lag strips "
              "(p50 → max, log scale).")
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


def run(**given: Any) -> int:
    """Measure workloads × strategies × loops × concurrency; print tables and verdicts; save JSON."""
    said: dict[str, Any] = {option.name: given[option.name] for option in options.OPTIONS}
    said["workloads"] = _workload_choices(given["workloads"], given["setup"])
    command_line = settings.Choices(**said)
    if given["scenario"] is None:
        run_settings = settings.build_settings(command_line)
    else:
        loaded = scenario.load(given["scenario"])
        run_settings = settings.build_settings(
            settings.merge(loaded.choices, command_line), scenario=loaded.source
        )
    if given["dry_run"]:
        _console(stderr=False).print(report.plan(*matrix.outline(run_settings)))
        return EXIT_OK
    outputs = _Outputs(json=given["json"], markdown=given["markdown"], pyperf=given["pyperf"])
    stopped_by = _StopSignal()
    with stopped_by, RunProgress(_console(stderr=True), live=not _no_color()) as progress:
        run_result = runner.run(run_settings, progress)
    outputs.write("json", lambda: results.encode(run_result))
    outputs.write("markdown", lambda: markdown.run(run_result).encode())
    outputs.write("pyperf", lambda: pyperf_export.dumps(run_result),
                  empty="no cell completed a call, so there is no op latency to export")
    report.print_run(run_result, _console(stderr=outputs.to_stdout), charts=given["chart"])
    outputs.flush_stdout()
    if stopped_by.signum is not None or not run_result.complete:
        return EXIT_SIGTERM if stopped_by.signum == signal.SIGTERM else EXIT_SIGINT
    ok = all(r.ok for r in run_result.results) and not outputs.failed
    return EXIT_OK if ok and not gates.broken(run_result.gates) else EXIT_FAILED_CELLS


def _workload_choices(names: list[str] | None, setup: str | None) -> list[WorkloadSpec] | None:
    """Turn ``-w`` names (and ``--setup``, for the module:function ones) into workload choices."""
    if setup is not None and not any(":" in name for name in names or ()):
        raise UsageError("--setup needs a -w module:function workload to apply to")
    if not names:
        return None
    return [
        WorkloadSpec(name=name, params={"setup": setup} if setup and ":" in name else {})
        for name in names
    ]


def _run_parameters() -> list[inspect.Parameter]:
    """Return ``run``'s parameters, generated: the scenario, the options of a run, the outputs.

    The options are :data:`offbench.plan.options.OPTIONS` (their names are the settings'
    fields and the scenario keys); the rest is :data:`~offbench.plan.options.CLI_ONLY`.
    """
    names = {
        "workloads": ", ".join(workloads.names()),
        "strategies": ", ".join(strategies.names()),
        "default_strategies": ", ".join(strategies.default_names()),
        "loops": ", ".join(loops.names()),
    }
    scenario_help = ("A scenario TOML file, or a shipped scenario's name (see 'offbench list'). "
                     "Options given here override the file.")
    found = [_parameter("scenario", Optional[str], None,  # noqa: UP045 - typer reads the annotation
                        typer.Argument(metavar="SCENARIO", help=scenario_help, show_default=False))]
    for option in options.OPTIONS:
        kind: Any = list[option.kind] if option.many else option.kind  # type: ignore[name-defined]
        found.append(_parameter(option.name, Optional[kind], None, typer.Option(  # noqa: UP045
            *option.flags, metavar=option.metavar or None, help=option.help.format(**names),
            show_default=False)))
    found += [
        _parameter("setup", Optional[str], None, typer.Option(  # noqa: UP045
            "--setup", metavar="MODULE:FUNCTION",
            help="Factory whose result is passed as first argument to each module:function workload; "
            "made once per thread, before measuring.")),
        _parameter("json", Optional[str], None, typer.Option(  # noqa: UP045
            "-o", "--json", metavar="PATH",
            help="Write results as JSON ('-' = stdout, and then nothing else there).")),
        _parameter("markdown", Optional[str], None, typer.Option(  # noqa: UP045
            "--markdown", metavar="PATH",
            help="Also write the tables as GitHub-flavoured markdown ('-' = stdout), e.g. for "
            "$GITHUB_STEP_SUMMARY.")),
        _parameter("pyperf", Optional[str], None, typer.Option(  # noqa: UP045
            "--pyperf", metavar="PATH",
            help="Also write a pyperf BenchmarkSuite (one benchmark per cell, op latency per window "
            "part) for 'python -m pyperf stats/hist/compare_to'.")),
        _parameter("dry_run", bool, False, typer.Option(
            "--dry-run", help="Print the matrix the run would measure, and stop.")),
        _parameter("chart", bool, True, typer.Option("--chart/--no-chart", help=CHART_HELP)),
    ]
    return found


def _parameter(name: str, kind: Any, default: object, info: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[kind, info])


run.__signature__ = inspect.Signature(_run_parameters())  # type: ignore[attr-defined]
app.command()(run)


@app.command()
def compare(
    base: Annotated[Path, typer.Argument(metavar="BASE.json", help="Results of the baseline run.")],
    new: Annotated[
        Path | None,
        typer.Argument(metavar="NEW.json", help="Results of the candidate run (not with --by)."),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option("--by", metavar="loop|python",
                     help="Compare within one file instead, round by round: 'loop' puts each loop beside "
                     "the first one, 'python' each --python beside the first (an A/B test in one run)."),
    ] = None,
    fail_on_regression: Annotated[
        float | None,
        typer.Option("--fail-on-regression", metavar="PCT",
                     help="Exit 1 if a cell that passed now fails, or throughput or loop lag p99 got "
                     "worse by more than PCT percent across its whole 95% confidence interval."),
    ] = None,
    lag_floor: Annotated[
        float,
        typer.Option("--lag-floor", metavar="MS",
                     help="Loop lag p99 changes not surely larger than this are never significant: "
                     "one GIL switch interval by default, what lag p99 wanders by between runs "
                     "on a busy 2-CPU machine. Use 1 on a quiet one."),
    ] = compare_.DEFAULT_LAG_FLOOR_MS,
    markdown_path: Annotated[
        str | None,
        typer.Option("--markdown", metavar="PATH",
                     help="Also write the comparison as GitHub-flavoured markdown ('-' = stdout)."),
    ] = None,
    json_path: Annotated[
        str | None,
        typer.Option("-o", "--json", metavar="PATH",
                     help="Also write the comparison as JSON ('-' = stdout)."),
    ] = None,
) -> int:
    """Compare two results files cell by cell (or the loops of one file): what changed beyond noise."""
    if fail_on_regression is not None and not fail_on_regression >= 0:
        raise UsageError(
            f"--fail-on-regression must be a percentage of zero or more, got {fail_on_regression:g}"
        )
    if not lag_floor >= 0:
        raise UsageError(f"--lag-floor must be zero or more, got {lag_floor:g}")
    outputs = _Outputs(json=json_path, markdown=markdown_path)
    if by is not None:
        if by not in ("loop", "python"):
            raise UsageError(f"--by must be 'loop' or 'python', got {by!r}")
        if new is not None:
            raise UsageError(f"--by {by} compares within one file: give only BASE.json")
        axis: compare_.Axis = "loop" if by == "loop" else "python"
        comparison = compare_.by_axis(results.load(base), axis, lag_floor_ms=lag_floor)
    else:
        if new is None:
            raise UsageError("compare needs two files, BASE.json and NEW.json (or one with --by loop)")
        comparison = compare_.compare(
            results.load(base), results.load(new), base_label=str(base), new_label=str(new),
            lag_floor_ms=lag_floor,
        )
    outputs.write("json", lambda: msgspec.json.format(msgspec.json.encode(comparison), indent=2) + b"\n")
    outputs.write("markdown", lambda: markdown.comparison(comparison, fail_on_regression).encode())
    report.print_comparison(comparison, _console(stderr=outputs.to_stdout), fail_on_regression)
    outputs.flush_stdout()
    failing = fail_on_regression is not None and compare_.regressions(comparison, fail_on_regression)
    return EXIT_FAILED_CELLS if failing else EXIT_OK


def _check_help() -> str:
    """Return ``check``'s help: what it does, then each column's question, from the experiments' registry."""
    columns = " ".join(f"{e.column}: {e.question}." for e in experiments.REGISTRY.values())
    return ("Find out, by experiment, what each strategy does to your program's semantics.\n\n"
            f"Columns (✓ = yes): {columns}")


@app.command(help=_check_help())
def check(  # noqa: D103 - its help is _check_help(), from the experiments
    strategy: Annotated[
        list[str] | None,
        typer.Option("-s", "--strategy", metavar="NAME",
                     help=f"Strategy to check, repeatable: {', '.join(strategies.names())}. "
                     f"Default: {', '.join(strategies.default_names())}."),
    ] = None,
    loop: Annotated[
        list[str] | None,
        typer.Option("-l", "--loop", metavar="NAME", help="Event loop, repeatable. Default: all installed."),
    ] = None,
    workload: Annotated[
        str | None,
        typer.Option("-w", "--workload", metavar="MODULE:FUNCTION",
                     help="Your function (called with no arguments) for the experiments that can "
                     "use it: where it runs, worker reuse, loop side effects, pure-Python "
                     "parallelism."),
    ] = None,
    json_path: Annotated[
        str | None,
        typer.Option("-o", "--json", metavar="PATH",
                     help="Also write the findings as JSON ('-' = stdout, and then nothing else there)."),
    ] = None,
) -> int:
    if workload is not None:
        user.check_target(workload, "-w")
        user.check_callable(workload)
    chosen = settings.build_settings(settings.Choices(strategies=strategy, loops=loop))
    outputs = _Outputs(json=json_path)
    console = _console(stderr=True)
    found: list[StrategySemantics] = []
    complete = False
    with _StopSignal() as stopped_by:
        try:
            semantics_check.check(
                chosen.strategies, chosen.loops, workload, found=found,
                on_start=lambda spec: console.print(
                    f"checking {spec.strategy} on {spec.loop}", style="dim", highlight=False),
            )
            complete = True
        except KeyboardInterrupt:
            pass
    outputs.write("json", lambda: msgspec.json.format(msgspec.json.encode(CheckReport(
        offbench_version=__version__, python_version=platform.python_version(),
        complete=complete, semantics=found,
    )), indent=2) + b"\n")
    _console(stderr=outputs.to_stdout).print(semantics_table.tables(found))
    outputs.flush_stdout()
    if not complete:
        return EXIT_SIGTERM if stopped_by.signum == signal.SIGTERM else EXIT_SIGINT
    return EXIT_OK if not any(s.error for s in found) else EXIT_FAILED_CELLS


@app.command()
def show(
    path: Annotated[
        Path, typer.Argument(metavar="RESULTS.json", help="A file written by 'offbench run -o'.")
    ],
    markdown_path: Annotated[
        str | None,
        typer.Option("--markdown", metavar="PATH", help="Also write it as markdown ('-' = stdout)."),
    ] = None,
    chart: Annotated[bool, typer.Option("--chart/--no-chart", help=CHART_HELP)] = True,
    fail_if: Annotated[
        list[str] | None,
        typer.Option("--fail-if", metavar="EXPR",
                     help="Judge the file's cells by these gates instead of the ones it was run with, "
                     "and exit 1 if a cell breaks one (see 'offbench run --help')."),
    ] = None,
) -> int:
    """Render a saved results file as 'offbench run' rendered it: tables, charts, verdicts."""
    outputs = _Outputs(markdown=markdown_path)
    run_result = results.load(path)
    if fail_if:
        for text in fail_if:
            gates.check_filter(gates.parse(text), run_result.results)
        run_result = msgspec.structs.replace(
            run_result, gates=gates.judge_all(fail_if, run_result.results))
    outputs.write("markdown", lambda: markdown.run(run_result).encode())
    report.print_run(run_result, _console(stderr=outputs.to_stdout), charts=chart)
    outputs.flush_stdout()
    return EXIT_FAILED_CELLS if fail_if and gates.broken(run_result.gates) else EXIT_OK


@app.command("report")
def report_command(
    path: Annotated[
        Path, typer.Argument(metavar="RESULTS.json", help="A file written by 'offbench run -o'.")
    ],
    base: Annotated[
        Path | None,
        typer.Argument(metavar="BASE.json",
                       help="A baseline run: its lines are drawn dashed, and the page adds the "
                       "comparison of the two ('offbench compare BASE.json RESULTS.json')."),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("-o", "--output", metavar="PATH",
                     help="report.html: one self-contained page (inline SVG, no network); "
                     "report.svg, .png or .pdf: the charts alone. '-' = HTML on stdout. "
                     "Default: RESULTS with the suffix .html."),
    ] = None,
) -> int:
    """Draw a results file: lag percentile spectra, throughput with its spread, verdict, machine.

    Needs the plot extra: pip install 'offbench[plot]' (matplotlib and Jinja2).
    """
    target = output or str(path.with_suffix(".html"))
    kind = ".html" if target == "-" else html_report.check_target(Path(target))
    run_result = results.load(path)
    base_result = results.load(base) if base is not None else None
    html_report.require()
    if kind != ".html" and not run_result.results:
        raise UsageError(f"{path}: no cell was measured, so there is no chart to draw")
    outputs = _Outputs(output=target)
    if kind == ".html":
        outputs.write("output", lambda: html_report.render(
            run_result, base_result, run_label=path.name,
            base_label=base.name if base is not None else "base").encode())
    else:
        outputs.write("output", lambda: plots.save(plots.run_figure(run_result, base_result), Path(target)))
    outputs.flush_stdout()
    if not outputs.failed and target != "-":
        print(f"offbench: wrote {target}", file=sys.stderr)
    return EXIT_FAILED_CELLS if outputs.failed else EXIT_OK


@app.command()
def schema() -> int:
    """Print the JSON Schema of the results file (draft 2020-12), as shipped in the package."""
    sys.stdout.buffer.write(schema_.shipped())
    sys.stdout.flush()
    return EXIT_OK


_Outputs = outputs.Outputs
"""The files a command writes besides its tables (see :class:`offbench.outputs.Outputs`)."""


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalog as JSON.")] = False,
) -> int:
    """List workloads, strategies, loops and shipped scenarios, one line each."""
    found = catalog.collect()
    if as_json:
        sys.stdout.buffer.write(catalog.encode(found))
        sys.stdout.flush()
    else:
        report.print_catalog(found, _console(stderr=False))
    return EXIT_OK


@app.command(context_settings={"allow_interspersed_args": False})
def watch(
    command: Annotated[
        list[str] | None,
        typer.Argument(metavar="-- PROGRAM [ARGS]...",
                       help="The program, as you would run it: python app.py ARGS (or any command that "
                       "runs Python, e.g. uvicorn app:app)."),
    ] = None,
    lag_budget: Annotated[
        float | None,
        typer.Option("--lag-budget", metavar="MS",
                     help="Judge each loop's lag (--lag-stat) against MS milliseconds; stacks are sampled "
                     "from stalls beyond it (else beyond 10 ms). Over the budget, offbench exits 1 where "
                     "the program exited 0; any other exit code is kept."),
    ] = None,
    lag_stat: Annotated[
        str,
        typer.Option("--lag-stat", metavar="STAT",
                     help="The lag statistic the budget is on: p50, p90, p99, p999 or max."),
    ] = "p99",
    output: Annotated[
        str | None,
        typer.Option("-o", "--output", metavar="FILE", help="Also write the report as JSON to FILE."),
    ] = None,
) -> int:
    """Run a Python program unchanged, measuring every event loop it starts (asyncio, uvloop).

    At its exit (or Ctrl-C, which reaches the program as without offbench) prints to
    stderr each loop's lag table and busy share, and its stalls by call site (how often,
    how long in all, the worst), each with the 'offbench run -w' command that measures
    the offload strategies for it. The program's output and exit code come through
    unchanged (128 + N if signal N killed it); SIGTERM and SIGHUP sent to offbench are
    passed on to it.
    """
    from offbench.render import watch as watch_report
    from offbench.run import watch as watch_

    chosen = watch_.settings(command or [], lag_budget, lag_stat, output)
    result = watch_.watch(chosen)
    print(watch_report.render(result), file=sys.stderr, flush=True)
    if chosen.output is not None:
        watch_.write(result, chosen.output)
    return watch_.exit_code(result)


class _StopSignal:
    """Which stop signal (SIGINT, SIGTERM) ended a command's block, if any.

    The handlers themselves are installed once, first thing in :func:`main`
    (:func:`offbench.processes.install_stop_signals`), so that a signal is an orderly stop
    in whatever phase the command is, the import check before a run included.
    """

    @property
    def signum(self) -> int | None:
        """The first stop signal received, or ``None``."""
        return stop_signal()

    def __enter__(self) -> _StopSignal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


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
    install_stop_signals()  # first: a SIGTERM in any phase is an orderly stop (exit 143)
    adopt_orphans()
    sweep_stale_scratch()
    command = typer.main.get_command(app)
    _import_from_cwd()
    raise_open_files_limit()
    try:
        code = command.main(args=argv, prog_name="offbench", standalone_mode=False)
    except OffbenchError as exc:
        _fail(str(exc))
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(EXIT_SIGTERM if stop_signal() == signal.SIGTERM else EXIT_SIGINT)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        if _is_usage_error(exc):
            _fail(exc.format_message())  # type: ignore[attr-defined]
        raise
    if code == EXIT_SIGINT and stop_signal() == signal.SIGTERM:
        code = EXIT_SIGTERM  # typer turns a KeyboardInterrupt into 130, whichever signal raised it
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def _import_from_cwd() -> None:
    """Make ``module:function`` workloads importable from the current directory, as ``python -m`` does."""
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)


def _is_usage_error(exc: Exception) -> bool:
    # Click's (or typer's vendored click's) UsageError, without importing either by name.
    return getattr(exc, "exit_code", None) == EXIT_USAGE and hasattr(exc, "format_message")


def _fail(message: str) -> NoReturn:
    first_line = message.strip().splitlines()[0] if message.strip() else "invalid usage"
    print(f"offbench: error: {first_line}", file=sys.stderr)
    sys.exit(EXIT_USAGE)
