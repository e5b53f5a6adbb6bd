"""What runs inside a measured worker process: the only code that times anything.

Nothing here imports ``plan``, ``run``, ``judge`` or ``render``: a worker loads only
what measuring needs, and :mod:`offbench.measure.calls` (unpickled in pool processes
and subinterpreters) loads nothing of offbench beyond itself.
"""
