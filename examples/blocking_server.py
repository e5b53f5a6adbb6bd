"""A small asyncio HTTP server with one handler that blocks its event loop, and one that does not.

``GET /slow`` calls :func:`slow_query`, a synchronous "database call" (50 ms waiting on
its server, played by ``time.sleep``), straight from the handler: for those 50 ms the
loop answers no one. ``GET /fast`` makes the same call through ``asyncio.to_thread``.
``GET /`` answers at once, ``GET /quit`` stops the server (exit code 0, or the one
given as ``/quit?code=N``).

Run it, then find what blocks it and what would fix it::

    python examples/blocking_server.py --port 8000
    offbench watch -- python examples/blocking_server.py --port 8000
    offbench run -w examples.blocking_server:slow_query -s direct -s to-thread --quick

It binds 127.0.0.1 only; ``--port 0`` takes a free port. It prints
``listening on 127.0.0.1:PORT`` once it accepts connections; Ctrl-C stops it (exit 130).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

QUERY_S = 0.05
"""How long the database call waits for its server."""
HOST = "127.0.0.1"


def slow_query() -> int:
    """Make a blocking database call: wait ``QUERY_S`` for the server, then return a row count."""
    time.sleep(QUERY_S)
    return 42


async def slow(path: str) -> tuple[int, str]:
    """Answer ``/slow``: the blocking call made on the event loop."""
    rows = slow_query()
    return 200, f"{rows} rows\n"


async def fast(path: str) -> tuple[int, str]:
    """Answer ``/fast``: the same call, made in the default executor's thread."""
    rows = await asyncio.to_thread(slow_query)
    return 200, f"{rows} rows\n"


async def index(path: str) -> tuple[int, str]:
    """Answer ``/``: nothing to wait for."""
    return 200, "ok\n"


ROUTES = {"/": index, "/slow": slow, "/fast": fast}


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stop: asyncio.Event,
                 exit_code: list[int]) -> None:
    """Serve one HTTP/1.0 request: read its head, route it, answer, close."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        path, _, query = target.partition("?")
        if path == "/quit":
            exit_code[0] = int(query.removeprefix("code=") or 0)
            status, body = 200, "bye\n"
            stop.set()
        elif path in ROUTES and method == "GET":
            status, body = await ROUTES[path](path)
        else:
            status, body = 404, "not found\n"
        data = body.encode()
        writer.write(f"HTTP/1.0 {status} X\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def serve(port: int) -> int:
    """Serve until ``/quit``; return the exit code it asked for."""
    stop = asyncio.Event()
    exit_code = [0]
    server = await asyncio.start_server(lambda r, w: handle(r, w, stop, exit_code), HOST, port)
    async with server:
        print(f"listening on {HOST}:{server.sockets[0].getsockname()[1]}", flush=True)
        await stop.wait()
    return exit_code[0]


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, serve, and return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop instead of asyncio's loop")
    args = parser.parse_args(argv)
    factory = None
    if args.uvloop:
        import uvloop

        factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(serve(args.port))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
