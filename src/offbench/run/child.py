"""Entry point of a spawned (not forked) child: ``python -m offbench.run.child MODULE:FUNC FD``."""

import sys

from offbench.processes import child_entry, die_with_parent_from_environment

if __name__ == "__main__":
    die_with_parent_from_environment()  # first: the parent may die at any moment from now on
    child_entry(sys.argv[1:])
