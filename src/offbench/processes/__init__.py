"""Child processes for cells and servers: started clean, in their own session, never orphaned.

Each child gets a fresh session (``setsid``), so a Ctrl-C at the terminal reaches only
the parent, which decides, and so the parent can kill a child *and everything it
started* (process-pool workers, a forkserver) with one ``killpg``.

Two ways to start a child, chosen per call:

* ``fork`` from the parent (the default on POSIX when the parent runs a single thread).
  The parent never runs an event loop, a thread or BLAS, so each child starts from the
  same pristine state, never from another cell's; it costs a few milliseconds instead
  of the ~150 ms of a new interpreter importing asyncio, which is what lets hundreds of
  units fit the time budget.
* ``spawn`` a new interpreter (``python -m offbench.run.child``) where fork is not safe:
  the parent has threads, or ``OFFBENCH_START=spawn`` asks for it.

The child's stdout and stderr go to a temporary file, never to the parent's streams,
so user code that prints cannot corrupt ``--json -``; its tail explains crashes.

Nothing a child starts outlives it, and no child outlives offbench, even a SIGKILLed one:

* The child reports in *frames* over a socket (:mod:`.frames`), and the parent reads
  until the report is whole or the child itself has exited, never until EOF.
* A child is a *subreaper* (Linux): a descendant whose parent dies is re-parented to the
  child, not to init, so the child's tree holds every process started under it, in its
  process group or in a session of its own. At the child's end the parent freezes that
  tree (SIGSTOP), kills it, and counts the processes that had left the child's process
  group (:attr:`.children.Child.left_running`), which a group kill alone would have missed
  (:mod:`.procfs`). The CLI is a subreaper too: what a dying worker leaves comes back
  to it (:mod:`.orphans`).
* If offbench dies, the kernel kills the child (Linux ``PR_SET_PDEATHSIG``,
  :mod:`.signals`), and offbench's *guardian* (:mod:`.guardian`), told of each child as
  it starts, kills its process group and removes its temporary folder. A folder whose
  owner is gone all the same (the guardian was killed too) is removed at the next start
  (:mod:`.scratch`).

The modules: :mod:`.children` (starting, running, ending a child), :mod:`.frames` (the
report), :mod:`.signals` (stop signals, the death signal), :mod:`.procfs` (process trees),
:mod:`.orphans` (what the parent adopts), :mod:`.guardian`, :mod:`.scratch` (folders),
:mod:`.limits` (open files). Only the names below are for the rest of offbench.
"""

from offbench.processes.children import ChildOutcome, Launcher, default_start_method, run_child, start_child
from offbench.processes.frames import announce, child_entry, report_and_exit
from offbench.processes.guardian import guard
from offbench.processes.limits import open_files_ceiling, raise_open_files_limit
from offbench.processes.orphans import adopt_orphans
from offbench.processes.procfs import native_thread_count
from offbench.processes.scratch import OWNER_FILE, SCRATCH_PREFIX, scratch_owner, sweep_stale_scratch
from offbench.processes.signals import (
    die_with_parent_from_environment,
    install_stop_signals,
    stop_signal,
)

__all__ = [
    "OWNER_FILE",
    "SCRATCH_PREFIX",
    "ChildOutcome",
    "Launcher",
    "adopt_orphans",
    "announce",
    "child_entry",
    "default_start_method",
    "die_with_parent_from_environment",
    "guard",
    "install_stop_signals",
    "native_thread_count",
    "open_files_ceiling",
    "raise_open_files_limit",
    "report_and_exit",
    "run_child",
    "scratch_owner",
    "start_child",
    "stop_signal",
    "sweep_stale_scratch",
]
