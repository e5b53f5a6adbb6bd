"""The ``offbench`` command's entry point: stop signals handled before anything else is imported.

Importing the command line (typer, rich, msgspec) takes a few tenths of a second; a
Ctrl-C or a SIGTERM in that time would otherwise print a traceback or die with the
default action. Nothing has started yet, so there is nothing to clean up: the process
just ends with the usual code (130, 143). :func:`offbench.cli.main` then installs the
handlers that stop a run in order.
"""

import os
import signal
import sys


def _ended(signum: int, frame: object) -> None:
    os._exit(128 + signum)


def main() -> None:
    """Run the command line, after making an early stop a quiet one."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # a shell's background job ignores SIGINT
            signal.signal(signum, _ended)
    from offbench.cli import main as cli_main

    cli_main(sys.argv[1:])
