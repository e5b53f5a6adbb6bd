"""The JSON Schema of the results file, generated from the result types themselves.

:func:`generate` derives it with ``msgspec.json.schema`` from
:class:`~offbench.model.results.RunResult`, so it cannot drift from what ``offbench run``
writes. A copy ships in the package as ``results.schema.json`` (``offbench schema``
prints it); a test keeps that copy equal to a fresh generation.
"""

from __future__ import annotations

import inspect
from importlib import resources
from typing import Any

import msgspec

from offbench.model.results import SCHEMA_VERSION, RunResult

SCHEMA_ID = f"https://offbench.invalid/schema/results-v{SCHEMA_VERSION}.json"
SHIPPED = "results.schema.json"


def generate() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of a results file of this ``SCHEMA_VERSION``."""
    schema: dict[str, Any] = msgspec.json.schema(RunResult)
    for definition in schema["$defs"].values():
        if "description" in definition:  # 3.13 dedents docstrings itself; earlier Pythons do not
            definition["description"] = inspect.cleandoc(definition["description"])
    run = schema["$defs"]["RunResult"]
    run["properties"]["schema_version"] = {"const": SCHEMA_VERSION}
    run["required"] = sorted({*run.get("required", []), "schema_version"})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"offbench results file, schema_version {SCHEMA_VERSION}",
        **schema,
    }


def dumps(schema: dict[str, Any]) -> bytes:
    """Serialise a schema the way the shipped copy is written: indented, keys sorted."""
    return msgspec.json.format(msgspec.json.encode(schema, order="sorted"), indent=2) + b"\n"


def shipped() -> bytes:
    """Return the schema file shipped inside the package."""
    return resources.files("offbench.model").joinpath(SHIPPED).read_bytes()
