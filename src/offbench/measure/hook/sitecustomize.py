"""``offbench watch``'s start-up hook: Python imports it at start-up from the folder first on ``PYTHONPATH``.

This folder holds this file alone, so that nothing else of offbench's shadows the
program's modules while it is on the path. At start-up the hook, with the standard
library only:

1. takes its options out of the environment and puts ``PYTHONPATH`` back as the user had
   it (the program, and every process it starts, sees its own environment);
2. takes this folder off ``sys.path``;
3. loads offbench from the installation this file belongs to (not whichever the program's
   environment may have), and calls :func:`offbench.measure.watched.install`;
4. imports the ``sitecustomize`` module it shadowed, if there is one, as Python would have.

An error in steps 1 to 3 is written to the report for ``offbench watch`` to show, and
the program runs unmeasured; an error in the shadowed module is Python's usual
"Error in sitecustomize" message, as without offbench.
"""

import contextlib
import importlib
import importlib.util
import json
import os
import sys

_ENV = "OFFBENCH_WATCH"


def _load_offbench(package: str) -> None:
    """Import offbench from ``package`` (its folder) unless it is already imported."""
    if "offbench" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(
        "offbench", os.path.join(package, "__init__.py"), submodule_search_locations=[package]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load offbench from {package}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["offbench"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["offbench"]
        raise


def _start() -> None:
    text = os.environ.pop(_ENV, None)
    if text is None:  # this folder is on the path by mistake: stand aside
        return
    options = json.loads(text)
    if options.get("pythonpath") is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = options["pythonpath"]
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    try:
        _load_offbench(os.path.dirname(os.path.dirname(here)))
        from offbench.measure import watched

        watched.install(watched.WatchOptions(**options))
    except Exception as exc:
        report = {"loops": [], "final": True, "error": f"offbench's hook could not start: "
                  f"{type(exc).__name__}: {exc} (is offbench installed in the program's environment?)"}
        with contextlib.suppress(OSError), open(options["report"], "w") as out:
            json.dump(report, out)


def _chain() -> None:
    """Import the ``sitecustomize`` this module shadows, as ``site`` would have."""
    this = sys.modules.pop(__name__, None)
    try:
        importlib.import_module("sitecustomize")
    except ImportError as exc:
        if exc.name != "sitecustomize":
            raise
        if this is not None:
            sys.modules[__name__] = this


with contextlib.suppress(Exception):  # a malformed environment: run unmeasured (offbench says so)
    _start()
_chain()
