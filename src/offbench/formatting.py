"""How numbers and names are written, the same in every table, chart, verdict and export."""

from __future__ import annotations

from collections.abc import Sequence

from offbench.model.params import Params
from offbench.stats import mean, stdev


def workload_label(workload: str, params: Params) -> str:
    """Return ``name (key=value, ...)``, leaving out parameters that are empty."""
    shown = ", ".join(f"{k}={v}" for k, v in params.items() if v not in ("", [], {}))
    return f"{workload} ({shown})" if shown else workload


def strategy_label(strategy: str, max_workers: int | None) -> str:
    """Return the strategy's name, with its pool size when one was set: ``to-thread (32)``."""
    return strategy if max_workers is None else f"{strategy} ({max_workers})"


def loop_label(loop: str, python: str) -> str:
    """Return the loop, with the interpreter a cell ran under when it was chosen: ``asyncio · 3.13.0``."""
    return f"{loop} · {python}" if python else loop


def load_label(concurrency: int, rate: float | None) -> str:
    """Return a cell's load as tables and lines name it: ``c=8``, or a rate cell's ``300/s``."""
    return f"{format_offered(rate)}/s" if rate is not None else f"c={concurrency}"


def format_offered(rate: float) -> str:
    """Format an offered rate (calls/s) as it was asked for: ``50``, ``2.5``, ``1,200``."""
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:g}"


def format_rate(value: float) -> str:
    """Format operations per second: no decimals from 100 up, thousands separated."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def format_bytes(count: int) -> str:
    """Format a size in bytes with binary units: ``512 B``, ``64 KiB``, ``1.5 MiB``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            break
        value /= 1024
    return f"{value:.0f} {unit}" if value >= 100 or value == int(value) else f"{value:.3g} {unit}"


def format_spread(values: Sequence[float | None]) -> str:
    """Format the relative standard deviation of samples as `` ±4.2%``; empty for fewer than two."""
    present = [v for v in values if v is not None]
    centre = mean(present)
    if len(present) < 2 or centre <= 0:
        return ""
    spread = 100 * stdev(present) / centre
    return f" ±{spread:.0f}%" if spread >= 10 else f" ±{spread:.1f}%"


def format_ms(value: float) -> str:
    """Format milliseconds with three significant figures (0.0123, 1.23, 123)."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"
