"""A user's own blocking callable, named ``module:function`` (e.g. ``mypkg.client:fetch``).

The module is located in the parent (without importing it, so its side effects and
threads stay out of the pristine parent) and imported in the worker and, for
``process-pool``, by reference in every pool process.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from typing import ClassVar

from offbench.errors import UsageError
from offbench.workloads import Params, ParamValue, Workload


def resolve(target: str) -> Callable[[], object]:
    """Import ``module:function`` and return the callable, with a clear error when it is not one."""
    module_name, _, attr_path = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for attr in attr_path.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise UsageError(f"{target}: module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise UsageError(f"{target}: {type(obj).__name__} object is not callable")
    return obj


class UserFunction(Workload):
    """Any importable zero-argument callable, called as one unit of work."""

    summary = "your own blocking callable, given as module:function"
    defaults: ClassVar[Mapping[str, ParamValue]] = {}

    def __init__(self, target: str) -> None:
        self.name = target

    @classmethod
    def from_target(cls, target: str) -> UserFunction:
        """Check that ``target`` has the ``module:function`` form and its module can be found."""
        module_name, _, attr_path = target.partition(":")
        if not module_name or not attr_path or not all(
            part.isidentifier() for part in (*module_name.split("."), *attr_path.split("."))
        ):
            raise UsageError(f"workload {target!r} is not of the form module:function")
        try:
            spec = importlib.util.find_spec(module_name)
        except (ImportError, ValueError) as exc:
            raise UsageError(f"{target}: cannot import {module_name!r}: {exc}") from None
        if spec is None:
            raise UsageError(f"{target}: no module named {module_name!r} (is it on sys.path?)")
        return cls(target)

    def prepare(self, params: Mapping[str, ParamValue]) -> Params:
        """Import the callable in this process, so a broken import fails before measuring."""
        resolve(self.name)
        return {}

    def make_call(
        self, params: Mapping[str, ParamValue], resources: Mapping[str, ParamValue]
    ) -> Callable[[], object]:
        """Return the user's callable itself; it pickles by reference for process pools."""
        return resolve(self.name)
