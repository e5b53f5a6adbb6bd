"""Scenario files: a run's whole matrix in TOML, so every run can be repeated from a file.

A scenario is read with :mod:`tomllib`, its shape checked against :class:`ScenarioFile`
(unknown keys and wrong types are refused), its sweeps expanded (a list given for a
workload parameter makes one workload per value), and the result validated by
:func:`offbench.plan.settings.build_settings` exactly as command-line choices are. Every
error is one line naming the file, the key (the line, for TOML syntax errors) and
what was expected.

Shipped scenarios live in the package (``offbench/scenarios/*.toml``, the repository's
``scenarios/`` folder) and can be named without a path: ``offbench run quick``.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import tomllib
import types
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import msgspec

from offbench.errors import UsageError
from offbench.model.settings import WorkloadSpec
from offbench.outputs import read_regular
from offbench.plan import settings
from offbench.plan.options import OPTIONS, Option
from offbench.plan.settings import Choices

Level = int | str
"""A concurrency or pool size: a number, ``"cores"`` or ``"N*cores"`` (resolved on load);
a pool size may also be ``"default"``, the library's own choice."""
LEVELS = ("concurrency", "max_workers")
"""The options whose values are levels."""


def _scenario_type(option: Option) -> Any:
    """Return what a scenario file may give for ``option``: TOML's own types, one value or a list."""
    if option.name == "workloads":
        return list[dict[str, Any]]
    if option.name in LEVELS:
        return Level | list[Level]
    if option.name == "rate":
        return float | str | list[float | str]  # calls/s, or "auto"
    kind: Any = option.kind
    return kind | types.GenericAlias(list, (kind,)) if option.many else kind


ScenarioFile: Any = msgspec.defstruct(
    "ScenarioFile",
    [("description", str, ""),
     *((option.name, _scenario_type(option) | None, None) for option in OPTIONS if option.scenario)],
    kw_only=True,
    forbid_unknown_fields=True,
    module=__name__,
)
"""The keys a scenario file may have, every one optional: ``description`` and the options of a run."""


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    """A loaded, validated scenario: where it came from, what it says, and its choices."""

    source: str
    description: str
    choices: Choices


def shipped() -> dict[str, Traversable]:
    """Return the scenarios shipped with offbench, by name (file name without ``.toml``)."""
    folder = resources.files("offbench") / "scenarios"
    files = [f for f in folder.iterdir() if f.name.endswith(".toml")] if folder.is_dir() else []
    return {f.name.removesuffix(".toml"): f for f in sorted(files, key=lambda f: f.name)}


MAX_FILE_BYTES = 1 << 20
"""The largest scenario file read: a scenario is a few hundred bytes."""


def find(name_or_path: str) -> tuple[str, bytes]:
    """Return ``(source, contents)`` of a scenario given as a file path or a shipped name.

    Only a regular file of at most :data:`MAX_FILE_BYTES` is read: a device or a FIFO
    (which may never end) is one line.
    """
    path = Path(name_or_path)
    if path.exists() and not path.is_dir():
        return str(path), read_regular(path, MAX_FILE_BYTES, "a scenario file")
    known = shipped()
    name = name_or_path.removesuffix(".toml")
    if name in known and os.sep not in name_or_path:
        return name, known[name].read_bytes()
    if path.is_dir():
        raise UsageError(f"{path}: is a directory, not a scenario file")
    raise UsageError(
        f"{name_or_path}: no such scenario file (shipped scenarios: {', '.join(known) or 'none'})"
    )


def load(name_or_path: str) -> Scenario:
    """Find, parse and validate a scenario; raise ``UsageError`` naming the file and key at fault."""
    source, data = find(name_or_path)
    return parse(data, source)


def parse(data: bytes, source: str) -> Scenario:
    """Parse and validate scenario TOML ``data`` read from ``source``."""
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source}: not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source}: invalid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses per nested array or table
        raise UsageError(f"{source}: invalid TOML: nested too deeply") from None
    try:
        raw = msgspec.convert(document, type=ScenarioFile)
    except msgspec.ValidationError as exc:
        raise UsageError(f"{source}: {_shape_error(str(exc))}") from None
    except RecursionError:
        raise UsageError(f"{source}: nested too deeply for a scenario") from None
    try:
        choices = _choices(raw)
        settings.build_settings(choices)
    except UsageError as exc:
        where = f"{exc.key}: " if exc.key else ""
        raise UsageError(f"{source}: {where}{exc}") from None
    return Scenario(source=source, description=raw.description, choices=choices)


def describe(name: str) -> str:
    """Return the ``description`` of a shipped scenario, without validating the rest of it.

    Listing must work even where a scenario cannot run (a loop not installed, say).
    """
    _, data = find(name)
    try:
        description = tomllib.loads(data.decode("utf-8")).get("description", "")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "(not a valid scenario file)"
    return str(description)


