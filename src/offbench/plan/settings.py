"""What the user said, validated: command-line and scenario choices become one :class:`RunSettings`.

Scenario files and the command line each produce :class:`Choices`; :func:`merge`
lays one over the other, and every check of user input happens in
:func:`build_settings`, before anything runs, which yields one
:class:`~offbench.model.settings.RunSettings`.
"""

from __future__ import annotations

import math
import random
import re
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

import msgspec

from offbench import loops, strategies, workloads
from offbench.errors import UsageError
from offbench.judge import gates
from offbench.model.cells import CellSpec
from offbench.model.settings import (
    DEFAULT_CONCURRENCY,
    DEFAULT_EVIDENCE_THRESHOLD_MS,
    DEFAULT_LAG_BUDGET_MS,
    DEFAULT_PROBE_INTERVAL_MS,
    DEFAULT_SLO_MS,
    DEFAULT_STALL_THRESHOLD_MS,
    EFFORT,
    QUICK,
    Arrivals,
    Interpreter,
    RunSettings,
    WorkloadSpec,
)
from offbench.plan import interpreters, options
from offbench.plan.matrix import cells
from offbench.processes import open_files_ceiling
from offbench.workloads.user import UserFunction

MAX_ROUNDS = 100
MAX_CONCURRENCY = 4096
MAX_WORKERS = 1024
MAX_PAYLOAD_BYTES = 1 << 30
MAX_RATE = 1_000_000.0
"""Calls a second a rate cell may be offered: far beyond what a loop can start (a few 10 000/s)."""
MAX_IN_FLIGHT = 1_000_000
AUTO = "auto"
"""The ``--rate`` that asks for the capacity search instead of a rate."""
ARRIVALS: tuple[Arrivals, ...] = ("fixed", "poisson")

T = TypeVar("T")
N = TypeVar("N", int, int | None)


class Choices(msgspec.Struct, frozen=True, kw_only=True):
    """What a user asked for, from a scenario file or the command line; ``None`` = not said.

    :func:`merge` lays command-line choices over a file's, and :func:`build_settings`
    validates the result and fills in every default.
    """

    workloads: list[WorkloadSpec] | None = None
    strategies: list[str] | None = None
    loops: list[str] | None = None
    concurrency: list[int] | None = None
    rate: list[float | str] | None = None
    arrivals: str | None = None
    max_in_flight: int | None = None
    slo_ms: float | None = None
    max_workers: list[int | None] | None = None
    pythons: list[str] | None = None
    sized_pools: bool | None = None
    quick: bool | None = None
    precision_pct: float | None = None
    rounds: int | None = None
    time_budget_s: float | None = None
    duration_s: float | None = None
    warmup_s: float | None = None
    seed: int | None = None
    lag_budget_ms: float | None = None
    probe_interval_ms: float | None = None
    stall_threshold_ms: float | None = None
    evidence_threshold_ms: float | None = None
    cell_timeout_s: float | None = None
    semantics: bool | None = None
    pool_costs: bool | None = None
    utilisation: bool | None = None
    payload_bytes: int | None = None
    dask_scheduler: str | None = None
    fail_if: list[str] | None = None


def merge(base: Choices, override: Choices) -> Choices:
    """Return ``base`` with every choice ``override`` makes replacing it.

    ``override.quick`` also drops a window and warm-up the base fixed, so quick windows are
    sized as ``--quick`` sizes them, unless ``override`` fixes them itself.
    """
    said: dict[str, object] = {
        field: value
        for field in override.__struct_fields__
        if (value := getattr(override, field)) is not None and field != "quick"
    }
    if override.quick:
        said.setdefault("duration_s", None)
        said.setdefault("warmup_s", None)
    return msgspec.structs.replace(base, **said, quick=bool(base.quick or override.quick))


