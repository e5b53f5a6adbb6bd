"""The loopback server: loopback only, concurrent, and gone when its block ends."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from offbench.errors import UsageError
from offbench.workloads.server import ServerConfig, check_loopback, loopback_server
from offbench.workloads.socket_io import request


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com", "localhost"])
def test_refuses_non_loopback_addresses(host: str) -> None:
    with pytest.raises(UsageError):
        check_loopback(host)
    with pytest.raises(UsageError), loopback_server(ServerConfig(host=host)):
        pass


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1"])
def test_accepts_loopback_addresses(host: str) -> None:
    check_loopback(host)


@pytest.mark.workers
def test_serves_256_concurrent_connections_then_is_gone() -> None:
    me = psutil.Process()
    with loopback_server(ServerConfig(delay_ms=50.0, reply_bytes=10)) as port:
        server_pids = {p.pid for p in me.children()}
        assert server_pids
        with ThreadPoolExecutor(max_workers=256) as pool:
            sizes = list(pool.map(lambda _: request("127.0.0.1", port, b"hi\n", 10.0), range(256)))
        assert sizes == [10] * 256
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                   for pid in server_pids)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
