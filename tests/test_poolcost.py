"""The process-pool cost table: start-up by start method, per-call cost, and cleanup, in real processes."""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import pickle
import threading

import cloudpickle
import msgspec
import psutil
import pytest

from offbench.measure import calls
from offbench.model.results import PoolCost
from offbench.processes import run_child
from offbench.run import poolcost
from offbench.run.poolcost import CostSpec

FOUR_MIB = 4 << 20


def answer() -> int:
    """A module-level function to ship with a payload."""
    return 42


def costs_in_child(spec: CostSpec) -> list[PoolCost]:
    """Run ``spec`` through ``child_main`` in a child, as the runner does; decode what it reported."""
    outcome = run_child(poolcost.child_main, msgspec.json.encode(spec), timeout=60)
    assert outcome.returncode == 0, outcome.output
    return poolcost.decode_report(outcome.report)


# --- physics ---------------------------------------------------------------------------------------


@pytest.mark.workers
def test_every_start_method_gets_a_row_and_shipping_megabytes_costs_more_than_a_no_op() -> None:
    rows = costs_in_child(CostSpec(pools=["process-pool"], workers=2, calls=20,
                                   payload_bytes=FOUR_MIB, python="here"))

    methods = multiprocessing.get_all_start_methods()
    assert [r.start_method for r in rows] == sorted(methods, key=lambda m: m != "fork")
    for row in rows:
        assert row.error is None, row
        assert (row.pool, row.workers, row.python) == ("process-pool", 2, "here")
        assert row.startup_s > 0
        no_op, payload = row.calls
        assert (no_op.payload_bytes, payload.payload_bytes) == (0, FOUR_MIB)
        # 4 MiB are pickled, written through a pipe, read and unpickled: more than nothing.
        assert payload.round_trip_ms.p50 > no_op.round_trip_ms.p50
        assert 0 < payload.pickle_ms <= payload.round_trip_ms.p50
        assert no_op.round_trip_ms.p50 <= no_op.round_trip_ms.p99


@pytest.mark.workers
def test_no_payload_row_without_a_payload() -> None:
    rows = costs_in_child(CostSpec(pools=["process-pool"], workers=1, calls=3, payload_bytes=0))
    assert rows
    assert all([c.payload_bytes for c in r.calls] == [0] for r in rows)


@pytest.mark.workers
def test_loky_gets_one_row_with_its_own_start_method() -> None:
    pytest.importorskip("loky")
    rows = costs_in_child(CostSpec(pools=["loky"], workers=2, calls=5, payload_bytes=1024))
    assert len(rows) == 1
    row = rows[0]
    assert row.error is None, row
    assert (row.pool, row.start_method, row.workers) == ("loky", "loky", 2)
    assert row.startup_s > 0
    assert [c.payload_bytes for c in row.calls] == [0, 1024]


# --- failures --------------------------------------------------------------------------------------


def with_a_broken_start_method(payload: bytes, report_fd: int) -> None:
    """Child: cost ``payload``'s spec with a start method that cannot work beside ``fork``."""
    multiprocessing.get_all_start_methods = lambda: ["no-such-method", "fork"]  # type: ignore[assignment]
    poolcost.child_main(payload, report_fd)


@pytest.mark.workers
def test_a_failing_row_says_why_and_the_others_survive() -> None:
    # A spawned child: a fresh interpreter runs one thread, so its fork row is allowed
    # whatever threads this test process runs.
    outcome = run_child(with_a_broken_start_method, msgspec.json.encode(
        CostSpec(pools=["nope", "process-pool"], workers=1, calls=3, payload_bytes=0)),
        timeout=60, method="spawn")
    rows = poolcost.decode_report(outcome.report)

    assert [(r.pool, r.start_method) for r in rows] == [
        ("process-pool", "fork"), ("process-pool", "no-such-method"), ("nope", "")]
    fork, bad_method, bad_pool = rows
    assert fork.error is None
    assert fork.startup_s > 0
    for failed in (bad_method, bad_pool):
        assert failed.error
        assert "\n" not in failed.error
        assert (failed.workers, failed.startup_s, failed.calls) == (0, 0.0, [])
    assert "no-such-method" in (bad_method.error or "")
    assert "unknown pool 'nope'" in (bad_pool.error or "")


def test_fork_is_refused_while_a_thread_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["fork"])
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        rows = poolcost.measure(CostSpec(pools=["process-pool"], calls=1, payload_bytes=0))
    finally:
        release.set()
        thread.join()
    assert len(rows) == 1
    assert rows[0].start_method == "fork"
    assert "could deadlock" in (rows[0].error or "")


