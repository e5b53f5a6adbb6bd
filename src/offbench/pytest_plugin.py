"""offbench's pytest plugin: an async test whose event loop lagged beyond its budget fails, naming the line.

Installed with offbench (a ``pytest11`` entry point) and inactive until a suite asks:
this module imports pytest and the standard library only, and registers no per-test
hook, until one of these asks for it:

* ``--offbench-lag-budget MS`` (or the ini option ``offbench_lag_budget``): every async
  test is measured, and fails if its lag statistic (``--offbench-lag-stat``, default p99)
  is over MS milliseconds;
* ``@pytest.mark.offbench(lag_budget_ms=MS, statistic="max")`` on a test, a class or a
  module (``lag_budget_ms=None``: measure without judging);
* the ``offbench_lag`` fixture: the test is measured, may set ``offbench_lag.budget_ms``
  and ``offbench_lag.statistic``, and read ``offbench_lag.figures()`` while it runs;
* ``--offbench-json PATH``: every async test is measured, and its figures written there.

An async test is one pytest-asyncio or AnyIO's plugin runs (``async def``). At its
call, the test function is wrapped in a coroutine that attaches offbench's probe, stall
watchdog and loop utilisation (:mod:`offbench.measure.attach`) to the running loop for
the test's body, not its fixtures', and detaches after it. A test over its budget fails
with what ``offbench run``'s stall evidence says: how long the loop was blocked, the
line it was blocked on and its callers. A test that fails by itself is reported as it
is. Sync tests, and async ones run on another loop than asyncio's (trio), are untouched.
What it costs per test is in ``docs/in-your-code.md``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from offbench.measure.attach import Attachment
    from offbench.measure.totals import Totals
    from offbench.model.watched import LoopFigures

MARKER = "offbench"
FIXTURE = "offbench_lag"
STATISTICS = ("p50", "p90", "p99", "p999", "max")
"""The statistics a budget can be on: :data:`offbench.model.watched.STATISTICS`, written here to keep
this module import-light (a test holds the two equal)."""
LABELS = {"p999": "p99.9"}
DEFAULT_STATISTIC = "p99"
DEFAULT_EVIDENCE_MS = 10.0
"""Stalls longer than this get their stack sampled when a test has no budget (else: beyond the budget)."""
SITES_SHOWN = 3


class Suite:
    """What the command line and the ini file asked of the whole suite."""

    def __init__(self, budget_ms: float | None, statistic: str, json_path: Path | None) -> None:
        self.budget_ms = budget_ms
        self.statistic = statistic
        self.json_path = json_path

    @property
    def measures_all(self) -> bool:
        """Whether every async test is measured (a suite budget, or figures to write)."""
        return self.budget_ms is not None or self.json_path is not None


_SUITE = pytest.StashKey[Suite]()
_BUDGET = pytest.StashKey["LagBudget"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``--offbench-*`` options and their ini equivalents."""
    group = parser.getgroup("offbench", "offbench: event-loop lag budget of async tests")
    group.addoption("--offbench-lag-budget", metavar="MS", default=None,
                    help="Fail every async test whose event-loop lag (see --offbench-lag-stat) is over MS "
                    "milliseconds, naming the line that blocked the loop.")
    group.addoption("--offbench-lag-stat", metavar="STAT", default=None,
                    help=f"The lag statistic the budget is on: {', '.join(STATISTICS)} (default: "
                    f"{DEFAULT_STATISTIC}; corrected for coordinated omission).")
    group.addoption("--offbench-json", metavar="PATH", default=None,
                    help="Measure every async test, and write each one's lag figures to PATH (JSON).")
    parser.addini("offbench_lag_budget", "Default for --offbench-lag-budget.", default=None)
    parser.addini("offbench_lag_stat", "Default for --offbench-lag-stat.", default=None)


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; read the suite's options, and switch the plugin on if they ask for it."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(lag_budget_ms=None, statistic='{DEFAULT_STATISTIC}'): measure this async test's "
        "event-loop lag with offbench, and fail it if the statistic is over the budget.",
    )
    suite = Suite(
        budget_ms=_budget(_option(config, "offbench_lag_budget"), "--offbench-lag-budget"),
        statistic=_statistic(_option(config, "offbench_lag_stat") or DEFAULT_STATISTIC,
                             "--offbench-lag-stat"),
        json_path=_json_path(config.getoption("offbench_json")),
    )
    config.stash[_SUITE] = suite
    if suite.measures_all:
        _activate(config)


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name)
    return value if value is not None else config.getini(name)


def _budget(value: object, where: str) -> float | None:
    """Return a budget in ms (``None``: none), or raise pytest's one-line usage error."""
    if value is None or value == "":
        return None
    try:
        budget = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        budget = float("nan")
    if not budget > 0 or budget == float("inf"):
        raise pytest.UsageError(f"offbench: {where} must be a number of milliseconds above 0, got {value!r}")
    return budget


