"""Entry point of a spawned (not forked) child: ``python -m offbench.run.child MODULE:FUNC FD``."""

import sys

from offbench.processes import child_entry

if __name__ == "__main__":
    child_entry(sys.argv[1:])
