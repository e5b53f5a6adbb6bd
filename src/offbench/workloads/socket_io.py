"""``socket``: one blocking TCP request/response with the ``socket`` module.

The peer is a real server on 127.0.0.1 in its own process (:mod:`offbench.workloads.server`),
started by the runner before the cell and stopped after it.
"""

import functools
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import ClassVar

from offbench.model.params import Params, ParamValue, number, whole
from offbench.workloads import Workload
from offbench.workloads.server import ServerConfig, loopback_server

HOST = "127.0.0.1"


def request(host: str, port: int, payload: bytes, timeout_s: float) -> int:
    """Connect, send ``payload``, read the reply until the server closes, close; return its size."""
    received = 0
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(payload)
        while chunk := sock.recv(65536):
            received += len(chunk)
    return received


class SocketWorkload(Workload):
    """Blocking network I/O against a loopback server that answers after ``delay_ms``."""

    name = "socket"
    files_per_call = 1
    summary = "blocking TCP connect/send/recv/close against a loopback server (reply after 5 ms)"
    defaults: ClassVar[Mapping[str, ParamValue]] = {
        "delay_ms": 5.0,
        "request_bytes": 64,
        "reply_bytes": 64,
        "timeout_s": 10.0,
    }

    @contextmanager
    def fixture(self, params: Mapping[str, ParamValue]) -> Iterator[Params]:
        """Run the loopback server for the cell; yield its address."""
        config = ServerConfig(
            host=HOST, delay_ms=number(params, "delay_ms"), reply_bytes=whole(params, "reply_bytes")
        )
        with loopback_server(config) as port:
            yield {"host": HOST, "port": port}

    def make_call(
        self, params: Mapping[str, ParamValue], resources: Mapping[str, ParamValue]
    ) -> Callable[[], object]:
        """Return :func:`request` bound to the running server and the request size."""
        size = max(1, whole(params, "request_bytes"))
        payload = b"q" * (size - 1) + b"\n"
        return functools.partial(
            request, str(resources["host"]), whole(resources, "port"), payload,
            number(params, "timeout_s"),
        )