def build_settings(choices: Choices | None = None, scenario: str | None = None) -> RunSettings:
    """Validate ``choices`` and fill in defaults; raise ``UsageError`` naming the key at fault.

    What is not chosen takes its default: every built-in workload, the default strategies and
    loops that can run here (with ``quick``, the first of those loops: asyncio; which loop
    runs the program rarely changes which offload wins, and halves the matrix),
    concurrency 1 and 8 (none when rates are given: rate cells only), the library's executor
    sizes. Duplicates are dropped, order is kept.
    """
    c = choices or Choices()
    quick = bool(c.quick)
    duration = _optional_positive("duration", "duration_s", c.duration_s)
    warmup = _optional_positive("warm-up", "warmup_s", c.warmup_s, allow_zero=True)
    timeout = _optional_positive("cell timeout", "cell_timeout_s", c.cell_timeout_s)
    budget = _optional_positive("time budget", "time_budget_s", c.time_budget_s)
    probe_interval = _first(c.probe_interval_ms, DEFAULT_PROBE_INTERVAL_MS)
    stall_threshold = _first(c.stall_threshold_ms, DEFAULT_STALL_THRESHOLD_MS)
    lag_budget = _first(c.lag_budget_ms, DEFAULT_LAG_BUDGET_MS)
    _positive("probe interval", "probe_interval_ms", probe_interval)
    _positive("stall threshold", "stall_threshold_ms", stall_threshold)
    evidence_threshold = _first(c.evidence_threshold_ms, DEFAULT_EVIDENCE_THRESHOLD_MS)
    _positive("evidence threshold", "evidence_threshold_ms", evidence_threshold, allow_zero=True)
    _positive("lag budget", "lag_budget_ms", lag_budget)
    effort = QUICK if quick else EFFORT
    if c.precision_pct is not None:
        if not (math.isfinite(c.precision_pct) and 0 < c.precision_pct <= 100):
            raise UsageError(f"precision must be a percentage above 0 and at most 100, got {c.precision_pct}",
                             key="precision_pct")
        effort = msgspec.structs.replace(effort, precision_pct=c.precision_pct)
    pythons = _pythons(c.pythons)
    chosen_workloads = _workloads(c.workloads)
    if not pythons or any(p.executable == sys.executable and not p.environment for p in pythons):
        # A user's module is imported here only when this interpreter runs cells: with other
        # --python interpreters it may exist in theirs alone, and their cells say if it is missing.
        _check_user_functions(chosen_workloads)
    rates, auto = _rates(c.rate)
    rated = bool(rates) or auto
    levels = ([] if c.concurrency is None and rated else
              _sizes("concurrency", _said(c.concurrency, DEFAULT_CONCURRENCY), MAX_CONCURRENCY))
    in_flight = _needs_rate("max_in_flight", _max_in_flight(c.max_in_flight), rated)
    _check_open_files(chosen_workloads, max([*levels, in_flight or 0]))
    slo = _first(_needs_rate("slo_ms", c.slo_ms, rated), DEFAULT_SLO_MS)
    _positive("SLO", "slo_ms", slo)
    chosen = RunSettings(
        workloads=chosen_workloads,
        strategies=_names(
            "strategies", c.strategies, strategies.default_names(), strategies.require_available
        ),
        loops=_names("loops", c.loops, _installed_loops()[:1] if quick else _installed_loops(),
                     _loop_check(pythons)),
        concurrency=levels,
        rate=rates,
        rate_auto=auto,
        arrivals=_arrivals(_needs_rate("arrivals", c.arrivals, rated)),
        max_in_flight=in_flight,
        slo_ms=slo,
        max_workers=_sizes("max_workers", _said(c.max_workers, [None]), MAX_WORKERS),
        sized_pools=c.sized_pools is not False,
        duration_s=duration,
        warmup_s=warmup,
        effort=effort,
        rounds=_rounds(c.rounds),
        time_budget_s=budget,
        seed=_seed(c.seed),
        probe_interval_ms=probe_interval,
        stall_threshold_ms=stall_threshold,
        evidence_threshold_ms=evidence_threshold,
        cell_timeout_s=timeout,
        lag_budget_ms=lag_budget,
        semantics=c.semantics is not False,
        pool_costs=c.pool_costs is not False,
        utilisation=c.utilisation is not False,
        payload_bytes=_payload_bytes(c.payload_bytes),
        dask_scheduler=_dask_scheduler(c.dask_scheduler, c.strategies),
        pythons=pythons,
        quick=quick,
        scenario=scenario,
    )
    return msgspec.structs.replace(chosen, fail_if=_gates(c.fail_if, cells(chosen)))


def _rates(given: Sequence[float | str] | None) -> tuple[list[float], bool]:
    """Return the offered rates (calls/s) and whether ``auto`` (the capacity search) was asked for."""
    if given is not None and not given:
        raise UsageError("rate is empty: give at least one rate, or auto", key="rate")
    rates: list[float] = []
    auto = False
    for value in given or []:
        if isinstance(value, str) and value.strip().lower() == AUTO:
            auto = True
            continue
        try:
            rate = float(value)
        except ValueError:
            raise UsageError(f"rate must be calls per second or 'auto', got {value!r}", key="rate") from None
        if not (math.isfinite(rate) and 0 < rate <= MAX_RATE):
            raise UsageError(f"rate must be above 0 and at most {MAX_RATE:,.0f} calls per second, "
                             f"got {value}", key="rate")
        rates.append(rate)
    return _unique(rates), auto