def test_fork_waits_for_the_kernel_to_drop_joined_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    # Python has joined its threads; the kernel lists one for two more looks, then drops it.
    counts = iter([2, 2, 1])
    monkeypatch.setattr(poolcost, "native_thread_count", lambda: next(counts, 1))
    assert poolcost.fork_refusal() is None


def test_fork_is_refused_while_a_native_thread_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(poolcost, "native_thread_count", lambda: 3)  # a C library's pool
    monkeypatch.setattr(poolcost, "JOINED_THREADS_GONE_S", 0.02)
    assert "runs 3 threads" in (poolcost.fork_refusal() or "")


def interrupted_child(payload: bytes, report_fd: int) -> None:
    """Child: fail one fork row with an error, interrupt another; report the processes left each time."""
    spec = CostSpec(pools=["process-pool"], workers=2, calls=1, payload_bytes=0)
    multiprocessing.get_all_start_methods = lambda: ["fork"]  # type: ignore[assignment]
    report: dict[str, object] = {}
    for name, exc in (("error", RuntimeError("a call broke")), ("interrupt", KeyboardInterrupt())):

        def boom(*args: object, raised: BaseException = exc) -> None:
            raise raised

        poolcost._call_cost = boom  # type: ignore[assignment]
        try:
            report[name] = [r.error for r in poolcost.measure(spec)]
        except KeyboardInterrupt:
            report[name] = "interrupted"
        report[f"{name} left"] = [p.pid for p in psutil.Process().children(recursive=True)
                                  if p.status() != psutil.STATUS_ZOMBIE]
    with open(report_fd, "wb", closefd=True) as out:
        out.write(msgspec.json.encode(report))
    os._exit(0)


@pytest.mark.workers
def test_a_row_that_breaks_or_is_interrupted_leaves_no_pool_process() -> None:
    outcome = run_child(interrupted_child, b"", timeout=60, method="spawn")
    report = msgspec.json.decode(outcome.report)
    assert report == {
        "error": ["RuntimeError: a call broke"],
        "error left": [],
        "interrupt": "interrupted",
        "interrupt left": [],
    }


@pytest.mark.workers
def test_a_child_that_runs_out_of_time_gives_an_error_row_per_pool() -> None:
    # The resource tracker alone is given TRACKER_SETTLE_S before the spawn row: over the limit.
    spec = CostSpec(pools=["process-pool", "loky"], workers=1, calls=1, payload_bytes=0)
    rows = poolcost.measure_in_child(spec, timeout_s=poolcost.TRACKER_SETTLE_S / 2)
    assert [(r.pool, r.start_method) for r in rows] == [("process-pool", ""), ("loky", "")]
    assert all("did not finish" in (r.error or "") for r in rows)


def test_a_spec_with_no_calls_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="calls"):
        msgspec.json.decode(b'{"pools": ["process-pool"], "calls": 0}', type=CostSpec)


# --- payload and pool choice ------------------------------------------------------------------------


@pytest.mark.parametrize("pickler", [pickle, cloudpickle], ids=["pickle", "cloudpickle"])
def test_with_payload_ships_the_bytes_and_calls_through(pickler: object) -> None:
    shipped = calls.with_payload(answer, 100_000)
    data = pickler.dumps(shipped)  # type: ignore[attr-defined]
    assert len(data) > 100_000
    assert pickle.loads(data)() == 42


def test_with_no_payload_is_the_function_itself() -> None:
    assert calls.with_payload(answer, 0) is answer
    with pytest.raises(ValueError, match="0 or more"):
        calls.with_payload(answer, -1)


def test_payload_calls_stay_within_the_byte_budget() -> None:
    spec = CostSpec(pools=[], calls=200)
    assert poolcost.payload_calls(spec) == 64  # 1 MiB by default: 64 MiB in all
    assert poolcost.payload_calls(msgspec.structs.replace(spec, payload_bytes=0)) == 0
    assert poolcost.payload_calls(msgspec.structs.replace(spec, payload_bytes=1024)) == 200
    assert poolcost.payload_calls(msgspec.structs.replace(spec, payload_bytes=1 << 30)) == 5


def test_pools_for_takes_the_process_pools_of_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    assert poolcost.pools_for(["direct", "to-thread"]) == []
    assert poolcost.pools_for(["process-pool", "direct"]) == ["process-pool"]
    if importlib.util.find_spec("loky") is not None:
        assert poolcost.pools_for(["loky", "process-pool"]) == ["process-pool", "loky"]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "loky" else real(name, *a))
    assert poolcost.pools_for(["loky", "process-pool"]) == ["process-pool"]
