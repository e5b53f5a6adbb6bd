"""Every option of ``offbench run``, declared once: its name, its flags, its help.

An option's ``name`` is the same word in all three places a user meets it: the field
of :class:`~offbench.plan.settings.Choices` and of
:class:`~offbench.model.settings.RunSettings`, and the key of a scenario file. Its
command-line flag is that name without its unit (``lag_budget_ms`` is
``--lag-budget``), singular when it repeats (``strategies`` is ``-s/--strategy``).
The ``run`` command's signature is generated from :data:`OPTIONS`
(:func:`offbench.cli.run`), and a scenario file's keys are read through it
(:mod:`offbench.plan.scenario`); ``tests/test_options.py`` holds the three to one list.

A few things are said only on the command line, never in a scenario: where outputs
go, ``--dry-run``, ``--chart``, ``--setup`` (a scenario gives ``setup`` per workload)
and the scenario itself (:data:`CLI_ONLY`); ``--quick`` is a way of running a scenario,
not part of one.
"""

from __future__ import annotations

from dataclasses import dataclass

from offbench.model.settings import (
    DEFAULT_DURATION_S,
    DEFAULT_EVIDENCE_THRESHOLD_MS,
    DEFAULT_LAG_BUDGET_MS,
    DEFAULT_PROBE_INTERVAL_MS,
    DEFAULT_PROCESSES,
    DEFAULT_SAMPLES,
    DEFAULT_STALL_THRESHOLD_MS,
    DEFAULT_WARMUP_S,
    QUICK_DURATION_S,
    QUICK_WARMUP_S,
)

Kind = type[int] | type[float] | type[str] | type[bool]


@dataclass(frozen=True)
class Option:
    """One option of ``offbench run``: a settings field, a scenario key and a command-line flag."""

    name: str
    """The field of the settings and the key of a scenario file."""
    flags: tuple[str, ...]
    """How the command line says it; a boolean's ``--x/--no-x`` is one flag."""
    kind: Kind
    """The type of one value on the command line."""
    help: str
    metavar: str = ""
    many: bool = False
    """Repeatable on the command line; a list in the settings and in a scenario."""
    scenario: bool = True
    """Also a key of a scenario file."""


