"""Prove the instrument: offbench measured against known truths, against itself, and the tools people use.

``python benchmarks/quality.py`` runs the sections and writes ``benchmarks/QUALITY.md``;
each section is a module here, each real measurements on this machine, each target
marked met or not with the measured figure and why (the findings are computed from the
run's own numbers):

1. accuracy      stalls injected at random moments; max lag and percentiles against the truth
                 (:mod:`.stalls`, with aiodebug on the same stalls)
2. noise floor   an idle loop with only the probe, per loop and tick source (:mod:`.floor`)
3. observer      the probe, watchdog, call stamping and callback timing each off, paired (:mod:`.observer`)
4. harness       the worker's per-op bookkeeping against a bare loop (:mod:`.floor`), and pyperf on
                 the same per-call cost (:mod:`.pyperf_side`)
5. repeatability identical ``offbench run --quick`` runs: per-cell CV, raw and normalised (:mod:`.repeat`)
6. calibration   ``offbench compare`` on identical code and on a 20 % loss, separate runs and A/B in
                 one run (:mod:`.calibration`)
7. verdicts      the same verdict run after run (:mod:`.repeat`)
8. time to answer wall time, precision per cell, slow functions, ETA, ``--time-budget`` (:mod:`.answer`)
9. this script   its own time against its budget (:mod:`.main`)

The modules import each other relatively, so the package works as ``quality`` (the script puts
``benchmarks/`` first on ``sys.path``) and as ``benchmarks.quality`` (the tests).
"""