def _max_in_flight(given: int | None) -> int | None:
    """Check ``--max-in-flight``: a bound from 1 on a rate cell's calls in flight."""
    if given is not None and not 1 <= given <= MAX_IN_FLIGHT:
        raise UsageError(f"max in flight must be between 1 and {MAX_IN_FLIGHT}, got {given}",
                         key="max_in_flight")
    return given


def _arrivals(given: str | None) -> Arrivals:
    """Check ``--arrivals``: ``fixed`` (the default) or ``poisson``."""
    if given is None:
        return "fixed"
    for known in ARRIVALS:
        if given == known:
            return known
    raise UsageError(f"arrivals must be {' or '.join(ARRIVALS)}, got {given!r}", key="arrivals")


def _needs_rate(key: str, given: T | None, rated: bool) -> T | None:
    """Refuse an option of rate cells in a run without them: it would change nothing."""
    if given is not None and not rated:
        flag = options.get(key).flags[0]
        raise UsageError(f"{flag} applies to rate cells: add --rate", key=key)
    return given


def _optional_positive(what: str, key: str, value: float | None, allow_zero: bool = False) -> float | None:
    """Check a value that may be left unsaid (``None``: offbench decides)."""
    if value is not None:
        _positive(what, key, value, allow_zero)
    return value


def _rounds(given: int | None) -> int | None:
    """Check ``--rounds``: a fixed number of units per cell."""
    if given is not None and not 1 <= given <= MAX_ROUNDS:
        raise UsageError(f"rounds must be a whole number from 1 to {MAX_ROUNDS}, got {given}", key="rounds")
    return given


def _seed(given: int | None) -> int:
    """Return ``--seed``, or a fresh one: the run records it, so its order can be repeated."""
    if given is None:
        return random.randrange(2**31)
    if not 0 <= given < 2**63:
        raise UsageError(f"seed must be a whole number from 0, got {given}", key="seed")
    return given


def _payload_bytes(given: int | None) -> int:
    """Check ``--payload-bytes``: zero (nothing shipped) up to :data:`MAX_PAYLOAD_BYTES`."""
    if given is None:
        return 0
    if not 0 <= given <= MAX_PAYLOAD_BYTES:
        raise UsageError(f"payload bytes must be between 0 and {MAX_PAYLOAD_BYTES} (1 GiB), got {given}",
                         key="payload_bytes")
    return given


def _gates(given: Sequence[str] | None, matrix: Sequence[CellSpec]) -> list[str]:
    """Parse each ``--fail-if`` gate and check that its filter chooses a cell of ``matrix``."""
    for index, text in enumerate(given or []):
        try:
            gates.check_filter(gates.parse(text), matrix)
        except UsageError as exc:
            raise UsageError(str(exc), key=f"fail_if[{index}]") from None
    return _unique([text.strip() for text in given or []])


def _pythons(given: Sequence[str] | None) -> list[Interpreter]:
    """Find and identify each ``--python`` interpreter (no venv yet: the runner prepares those)."""
    if given is not None and not given:
        raise UsageError("pythons is empty: name at least one interpreter", key="pythons")
    found: dict[str, Interpreter] = {}
    for name in _unique(given or []):
        interpreter = interpreters.resolve(name)
        if interpreter.label in found:
            raise UsageError(f"--python {name} is the same interpreter as --python "
                             f"{found[interpreter.label].given} ({interpreter.label})", key="pythons")
        found[interpreter.label] = interpreter
    return list(found.values())


_SCHEDULER_ADDRESS = re.compile(r"^(?:tcp|tls)://(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})/?$")


def _dask_scheduler(address: str | None, chosen: Sequence[str] | None) -> str | None:
    """Check a Dask scheduler address's shape (``tcp://HOST:PORT``); the cell finds out if it answers."""
    if address is None:
        return None
    match = _SCHEDULER_ADDRESS.match(address.strip())
    if not match or not 1 <= int(match["port"]) <= 65535:
        raise UsageError(
            f"dask scheduler must be an address like tcp://HOST:PORT (or tls://), got {address!r}",
            key="dask_scheduler",
        )
    if "dask" not in (chosen or []):
        raise UsageError("a dask scheduler is used only by the dask strategy: add -s dask",
                         key="dask_scheduler")
    return address.strip().rstrip("/")


