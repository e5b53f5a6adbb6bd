"""The loopback TCP server that the ``socket`` workload talks to.

It runs in its own process (started by the runner once per parameter set, for the whole run), so its
work never shares a GIL or an event loop with the cell being measured. Each
connection sends one request line; the server waits ``delay_ms`` (standing in for a
database or service doing its work), replies with ``reply_bytes`` bytes and closes.
A request line ending in ``HTTP/1.x`` is read as an HTTP request (headers and all)
and answered with a ``200`` response of ``reply_bytes`` bytes, so HTTP clients such
as ``urllib.request`` can be benchmarked against it too.
The server closing first puts TIME_WAIT on the server's side, so thousands of
connections per cell do not exhaust the client's ephemeral ports.

It binds loopback addresses only: :func:`check_loopback` refuses anything else
before any socket is created.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import msgspec

from offbench import loops
from offbench.errors import UsageError
from offbench.processes import start_child

BACKLOG = 1024
"""Listen backlog: comfortably above the 256 concurrent connections the server must serve."""


class ServerConfig(msgspec.Struct, frozen=True):
    """What the server process needs: where to bind and how to answer."""

    host: str = "127.0.0.1"
    delay_ms: float = 5.0
    reply_bytes: int = 64


def check_loopback(host: str) -> None:
    """Raise ``UsageError`` unless ``host`` is a literal loopback address (127.0.0.0/8, ::1)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"server host must be a loopback IP address, got {host!r}") from None
    if not address.is_loopback:
        raise UsageError(f"refusing to bind {host}: the socket server binds loopback addresses only")


async def serve(config: ServerConfig, on_ready: int) -> None:
    """Serve until SIGTERM; write the bound port to fd ``on_ready`` once listening."""
    check_loopback(config.host)
    reply = b"r" * max(0, config.reply_bytes - 1) + b"\n"
    http_reply = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % config.reply_bytes
        + b"r" * config.reply_bytes
    )
    delay = config.delay_ms / 1000.0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            http = (await reader.readline()).rstrip().endswith((b" HTTP/1.0", b" HTTP/1.1"))
            # Read an HTTP request's headers too: closing with unread data would reset the
            # connection under the client's feet.
            while http and (await reader.readline()).strip():
                pass
            await asyncio.sleep(delay)
            writer.write(http_reply if http else reply)
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(
        handle, config.host, 0, backlog=BACKLOG, reuse_address=True
    )
    port = server.sockets[0].getsockname()[1]
    os.write(on_ready, struct.pack("!H", port))
    os.close(on_ready)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    async with server:
        await stopped.wait()


def server_main(payload: bytes, report_fd: int) -> None:
    """Child-process entry: decode the config and serve on the fastest available loop.

    uvloop when it is installed and not shadowed by a file of the working directory
    (:meth:`offbench.loops.LoopBackend.factory` refuses those); else stock asyncio.
    """
    config = msgspec.json.decode(payload, type=ServerConfig)
    factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    with contextlib.suppress(UsageError):
        factory = loops.get("uvloop").factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(config, report_fd))


@contextmanager
def loopback_server(config: ServerConfig, start_timeout: float = 10.0) -> Iterator[int]:
    """Run the server in its own process for the ``with`` block; yield its port.

    On exit the server gets SIGTERM, then SIGKILL after a second, and is reaped: no
    process or listening socket outlives the block.
    """
    check_loopback(config.host)
    read_fd, write_fd = os.pipe()
    try:
        child = start_child(server_main, msgspec.json.encode(config), write_fd)
    finally:
        os.close(write_fd)
    with child:
        try:
            port = _read_port(read_fd, start_timeout)
        finally:
            os.close(read_fd)
        if port is None:
            raise RuntimeError(f"socket server did not start: {child.output_tail() or 'no output'}")
        try:
            yield port
        finally:
            child.stop(grace=1.0)


def _read_port(fd: int, timeout: float) -> int | None:
    import select

    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return None
    with contextlib.suppress(OSError):
        data = os.read(fd, 2)
        if len(data) == 2:
            return int(struct.unpack("!H", data)[0])
    return None
