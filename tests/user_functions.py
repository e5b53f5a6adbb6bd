"""User callables for the examples tests: an unpicklable result and a setup that logs its calls."""

import os
import threading
from collections.abc import Iterator


def generator() -> Iterator[int]:
    """Return a generator: fine on a thread, cannot be pickled back from a process pool."""
    return (i for i in range(3))


def make_token() -> str:
    """Setup factory: append ``pid thread`` to the file named by OFFBENCH_TEST_SETUP_LOG."""
    with open(os.environ["OFFBENCH_TEST_SETUP_LOG"], "a") as log:
        log.write(f"{os.getpid()} {threading.get_ident()}\n")
    return "token"


def use_token(token: str) -> None:
    """Check that the setup's result arrives as the first argument."""
    if token != "token":
        raise ValueError(f"expected the setup's token, got {token!r}")


def leave_a_loop() -> None:
    """Set a new event loop for the calling thread and leave it there (a side effect to detect)."""
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())
