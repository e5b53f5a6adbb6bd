"""pyperf: the fixed cost of one round trip through each offload strategy, for a no-op call.

One benchmark per strategy and event loop (``to-thread/uvloop``), timed with
``pyperf.Runner.bench_async_func(..., loop_factory=...)``. The strategies are offbench's
own (``offbench.strategies``), so a strategy added there is benchmarked here too.

pyperf makes a new event loop for every value and awaits the call ``loops`` times in
it. A strategy is started on the first call in each loop, outside nothing: that start
(a default executor's first thread, a process pool's processes) falls in the first
value of each worker process, which pyperf runs as a warm-up and discards. The process
pool is started once per pyperf worker and reused across loops, as a real server would.

    python benchmarks/bench_roundtrip.py --fast -o roundtrip.json
    python -m pyperf stats roundtrip.json
"""

from __future__ import annotations

import asyncio

import pyperf

from offbench import __version__, loops, strategies
from offbench.strategies import Strategy


def noop() -> None:
    """The blocking function: nothing, so only the strategy's own cost is measured."""


class RoundTrip:
    """Await one call of ``noop`` through a strategy, starting it on each new loop."""

    def __init__(self, strategy: str) -> None:
        self.name = strategy
        self.strategy: Strategy | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self) -> None:
        running = asyncio.get_running_loop()
        if running is not self.loop:
            await self._start(running)
        assert self.strategy is not None
        await self.strategy.call()

    async def _start(self, running: asyncio.AbstractEventLoop) -> None:
        # A process pool outlives loops; everything else belongs to the loop it started on.
        if self.strategy is None or self.strategy.runs_on != "process":
            self.strategy = strategies.get(self.name)()
            await self.strategy.start(noop, noop)
        self.loop = running


def main() -> None:
    """Register one benchmark per installed loop and strategy."""
    runner = pyperf.Runner()
    runner.metadata["offbench_version"] = __version__
    for loop_name in loops.names():
        backend = loops.get(loop_name)
        if backend.unavailable_reason() is not None:
            continue
        for strategy in strategies.names():
            runner.bench_async_func(
                f"{strategy}/{loop_name}",
                RoundTrip(strategy),
                loop_factory=backend.factory(),
                metadata={"offbench_strategy": strategy, "offbench_loop": backend.version()},
            )


if __name__ == "__main__":
    main()
