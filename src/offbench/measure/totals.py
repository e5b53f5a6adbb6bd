"""What attachments to someone else's loops measured, added up in bounded memory, and summarised.

An :class:`~offbench.measure.attach.Attachment` measures one run of a loop; a program may
run a loop many times (``asyncio.run`` once per request) and for as long as it likes. So
every :data:`~offbench.measure.attach.FOLD_S` an attachment folds what it recorded into a
:class:`Totals`: its probe's ticks into a histogram of counts (:class:`LagCounts`), the
stalls its watchdog sampled into per-call-site totals, then drops them. :meth:`Totals.figures`
turns that into the :class:`~offbench.model.watched.LoopFigures` the pytest plugin judges
and ``offbench watch`` reports.

This side is kept apart from the attachment because it is a different job: the
attachment drives the probe, watchdog and meter on the loop's thread, while this is
bookkeeping, and naming a stall's call site: the innermost frame of the user's code (not
the standard library's, nor an installed package's), and the ``offbench run -w`` command
(:func:`measure_hint`) that measures the offload strategies for it.
"""

from __future__ import annotations

import bisect
import inspect
import os
import sys
import sysconfig
import threading
from collections import Counter
from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

from offbench.measure import watchdog
from offbench.measure.probe import NS_PER_MS, LagRecorder
from offbench.measure.utilisation import Meter
from offbench.model.results import Coverage, LoopLag, StallEvidence
from offbench.model.watched import CallSite, LoopFigures

SIGNIFICANT_BITS = 10
"""Lags are counted in buckets of 10 significant bits of microseconds: exact to 1 ms, within 0.1 % above."""
SITES_KEPT = 20
"""Call sites kept per loop once summarised, most blocking first."""


class LagCounts:
    """A histogram of lags: counts per bucket of microseconds, with the exact maximum and mean."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.total = 0
        self.sum_ns = 0
        self.max_ns = 0

    def add(self, lags_ns: list[int]) -> None:
        """Count these lags (ns)."""
        if not lags_ns:
            return
        self.counts.update(map(_bucket, lags_ns))
        self.total += len(lags_ns)
        self.sum_ns += sum(lags_ns)
        self.max_ns = max(self.max_ns, max(lags_ns))

    def summary(self) -> LoopLag | None:
        """Return the percentiles (interpolated as :func:`offbench.stats.percentile` does), ms."""
        if not self.total:
            return None
        values = sorted(self.counts.items())
        ends: list[int] = []
        seen = 0
        for _, count in values:
            seen += count
            ends.append(seen)

        def at(rank: int) -> float:
            return values[bisect.bisect_right(ends, rank)][0] / 1000

        def percentile(q: float) -> float:
            position = (self.total - 1) * q / 100
            lower = int(position)
            low, high = at(lower), at(min(lower + 1, self.total - 1))
            return min(low + (high - low) * (position - lower), self.max_ns / NS_PER_MS)

        return LoopLag(p50=percentile(50), p90=percentile(90), p99=percentile(99), p999=percentile(99.9),
                       max=self.max_ns / NS_PER_MS, mean=self.sum_ns / self.total / NS_PER_MS)


def _bucket(lag_ns: int) -> int:
    """Return the bucket of ``lag_ns``: its microseconds with their low bits cleared past 10 significant."""
    us = lag_ns // 1000
    shift = us.bit_length() - SIGNIFICANT_BITS
    return us if shift <= 0 else (us >> shift) << shift


class _Live(Protocol):
    """A running :class:`~offbench.measure.attach.Attachment`, as :meth:`Totals.figures` reads it."""

    @property
    def recorder(self) -> LagRecorder | None: ...

    @property
    def meter(self) -> Meter | None: ...

    def fold(self) -> None: ...

    def running_ns(self) -> int: ...


@dataclass
class _Site:
    stalls: int
    total_ns: int
    worst_ns: int
    worst: StallEvidence
    raw_file: str
    qualname: str


@dataclass
class Totals:
    """What attachments measured, accumulated: several loops of one thread may fill it in turn."""

    loop: str
    thread: str
    evidence_ms: float
    runs: int = 0
    running_ns: int = 0
    metered_ns: int = 0
    """Running time during which callbacks were timed (the busy share's denominator)."""
    busy_ns: int = 0
    coverage: Coverage | None = None
    blocked_ns: int = 0
    lags: LagCounts = field(default_factory=LagCounts)
    sites: dict[tuple[str, int, str], _Site] = field(default_factory=dict)
    stalls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while folding and summarising: a summary may be asked for from another thread (at exit)."""
    live: list[_Live] = field(default_factory=list)
    """The attachments running now, folded into a summary asked for meanwhile."""

    def figures(self) -> LoopFigures:
        """Return the summary so far, folding in what running attachments measured since their last fold."""
        for attachment in list(self.live):
            attachment.fold()
        with self.lock:
            running = self.running_ns + sum(a.running_ns() for a in self.live)
            metered = self.metered_ns + sum(a.running_ns() for a in self.live if a.meter is not None)
            blocked = self.blocked_ns + sum(a.recorder.blocked_ns for a in self.live if a.recorder)
            ranked = sorted(self.sites.items(), key=lambda item: item[1].total_ns, reverse=True)
            return LoopFigures(
                loop=self.loop,
                thread=self.thread,
                runs=self.runs,
                running_s=running / 1e9,
                ticks=self.lags.total,
                lag_ms=self.lags.summary(),
                blocked_s=blocked / 1e9,
                busy=min(1.0, self.busy_ns / metered) if metered > 0 and self.coverage else None,
                coverage=self.coverage,
                evidence_ms=self.evidence_ms,
                stalls=self.stalls,
                sites=[_call_site(key, site) for key, site in ranked[:SITES_KEPT]],
            )

    def add_stall(self, stack: list[watchdog.RawFrame], stall: StallEvidence) -> None:
        """Count ``stall`` at its call site: the innermost frame of the user's code in ``stack``."""
        index = _user_frame(stack, len(stall.frames))
        self.stalls += 1
        if not stall.frames:
            key, raw_file, qualname = ("<unknown>", 0, "<unknown>"), "", ""
        else:
            shown = stall.frames[index]
            key = (shown.file, shown.line, shown.function)
            raw_file, _, qualname = stack[index]
        lag_ns = round(stall.duration_ms * NS_PER_MS)
        site = self.sites.get(key)
        if site is None:
            self.sites[key] = _Site(1, lag_ns, lag_ns, stall, raw_file, qualname)
            return
        site.stalls += 1
        site.total_ns += lag_ns
        if lag_ns > site.worst_ns:
            site.worst_ns, site.worst = lag_ns, stall


def _call_site(key: tuple[str, int, str], site: _Site) -> CallSite:
    file, line, function = key
    index = next((i for i, f in enumerate(site.worst.frames) if (f.file, f.line) == (file, line)), 0)
    code = site.worst.frames[index].code if site.worst.frames else ""
    return CallSite(file=file, line=line, function=function, code=code, stalls=site.stalls,
                    total_ms=site.total_ns / NS_PER_MS, worst_ms=site.worst_ns / NS_PER_MS,
                    worst=site.worst, measure=measure_hint(site.raw_file, site.qualname, code))


def _library_dirs() -> tuple[str, ...]:
    """Return the directories of the standard library and of installed packages (not the user's code)."""
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    found = {sysconfig.get_paths()[n] for n in names}
    found |= {sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})[n]
              for n in names}
    return tuple(os.path.abspath(d) + os.sep for d in found)


