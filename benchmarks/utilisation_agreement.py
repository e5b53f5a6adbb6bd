"""How well loop utilisation and the probe agree: the experiments behind ``utilisation.TOLERANCE_MS``.

Each experiment runs a workload on a fresh loop for a one-second window, with the real
probe (``offbench.measure.probe.run_probe``, timerfd ticks every 1 ms) and a
:class:`~offbench.measure.utilisation.Meter` around it, then checks every probe wake-up at
least ``--check-ms`` late against the callbacks that ran while it waited. Printed per
experiment and loop, over ``--repeats`` runs: how many wake-ups were checked, their
gaps (lag the callbacks do not cover: median and worst), the longest callback of the
checked stalls, and the busy share.

    python benchmarks/utilisation_agreement.py --repeats 6
    python benchmarks/utilisation_agreement.py --only sleep-50ms --only gil
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from offbench import loops
from offbench.measure.probe import NS_PER_MS, LagRecorder, run_probe
from offbench.measure.utilisation import CHECK_MS, Check, metering

WINDOW_S = 1.0
Workload = Callable[[int], Awaitable[None]]


def blocking_sleeps(ms: float) -> Workload:
    """Block the loop with ``time.sleep`` every 50 ms: the stall the probe is for."""

    async def run(end_ns: int) -> None:
        while time.perf_counter_ns() < end_ns:
            time.sleep(ms / 1000)
            await asyncio.sleep(0.05)

    return run


async def idle_threads(end_ns: int) -> None:
    """Keep 4 ``to_thread`` sleeps of 5 ms in flight: the loop has almost nothing to do."""

    async def caller() -> None:
        while time.perf_counter_ns() < end_ns:
            await asyncio.to_thread(time.sleep, 0.005)

    await asyncio.gather(*(caller() for _ in range(4)))


async def busy_python(end_ns: int) -> None:
    """Spin in pure Python for 20 ms slices (no system call, unlike ``time.sleep``)."""
    while time.perf_counter_ns() < end_ns:
        until = time.perf_counter_ns() + 20 * NS_PER_MS
        while time.perf_counter_ns() < until:
            pass
        await asyncio.sleep(0.03)


async def small_callbacks(end_ns: int) -> None:
    """Schedule bursts of 1 000 callbacks of ~10 µs each: a stall made of many small pieces."""
    loop = asyncio.get_running_loop()

    def piece() -> None:
        until = time.perf_counter_ns() + 10_000
        while time.perf_counter_ns() < until:
            pass

    while time.perf_counter_ns() < end_ns:
        for _ in range(1000):
            loop.call_soon(piece)
        await asyncio.sleep(0.03)


async def threads_under_load(end_ns: int) -> None:
    """Keep 16 ``to_thread`` sleeps in flight while a task blocks the loop for 10 ms every 40 ms."""

    async def caller() -> None:
        while time.perf_counter_ns() < end_ns:
            await asyncio.to_thread(time.sleep, 0.002)

    async def blocker() -> None:
        while time.perf_counter_ns() < end_ns:
            time.sleep(0.01)
            await asyncio.sleep(0.04)

    await asyncio.gather(blocker(), *(caller() for _ in range(16)))


def _spin_ms(ms: float) -> None:
    until = time.perf_counter_ns() + round(ms * NS_PER_MS)
    while time.perf_counter_ns() < until:
        pass


async def gil_contention(end_ns: int) -> None:
    """Two threads spin in pure Python: the loop waits for the GIL, also between callbacks."""

    async def caller() -> None:
        while time.perf_counter_ns() < end_ns:
            await asyncio.to_thread(_spin_ms, 20)

    await asyncio.gather(caller(), caller())


async def stream_echo(end_ns: int, stall_ms: float = 0.0) -> None:
    """Ping-pong 100-byte messages over a loopback stream; the server may block ``stall_ms`` per message."""
    loop = asyncio.get_running_loop()

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            if stall_ms:
                time.sleep(stall_ms / 1000)
            self.transport.write(data)  # type: ignore[attr-defined]

    server = await loop.create_server(Echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter_ns() < end_ns:
            writer.write(b"x" * 100)
            await reader.readexactly(100)
            if stall_ms:
                await asyncio.sleep(0.03)
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


async def stream_stalls(end_ns: int) -> None:
    """The echo server blocks 20 ms inside ``data_received``: a protocol callback."""
    await stream_echo(end_ns, stall_ms=20.0)


EXPERIMENTS: dict[str, Workload] = {
    "idle-threads": idle_threads,
    "sleep-5ms": blocking_sleeps(5),
    "sleep-20ms": blocking_sleeps(20),
    "sleep-50ms": blocking_sleeps(50),
    "busy-python": busy_python,
    "small-callbacks": small_callbacks,
    "threads-under-load": threads_under_load,
    "gil": gil_contention,
    "stream-echo": stream_echo,
    "stream-stalls": stream_stalls,
}


async def measure(workload: Workload, check_ms: float) -> tuple[list[Check], float]:
    """Run ``workload`` through one window with probe and meter; return the checks and busy share."""
    loop = asyncio.get_running_loop()
    recorder = LagRecorder(NS_PER_MS, 10 * NS_PER_MS)
    start = time.perf_counter_ns() + 50 * NS_PER_MS
    end = start + round(WINDOW_S * 1e9)
    with metering(loop, start, end) as meter:
        probe = asyncio.create_task(run_probe(recorder, start, end, source="timerfd"))
        await workload(end)
        await probe
    return meter.checks(recorder, check_ms), meter.busy_ns() / (end - start)


def report(name: str, loop_name: str, runs: list[tuple[list[Check], float]]) -> None:
    """Print one line: checks, gaps, longest callbacks and busy share over the runs."""
    checks = [c for found, _ in runs for c in found]
    gaps = sorted(c.gap_ns / NS_PER_MS for c in checks)
    agree = sum(c.agrees for c in checks)
    per_callback = max((c.gap_ns / c.callbacks / 1000 for c in checks if c.callbacks), default=0.0)
    longest = [c.longest_ns / NS_PER_MS for c in checks]
    lags = [c.lag_ns / NS_PER_MS for c in checks]
    busy = [b for _, b in runs]
    line = f"{name:19} {loop_name:8} checked {len(checks):4}  agree {agree:4}"
    if gaps:
        line += (
            f"  gap median {statistics.median(gaps):6.3f} max {gaps[-1]:6.3f} ms"
            f"  lag max {max(lags):6.2f}  longest cb min {min(longest):6.2f} max {max(longest):6.2f} ms"
            f"  gap/cb max {per_callback:5.2f} µs  cbs max {max(c.callbacks for c in checks)}"
        )
    print(f"{line}  busy {min(busy):.2f}-{max(busy):.2f}", flush=True)


def main() -> None:
    """Run the chosen experiments on asyncio and uvloop and print their agreement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--check-ms", type=float, default=CHECK_MS)
    parser.add_argument("--only", action="append", choices=sorted(EXPERIMENTS))
    args = parser.parse_args()
    for name in args.only or EXPERIMENTS:
        for loop_name in ("asyncio", "uvloop"):
            runs = []
            for _ in range(args.repeats):
                with asyncio.Runner(loop_factory=loops.get(loop_name).factory()) as runner:
                    runs.append(runner.run(measure(EXPERIMENTS[name], args.check_ms)))
            report(name, loop_name, runs)


if __name__ == "__main__":
    main()
