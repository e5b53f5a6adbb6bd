"""The results file: round trip, validation errors, atomic writes."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from offbench import outputs
from offbench.errors import UsageError
from offbench.model import results
from tests.builders import sample_run


def test_round_trip() -> None:
    run = sample_run()
    assert results.decode(results.encode(run)) == run


def test_every_documented_field_is_in_the_json() -> None:
    data = msgspec.json.decode(results.encode(sample_run()))
    assert {"schema_version", "offbench_version", "created", "machine", "settings",
            "results", "complete"} <= data.keys()
    cell = data["results"][0]
    for key in ("workload", "strategy", "loop", "concurrency", "params", "status", "error",
                "ops", "elapsed_s", "throughput_ops_s", "op_latency_ms", "loop_lag_ms",
                "lag_samples", "availability"):
        assert key in cell


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not an offbench results file"),
        (b"{not json", "not an offbench results file"),
        (b'{"schema_version": 99}', "schema_version 99 is not supported"),
        (b'{"schema_version": 2, "results": 3}', "malformed results"),
        (b'{"schema_version": 1}', "schema_version 1 is not supported"),
        (b'[1, 2]', "not an offbench results file"),
    ],
)
def test_bad_files_are_one_line_errors_naming_the_file(data: bytes, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        results.decode(data, "base.json")
    assert str(info.value).startswith("base.json: ")
    assert "\n" not in str(info.value)


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    outputs.write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_missing_directory_is_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        outputs.check_writable(tmp_path / "nope" / "out.json")
