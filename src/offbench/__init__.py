"""offbench: which asyncio offload strategy keeps your event loop responsive, and at what cost.

The package is laid out as the pipeline a run goes through; ``tests/test_layout.py``
holds the rules below against the imports.

* ``model/``: the vocabulary and the results file (parameters, cells, settings,
  results and their codec, the schema). Imports no other layer.
* ``plan/``: what the user said (options, scenario files, ``--python``) → validated
  settings → the matrix of cells.
* ``measure/``: all that runs inside the measured worker process (worker, probe,
  watchdog, utilisation, breakdown, the wire format to the parent). Never imports
  ``plan``, ``run``, ``judge`` or ``render``.
* ``run/``: the parent: starts the workers, pools their measurements, costs pools.
* ``judge/``: pure functions of results: verdict, compare, gates. Never imports ``render``.
* ``render/``: terminal, markdown, HTML, plots, pyperf, progress. Never imports
  ``measure``, ``run`` or ``plan``.
* Shelves users see and extend: ``strategies/``, ``workloads/``, ``loops.py``,
  ``semantics/``. They import ``model`` and the leaves only.
* Leaves any layer may use: ``errors``, ``stats``, ``formatting``, ``processes``, ``outputs``,
  ``cache``.

``cli.py`` sits on top: parse → plan → run → judge → render → exit code. No import circle.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
