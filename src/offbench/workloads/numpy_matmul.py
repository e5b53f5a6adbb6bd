"""``numpy``: a matrix product, computed by BLAS with the GIL released.

BLAS is pinned to one thread in every process that runs it (with ``threadpoolctl``,
after NumPy is imported, which is when it takes effect), so the only parallelism
measured is the strategy's own.
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from offbench.workloads import Params, ParamValue, Workload, whole

_MATRICES: dict[int, tuple[Any, Any]] = {}


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
