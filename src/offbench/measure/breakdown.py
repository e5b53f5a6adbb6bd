"""Where an offloaded call's time goes: queue wait, run, and the hop back to the loop.

The worker wraps the function a thread or process strategy runs in
:class:`~offbench.measure.calls.Timed` (import-light: it is unpickled where the call runs),
so that wherever the strategy runs it (a pool thread, a pool process, a Dask worker)
it reads the clock right before and right after the function::

    submitted ─ queue wait ─▶ started ─ run ─▶ finished ─ hop back ─▶ resumed

``submitted`` and ``resumed`` are read by the calling task on the loop thread,
``started`` and ``finished`` where the function ran. One wrapper serves every
strategy; the strategies themselves know nothing of it.

Every stamp is ``time.perf_counter_ns()``, which on Linux is ``CLOCK_MONOTONIC``:
one system-wide clock, so stamps taken in threads, in child processes (process
pool, loky) and in the worker processes of a Dask ``LocalCluster`` on this machine
compare with the loop's. Stamps taken on another machine (a remote
``--dask-scheduler``) do not, so strategies that may run there say so with
``same_clock = False`` and get no breakdown. On other systems the cross-process
parts are only as good as the assumption that ``perf_counter`` is system-wide.
"""

from __future__ import annotations

from collections.abc import Sequence

from offbench.model.results import Breakdown, Quantiles
from offbench.stats import percentile

NS_PER_MS = 1_000_000


Split = tuple[float, float, float]
"""(queue wait, run, hop back) of one call, milliseconds."""


def split(submitted: int, started: int, finished: int, resumed: int) -> Split:
    """Return the three parts of one call from its four stamps (ns), in milliseconds."""
    return (
        (started - submitted) / NS_PER_MS,
        (finished - started) / NS_PER_MS,
        (resumed - finished) / NS_PER_MS,
    )


def summarise(splits: Sequence[Split]) -> Breakdown | None:
    """Return p50 and p99 of each part over ``splits`` (pooled calls); ``None`` for no call."""
    if not splits:
        return None

    def quantiles(index: int) -> Quantiles:
        ordered = sorted(s[index] for s in splits)
        return Quantiles(p50=percentile(ordered, 50), p99=percentile(ordered, 99))

    return Breakdown(queue_wait=quantiles(0), run=quantiles(1), hop_back=quantiles(2))
