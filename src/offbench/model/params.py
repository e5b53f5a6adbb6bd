"""Workload parameters: the values a scenario or the command line gives a workload.

Parameters travel as JSON (to worker processes, into results files), so a value is a
TOML/JSON scalar, or a list or table for a user callable's ``args`` and ``kwargs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ParamValue = int | float | str | bool | list[Any] | dict[str, Any]
"""A parameter value: a TOML/JSON scalar, or (for a user callable's args and kwargs) a list or table."""
Params = dict[str, ParamValue]


def number(params: Mapping[str, ParamValue], key: str) -> float:
    """Return the numeric parameter ``key`` as a float (parameters are validated before use)."""
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"parameter {key!r} is not a number: {value!r}")
    return float(value)


def whole(params: Mapping[str, ParamValue], key: str) -> int:
    """Return the numeric parameter ``key`` as an int."""
    return int(number(params, key))