def _statistic(value: object, where: str) -> str:
    if value not in STATISTICS:
        raise pytest.UsageError(f"offbench: {where} must be one of {', '.join(STATISTICS)}, got {value!r}")
    return str(value)


def _json_path(value: str | None) -> Path | None:
    if not value:
        return None
    from offbench import outputs
    from offbench.errors import UsageError

    path = Path(value)
    try:
        outputs.check_writable(path)
    except UsageError as exc:
        raise pytest.UsageError(f"offbench: --offbench-json: {exc}") from None
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check every ``offbench`` marker now, and switch the plugin on if a test asks for it."""
    asked = False
    for item in items:
        marker = item.get_closest_marker(MARKER)
        if marker is not None:
            _marker_settings(marker, item.nodeid)
        asked = asked or marker is not None or FIXTURE in getattr(item, "fixturenames", ())
    if asked:
        _activate(config)


def _marker_settings(marker: pytest.Mark, where: str) -> dict[str, Any]:
    """Return the marker's settings, checked; a mistake is pytest's one-line usage error."""
    if marker.args:
        raise pytest.UsageError(f"offbench: {where}: @pytest.mark.{MARKER} takes keyword arguments only "
                                "(lag_budget_ms=..., statistic=...)")
    unknown = sorted(set(marker.kwargs) - {"lag_budget_ms", "statistic"})
    if unknown:
        raise pytest.UsageError(f"offbench: {where}: @pytest.mark.{MARKER} has no argument {unknown[0]!r} "
                                "(choose from: lag_budget_ms, statistic)")
    settings = dict(marker.kwargs)
    if "lag_budget_ms" in settings:
        settings["lag_budget_ms"] = _budget(settings["lag_budget_ms"], f"{where}: lag_budget_ms")
    if "statistic" in settings:
        settings["statistic"] = _statistic(settings["statistic"], f"{where}: statistic")
    return settings


def _activate(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(_Active.NAME):
        config.pluginmanager.register(_Active(config), _Active.NAME)


@pytest.fixture
def offbench_lag(request: pytest.FixtureRequest) -> LagBudget:
    """Give the test its lag budget (settable) and its figures so far; requesting it measures the test."""
    return _budget_of(request.node)


def _budget_of(item: pytest.Item) -> LagBudget:
    """Return the item's budget, made from the suite's options and its marker on first use."""
    budget = item.stash.get(_BUDGET, None)
    if budget is None:
        suite = item.config.stash[_SUITE]
        marker = item.get_closest_marker(MARKER)
        settings = _marker_settings(marker, item.nodeid) if marker is not None else {}
        budget = item.stash[_BUDGET] = LagBudget(
            settings.get("lag_budget_ms", suite.budget_ms), settings.get("statistic", suite.statistic))
    return budget


class LagBudget:
    """One test's lag budget and statistic (a test may change both) and what was measured."""

    def __init__(self, budget_ms: float | None, statistic: str) -> None:
        self._budget_ms = budget_ms
        self._statistic = statistic
        self.not_measured: str | None = None
        """Why the test was not measured (it never ran on an asyncio loop), if it was not."""
        self._totals: Totals | None = None
        self._attachment: Attachment | None = None

    @property
    def budget_ms(self) -> float | None:
        """The lag the test may not go over, milliseconds; ``None``: measured, not judged."""
        return self._budget_ms

    @budget_ms.setter
    def budget_ms(self, value: float | None) -> None:
        self._budget_ms = _budget(value, "offbench_lag.budget_ms")
        if self._attachment is not None:
            self._attachment.set_threshold(self.evidence_ms)

    @property
    def statistic(self) -> str:
        """Which lag statistic is held to the budget: one of :data:`STATISTICS`."""
        return self._statistic

    @statistic.setter
    def statistic(self, value: str) -> None:
        self._statistic = _statistic(value, "offbench_lag.statistic")

    @property
    def evidence_ms(self) -> float:
        """Stalls longer than this get their stack sampled: the budget, or 10 ms without one."""
        return self._budget_ms if self._budget_ms is not None else DEFAULT_EVIDENCE_MS

    def figures(self) -> LoopFigures | None:
        """Return the test's lag figures so far (``None`` before it runs, or if it was not measured)."""
        return self._totals.figures() if self._totals is not None else None

    @contextlib.contextmanager
    def attached(self) -> Iterator[None]:
        """Measure the running asyncio loop for the block; run it unmeasured if there is none (trio)."""
        import asyncio

        from offbench.measure import attach
        from offbench.measure.totals import Totals

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.not_measured = "not run on an asyncio event loop"
            yield
            return
        thread = threading.current_thread().name
        totals = self._totals = Totals(loop=attach.loop_family(loop), thread=thread,
                                       evidence_ms=self.evidence_ms)
        options = attach.Options(evidence_ms=self.evidence_ms)
        attachment = self._attachment = attach.Attachment(loop, totals, options)
        attachment.start()
        try:
            yield
        finally:
            self._attachment = None
            attachment.stop()

    def value_ms(self, figures: LoopFigures | None) -> float | None:
        """Return the budgeted statistic of ``figures``, ms (``None``: no tick fell due)."""
        if figures is None or figures.lag_ms is None:
            return None
        value: float = getattr(figures.lag_ms, self._statistic)
        return value

    def verdict(self, figures: LoopFigures | None) -> str | None:
        """Return why the test is over its budget, in a few lines; ``None`` if it is not."""
        value = self.value_ms(figures)
        if figures is None or value is None or self._budget_ms is None or value <= self._budget_ms:
            return None
        from offbench.formatting import format_ms
        from offbench.render.watch import describe

        lag = figures.lag_ms
        assert lag is not None
        busy = f", loop busy {figures.busy:.0%}" if figures.busy is not None else ""
        label = LABELS.get(self._statistic, self._statistic)
        lines = [
            f"offbench: event-loop lag {label} {format_ms(value)} ms is "
            f"over the budget of {self._budget_ms:g} ms (max {format_ms(lag.max)} ms, {figures.ticks} ticks "
            f"in {figures.running_s:.2f} s{busy})"
        ]
        lines += [describe(site) for site in figures.sites[:SITES_SHOWN]]
        if len(figures.sites) > SITES_SHOWN:
            more = len(figures.sites) - SITES_SHOWN
            lines.append(f"... and {more} more call sites (--offbench-json has them)")
        if not figures.sites:
            lines.append(f"no stack was sampled during a stall beyond {figures.evidence_ms:g} ms: the lag "
                         "was made of shorter stalls, or the whole process was kept off the CPU")
        return "\n".join(lines)


