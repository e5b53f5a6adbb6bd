"""``numpy``: a matrix product, computed by BLAS with the GIL released.

BLAS is pinned to one thread in every process that runs it (with ``threadpoolctl``,
after NumPy is imported, which is when it takes effect), so the only parallelism
measured is the strategy's own. The runner imports NumPy once, with BLAS's thread pool
held to one thread as the library loads, so the workers forked from it skip the
import (0.1-0.2 s per process) and the runner stays single-threaded.
"""

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from offbench.model.params import Params, ParamValue, whole
from offbench.workloads import Workload

_MATRICES: dict[int, tuple[Any, Any]] = {}

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""What BLAS builds read, once, as they load, for the size of their thread pool."""


def matmul(size: int) -> None:
    """Multiply two fixed ``size`` × ``size`` matrices; BLAS releases the GIL meanwhile."""
    pair = _MATRICES.get(size)
    if pair is None:
        import numpy as np

        rng = np.random.default_rng(size)
        pair = (rng.random((size, size)), rng.random((size, size)))
        _MATRICES[size] = pair
    pair[0] @ pair[1]


class NumpyWorkload(Workload):
    """A BLAS matrix product: threads run it in parallel because the GIL is released."""

    name = "numpy"
    summary = "NumPy matrix product (releases the GIL), BLAS pinned to 1 thread"
    defaults: ClassVar[Mapping[str, ParamValue]] = {"size": 384}

    def preload(self) -> bool:
        """Import NumPy and threadpoolctl with BLAS loading single-threaded; children see no change.

        Loads nothing where NumPy is missing (the cell will say so) or already loaded with
        its own threads.
        """
        if "numpy" in sys.modules:
            return False
        with _variables_set(BLAS_THREAD_VARIABLES, "1"), contextlib.suppress(ImportError):
            import numpy  # noqa: F401
            import threadpoolctl  # noqa: F401

            return True
        return False

    def prepare(self, params: Mapping[str, ParamValue]) -> Params:
        """Import NumPy, pin BLAS to one thread, build the matrices; return the BLAS facts."""
        import numpy as np
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(limits=1)
        matmul(whole(params, "size"))
        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        details: Params = {"numpy_version": np.__version__}
        if blas:
            details["blas"] = f"{blas[0].get('internal_api')} {blas[0].get('version')}"
            details["blas_threads"] = int(blas[0].get("num_threads", 0))
        return details

    def make_call(
        self, params: Mapping[str, ParamValue], resources: Mapping[str, ParamValue]
    ) -> Callable[[], object]:
        """Return :func:`matmul` bound to the configured matrix size."""
        return functools.partial(matmul, whole(params, "size"))


@contextlib.contextmanager
def _variables_set(names: tuple[str, ...], value: str) -> Iterator[None]:
    """Set the environment variables not set already to ``value`` for the block only."""
    added = [name for name in names if name not in os.environ]
    os.environ.update(dict.fromkeys(added, value))
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
