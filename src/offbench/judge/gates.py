"""Gates for CI: ``--fail-if "loop_lag_ms.p99 > 5"`` turns a run into a pass or a fail.

A gate states a failure condition on one numeric field of every cell its filter
chooses::

    FIELD OP NUMBER [where KEY=VALUE[,KEY=VALUE...]]

FIELD is a number of :class:`~offbench.model.results.CellResult`, dotted into its nested
results (``loop_lag_ms.p99``), in that field's own unit; OP is one of ``< <= > >= ==
!=``; KEY is a cell's ``workload``, ``strategy``, ``loop``, ``concurrency``,
``max_workers`` (``default`` = the library's size), ``python`` or ``rate`` (a rate cell's
offered calls/s, ``none`` for a concurrency cell). The fields a gate may name are derived
from the result types, so a new measurement is gateable at once: a rate cell's
``open_loop.latency_ms.p99`` (from intended start), ``open_loop.refused``, ….

A cell breaks a gate when the condition holds for it, when it has no value for the
field (``loop_lag_ms`` of a cell whose probe never ticked), or when it failed (an error
or a timeout has no numbers to clear the bar with).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import NoReturn

import msgspec

from offbench.errors import UsageError, unknown_name
from offbench.model.cells import CellIdentity, CellSpec
from offbench.model.results import CellResult, GateBreach, GateResult

GRAMMAR = "a gate is FIELD OP NUMBER [where KEY=VALUE,...], e.g. 'loop_lag_ms.p99 > 5 where strategy=direct'"

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
"""The comparisons a gate may make, each the condition under which a cell fails."""

FILTER_KEYS = tuple(key for key in CellIdentity.__annotations__ if key != "params")
"""What a ``where`` filter may name: the fields that say which cell it is."""

NOT_MEASURED = frozenset({*CellIdentity.__annotations__, "worker_pid", "processes"})
"""Numeric fields of a cell that say what or where it is, not what it measured."""

Cell = CellSpec | CellResult
"""What a filter reads: a planned cell (checked before the run) or a measured one."""

DEFAULT_SIZE = "default"
"""How a filter names ``max_workers = None``: the library's own pool size."""

_CONDITION = re.compile(r"^(?P<field>[^<>=!\s]*)\s*(?P<op>[<>=!]*)\s*(?P<number>.*)$")
_WHERE = re.compile(r"\s+where(?:\s+|$)")


class Gate(msgspec.Struct, frozen=True, kw_only=True):
    """One parsed ``--fail-if`` expression: cells ``where`` chooses fail if ``field op limit``."""

    text: str
    field: str
    op: str
    limit: float
    where: dict[str, str] = {}


def parse(text: str) -> Gate:
    """Parse one gate; raise ``UsageError`` saying what is wrong, with the grammar."""
    condition, *filters = _WHERE.split(text.strip(), maxsplit=1)
    match = _CONDITION.match(condition.strip())
    assert match is not None  # every part of the pattern may be empty
    field, op, number = match["field"], match["op"], match["number"].strip()
    if not field:
        _fail(text, "it starts with no field")
    _check_field(text, field)
    if op not in OPS:
        said = f"{op!r} is not a" if op else "no"
        _fail(text, f"{said} comparison after {field} (use one of {' '.join(OPS)})")
    limit = _number(text, op, number)
    return Gate(text=text.strip(), field=field, op=op, limit=limit,
                where=_filter(text, filters[0]) if filters else {})


def check_filter(gate: Gate, cells: Sequence[Cell]) -> None:
    """Raise ``UsageError`` unless ``gate``'s filter chooses at least one of ``cells``.

    A value no cell has (a typo, a strategy not in the run) is named with the values
    there are, so a filter cannot silently pass a gate by choosing nothing.
    """
    for key, value in gate.where.items():
        known = list(dict.fromkeys(_value(cell, key) for cell in cells))
        if value not in known:
            shown = ", ".join(v or "''" for v in known) or "none"
            _fail(gate.text, f"no cell has {key}={value} (the run's {key}: {shown})")
    if not cells:
        _fail(gate.text, "there is no cell to judge")
    if not any(applies(gate, cell) for cell in cells):
        chosen = ", ".join(f"{key}={value}" for key, value in gate.where.items())
        _fail(gate.text, f"no cell of the run has {chosen} together")


def applies(gate: Gate, cell: Cell) -> bool:
    """Return True when ``gate``'s filter chooses ``cell`` (no filter: every cell)."""
    return all(_value(cell, key) == value for key, value in gate.where.items())