FILES_MARGIN = 256
"""Open files a worker needs besides its calls': interpreter, pipes, selectors, pools."""


def _check_open_files(chosen: Sequence[WorkloadSpec], concurrency: int) -> None:
    """Refuse up front a concurrency whose open sockets this system cannot allow."""
    per_call = max((workloads.get(w.name).files_per_call for w in chosen), default=0)
    needed = concurrency * per_call + FILES_MARGIN
    limit = open_files_ceiling()
    if per_call and needed > limit:
        raise UsageError(
            f"concurrency {concurrency} needs about {needed} open files, more than this system "
            f"allows ({limit}; raise it with 'ulimit -n', up to 'ulimit -Hn')",
            key="concurrency",
        )


def _first(value: float | None, default: float) -> float:
    return default if value is None else value


def _said(value: Sequence[T] | None, default: Sequence[T]) -> Sequence[T]:
    return default if value is None else value


def _workloads(chosen: Sequence[WorkloadSpec] | None) -> list[WorkloadSpec]:
    """Resolve each workload's parameters; an empty or missing list means every built-in one."""
    if chosen is not None and not chosen:
        raise UsageError("workloads is empty: name at least one workload", key="workloads")
    specs = chosen or [WorkloadSpec(name=name) for name in workloads.names()]
    resolved = [
        resolve_workload(spec, f"workloads[{index}]" if chosen else "workloads")
        for index, spec in enumerate(specs)
    ]
    return list({msgspec.json.encode(w): w for w in resolved}.values())


def _check_user_functions(chosen: Sequence[WorkloadSpec]) -> None:
    """Import each ``module:function`` workload (in a child) and check it names a callable."""
    for index, spec in enumerate(chosen):
        workload = workloads.get(spec.name)
        if isinstance(workload, UserFunction):
            try:
                workload.check()
            except UsageError as exc:
                raise UsageError(str(exc), key=f"workloads[{index}].name") from None


def resolve_workload(spec: WorkloadSpec, key: str) -> WorkloadSpec:
    """Return ``spec`` with every parameter filled in and checked; errors name ``key``'s field."""
    try:
        workload = workloads.get(spec.name)
    except UsageError as exc:
        raise UsageError(str(exc), key=f"{key}.name") from None
    try:
        return WorkloadSpec(name=spec.name, params=workload.resolve_params(spec.params))
    except UsageError as exc:
        raise UsageError(str(exc), key=f"{key}.{exc.key}" if exc.key else key) from None


def _names(
    key: str, chosen: Sequence[str] | None, default: list[str], check: Callable[[str], object]
) -> list[str]:
    if chosen is not None and not chosen:
        raise UsageError(f"{key} is empty: name at least one", key=key)
    names = _unique(chosen or default)
    for name in names:
        try:
            check(name)
        except UsageError as exc:
            raise UsageError(str(exc), key=key) from None
    return names


def _installed_loops() -> list[str]:
    return [
        name
        for name in loops.names()
        if loops.get(name).default and loops.get(name).unavailable_reason() is None
    ]


def _loop_check(pythons: Sequence[Interpreter]) -> Callable[[str], None]:
    """Return the check of a named loop: against each ``--python`` interpreter, else this one."""
    if not pythons:
        return _available_loop

    def check(name: str) -> None:
        for python in pythons:
            version = tuple(int(part) for part in python.version.split(".")[:2])
            here = python.executable == sys.executable
            reason = loops.get(name).unavailable_reason(None if here else version)
            if reason:
                raise UsageError(f"{reason} (--python {python.given})")

    return check


def _available_loop(name: str) -> None:
    reason = loops.get(name).unavailable_reason()
    if reason:
        raise UsageError(reason)


def _sizes(key: str, chosen: Sequence[N], most: int) -> list[N]:
    if not chosen:
        raise UsageError(f"{key} is empty: give at least one value", key=key)
    for value in chosen:
        if value is not None and not 1 <= value <= most:
            raise UsageError(f"{key} must be between 1 and {most}, got {value}", key=key)
    return _unique(chosen)


def _unique(items: Sequence[T]) -> list[T]:
    return list(dict.fromkeys(items))


def _positive(what: str, key: str, value: float, allow_zero: bool = False) -> None:
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = "zero or more" if allow_zero else "more than zero"
        raise UsageError(f"{what} must be {bound}, got {value}", key=key)