_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$\.?(?P<key>.*)`)?$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<key>[^`]*)`$")


def _shape_error(message: str) -> str:
    """Rephrase a msgspec validation message as ``key: what was expected``."""
    match = _AT.match(message)
    what, key = (match["what"], match["key"]) if match else (message, None)
    unknown = _UNKNOWN.match(what)
    if unknown:
        prefix = f"{key}." if key else ""
        known = ", ".join(ScenarioFile.__struct_fields__)
        return f"{prefix}{unknown['key']}: unknown key (known keys: {known})"
    what = what.replace("`", "").replace("Expected", "expected").replace("array", "list")
    return f"{key}: {what}" if key else what


def _choices(raw: Any) -> Choices:
    """Turn a checked file's keys into choices: sweeps expanded, levels resolved, lists made lists."""
    said: dict[str, Any] = {}
    for option in OPTIONS:
        value = getattr(raw, option.name, None) if option.scenario else None
        if value is not None:
            read = READERS.get(option.name)
            said[option.name] = read(option.name, value) if read else _listed(value) if option.many else value
    return Choices(**said)


def _listed(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def _levels(key: str, value: Level | list[Level] | None) -> list[int] | None:
    sizes = _sizes(key, value, allow_default=False)
    return None if sizes is None else [size for size in sizes if size is not None]


def _sizes(
    key: str, value: Level | list[Level] | None, allow_default: bool = True
) -> list[int | None] | None:
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    return [
        _level(f"{key}[{i}]" if isinstance(value, list) else key, v, allow_default)
        for i, v in enumerate(values)
    ]


_CORES = re.compile(r"^\s*(?:(?P<factor>\d+)\s*\*\s*)?cores\s*$")


def _level(key: str, value: Level, allow_default: bool) -> int | None:
    """Resolve ``8``, ``"cores"``, ``"2*cores"`` (or ``"default"``) for this machine."""
    if isinstance(value, int):
        return value
    if allow_default and value.strip() == "default":
        return None
    match = _CORES.match(value)
    if not match:
        also = ", 'default'" if allow_default else ""
        raise UsageError(f"expected a number, 'cores' or 'N*cores'{also}, got {value!r}", key=key)
    return int(match["factor"] or 1) * (os.cpu_count() or 1)


def _workloads(tables: list[dict[str, Any]] | None) -> list[WorkloadSpec] | None:
    if tables is None:
        return None
    specs: list[WorkloadSpec] = []
    for index, table in enumerate(tables):
        key = f"workloads[{index}]"
        name = table.get("name")
        if not isinstance(name, str):
            given = "it is missing" if name is None else f"got {name!r}"
            raise UsageError(
                f'each workload needs name = "WORKLOAD" or "module:function"; {given}',
                key=f"{key}.name",
            )
        defaults = settings.resolve_workload(WorkloadSpec(name=name), key).params
        params = {k: v for k, v in table.items() if k != "name"}
        for param, value in params.items():
            _check_json(f"{key}.{param}", value)
        specs.extend(
            settings.resolve_workload(spec, key) for spec in _sweep(key, name, params, defaults)
        )
    return specs


def _sweep(
    key: str, name: str, params: Mapping[str, Any], defaults: Mapping[str, Any]
) -> Iterable[WorkloadSpec]:
    """Yield one workload per combination of the listed values of scalar parameters."""
    swept = {
        param: value
        for param, value in params.items()
        if isinstance(value, list) and not isinstance(defaults.get(param), list)
    }
    for param, values in swept.items():
        if not values:
            raise UsageError("empty list: give at least one value to sweep", key=f"{key}.{param}")
    for combination in itertools.product(*swept.values()):
        yield WorkloadSpec(name=name, params={**params, **dict(zip(swept, combination, strict=True))})


def _check_json(key: str, value: Any) -> None:
    """Refuse what JSON cannot carry (TOML dates and times, non-finite floats)."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(f"{key}[{i}]", item)
    elif isinstance(value, dict):
        for name, item in value.items():
            _check_json(f"{key}.{name}", item)
    elif isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"expected a finite number, got {value}", key=key)
    elif not isinstance(value, str | int | float | bool):
        raise UsageError(
            f"expected a string, number, boolean, list or table, got a {type(value).__name__}", key=key
        )


def _workloads_of(key: str, tables: list[dict[str, Any]]) -> list[WorkloadSpec]:
    found = _workloads(tables)
    assert found is not None
    return found


READERS: dict[str, Callable[[str, Any], Any]] = {
    "workloads": _workloads_of,
    "concurrency": lambda key, value: _levels(key, value),
    "max_workers": lambda key, value: _sizes(key, value),
}
"""How a scenario's value becomes a choice, for the options whose file form is not the choice's."""
