"""What a process pool costs around the work it runs: start-up by start method, and per call.

A process pool keeps the loop responsive only by paying elsewhere, and this module
prices the parts, apart from any workload, in one isolated child process
(:func:`child_main`, run by :func:`offbench.processes.run_child`):

* **Start-up**, once per start method the platform offers (``fork``, ``forkserver``
  and ``spawn`` on Linux) and for loky's reusable executor: from creating the pool
  until every worker process has started and answered a call. Non-fork pools start a
  process per submit while none is idle, so ``workers`` calls at once start them all;
  rounds of them follow, a millisecond apart, until each worker has answered.
  ``forkserver``'s server is started by its first pool and counted in its row (as in
  a cell); multiprocessing's resource tracker, which the first non-fork pool of any
  method would start, is started before the rows, off the clock, so none depends on
  their order. loky's row includes loky's own tracker.
  The targets are built-ins (``os.getpid``, ``len``) and the ``__main__`` that spawn
  and forkserver re-import is empty, so this is the floor: a program's own ``__main__``
  and the modules of its functions are imported on top, by each spawned worker.
* **Per call**, through the warm pool, one call at a time: the round trip of a call
  that does nothing but receive its argument (``len(b"")``, the *no-op*), then of the
  same call shipping ``payload_bytes`` (``len(payload)``). ``pickle_ms`` is pickling
  and unpickling that argument here, in one process, so the rest is IPC:
  *IPC ≈ round trip − no-op − pickling*. Where the payload row dwarfs the no-op,
  shipping arguments, not the pool, is what a call costs (``--payload-bytes``).

Steady state under load is not measured here: each cell's per-call breakdown
(:mod:`offbench.measure.breakdown`) gives it, and :func:`with_payload` makes a cell ship
``--payload-bytes`` with every call.

Fork is measured first, while this process runs one thread: a pool's management
threads (and loky's) are joined when it shuts down, and a fork row refuses to run
if any thread is alive anyway (forking a threaded process can deadlock, CPython
#90622). Every pool is shut down however its row ends, a worker that does not
answer is killed first; a row that fails carries ``error`` and the others go on.
"""

from __future__ import annotations

import functools
import importlib.util
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from multiprocessing import resource_tracker
from multiprocessing.reduction import ForkingPickler
from typing import Annotated, Any

import msgspec

from offbench.model.results import CallCost, PoolCost, Quantiles
from offbench.processes import Launcher, native_thread_count, report_and_exit, run_child
from offbench.stats import median, percentile

DEFAULT_PAYLOAD_BYTES = 1 << 20
"""The payload of the cost table when ``--payload-bytes`` is not given: 1 MiB."""
DEFAULT_CALLS = 200
"""Timed no-op calls per pool by default (a few tens of milliseconds each)."""
QUICK_CALLS = 30
"""Timed no-op calls per pool for ``--quick``."""
PAYLOAD_BUDGET_BYTES = 64 << 20
"""Bytes the timed payload calls of one pool ship in all: they are fewer when payloads are large."""
MIN_PAYLOAD_CALLS = 5
"""Timed payload calls however large the payload: a median needs a few."""
WARMUP_CALLS = 3
"""Untimed calls before each timed series: the first ones pay one-off allocations."""
START_TIMEOUT_S = 60.0
"""How long the workers of one pool get to start and answer before the row fails."""
CALL_TIMEOUT_S = 60.0
"""How long one timed call may take before the row fails."""
TRACKER_SETTLE_S = 0.15
"""Time given multiprocessing's resource tracker to boot before the first non-fork row."""
JOINED_THREADS_GONE_S = 2.0
"""How long a fork row waits for the kernel to drop threads Python has joined (:func:`fork_refusal`)."""
LOKY_IDLE_TIMEOUT_S = 300
"""loky ends workers idle this long; its default (10 s) is far beyond a row, this is for safety."""
POOLS = ("process-pool", "loky")
"""The pools this module can cost, in the order they are measured and listed."""
NO_START_METHOD = ""
"""``start_method`` of a row that failed before a pool (and so its start method) existed: empty."""

