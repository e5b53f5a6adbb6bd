"""The experiments of ``offbench check``: each asks one question and answers it by running code.

An experiment is one small class registered by name with :func:`register`. It gets a
:class:`Lab` (a started strategy on a running loop) and returns a
:class:`~offbench.semantics.Finding`. Experiments that need a loop of their own
(``shutdown`` times ``asyncio.Runner`` itself) set ``own_loop`` and implement
:meth:`Experiment.run_alone` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import tempfile
import threading
import time
import traceback
from abc import ABC
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar, cast

from offbench.loops import LoopFactory
from offbench.model.semantics import Finding
from offbench.semantics import callees as c
from offbench.strategies import Call, Strategy

MIN_SPEEDUP = 1.4
"""Two calls at once finishing this much faster than one after the other count as parallel (2.0 is ideal)."""
PROMPT_EXIT_S = 0.05
"""``asyncio.run`` returning later than this after the main coroutine counts as waiting."""
SERIAL_ROUNDS = 3
"""Kept rounds of the parallelism experiments before a clear "no"; the best counts.

Kept: both of the round's timings counted (neither waited for a CPU, and a round that took
turns had the control pair's word that two CPUs were free). Five rounds *run* were the rule
until 2026-12-02, and three run were too few: ``direct``'s GIL-releasing pair read "CPUs
busy" in 1 of 6 checks on an idle machine, its rounds left out for waiting. Counting kept
rounds, a waiting round costs one more round, up to :data:`MAX_ROUNDS`; a quiet host
answers "no" in three (0.5 s less per experiment than five)."""
MAX_ROUNDS = 10
"""Rounds they get at most, when the best speed-up so far is neither clearly parallel nor clearly not."""
CLEARLY_SERIAL = 1.15
"""A best speed-up under this after :data:`SERIAL_ROUNDS` kept rounds ends the experiment: in turns."""
CLEARLY_PARALLEL = 1.8
"""A speed-up this high after two rounds ends the experiment early: it can only grow."""
AGREEING_ROUNDS = 2
"""Rounds whose own pair must beat their own single call by :data:`MIN_SPEEDUP` for a "yes".