_LIBRARIES = _library_dirs()


def _user_frame(stack: list[watchdog.RawFrame], shown: int) -> int:
    """Return the index of the innermost frame of the user's code among the first ``shown``; else 0."""
    for index, (file, _, _) in enumerate(stack[:shown]):
        if not file.startswith("<") and not os.path.abspath(file).startswith(_LIBRARIES):
            return index
    return 0


def measure_hint(file: str, qualname: str, code: str) -> str:
    """Say how to measure the offload strategies for the call at ``file``'s ``qualname``.

    ``offbench run -w module:function`` calls a module-level function with no arguments:
    when the frame's function is one, the command is given as is; otherwise (a coroutine,
    a method, a nested function, one that takes arguments), what to wrap first.
    """
    module_name, module = _module_of(file)
    call = f"`{code}`" if code else "the blocking call"
    if module_name is None:
        return f"put {call} in a module-level function, then: offbench run -w MODULE:FUNCTION"
    target = module
    for part in qualname.split("."):
        target = getattr(target, part, None)
    then = f"then: offbench run -w {module_name}:FUNCTION"
    if not callable(target) or "<" in qualname:
        return f"move {call} into a module-level function of {module_name}, {then}"
    if inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target):
        return f"move {call} out of async def {qualname} into a function, {then}"
    if "." in qualname or _needs_arguments(target):
        return f"wrap {call} in a module-level function that takes no arguments, {then}"
    return f"offbench run -w {module_name}:{qualname}"


def _needs_arguments(function: object) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True
    return any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
               for p in parameters)


def _module_of(file: str) -> tuple[str | None, ModuleType | None]:
    """Return the name ``offbench run -w`` would import ``file`` by, and the module loaded from it.

    A module imported under a name keeps it; the program's main script (``__main__``) is
    named by its path from the working directory (``examples/app.py``: ``examples.app``),
    which is where ``offbench run`` imports from.
    """
    path = os.path.abspath(file)
    main = None
    for name, module in list(sys.modules.items()):
        found = getattr(module, "__file__", None)
        if found and os.path.abspath(found) == path:
            if name != "__main__":
                return name, module
            main = module
    relative = os.path.relpath(path, os.getcwd())
    parts = relative.removesuffix(".py").split(os.sep)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if relative.startswith(os.pardir) or not parts or not all(p.isidentifier() for p in parts):
        return None, main
    return ".".join(parts), main