clock = time.perf_counter_ns
ignore_sigint = functools.partial(signal.signal, signal.SIGINT, signal.SIG_IGN)
"""Pool initializer: the parent decides about Ctrl-C (CPython #125886). Built-ins only, so
unpickling it in a worker imports nothing (``_init_pool_process`` would import offbench)."""


class CostSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What to cost: which pools, how large, how many calls, and the interpreter's label."""

    pools: list[str]
    """Pool names (``process-pool``, ``loky``); see :func:`pools_for`."""
    workers: int | None = None
    """Workers per pool; ``None``: the executor's default (the CPU count)."""
    payload_bytes: Annotated[int, msgspec.Meta(ge=0)] = DEFAULT_PAYLOAD_BYTES
    """Size of the payload row's argument; 0: no payload row."""
    calls: Annotated[int, msgspec.Meta(ge=1)] = DEFAULT_CALLS
    """Timed no-op calls per pool; payload calls are fewer when large (:func:`payload_calls`)."""
    python: str = ""
    """The interpreter's label (``--python``), copied into every row."""


def pools_for(strategy_names: Sequence[str]) -> list[str]:
    """Return the pools a run of ``strategy_names`` needs costed: its process pools that can run here."""
    wanted = [name for name in POOLS if name in strategy_names]
    return [name for name in wanted if name != "loky" or importlib.util.find_spec("loky") is not None]


