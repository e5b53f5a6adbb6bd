"""pyperf: the fixed cost of one round trip through each offload strategy, for a no-op call.

One benchmark per strategy and event loop (``to-thread/uvloop``), timed with
``pyperf.Runner.bench_async_func(..., loop_factory=...)``. The strategies and loops are
offbench's own registries (``offbench.strategies``, ``offbench.loops``), so a strategy
or loop registered there is benchmarked here too.

pyperf calls the loop factory for every value (calibration, warm-up and timed values
alike), then times ``await round_trip()`` ``loops`` times on that new loop and closes
it. The factory is the only place outside the timed region, so it does the set-up: it
makes the loop, starts the strategy on it and makes one untimed warm-up call (so the
default executor's first thread already exists). Closing the loop stops the strategy and
joins the default executor's threads, also untimed, so nothing of one value's set-up or
tear-down is counted and no thread of one value lingers into the next.

The one exception is a strategy that runs calls in other processes (``process-pool``):
its pool is started on the first loop of each pyperf worker process and reused by every
later loop, as a server reuses its pool; a pool per value would cost ~0.2 s of start-up
each. Its ``call()`` only needs *a* running loop, not the one it started on.

    python benchmarks/bench_roundtrip.py --fast -o roundtrip.json
    python benchmarks/bench_roundtrip.py --fast --only 'to-thread' --only '*/uvloop'
    python -m pyperf stats roundtrip.json
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import sys

import pyperf

from offbench import __version__, loops, strategies
from offbench.loops import LoopBackend
from offbench.strategies import Strategy


def noop() -> None:
    """The blocking function: nothing, so only the strategy's own cost is measured.

    Module-level so it pickles by reference for ``process-pool``; it is also the pool
    processes' ``prepare``.
    """


class RoundTrip:
    """One benchmark: ``noop`` through one strategy on one kind of loop."""

    def __init__(self, strategy: str, backend: LoopBackend) -> None:
        self.cls = strategies.get(strategy)
        self.new_loop = backend.factory()
        self.strategy: Strategy | None = None
        self.kept: Strategy | None = None
        """The strategy reused across loops (``runs_on == "process"``), once started."""

    def loop_factory(self) -> asyncio.AbstractEventLoop:
        """Make a loop with the strategy started and warmed on it (called outside the timing)."""
        loop = self.new_loop()
        loop.run_until_complete(self._start())
        close = loop.close

        def stop_then_close() -> None:
            # pyperf closes the loop after reading the clock, so this is untimed too.
            try:
                if self.strategy is not self.kept:
                    assert self.strategy is not None
                    loop.run_until_complete(self.strategy.stop())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                close()

        loop.close = stop_then_close  # type: ignore[method-assign]
        return loop

    async def _start(self) -> None:
        if self.kept is not None:
            self.strategy = self.kept
        else:
            self.strategy = self.cls()
            await self.strategy.start(noop, noop)
            if self.strategy.runs_on == "process":
                self.kept = self.strategy
        await self.strategy.call()

    async def __call__(self) -> None:
        """The timed part: one round trip of ``noop`` through the started strategy."""
        assert self.strategy is not None
        await self.strategy.call()

    def close(self) -> None:
        """Stop the strategy kept across loops, if any, at the end of the worker."""
        if self.kept is not None:
            kept, self.kept = self.kept, None
            with asyncio.Runner(loop_factory=self.new_loop) as runner:
                runner.run(kept.stop())


def selected(name: str, patterns: list[str] | None) -> bool:
    """Return whether benchmark ``strategy/loop`` matches one of the ``--only`` patterns.

    A pattern is a glob over the whole name; one without ``/`` may match either part.
    """
    if not patterns:
        return True
    parts = [name, *name.split("/")]
    return any(fnmatch.fnmatchcase(part, pattern) for pattern in patterns for part in parts)


def pass_only(cmd: list[str], args: argparse.Namespace) -> None:
    """Give pyperf's worker processes the same ``--only`` (they pick a benchmark by index)."""
    for pattern in args.only or ():
        cmd.extend(["--only", pattern])


def main() -> None:
    """Register one benchmark per installed loop and strategy (or those ``--only`` picks)."""
    runner = pyperf.Runner(add_cmdline_args=pass_only)
    runner.argparser.add_argument(
        "--only",
        action="append",
        metavar="PATTERN",
        help="run only benchmarks matching this glob, e.g. 'to-thread', '*/uvloop', "
        "'process-pool/asyncio' (repeatable; default: all)",
    )
    args = runner.parse_args()
    runner.metadata["offbench_version"] = __version__

    planned: list[tuple[str, str, LoopBackend]] = []
    for loop_name in loops.names():
        backend = loops.get(loop_name)
        reason = backend.unavailable_reason()
        if reason is not None:
            if not args.worker:
                print(f"skipped: {reason}", file=sys.stderr)
            continue
        planned.extend(
            (strategy, loop_name, backend)
            for strategy in strategies.names()
            if selected(f"{strategy}/{loop_name}", args.only)
        )
    if not planned:
        runner.argparser.error(f"--only {args.only} matches no benchmark")

    benches: list[RoundTrip] = []
    try:
        for strategy, loop_name, backend in planned:
            bench = RoundTrip(strategy, backend)
            benches.append(bench)
            runner.bench_async_func(
                f"{strategy}/{loop_name}",
                bench,
                loop_factory=bench.loop_factory,
                metadata={
                    "offbench_strategy_summary": strategies.get(strategy).summary,
                    "offbench_strategy": strategy,
                    "offbench_loop": loop_name,
                    "offbench_loop_version": backend.version(),
                },
            )
    finally:
        for bench in benches:
            bench.close()


if __name__ == "__main__":
    main()
