"""A run's semantics check reads what the same code found before, and never what other code did."""

from __future__ import annotations

from pathlib import Path

import pytest

from offbench.model.semantics import StrategySemantics
from offbench.semantics import cache
from offbench.semantics.check import check


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFBENCH_CACHE", str(tmp_path))


@pytest.mark.workers
def test_a_second_run_reads_the_findings_and_a_changed_key_measures_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[str] = []
    first = check(["direct"], ["asyncio"], cached=True, on_start=lambda spec: started.append(spec.strategy))
    again = check(["direct"], ["asyncio"], cached=True, on_start=lambda spec: started.append(spec.strategy))
    assert started == ["direct"]  # measured once, then read
    assert again == first
    assert not first[0].error
    monkeypatch.setattr(cache, "VERSION", "another")  # what another offbench would key it by
    check(["direct"], ["asyncio"], cached=True, on_start=lambda spec: started.append(spec.strategy))
    assert started == ["direct", "direct"]


def test_failed_checks_and_user_functions_are_not_kept() -> None:
    cache.store(StrategySemantics(strategy="direct", loop="asyncio", findings=[], error="worker died"))
    cache.store(StrategySemantics(strategy="to-thread", loop="asyncio", findings=[], target="mod:fn"))
    assert cache.load("direct", "asyncio") is None
    assert cache.load("to-thread", "asyncio") is None