def payload_calls(spec: CostSpec) -> int:
    """Return how many payload calls are timed: ``calls``, fewer when they would ship over 64 MiB."""
    if spec.payload_bytes == 0:
        return 0
    return min(spec.calls, max(MIN_PAYLOAD_CALLS, PAYLOAD_BUDGET_BYTES // spec.payload_bytes))


def measure(spec: CostSpec) -> list[PoolCost]:
    """Cost every pool of ``spec`` in this process, one row per pool and start method.

    Meant to run in a child of its own (:func:`child_main`): the forkserver and resource
    tracker it starts live until that process ends. A row that fails carries ``error``;
    ``KeyboardInterrupt`` stops it all, after shutting the current pool down.
    """
    return [_row(pool, method, spec) for pool in _ordered(spec.pools) for method in _methods(pool)]


def _ordered(pools: Sequence[str]) -> list[str]:
    """Known pools in :data:`POOLS` order (``process-pool``, so fork, first), then unknown ones."""
    return [p for p in POOLS if p in pools] + [p for p in dict.fromkeys(pools) if p not in POOLS]


def _methods(pool: str) -> list[str]:
    """Return the start methods to cost ``pool`` with: fork first, while no thread has run."""
    if pool != "process-pool":
        return [NO_START_METHOD]
    return sorted(multiprocessing.get_all_start_methods(), key=lambda method: method != "fork")


def _row(pool: str, method: str, spec: CostSpec) -> PoolCost:
    """Cost one pool started one way; on failure return a row that says why."""
    try:
        return _measured(pool, method, spec)
    except Exception as exc:
        return failed_row(pool, method, spec, f"{type(exc).__name__}: {exc}")


def failed_row(pool: str, method: str, spec: CostSpec, reason: str) -> PoolCost:
    """Return the row of a pool that could not be costed: zeros, and ``reason`` on one line."""
    line = " ".join(reason.split()) or "failed"
    return PoolCost(pool=pool, start_method=method, python=spec.python, workers=0,
                    startup_s=0.0, calls=[], error=line)


def _measured(pool: str, method: str, spec: CostSpec) -> PoolCost:

    if pool == "process-pool" and method != "fork":
        _start_resource_tracker()
    began = clock()
    executor, method, dumps = _open(pool, method, spec.workers)
    finished = False
    try:
        size = int(executor._max_workers)  # type: ignore[attr-defined]
        _start_workers(executor, size)
        startup_s = (clock() - began) / 1e9
        calls = [_call_cost(executor, dumps, 0, spec.calls)]
        if spec.payload_bytes:
            calls.append(_call_cost(executor, dumps, spec.payload_bytes, payload_calls(spec)))
        finished = True
    finally:
        _close(executor, kill=not finished)
    return PoolCost(pool=pool, start_method=method, python=spec.python, workers=size,
                    startup_s=round(startup_s, 6), calls=calls)


Dumps = Callable[[object], "bytes | memoryview"]
"""How a pool pickles a call: what ``pickle_ms`` times, with ``pickle.loads``."""


def _open(pool: str, method: str, workers: int | None) -> tuple[Executor, str, Dumps]:
    """Create ``pool`` (no worker has started yet); return it, its start method and its pickler."""
    if pool == "process-pool":
        return _process_pool(method, workers), method, ForkingPickler.dumps
    if pool == "loky":
        return _loky_pool(workers)
    raise ValueError(f"unknown pool {pool!r} (choose from {', '.join(POOLS)})")


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker, once, and give it time to boot, off the clock.

    One per program, started by its first non-fork pool: left to that pool, its boot (a new
    interpreter) would slow the first such row by tens of ms on a small machine and make
    the rows depend on their order.
    """
    tracker = getattr(resource_tracker, "_resource_tracker", None)
    if tracker is not None and getattr(tracker, "_pid", None) is None:
        resource_tracker.ensure_running()
        time.sleep(TRACKER_SETTLE_S)


def _process_pool(method: str, workers: int | None) -> ProcessPoolExecutor:
    if method == "fork" and (reason := fork_refusal()):
        raise RuntimeError(reason)
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method),
                               initializer=ignore_sigint)


def fork_refusal() -> str | None:
    """Return why forking here is unsafe (threads are running), or ``None`` when it is safe.

    Python may be down to one thread while the kernel still lists a thread it joined: join()
    returns when the thread's state is released, a moment before the OS thread exits. On a
    busy host that moment lasted long enough to refuse a fork row after a pool's shutdown
    ("runs 2 threads", CI on a clean clone, 2026-12-02), so the kernel gets
    :data:`JOINED_THREADS_GONE_S` to drop them. A native thread that stays (a BLAS pool) is
    still refused.
    """
    python_threads, native = threading.active_count(), native_thread_count()
    deadline = time.monotonic() + JOINED_THREADS_GONE_S
    while python_threads == 1 and native not in (1, None) and time.monotonic() < deadline:
        time.sleep(0.005)
        native = native_thread_count()
    if python_threads == 1 and native in (1, None):
        return None
    return (f"not measured: this process runs {max(python_threads, native or 0)} threads, "
            "and forking it could deadlock")


def _loky_pool(workers: int | None) -> tuple[Executor, str, Dumps]:
    import loky
    from loky.backend.reduction import dumps

    pool: Any = loky.get_reusable_executor(max_workers=workers, timeout=LOKY_IDLE_TIMEOUT_S,
                                           initializer=ignore_sigint)
    return pool, str(pool._context.get_start_method()), dumps


def _close(executor: Executor, kill: bool) -> None:
    """Shut ``executor`` down and wait for it; with ``kill``, end its workers first.

    A row that failed may have a worker stuck (or never started): killing it keeps
    ``shutdown(wait=True)`` from waiting on it forever.
    """
    if hasattr(executor, "_context"):  # loky's executor: its shutdown kills on request
        executor.shutdown(wait=True, kill_workers=True)  # type: ignore[call-arg]
        return
    if kill:
        workers = dict(getattr(executor, "_processes", None) or {})
        for process in workers.values():
            if process.is_alive():
                process.kill()
    executor.shutdown(wait=True, cancel_futures=True)


def _start_workers(executor: Executor, size: int) -> None:
    """Return once each of the ``size`` workers has answered a call (see the module's docstring)."""
    seen: set[int] = set()
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        futures = [executor.submit(os.getpid) for _ in range(size)]
        seen.update(int(future.result(timeout=START_TIMEOUT_S)) for future in futures)
        if len(seen) >= size:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(seen)} of {size} workers answered in {START_TIMEOUT_S:g} s")
        time.sleep(0.001)


def _call_cost(executor: Executor, dumps: Dumps, payload_bytes: int, count: int) -> CallCost:
    """Time ``count`` round trips of ``len(payload)``, one at a time, and the payload's pickling."""
    payload = bytes(payload_bytes)
    trips = _round_trips(executor, payload, count)
    pickling = [_pickle_once(dumps, payload) for _ in range(count)]
    return CallCost(payload_bytes=payload_bytes, round_trip_ms=_quantiles(trips),
                    pickle_ms=round(median(pickling) / 1e6, 6))


def _round_trips(executor: Executor, payload: bytes, count: int) -> list[int]:
    """Return ``count`` round trips (ns) of ``len(payload)`` through ``executor``, after a warm-up."""
    for _ in range(WARMUP_CALLS):
        _answered(executor.submit(len, payload).result(timeout=CALL_TIMEOUT_S), payload)
    trips = []
    for _ in range(count):
        began = clock()
        answer = executor.submit(len, payload).result(timeout=CALL_TIMEOUT_S)
        trips.append(clock() - began)
        _answered(answer, payload)
    return trips


def _answered(answer: object, payload: bytes) -> None:
    if answer != len(payload):
        raise RuntimeError(f"the pool answered {answer!r} for a payload of {len(payload)} bytes")


def _pickle_once(dumps: Dumps, payload: bytes) -> int:
    """Return how long (ns) pickling and unpickling a call of ``len(payload)`` took here."""
    began = clock()
    pickle.loads(dumps((len, (payload,), {})))
    return clock() - began


def _quantiles(values_ns: list[int]) -> Quantiles:

    ordered = sorted(values_ns)
    return Quantiles(p50=round(percentile(ordered, 50) / 1e6, 6), p99=round(percentile(ordered, 99) / 1e6, 6))


def decode_report(report: bytes) -> list[PoolCost]:
    """Return the rows :func:`child_main` reported (``msgspec.ValidationError`` if malformed)."""
    return msgspec.json.decode(report, type=list[PoolCost])


def measure_in_child(
    spec: CostSpec,
    timeout_s: float = 120.0,
    on_wait: Callable[[], None] = lambda: None,
    executable: Launcher | None = None,
) -> list[PoolCost]:
    """Run :func:`measure` in a child process (``executable``: another interpreter); return its rows.

    A child that crashes, hangs past ``timeout_s`` or reports garbage gives one error
    row per pool instead; its whole process group (pool workers, the forkserver) is gone
    on return, whatever happened.
    """
    outcome = run_child(child_main, msgspec.json.encode(spec), timeout_s, on_wait,
                        executable=executable)
    if outcome.timed_out:
        reason = f"the costing process did not finish in {timeout_s:g} s"
    else:
        try:
            return decode_report(outcome.report)
        except msgspec.DecodeError:
            reason = outcome.exit_summary()
    return [failed_row(pool, NO_START_METHOD, spec, reason) for pool in _ordered(spec.pools)]


def child_main(payload: bytes, report_fd: int) -> None:
    """Child-process entry (for :func:`~offbench.processes.run_child`): cost, report, exit.

    ``payload`` is a :class:`CostSpec` as msgspec JSON; the rows go to ``report_fd`` as
    msgspec JSON, and the process leaves with ``os._exit`` (no interpreter shutdown).
    """
    spec = msgspec.json.decode(payload, type=CostSpec)
    # spawn and forkserver re-import __main__ in their processes. A child forked from the
    # CLI, a test runner or a user's script has a main that is not ours to re-run; unlike
    # offbench.measure.worker, name an empty module rather than this one, whose import (msgspec)
    # would add tens of milliseconds to every spawned worker's start-up.
    sys.modules["__main__"] = types.ModuleType("__main__")

    report_and_exit(report_fd, msgspec.json.encode(measure(spec)))