def value(cell: CellResult, field: str) -> float | None:
    """Return ``cell``'s number at the dotted ``field``; ``None`` where a part of the path is."""
    found: object = cell
    for part in field.split("."):
        found = getattr(found, part, None)
        if found is None:
            return None
    assert isinstance(found, int | float)
    return float(found)


def judge(gate: Gate, cells: Iterable[CellResult]) -> GateResult:
    """Return which of the cells ``gate`` chooses break it, with their values."""
    chosen = [cell for cell in cells if applies(gate, cell)]
    broken: list[GateBreach] = []
    for cell in chosen:
        found = value(cell, gate.field) if cell.ok else None
        if found is None or OPS[gate.op](found, gate.limit):
            reason = "" if found is not None else "no value" if cell.ok else cell.status
            broken.append(GateBreach(
                workload=cell.workload, params=cell.params, strategy=cell.strategy, loop=cell.loop,
                concurrency=cell.concurrency, max_workers=cell.max_workers, python=cell.python,
                rate=cell.rate, value=found, reason=reason,
            ))
    return GateResult(gate=gate.text, cells=len(chosen), broken_by=broken)


def judge_all(texts: Iterable[str], cells: Sequence[CellResult]) -> list[GateResult]:
    """Parse and judge each gate on ``cells`` (already validated by the settings)."""
    return [judge(parse(text), cells) for text in texts]


def broken(found: Iterable[GateResult]) -> bool:
    """Return True when some cell broke some gate: the run then fails (exit 1)."""
    return any(result.broken_by for result in found)


@cache
def fields() -> dict[str, bool]:
    """Return every dotted field of a cell result, True for the numbers a gate may name."""
    return dict(_fields(msgspec.inspect.type_info(CellResult)))


def _fields(struct: msgspec.inspect.Type, prefix: str = "") -> Iterable[tuple[str, bool]]:
    """Walk a struct's type info: numbers (even optional ones) and, dotted, nested structs."""
    assert isinstance(struct, msgspec.inspect.StructType)
    for field in struct.fields:
        name = prefix + field.name
        kind = _unoptional(field.type)
        numeric = isinstance(kind, msgspec.inspect.IntType | msgspec.inspect.FloatType)
        yield name, numeric and name not in NOT_MEASURED
        if isinstance(kind, msgspec.inspect.StructType):
            yield from _fields(kind, prefix=f"{name}.")


def _unoptional(kind: msgspec.inspect.Type) -> msgspec.inspect.Type:
    """Return ``T`` for ``T | None``; any other type as it is."""
    if isinstance(kind, msgspec.inspect.UnionType):
        present = [t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(present) == 1:
            return present[0]
    return kind


def _check_field(text: str, field: str) -> None:
    numbers = [name for name, numeric in fields().items() if numeric]
    if field not in fields():
        _fail(text, unknown_name("field", field, numbers))
    if field not in numbers:
        _fail(text, f"{field} is not a number (numeric fields: {', '.join(numbers)})")


def _number(text: str, op: str, number: str) -> float:
    if not number:
        _fail(text, f"no number after {op}")
    try:
        limit = float(number)
    except ValueError:
        _fail(text, f"{number!r} is not a number")
    if not math.isfinite(limit):
        _fail(text, f"{number!r} is not a finite number")
    return limit


def _filter(text: str, filters: str) -> dict[str, str]:
    """Parse ``KEY=VALUE[,KEY=VALUE...]``: each key once, from :data:`FILTER_KEYS`."""
    where: dict[str, str] = {}
    for item in filters.split(","):
        key, equals, wanted = (part.strip() for part in item.partition("="))
        if not equals or not key or not wanted:
            _fail(text, f"{item.strip()!r} is not KEY=VALUE after 'where'")
        if key not in FILTER_KEYS:
            _fail(text, unknown_name("filter key", key, list(FILTER_KEYS)))
        if key in where:
            _fail(text, f"{key} is named twice after 'where'")
        where[key] = wanted
    return where


NO_RATE = "none"
"""How a filter names the ``rate`` of a concurrency cell."""


def _value(cell: Cell, key: str) -> str:
    """Return a cell's identity field as a filter writes it: ``rate=300`` for 300.0 calls/s."""
    found = getattr(cell, key)
    if found is None:
        return NO_RATE if key == "rate" else DEFAULT_SIZE
    return f"{found:g}" if isinstance(found, float) else str(found)


def _fail(text: str, problem: str) -> NoReturn:
    raise UsageError(f'gate "{text.strip()}": {problem}; {GRAMMAR}')
