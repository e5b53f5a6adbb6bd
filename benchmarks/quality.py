"""Prove the instrument: offbench measured against known truths and the tools people use; writes QUALITY.md.

The sections live in the package ``benchmarks/quality/`` (its ``__init__`` lists them)::

    python benchmarks/quality.py                         # everything; writes benchmarks/QUALITY.md
    python benchmarks/quality.py --smoke -o /tmp/q.md    # every section at its smallest: does it work?
    python benchmarks/quality.py --only 1,2 -o /tmp/q.md # some sections only

Needs the ``bench`` extra (``pip install -e '.[bench]'``: aiodebug, pyperf). Run the full script
on an otherwise idle machine: every other process is noise in sections 3 to 8.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the package beside this file, not this file

from quality.main import main

if __name__ == "__main__":
    sys.exit(main())
