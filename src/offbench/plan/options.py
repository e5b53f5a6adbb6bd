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
and the scenario itself (:data:`CLI_ONLY`).
"""

from __future__ import annotations

from dataclasses import dataclass

from offbench.model.settings import (
    DEFAULT_EVIDENCE_THRESHOLD_MS,
    DEFAULT_LAG_BUDGET_MS,
    DEFAULT_PROBE_INTERVAL_MS,
    DEFAULT_SLO_MS,
    DEFAULT_STALL_THRESHOLD_MS,
    EFFORT,
    QUICK,
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
           help="Event loop, repeatable: {loops}. Default: every default one that runs here (the first, "
           "asyncio, with --quick)."),
    Option("concurrency", ("-c", "--concurrency"), int, metavar="N", many=True,
           help="Concurrent tasks calling the workload, repeatable. Default: 1 and 8 (none when --rate "
           "is given: only rate cells then)."),
    Option("rate", ("--rate",), str, metavar="R|auto", many=True,
           help="Open loop: start R calls a second on a schedule, whatever is still in flight, and time "
           "each from its intended start; repeatable, a sweep (rate cells beside -c's). 'auto': find "
           "each strategy's highest rate with latency p99 within --slo and loop lag p99 within "
           "--lag-budget."),
    Option("arrivals", ("--arrivals",), str, metavar="fixed|poisson",
           help="How rate cells space their calls: one every 1/R, or Poisson arrivals of mean rate R "
           "(seeded by --seed). Default: fixed."),
    Option("max_in_flight", ("--max-in-flight",), int, metavar="N",
           help="Bound a rate cell's calls in flight: a call due at the bound is refused, and counted. "
           "Default: unbounded (far past a strategy's capacity its backlog then grows without end)."),
    Option("slo_ms", ("--slo",), float, metavar="MS",
           help=f"The latency p99 rate cells must stay under, from each call's intended start (rate "
           f"verdict, --rate auto). Default: {DEFAULT_SLO_MS:g} ms."),
    Option("max_workers", ("--max-workers",), int, metavar="N", many=True,
           help="Pool size for the pool strategies (default executor, process pool), repeatable. "
           "Default: the library's."),
    Option("pythons", ("--python",), str, metavar="PATH", many=True,
           help="Run the cells under this interpreter (3.11+; a command like python3.13, or a path), "
           "repeatable, side by side in one table. offbench is installed in a venv cached per "
           "interpreter (~/.cache/offbench/venvs, or $OFFBENCH_CACHE; about 20 s the first time). "
           "'self' is the interpreter running offbench. Default: only the running interpreter."),
    Option("sized_pools", ("--sized-pools/--no-sized-pools",), bool,
           help="When the highest concurrency exceeds the default executor's threads, also measure "
           "to-thread with a default executor sized to it, so the verdict can name that fix. Default: on."),
    Option("quick", ("--quick",), bool,
           help=f"An answer in seconds: one loop (asyncio) unless -l names others, windows of "
           f"{QUICK.min_window_s * 1000:g} ms or more, {QUICK.min_units} to {QUICK.max_units} units a cell, "
           f"throughput to ±{QUICK.precision_pct:g} % (without: every loop, "
           f"{EFFORT.min_window_s * 1000:g} ms, {EFFORT.min_units} to {EFFORT.max_units} units, "
           f"±{EFFORT.precision_pct:g} %)."),
    Option("precision_pct", ("--precision",), float, metavar="PCT",
           help="A cell gets units (worker processes, one per round) until its throughput is known to "
           f"±PCT % at 95 % confidence. Default: {EFFORT.precision_pct:g} ({QUICK.precision_pct:g} with "
           f"--quick); at least {EFFORT.min_units} units, at most {EFFORT.max_units} "
           f"({QUICK.max_units} with --quick)."),
    Option("rounds", ("--rounds",), int, metavar="N",
           help="Measure every cell in exactly N units (one per round), however precise. Default: as "
           "many as the precision needs."),
    Option("time_budget_s", ("--time-budget",), float, metavar="SECONDS",
           help="Stop measuring when the next round would end the run later than this; the summary "
           "says what precision that bought. The first round (every cell's first unit) is always "
           "measured, so a budget below it is exceeded. Default: no limit."),
    Option("duration_s", ("-d", "--duration"), float, metavar="SECONDS",
           help="Every unit's measured window, fixed. Default: sized per cell from its first unit's "
           f"warm-up, so each task completes {EFFORT.calls_per_task} calls ({QUICK.calls_per_task} with "
           f"--quick), never under {EFFORT.min_window_s:g} s ({QUICK.min_window_s:g} s)."),
    Option("warmup_s", ("--warmup",), float, metavar="SECONDS",
           help="Every unit's discarded warm-up, fixed. Default: until each task's first call has "
           "returned (every thread or process then has run one)."),
    Option("seed", ("--seed",), int, metavar="N",
           help="Seed of the random order of cells within each round (recorded in the results, so a "
           "run's order can be repeated). Default: a fresh one."),
    Option("lag_budget_ms", ("--lag-budget",), float, metavar="MS",
           help=f"Loop lag p99 a strategy may cause and still win the verdict. Default: "
           f"{DEFAULT_LAG_BUDGET_MS:g} ms."),
    Option("probe_interval_ms", ("--probe-interval",), float, metavar="MS",
           help=f"Probe tick interval. Default: {DEFAULT_PROBE_INTERVAL_MS:g} ms."),
    Option("stall_threshold_ms", ("--stall-threshold",), float, metavar="MS",
           help=f"A probe lag above this counts as a stall (for 'avail'). Default: "
           f"{DEFAULT_STALL_THRESHOLD_MS:g} ms."),
    Option("evidence_threshold_ms", ("--evidence-threshold",), float, metavar="MS",
           help="Sample the loop thread's stack when it stalls longer than this, and report the code "
           f"behind the longest stalls; 0 = off. Default: {DEFAULT_EVIDENCE_THRESHOLD_MS:g} ms."),
    Option("cell_timeout_s", ("--cell-timeout",), float, metavar="SECONDS",
           help="Kill a unit's worker process after this long. Default: 30 s for a cell's first unit, "
           "then 15 s + 3 × the longest of its units so far."),
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

UNITS = ("_ms", "_s", "_pct")
"""Suffixes a name carries and its flag drops: the unit is in the help's metavar."""


def get(name: str) -> Option:
    """Return the option called ``name``."""
    return next(option for option in OPTIONS if option.name == name)


def long_flags(name: str) -> set[str]:
    """Return the long flags the naming rule allows ``name``: no unit, dashes, plural or singular."""
    stem = next((name.removesuffix(unit) for unit in UNITS if name.endswith(unit)), name)
    singular = stem[:-3] + "y" if stem.endswith("ies") else stem.removesuffix("s")
    return {"--" + word.replace("_", "-") for word in (stem, singular)}
