"""jit plans run independent calls at once, from any number of caller threads.

Concurrency is proven with `threading.Barrier`s inside the operators: a barrier of N
parties only opens when N calls are in flight at the same moment, so a passing test is a
measurement, not a timing. Barriers carry a timeout so a regression fails instead of
hanging.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from jit_user_code import pipeline as p

import ember_xcs as xcs


class BarrierEcho(xcs.Operator):
    """A leaf that waits until `barrier.parties` calls are in flight together."""

    def __init__(self, tag: str, barrier: threading.Barrier):
        self.tag = tag
        self.barrier = barrier

    def forward(self, prompt: str) -> str:
        self.barrier.wait()
        return f"{self.tag}({prompt})"


class InFlight(xcs.Operator):
    """A leaf that records the largest number of its calls running at once."""

    def __init__(self, seconds: float = 0.02):
        self.seconds = seconds
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def forward(self, prompt: str) -> str:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.seconds)
        with self.lock:
            self.now -= 1
        return prompt


def barrier_ensemble(barrier: threading.Barrier | None) -> p.Ensemble:
    """10 ensembles of 10 barrier units + judge, under a judge: 111 leaf calls.

    Without a barrier, the same ensemble with plain units (for the expected answer).
    """

    def unit(tag: str) -> xcs.Operator:
        return p.Echo(tag) if barrier is None else BarrierEcho(tag, barrier)

    inner = [p.Ensemble([unit(f"u{i}{j}") for j in range(10)], p.Join()) for i in range(10)]
    return p.Ensemble(inner, p.Join())


def test_nested_ensemble_reaches_100_calls_in_flight():
    barrier = threading.Barrier(100, timeout=30)
    jitted = xcs.jit(barrier_ensemble(barrier))
    twin = barrier_ensemble(None)
    with xcs.execution_options(scheduler="parallel"):
        for q in ("first", "second"):
            assert jitted(q) == twin(q)
            stats = xcs.get_jit_stats(jitted)
            assert stats.leaf_calls == 111
            assert stats.critical_path == 3
            assert stats.max_in_flight >= 100


def test_nested_ensemble_answers_match_the_plain_operator():
    ensemble = p.nested_ensemble(width=10, depth=2)
    jitted = xcs.jit(ensemble)
    for q in ("a", "b", "c"):
        assert jitted(q) == ensemble.forward(q)
    assert xcs.get_jit_strategy_used(jitted) == xcs.JITMode.TRACE


def test_sixteen_threads_each_get_their_own_answer():
    ensemble = p.nested_ensemble(width=3, depth=2)
    jitted = xcs.jit(ensemble)
    start = threading.Barrier(16, timeout=30)
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            start.wait()
            for round_ in range(3):
                results[(i, round_)] = jitted(f"q{i}-{round_}")
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(results) == 48
    for (i, round_), value in results.items():
        assert value == ensemble.forward(f"q{i}-{round_}")
    assert xcs.get_jit_stats(jitted).traces == 1  # one trace, however many threads missed


def test_dynamic_mode_overlaps_independent_calls_before_a_branch():
    barrier = threading.Barrier(5, timeout=30)
    units = [BarrierEcho(f"u{i}", barrier) for i in range(5)]

    @xcs.jit(mode="dynamic")
    def vote(q: str) -> str:
        answers = [unit(q) for unit in units]
        if answers[0].startswith("u0"):  # data-dependent: needs the value
            return p.judge(answers, question=q)
        return "never"

    with xcs.execution_options(scheduler="parallel"):
        assert vote("x") == p.judge([f"u{i}(x)" for i in range(5)], question="x")


def test_auto_mode_falls_back_to_dynamic_and_still_overlaps():
    barrier = threading.Barrier(4, timeout=30)
    units = [BarrierEcho(f"u{i}", barrier) for i in range(4)]

    @xcs.jit
    def pick(q: str) -> str:
        answers = [unit(q) for unit in units]
        best = max(answers, key=len)  # compares values: the trace stops here
        return p.llm(f"best: {best}")

    with xcs.execution_options(scheduler="parallel"):
        for q in ("a", "bb"):
            assert pick(q) == f"llm(best: u0({q}))"
    assert xcs.get_jit_strategy_used(pick) == xcs.JITMode.DYNAMIC


def test_sequential_scheduler_runs_one_call_at_a_time():
    leaf = InFlight(0.001)
    ensemble = p.Ensemble([leaf] * 6, p.Join())
    jitted = xcs.jit(ensemble)
    with xcs.execution_options(scheduler="sequential"):
        assert jitted("q") == ensemble.forward("q")
    assert leaf.peak == 1
    assert xcs.get_jit_stats(jitted).max_in_flight == 1


@pytest.mark.parametrize("mode", ["auto", "dynamic"])
def test_max_workers_caps_calls_in_flight(mode):
    leaf = InFlight(0.02)
    ensemble = p.Ensemble([leaf] * 12, p.Join())
    jitted = xcs.jit(ensemble, mode=mode)
    with xcs.execution_options(scheduler="parallel", max_workers=3):
        assert jitted("q") == ensemble.forward("q")
    assert 1 < leaf.peak <= 3


@pytest.mark.parametrize("mode", ["auto", "dynamic"])
def test_timeout_applies_to_jitted_calls(mode):
    slow = InFlight(2.0)
    ensemble = p.Ensemble([slow, slow], p.Join())
    jitted = xcs.jit(ensemble, mode=mode)
    with xcs.execution_options(scheduler="parallel", timeout_seconds=0.1):
        with pytest.raises(xcs.ExecutionTimeoutError):
            jitted("q")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["dynamic", "auto", "trace"])
def test_async_leaves_whose_dependents_are_async_finish_in_every_mode(mode):
    # in dynamic mode a finishing async call releases its async dependent from the event
    # loop's own thread; that must schedule the dependent, not block the loop
    @xcs.op
    async def unit(x: str, i: int) -> str:
        await asyncio.sleep(0.001)
        return f"{x}{i}"

    @xcs.op
    async def judge(*answers: str) -> str:
        await asyncio.sleep(0.001)
        return "|".join(answers)

    class Panel(xcs.Operator):
        def __init__(self):
            self.unit = unit
            self.judge = judge

        def forward(self, x):
            return self.judge(*[self.unit(x, i) for i in range(3)])

    jitted = xcs.jit(Panel(), mode=mode)
    assert jitted("a") == "a0|a1|a2"
    assert jitted("b") == "b0|b1|b2"
