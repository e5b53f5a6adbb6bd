"""Dask distributed: offload to a cluster's workers through an asynchronous client.

Only measured when named (``-s dask``), and only where ``distributed`` is installed
(the ``strategies`` extra). By default each cell starts a :class:`LocalCluster` of
single-threaded worker processes on its own loop, before the window (its start-up is
reported, not hidden in throughput); ``--dask-scheduler ADDRESS`` connects to an
existing scheduler instead. Every call is a task: client → scheduler → worker and
back, so even a no-op costs a scheduler round trip (about 10 ms here, see docs/guide.md),
which is the point of measuring it beside ``process-pool``.

``distributed`` is imported only when the strategy starts: importing it takes about
half a second, which no other command should pay.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
from typing import TYPE_CHECKING, Any

from offbench.model.params import Params
from offbench.strategies import Call, Strategy, missing_package, register

if TYPE_CHECKING:
    from offbench.model.cells import CellSpec

CONNECT_TIMEOUT_S = 10.0
"""How long to wait for a scheduler to answer, and for it to have a worker."""
CLOSE_TIMEOUT_S = 10.0
"""How long closing the client and the cluster may take before their workers are killed."""
DEFAULT_WORKERS = 2


@register
class DaskCluster(Strategy):
    """``await client.submit(fn, pure=False)`` on a Dask cluster: a local one per cell, or a scheduler's."""

    name = "dask"
    summary = "await client.submit(fn) (dask.distributed, LocalCluster or --dask-scheduler)"
    runs_on = "process"
    sized = True
    default = False

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Return why Dask cannot be used here: ``distributed`` is not installed."""
        return missing_package("distributed", "dask.distributed")

    @classmethod
    def from_cell(cls, cell: CellSpec) -> Strategy:
        """Return an instance for ``cell``: its pool size, and the scheduler it names, if any."""
        return cls(max_workers=cell.max_workers, scheduler=cell.dask_scheduler)

    def __init__(self, max_workers: int | None = None, scheduler: str | None = None) -> None:
        super().__init__(max_workers)
        self.scheduler = scheduler
        # A remote scheduler's workers stamp on their own machines' clocks: no breakdown.
        self.same_clock = scheduler is None
        self.client: Any = None
        self.cluster: Any = None
        self._scratch: str | None = None
        self._worker_pids: list[int] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, fn: Call, prepare: Call) -> Params:
        """Start a local cluster (or connect to the scheduler), run ``prepare`` on every worker.

        An unreachable scheduler, or one without workers, raises ``ConnectionError``
        after :data:`CONNECT_TIMEOUT_S` seconds instead of leaving the cell to hang.
        """
        await super().start(fn, prepare)
        from distributed import Client, LocalCluster

        self._loop = asyncio.get_running_loop()
        began = time.perf_counter()
        if self.scheduler is None:
            self._scratch = tempfile.mkdtemp(prefix="offbench-dask-")
            self.cluster = await LocalCluster(
                asynchronous=True,
                processes=True,
                n_workers=self.max_workers or DEFAULT_WORKERS,
                threads_per_worker=1,
                host="127.0.0.1",
                dashboard_address=None,
                local_directory=self._scratch,
            )
            self.client = await Client(self.cluster, asynchronous=True)
        else:
            self.client = await self._connect(Client, self.scheduler)
        workers = await self.client.run(prepare)
        if self.scheduler is None:
            self._worker_pids = list((await self.client.run(os.getpid)).values())
        return {
            "cluster": "local" if self.scheduler is None else "address",
            "n_workers": len(workers),
            "max_workers": len(workers),
            "startup_s": round(time.perf_counter() - began, 6),
        }

    @staticmethod
    async def _connect(client_type: Any, address: str) -> Any:
        """Connect to the scheduler at ``address`` and wait for a worker, within the timeout.

        Dask's client keeps retrying a refused connection until its timeout; a ``tcp://``
        port where nothing listens is said at once instead (a scheduler still starting
        listens before it answers, so it is not refused).
        """
        await _refused(address)
        try:
            client = await client_type(address, asynchronous=True, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            cause = "" if isinstance(exc, TimeoutError) or "Timed out" in str(exc) else f" ({exc})"
            raise ConnectionError(
                f"no Dask scheduler answered at {address} within {CONNECT_TIMEOUT_S:g} s{cause}"
            ) from None
        try:
            await client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError):
            await client.close()
            raise ConnectionError(
                f"the Dask scheduler at {address} has no worker (none joined in {CONNECT_TIMEOUT_S:g} s)"
            ) from None
        return client

    async def call(self) -> object:
        """Submit the call as a (non-pure, so never cached) task and await its result."""
        return await self.client.submit(self.fn, pure=False)

    async def stop(self) -> None:
        """Close the client and, if this started one, the local cluster and its worker processes.

        On another loop than the one that started it (``offbench check``'s shutdown
        experiment stops it after that loop closed) the cluster cannot be closed
        cleanly: its worker processes are killed instead. Either way none outlives this.
        """
        client, cluster, self.client, self.cluster = self.client, self.cluster, None, None
        try:
            if asyncio.get_running_loop() is self._loop and not self._loop.is_closed():
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(CLOSE_TIMEOUT_S):
                        if client is not None:
                            await client.close()
                        if cluster is not None:
                            await cluster.close()
        finally:
            _kill(self._worker_pids)
            self._worker_pids = []
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
                self._scratch = None


def _kill(pids: list[int]) -> None:
    """Kill and reap those of our worker processes a clean close left running (normally none).

    Only children not yet reaped are killed: a pid already reaped may belong to anyone now.
    """
    for pid in pids:
        try:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                continue
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ChildProcessError, ProcessLookupError):
            continue


async def _refused(address: str) -> None:
    """Raise ``ConnectionError`` if ``address`` is ``tcp://host:port`` and that port refuses a connection."""
    scheme, _, rest = address.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme != "tcp" or not host or not port.isdigit():
        return
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host.strip("[]"), int(port)),
                                           CONNECT_TIMEOUT_S)
    except ConnectionRefusedError:
        raise ConnectionError(f"no Dask scheduler answered at {address}: nothing listens there "
                              "(connection refused)") from None
    except (OSError, TimeoutError):
        return  # unreachable in another way: the client's own attempt says how
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
