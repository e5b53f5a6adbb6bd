"""What each strategy does to a program's semantics, found by experiment, never from a table.

For every strategy on every loop a worker process runs the registered
:class:`~offbench.semantics.experiments.Experiment` s (context variables, thread-locals,
where the call runs, worker reuse, loop side effects, exceptions, cancellation,
argument copying, parallelism, shutdown). Each returns a
:class:`~offbench.model.semantics.Finding`: the yes/no answer to its question, what was
measured, and one sentence on why when the answer is no. ``offbench check`` prints
them; ``offbench run`` stores them in its results (``semantics``) so the verdict can warn.
"""
