"""The host's speed, read where the cell is about to run: a fixed pure-Python loop and a thread wake-up.

A shared machine (a laptop, a CI runner) changes speed from one second to the next:
other programs, other virtual machines on the same host, clock frequencies. Every
unit therefore times two fixed things in its worker process, before its warm-up:

* :func:`spin_ms`, a pure-Python loop of :data:`SPIN_LOOPS` steps, the median of
  :data:`REPEATS`: what pure-Python work costs on the host at that moment. A unit whose
  processes spend their window on a CPU runs slower by the same factor, which is what
  :attr:`~offbench.model.results.CellResult.normalised_ops_s` divides out.
* :func:`wakeup_us`, how long a thread blocked on an event takes to run once another
  thread sets it, the median of :data:`REPEATS`: what the scheduler adds to every hop
  between threads.

Both take about 10 ms together, and leave no thread behind (a worker that forks its
process pool afterwards must have one thread).
"""

from __future__ import annotations

import statistics
import threading
import time

from offbench.processes import native_thread_count

SPIN_LOOPS = 20_000
"""Steps of the reference loop: about a millisecond of pure Python on a 2020s CPU."""
REPEATS = 3
clock = time.perf_counter_ns


def _spin(loops: int) -> int:
    total = 0
    for step in range(loops):
        total += step ^ (total & 0xFF)
    return total


def spin_ms(loops: int = SPIN_LOOPS, repeats: int = REPEATS) -> float:
    """Return the median time of the reference loop, milliseconds."""
    timings = []
    for _ in range(repeats):
        began = clock()
        _spin(loops)
        timings.append((clock() - began) / 1e6)
    return statistics.median(timings)


def wakeup_us(repeats: int = REPEATS) -> float:
    """Return the median time for a thread blocked on an event to run once this one sets it, µs."""
    woke: list[int] = []
    ready, go = threading.Event(), threading.Event()
    timings: list[float] = []

    def sleeper() -> None:
        for _ in range(repeats):
            ready.set()
            go.wait()
            go.clear()
            woke.append(clock())

    thread = threading.Thread(target=sleeper, name="offbench-reference")
    thread.start()
    try:
        for index in range(repeats):
            ready.wait()
            ready.clear()
            time.sleep(0.0005)  # let the other thread reach go.wait()
            began = clock()
            go.set()
            while len(woke) <= index and thread.is_alive():
                time.sleep(0)
            if len(woke) > index:
                timings.append((woke[index] - began) / 1e3)
    finally:
        go.set()
        thread.join()
        _until_one_thread()
    return statistics.median(timings) if timings else 0.0


def _until_one_thread(limit_s: float = 0.05) -> None:
    """Wait until the kernel, too, has ended the joined thread (``join`` returns a moment before).

    A worker forks its process pool only while it runs one thread
    (:func:`offbench.strategies.stdlib.pool_start_method`): a thread the kernel still
    lists would make it take the slow ``forkserver`` instead, for no reason.
    """
    deadline = time.monotonic() + limit_s
    while (native_thread_count() or 1) > 1 and time.monotonic() < deadline:
        time.sleep(0.0002)