def _measured(test: Callable[..., Coroutine[Any, Any, Any]], budget: LagBudget) -> Callable[..., Any]:
    """Return ``test`` as a coroutine function that runs it measured (same name, same signature)."""

    @functools.wraps(test)
    async def measured(*args: Any, **kwargs: Any) -> Any:
        with budget.attached():
            return await test(*args, **kwargs)

    return measured


class _Active:
    """The plugin once asked for: wraps each async test it measures, judges it, writes the figures."""

    NAME = "offbench-active"

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.suite = config.stash[_SUITE]
        self.records: list[dict[str, Any]] = []
        self.measured = 0
        self.over = 0

    def _measures(self, item: pytest.Item) -> bool:
        if not isinstance(item, pytest.Function) or not inspect.iscoroutinefunction(item.obj):
            return False
        if getattr(item.obj, "is_hypothesis_test", False):  # hypothesis drives it: not ours to wrap
            return False
        return (self.suite.measures_all or item.get_closest_marker(MARKER) is not None
                or FIXTURE in item.fixturenames)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        """Run the async test measured; fail it if it went over its budget."""
        if not self._measures(item):
            return (yield)
        assert isinstance(item, pytest.Function)
        budget = _budget_of(item)
        original = item.obj
        item.obj = _measured(original, budget)
        try:
            result = yield
        except BaseException:  # the test failed by itself: its figures are kept, not judged
            self._record(item, budget, budget.figures(), over=False)
            raise
        finally:
            item.obj = original
        figures = budget.figures()
        message = budget.verdict(figures)
        self._record(item, budget, figures, over=message is not None)
        if message is not None:
            self.over += 1
            pytest.fail(message, pytrace=False)
        return result

    def _record(self, item: pytest.Item, budget: LagBudget, figures: LoopFigures | None, over: bool) -> None:
        self.measured += figures is not None
        if self.suite.json_path is None:
            return
        import msgspec

        self.records.append({
            "nodeid": item.nodeid,
            "budget_ms": budget.budget_ms,
            "statistic": budget.statistic,
            "value_ms": budget.value_ms(figures),
            "over_budget": over,
            "not_measured": budget.not_measured,
            "figures": msgspec.to_builtins(figures),
        })

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the figures of every measured test (not from an xdist worker: it has only its share)."""
        path = self.suite.json_path
        if path is None or hasattr(self.config, "workerinput"):
            return
        import msgspec

        from offbench import __version__, outputs

        document = {"offbench_version": __version__, "tests": self.records}
        outputs.write_atomic(path, msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say in one line what offbench did, and where the figures went."""
        over = f", {self.over} over budget" if self.over else ""
        wrote = f"; figures in {self.suite.json_path}" if self.suite.json_path is not None else ""
        terminalreporter.write_line(f"offbench: {self.measured} async tests measured{over}{wrote}")