OPTIONS: tuple[Option, ...] = (
    Option("workloads", ("-w", "--workload"), str, metavar="NAME", many=True,
           help="Workload to run, repeatable: {workloads}, or module:function. Default: all built-in."),
    Option("strategies", ("-s", "--strategy"), str, metavar="NAME", many=True,
           help="Strategy, repeatable: {strategies}. Default: {default_strategies}."),
    Option("loops", ("-l", "--loop"), str, metavar="NAME", many=True,
           help="Event loop, repeatable: {loops}. Default: every default one that runs here."),
    Option("concurrency", ("-c", "--concurrency"), int, metavar="N", many=True,
           help="Concurrent tasks calling the workload, repeatable. Default: 1 and 8."),
    Option("max_workers", ("--max-workers",), int, metavar="N", many=True,
           help="Pool size for the pool strategies (default executor, process pool), repeatable. "
           "Default: the library's."),
    Option("pythons", ("--python",), str, metavar="PATH", many=True,
           help="Run the cells under this interpreter (3.11+; a command like python3.13, or a path), "
           "repeatable, side by side in one table. offbench is installed in a venv cached per "
           "interpreter (~/.cache/offbench/venvs, or $OFFBENCH_CACHE; about a minute the first time). "
           "'self' is the interpreter running offbench. Default: only the running interpreter."),
    Option("duration_s", ("-d", "--duration"), float, metavar="SECONDS",
           help=f"Measured window per cell. Default: {DEFAULT_DURATION_S:g} s ({QUICK_DURATION_S:g} s with "
           "--quick)."),
    Option("warmup_s", ("--warmup",), float, metavar="SECONDS",
           help=f"Discarded warm-up before each window. Default: {DEFAULT_WARMUP_S:g} s "
           f"({QUICK_WARMUP_S:g} s with --quick)."),
    Option("quick", ("--quick",), bool, scenario=False,
           help="Short windows, same matrix (about a minute for the default one)."),
    Option("lag_budget_ms", ("--lag-budget",), float, metavar="MS",
           help=f"Loop lag p99 a strategy may cause and still win the verdict. Default: "
           f"{DEFAULT_LAG_BUDGET_MS:g} ms."),
    Option("samples", ("--samples",), int, metavar="K",
           help="Cut each window into K equal parts, each measured alone, for the spread ('±') and "
           f"for 'offbench compare'. Default: {DEFAULT_SAMPLES}."),
    Option("processes", ("--processes",), int, metavar="N",
           help="Measure each cell in N fresh worker processes, one after the other, sharing the "
           "window's parts, so the spread includes process-to-process differences. "
           f"Default: {DEFAULT_PROCESSES}."),
    Option("probe_interval_ms", ("--probe-interval",), float, metavar="MS",
           help=f"Probe tick interval. Default: {DEFAULT_PROBE_INTERVAL_MS:g} ms."),
    Option("stall_threshold_ms", ("--stall-threshold",), float, metavar="MS",
           help=f"A probe lag above this counts as a stall (for 'avail'). Default: "
           f"{DEFAULT_STALL_THRESHOLD_MS:g} ms."),
    Option("evidence_threshold_ms", ("--evidence-threshold",), float, metavar="MS",
           help="Sample the loop thread's stack when it stalls longer than this, and report the code "
           f"behind the longest stalls; 0 = off. Default: {DEFAULT_EVIDENCE_THRESHOLD_MS:g} ms."),
    Option("cell_timeout_s", ("--cell-timeout",), float, metavar="SECONDS",
           help="Kill a cell's worker process after this long. Default: 15 s + 3 × (warm-up + window)."),
    Option("semantics", ("--semantics/--no-semantics",), bool,
           help="After measuring, run 'offbench check' for the run's strategies and loops (about 1 s "
           "each), store it as \"semantics\" and warn in the verdict. Default: on."),
    Option("pool_costs", ("--pool-costs/--no-pool-costs",), bool,
           help="When the run has a process pool (process-pool, loky), also measure what one costs "
           "here: start-up by start method, and a call's round trip with no argument and with "
           "--payload-bytes (about 2 s). Default: on."),
    Option("utilisation", ("--utilisation/--no-utilisation",), bool,
           help="Time every callback the loop runs: how busy it was, and a check of the probe's "
           "stalls against the callbacks. Costs 5-6 µs per offloaded call: 5-11 % of a no-op's "
           "throughput, nothing for real work; turn it off for microbenchmarks. Default: on."),
    Option("payload_bytes", ("--payload-bytes",), int, metavar="N",
           help="Ship N bytes of argument with every call, so process pools pay to pickle and send "
           "them (threads do not): see where shipping arguments dominates. Also the payload of the "
           "pool-cost table (1 MiB when not given). Default: 0."),
    Option("dask_scheduler", ("--dask-scheduler",), str, metavar="ADDRESS",
           help="For -s dask: connect to this scheduler (tcp://HOST:PORT) instead of starting a local "
           "cluster per cell."),
    Option("fail_if", ("--fail-if",), str, metavar="EXPR", many=True,
           help="Exit 1 if a cell breaks this gate, repeatable: FIELD OP NUMBER [where KEY=VALUE,...], "
           "e.g. \"loop_lag_ms.p99 > 5 where strategy=direct\" (OP: < <= > >= == !=; fields in their "
           "own units, see docs/reference.md). A failed cell, or one with no value, breaks it too."),
)
"""The options of ``offbench run``, in the order ``--help`` lists them."""

CLI_ONLY = ("scenario", "setup", "json", "markdown", "pyperf", "dry_run", "chart")
"""Parameters of ``offbench run`` that are not options of a run: where it comes from and goes to."""

UNITS = ("_ms", "_s")
"""Suffixes a name carries and its flag drops: the unit is in the help's metavar."""


def get(name: str) -> Option:
    """Return the option called ``name``."""
    return next(option for option in OPTIONS if option.name == name)


def long_flags(name: str) -> set[str]:
    """Return the long flags the naming rule allows ``name``: no unit, dashes, plural or singular."""
    stem = next((name.removesuffix(unit) for unit in UNITS if name.endswith(unit)), name)
    singular = stem[:-3] + "y" if stem.endswith("ies") else stem.removesuffix("s")
    return {"--" + word.replace("_", "-") for word in (stem, singular)}