The best of each alone compares a single call and a pair from different rounds: on a busy
host whose stalls neither counter sees, every single call of the loop's own ``direct`` was
once slowed and one pair was not, and the check said two calls on one thread ran at once
(the busy-core series, 2026-12-02). Within one round the two timings are back to back."""
CALL_S = 0.04
"""How long one call of the parallelism experiments takes alone (calibrated at the check's start).

Long against what can blur it: the GIL's switch interval (5 ms), a call's hop to a pool and
back, and the waiting a round is left out for (:func:`_waited`). At 20 ms a check was a
fifth shorter, but ``direct`` read "CPUs busy" in each of 8 checks on an idle machine
(2026-12-02): a few ms of waiting is a quarter of so short a call."""
BLOCK_S = 0.2
"""How long the cancellation experiment's call blocks: its timeout (20 ms) returning later
than 90 % of this reads as "blocks", so it leaves 160 ms for a busy host to take."""
SHUTDOWN_BLOCK_S = 0.1
"""How long the shutdown experiment's call blocks: a runner that waits for it returns about
80 ms late, over :data:`PROMPT_EXIT_S`; a busy host can only make that later."""
BUSY_WAITING = 0.25
"""Share of two parallel calls' time spent waiting for a CPU above which a round tells nothing."""


@dataclass
class Lab:
    """A started strategy on the running loop, through which experiments call their functions."""

    strategy: Strategy
    new_strategy: Callable[[], Strategy]
    """Make a fresh, unstarted instance of the same strategy (for experiments that time start-up)."""
    target: Call | None
    """The user's function when checking one (``offbench check -w module:function``)."""

    async def call(self, fn: Call) -> object:
        """Run ``fn`` once through the strategy and return its result."""
        self.strategy.bind(fn)
        return await self.strategy.call()

    def after_target(self, report: Call) -> Call:
        """Return ``report``, run right after the user's function when one is checked."""
        return report if self.target is None else functools.partial(c.call_then, self.target, report)


class Experiment(ABC):
    """One question about a strategy's semantics, answered by running code."""

    name: ClassVar[str]
    column: ClassVar[str]
    """Short header of its column in ``offbench check``'s table."""
    question: ClassVar[str]
    """The yes/no question ``Finding.holds`` answers."""
    uses_target: ClassVar[bool] = False
    """Calls the user's function instead of a built-in one when ``-w`` gives one."""
    own_loop: ClassVar[bool] = False
    caveat: ClassVar[str] = ""
    """What a run's verdict warns about a winning strategy whose answer is no; empty: no warning."""

    async def run(self, lab: Lab) -> Finding:
        """Run the experiment in ``lab``."""
        raise NotImplementedError

    def run_alone(self, strategy: Callable[[], Strategy], loop_factory: LoopFactory) -> Finding:
        """Run the experiment on loops of its own (``own_loop`` experiments)."""
        raise NotImplementedError

    def found(
        self,
        holds: bool | None,
        value: str,
        why: str = "",
        *,
        measured: float | None = None,
        unit: str = "",
        detail: str = "",
    ) -> Finding:
        """Return this experiment's finding; ``why`` explains a no and is dropped otherwise."""
        return Finding(experiment=self.name, holds=holds, value=value, why=why if not holds else "",
                       measured=measured, unit=unit, detail=detail)


REGISTRY: dict[str, Experiment] = {}
E = TypeVar("E", bound=type[Experiment])


def register(cls: E) -> E:
    """Class decorator: add the experiment to ``offbench check`` under its ``name``."""
    REGISTRY[cls.name] = cls()
    return cls


def names() -> list[str]:
    """Return the experiments' names in table order."""
    return list(REGISTRY)


async def in_task(coro: Awaitable[object]) -> object:
    """Await ``coro`` in a task of its own, as a request handler calling the strategy would."""
    return await asyncio.ensure_future(coro)


@register
class ContextVars(Experiment):
    """Ask whether a ``contextvars.ContextVar`` set in the calling task reaches the function."""

    name = "context"
    caveat = "context variables set in the calling task are lost: use to-thread or copy the context"
    column = "context vars"
    question = "a context variable set in the calling task is visible in the function"

    async def run(self, lab: Lab) -> Finding:
        """Set the variable in a task, read it in the callee."""
        async def caller() -> object:
            c.CONTEXT_VAR.set(c.MARK)
            return await lab.call(c.read_context)

        seen = await in_task(caller())
        return self.found(
            seen == c.MARK, "copied" if seen == c.MARK else "lost",
            "the function runs outside the task's context: context variables (request ids, "
            "tracing spans) read their defaults; use to-thread or contextvars.copy_context().run",
        )


@register
class ThreadLocals(Experiment):
    """Ask whether ``threading.local`` state of the loop thread is visible to the function."""

    name = "thread_locals"
    column = "loop thread locals"
    question = "thread-local state set on the loop thread is visible in the function"

    async def run(self, lab: Lab) -> Finding:
        """Mark a thread-local on the loop thread, read it in the callee."""
        c.THREAD_STATE.mark = c.MARK
        try:
            seen = await lab.call(c.read_thread_local)
        finally:
            del c.THREAD_STATE.mark
        return self.found(
            seen == c.MARK, "visible" if seen == c.MARK else "hidden",
            "the function runs on another thread or process: thread-locals of the loop thread "
            "(a DB connection, a cached client) are not there; pass what it needs as arguments",
        )


@register
class RunsOn(Experiment):
    """Ask where the function runs: the loop's thread, another thread, another process."""

    name = "runs_on"
    column = "runs on"
    question = "the function runs on the event loop's thread (loop), else on another thread or process"
    uses_target = True

    async def run(self, lab: Lab) -> Finding:
        """Compare the callee's process and thread with the loop's."""
        probe = lab.after_target(c.identity)
        found = await lab.call(probe)
        assert isinstance(found, tuple)
        pid, thread, _ = found
        same_thread = pid == os.getpid() and thread == threading.get_ident()
        where = "process" if pid != os.getpid() else "loop" if same_thread else "thread"
        return self.found(where == "loop", where, "")


@register
class Reuse(Experiment):
    """Ask whether workers are reused across calls, and measure what a call (and the first) costs."""

    name = "reuse"
    caveat = "creates a worker for every call: reuse one pool"
    column = "workers reused"
    question = "repeated calls reuse threads or processes instead of creating them"
    uses_target = True
    calls = 8

    async def run(self, lab: Lab) -> Finding:
        """Call a fresh instance of the strategy repeatedly; count distinct worker identities."""
        fresh = lab.new_strategy()
        probe = lab.after_target(c.identity)
        began = time.perf_counter()
        await fresh.start(probe, c.noop)
        started = time.perf_counter()
        try:
            seen = [await fresh.call()]
            first = time.perf_counter()
            for _ in range(self.calls - 1):
                seen.append(await fresh.call())
            done = time.perf_counter()
        finally:
            await fresh.stop()
        workers = len({_token(found) for found in seen})
        per_call_us = (done - first) / (self.calls - 1) * 1e6
        cost = f"start {_ms(started - began)}, 1st call {_ms(first - started)}, then {per_call_us:.0f} µs"
        reused = workers < self.calls
        return self.found(
            reused, "reused" if reused else "per call",
            "every call creates (and joins) a new worker, and pays for it each time; "
            "reuse one pool, or use to-thread",
            measured=per_call_us, unit="µs/call", detail=f"{workers} workers for {self.calls} calls; {cost}",
        )


def _token(identity: object) -> str:
    assert isinstance(identity, tuple)
    return str(identity[2])


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds >= 0.001 else f"{seconds * 1e6:.0f} µs"


@register
class LoopSideEffects(Experiment):
    """Ask whether calling through the strategy creates or replaces an event loop anywhere."""

    name = "loop_effects"
    caveat = "leaves an event loop set or replaced as a side effect"
    column = "no loop side effects"
    question = "the call leaves event loops alone: none replaced here, none left set in the worker"
    uses_target = True

    async def run(self, lab: Lab) -> Finding:
        """Check the loop thread's current loop, and what the callee's thread has set, after a call."""
        before = c.current_loop()
        probe = lab.after_target(c.loop_state)
        state = await lab.call(probe)
        assert isinstance(state, tuple)
        on_loop_thread, callee_set = state
        replaced = c.current_loop() is not before
        effects = []
        if replaced:
            effects.append("replaced")
        if callee_set and not on_loop_thread:
            effects.append("left set")
        return self.found(
            not effects, ", ".join(effects) or "none",
            "a loop is replaced on the loop thread, or left set in the worker's thread: code there "
            "that calls asyncio.get_event_loop() gets a loop nobody runs or closes",
        )


@register
class Exceptions(Experiment):
    """Ask whether an exception in the function reaches the awaiting task with type and traceback."""

    name = "exceptions"
    caveat = "exceptions lose their type or the callee's traceback"
    column = "exceptions kept"
    question = "an exception in the function reaches the awaiting task with its type and traceback"

    async def run(self, lab: Lab) -> Finding:
        """Raise ``ValueError`` two frames deep in the callee; inspect what the caller gets."""
        try:
            await lab.call(c.raise_error)
        except Exception as exc:
            text = "".join(traceback.format_exception(exc))
            kept_type = isinstance(exc, ValueError)
            kept_frames = "_deep" in text
            holds = kept_type and kept_frames
            value = "kept" if holds else (
                f"{type(exc).__name__}" + ("" if kept_frames else ", no frames"))
            return self.found(holds, value,
                              "the caller gets a different exception or loses the callee's frames")
        return self.found(False, "nothing raised", "the exception never reached the caller")


@register
class Cancellation(Experiment):
    """Ask whether cancelling the awaiting task (or ``asyncio.timeout``) stops the blocking call."""

    name = "cancel"
    caveat = "a timeout does not stop the blocking call: it runs on and its result is discarded"
    column = "timeout stops it"
    question = "asyncio.timeout on the awaiting task stops the blocking call"

    async def run(self, lab: Lab) -> Finding:
        """Time out a 0.2 s call after 20 ms; see whether it still runs to its end."""
        with tempfile.TemporaryDirectory(prefix="offbench-check-") as tmp:
            marker = Path(tmp, "finished")
            began = time.perf_counter()
            timed_out = False
            try:
                async with asyncio.timeout(0.02):
                    await in_task(lab.call(functools.partial(c.sleep_then_touch, str(marker), BLOCK_S)))
            except TimeoutError:
                timed_out = True
            returned = time.perf_counter() - began
            deadline = time.monotonic() + BLOCK_S * 5
            while not marker.exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            ran_on = marker.exists()
        if not timed_out or returned >= BLOCK_S * 0.9:
            return self.found(False, "blocks",
                              "the loop is blocked until the call returns (it runs on the loop, or "
                              "a per-call pool's shutdown joins its thread), so the timeout acts "
                              "only afterwards")
        return self.found(
            not ran_on, "runs on" if ran_on else "stops",
            "the caller gets TimeoutError at once, but the blocking call runs on to its end in "
            "the worker and its result is thrown away; make the function itself stop (a flag, "
            "a socket timeout)",
        )


@register
class Arguments(Experiment):
    """Ask whether arguments are shared with the function or copied, and whether they must pickle."""

    name = "arguments"
    caveat = "arguments and results are pickled copies (mutations are not seen; they must pickle)"
    column = "args shared"
    question = "the function gets the caller's objects (mutations visible), nothing needs to pickle"

    async def run(self, lab: Lab) -> Finding:
        """Pass a list the callee appends to; then pass a lambda, which cannot pickle."""
        items: list[str] = []
        returned = await lab.call(functools.partial(c.append_to, items))
        shared = bool(items) and returned is items
        try:
            await lab.call(functools.partial(c.accept, lambda: None))
            pickles = False
        except Exception:
            pickles = True
        value = "pickled" if pickles else "shared" if shared else "copied"
        cannot = "lambdas, locks" if pickles else "locks"  # cloudpickle (loky, dask) ships lambdas
        return self.found(
            shared and not pickles, value,
            "arguments and results are pickled copies: the caller never sees the function's "
            f"mutations, and {cannot}, sockets, open files cannot be passed",
        )


class _Parallel(Experiment):
    """Ask whether two calls at once finish faster than one after the other."""

    work: ClassVar[str]

    def job(self, lab: Lab) -> Call:
        """Return the function two calls of which are timed."""
        raise NotImplementedError

    async def run(self, lab: Lab) -> Finding:
        """Time one call, then two at once, in rounds until :func:`settled` (:data:`MAX_ROUNDS` at most).

        The best of each, because a moment of load from elsewhere can only slow a timing
        down. A timing during which the calls' threads spent over :data:`BUSY_WAITING` of
        their time runnable but waiting for a CPU (another program had it, see
        :func:`~offbench.semantics.callees.with_waiting`) says nothing about the strategy
        and is left out: otherwise a slow single call beside a lucky pair would read as
        parallel. A round in which the two calls took turns counts only if a control pair
        (:class:`_Control`) shows the machine had two CPUs at that moment. When no timing was
        free of that, the answer is unknown (``None``, "CPUs
        busy"), not "no"; so is a best speed-up between :data:`CLEARLY_SERIAL` and
        :data:`MIN_SPEEDUP`, neither one at a time nor both at once.
        """
        job = functools.partial(c.with_waiting, self.job(lab))
        # Warm, two at once: a pool starts its second worker on demand, which must not happen
        # inside a timing; code gets imported.
        await asyncio.gather(in_task(lab.call(job)), in_task(lab.call(job)))
        ones: list[float] = []
        twos: list[float] = []
        paired: list[float] = []  # each round's own speed-up, where both its timings counted
        agreeing = 0  # of them, those at MIN_SPEEDUP or more
        control = _Control()
        ran = 0
        while ran < MAX_ROUNDS:
            ran += 1
            stolen = _stolen_s()
            began = time.perf_counter()
            alone = await lab.call(job)
            one = time.perf_counter() - began
            alone_stolen = _less(_stolen_s(), stolen)
            stolen = _stolen_s()
            began = time.perf_counter()
            both = await asyncio.gather(in_task(lab.call(job)), in_task(lab.call(job)))
            two = time.perf_counter() - began
            both_stolen = _less(_stolen_s(), stolen)
            # Two calls that took turns are the strategy's answer only if the machine had two
            # CPUs then: a neighbour on the host can halve this one's CPUs unseen by both counters.
            shared = 2 * one / two < MIN_SPEEDUP and not control.two_cpus()
            one_ok = not shared and not _waited(one, [alone], alone_stolen)
            two_ok = not shared and not _waited(two, list(both), both_stolen)
            if one_ok:
                ones.append(one)
            if two_ok:
                twos.append(two)
            if one_ok and two_ok:
                paired.append(2 * one / two)
            agreeing = sum(r >= MIN_SPEEDUP for r in paired)
            if settled(ones, twos, paired):
                break
        if not ones or not twos:
            return self.found(None, "CPUs busy", detail=f"no round of {ran} had a free CPU")
        speedup = 2 * min(ones) / min(twos)
        if (os.cpu_count() or 1) < 2:
            return self.found(None, f"{speedup:.2f}× (1 CPU)", measured=speedup, unit="×")
        answer = parallel(speedup, agreeing)
        if answer is None and speedup >= MIN_SPEEDUP:
            return self.found(None, f"{speedup:.2f}× (unclear)", measured=speedup, unit="×",
                              detail=f"{agreeing} of {len(paired)} rounds at {MIN_SPEEDUP}× or more "
                              f"against their own single call, {AGREEING_ROUNDS} needed: the host's "
                              "speed moved between the timings")
        if answer is None:
            # Neither in a row (1×) nor at once (2×) in any round: the host, not the strategy,
            # set the pace, in a way the waiting and steal counters did not show.
            return self.found(None, f"{speedup:.2f}× (unclear)", measured=speedup, unit="×",
                              detail=f"best of every round between {CLEARLY_SERIAL}× (in a row) and "
                              f"{MIN_SPEEDUP}×: the CPUs were shared")
        return self.found(
            answer, f"{speedup:.2f}×",
            f"two calls at once take about as long as two in a row: {self.work} lets one call "
            "run at a time",
            measured=speedup, unit="×",
        )


class _Control:
    """Two plain threads hashing at once: whether the machine has two CPUs for this process now.

    The counterpart of a round in which the strategy's two calls took turns. hashlib releases
    the GIL, so on two free CPUs the pair finishes in about the time of one; when it does not,
    something outside the run had a CPU (a neighbour on a shared host shows in neither the
    run queue nor the steal counter: the check's parallel pool once read "no" beside an idle
    machine) and the round is left out. About 20 ms a control; parallel strategies need none.
    """

    def __init__(self) -> None:
        self.single_s = math.inf

    def two_cpus(self) -> bool:
        job = functools.partial(c.hash_blocks, 1 << 20, max(1, _hash_rounds() // 2))
        began = time.perf_counter()
        job()
        self.single_s = min(self.single_s, time.perf_counter() - began)
        threads = [threading.Thread(target=job, name="offbench-control") for _ in range(2)]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return 2 * self.single_s / (time.perf_counter() - began) >= MIN_SPEEDUP


def parallel(speedup: float, agreeing: int = AGREEING_ROUNDS) -> bool | None:
    """Return what a best speed-up of two calls at once says: parallel, in turns, or ``None`` (unclear).

    Two calls that take turns finish together in about the time of two in a row (1×); two in
    parallel in that of one (2×). Between :data:`CLEARLY_SERIAL` and :data:`MIN_SPEEDUP` the
    best of every round was neither: the host had a CPU some of the time. A best at
    :data:`MIN_SPEEDUP` or more is "yes" only where ``agreeing`` rounds, at least
    :data:`AGREEING_ROUNDS`, showed it against their own single call.
    """
    if speedup >= MIN_SPEEDUP:
        return True if agreeing >= AGREEING_ROUNDS else None
    return False if speedup < CLEARLY_SERIAL else None


def settled(ones: Sequence[float], twos: Sequence[float], paired: Sequence[float]) -> bool:
    """Return whether the rounds so far answer the parallelism question; more can only raise the best.

    ``ones`` and ``twos`` are the kept timings of one call and of two at once, ``paired``
    the speed-ups of the rounds both of whose timings were kept. A clear "yes": a best
    speed-up of :data:`CLEARLY_PARALLEL` with :data:`AGREEING_ROUNDS` rounds showing it on
    their own. A clear "no": a best under :data:`CLEARLY_SERIAL` after :data:`SERIAL_ROUNDS`
    kept rounds. Anything else (a best between, or too few kept rounds) needs more rounds.
    """
    if not ones or not twos:
        return False
    best = 2 * min(ones) / min(twos)
    if best >= CLEARLY_PARALLEL:
        return sum(r >= MIN_SPEEDUP for r in paired) >= AGREEING_ROUNDS
    return best < CLEARLY_SERIAL and len(paired) >= SERIAL_ROUNDS


def _waited(took_s: float, answers: list[object], stolen_s: float | None = None) -> bool:
    """Return whether a timing of ``took_s`` met a machine without a free CPU.

    Either one of the calls behind ``answers`` waited, runnable, for a CPU over
    :data:`BUSY_WAITING` of the time (another program had it), or the hypervisor took
    that much from the machine's CPUs (``stolen_s``, steal time): on a shared virtual
    machine a stolen CPU is invisible to the run queue, and two calls then read as taking
    turns when the host, not the strategy, made them.
    """
    waited = [w for _, w in (cast("tuple[object, int | None]", answer) for answer in answers)]
    if stolen_s is not None and stolen_s > BUSY_WAITING * took_s:
        return True
    return any(w is not None and w / 1e9 > BUSY_WAITING * took_s for w in waited)


def _stolen_s() -> float | None:
    """Return the CPU time the hypervisor has taken from this machine so far (``/proc/stat``), if known."""
    try:
        with open("/proc/stat", "rb") as stat:
            fields = stat.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _less(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def _calibrated(fn: Callable[[int], object], start: int, seconds: float) -> int:
    """Return the argument of ``fn`` that makes one call take about ``seconds``."""
    n = start
    while True:
        began = time.perf_counter()
        fn(n)
        took = time.perf_counter() - began
        if took >= seconds / 4 or n > 1 << 30:
            return max(1, int(n * seconds / max(took, 1e-6)))
        n *= 4


@functools.cache
def _spin_iterations() -> int:
    return _calibrated(c.spin, 10_000, CALL_S)


@functools.cache
def _hash_rounds() -> int:
    return _calibrated(functools.partial(c.hash_blocks, 1 << 20), 1, CALL_S)


@register
class ParallelPython(_Parallel):
    """Ask whether pure-Python work (holding the GIL) runs in parallel through the strategy."""

    name = "parallel_python"
    column = "∥ pure Python"
    question = "two pure-Python calls at once finish at least 1.4× faster than in a row"
    uses_target = True
    work = "the GIL"

    def job(self, lab: Lab) -> Call:
        """Return a calibrated pure-Python loop of :data:`CALL_S`, or the user's function."""
        return lab.target or functools.partial(c.spin, _spin_iterations())


@register
class ParallelReleased(_Parallel):
    """Ask whether GIL-releasing work (hashing a large buffer) runs in parallel through the strategy."""

    name = "parallel_released"
    column = "∥ GIL released"
    question = "two GIL-releasing calls at once finish at least 1.4× faster than in a row"
    work = "the strategy"

    def job(self, lab: Lab) -> Call:
        """Return :data:`CALL_S` of SHA-256 over 1 MiB buffers (hashlib releases the GIL)."""
        return functools.partial(c.hash_blocks, 1 << 20, _hash_rounds())


@register
class Shutdown(Experiment):
    """Ask whether a blocking call still running at the end delays ``asyncio.run``'s return."""

    name = "shutdown"
    caveat = "asyncio.run waits at exit for calls still running"
    column = "prompt exit"
    question = "asyncio.run returns promptly while a blocking call is still running"
    own_loop = True

    def run_alone(self, strategy: Callable[[], Strategy], loop_factory: LoopFactory) -> Finding:
        """Leave a :data:`SHUTDOWN_BLOCK_S` call running as the main coroutine returns; time the exit."""
        offload = strategy()
        returned_at = 0.0

        async def main() -> None:
            nonlocal returned_at
            await offload.start(functools.partial(time.sleep, SHUTDOWN_BLOCK_S), c.noop)
            task = asyncio.create_task(offload.call())
            await asyncio.sleep(0.02)
            if task.done():
                task.result()
            returned_at = time.perf_counter()

        with asyncio.Runner(loop_factory=loop_factory) as runner:
            try:
                runner.run(main())
            finally:
                runner.close()
                delay = time.perf_counter() - returned_at
                with contextlib.suppress(Exception):
                    asyncio.run(offload.stop())
        delayed = delay > PROMPT_EXIT_S
        return self.found(
            not delayed, f"+{delay * 1000:.0f} ms" if delayed else "prompt",
            "asyncio.run waits for the call still running in the pool (it shuts the default "
            "executor down and joins its threads) before returning",
            measured=delay * 1000, unit="ms",
        )
