"""jit control and introspection: ruling strategies out, explaining every strategy, call
timings per mode, cached signatures, compile and eviction hooks, the engine's status."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import ember_xcs as xcs
from tests.in_flight import wait_until_engine_idle


@xcs.op
def shout(prompt: str) -> str:
    return prompt.upper()


def formatted(q: str) -> str:
    return shout(f"{q}!")  # the f-string of an input stops the trace


def traceable(q: str) -> list[str]:
    return [shout(q), shout(q)]


def test_disabling_dynamic_runs_a_stopped_trace_as_written() -> None:
    jitted = xcs.jit(formatted, disable_strategies="dynamic")
    assert jitted("a") == "A!"
    assert xcs.get_jit_stats(jitted).plain_calls == 1
    assert "- dynamic: disabled by disable_strategies" in xcs.explain_jit_selection(jitted)


def test_disabling_the_plan_runs_a_traceable_function_dynamically() -> None:
    jitted = xcs.jit(traceable, disable_strategies=("trace",))
    assert jitted("a") == ["A", "A"]
    assert xcs.get_jit_strategy_used(jitted) is xcs.JITMode.DYNAMIC
    assert "- trace: traced, but disabled by disable_strategies" in xcs.explain_jit_selection(
        jitted
    )


def test_no_strategy_left_for_a_call_is_a_trace_error_naming_each() -> None:
    jitted = xcs.jit(formatted, disable_strategies=("dynamic", "plain"))
    with pytest.raises(xcs.TraceError, match="no strategy left") as info:
        jitted("a")
    assert "dynamic: disabled" in str(info.value) and "plain: disabled" in str(info.value)


@pytest.mark.parametrize(
    ("mode", "disabled"),
    [("dynamic", ("dynamic",)), ("trace", ("trace", "dynamic", "plain"))],
)
def test_a_mode_left_with_no_strategy_is_rejected_when_jit_is_applied(
    mode: str, disabled: tuple[str, ...]
) -> None:
    with pytest.raises(xcs.OptionsError, match="leaves no strategy"):
        xcs.jit(formatted, mode=mode, disable_strategies=disabled)


def test_an_unknown_strategy_name_is_rejected_with_the_valid_ones() -> None:
    with pytest.raises(xcs.OptionsError, match="'tracing'.*'trace', 'structural'"):
        xcs.jit(formatted, disable_strategies="tracing")


def test_explain_lists_every_strategy_with_why() -> None:
    jitted = xcs.jit(traceable)
    jitted("a")
    text = xcs.explain_jit_selection(jitted)
    for line in (
        "- trace: chosen",
        "- structural: not needed",
        "- dynamic: not needed",
        "- plain: not needed",
    ):
        assert line in text


@pytest.mark.parametrize("fn", [formatted, traceable])
def test_stats_time_calls_in_every_mode_and_compiles_per_strategy(fn: Any) -> None:
    jitted = xcs.jit(fn)
    for q in ("a", "b", "c"):
        jitted(q)
    stats = xcs.get_jit_stats(jitted)
    assert 0 < stats.call_seconds_p50 <= stats.call_seconds_p95
    assert list(stats.compile_seconds) == [stats.last_strategy]
    assert stats.signatures == ("(str)",)


class Recorder(xcs.ExecutionHooks):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def on_compile_start(self, *, target: str, key: Any) -> None:
        self.events.append(("compile_start", target))

    def on_compile(self, *, target: str, seconds: float, detail: str = "") -> None:
        self.events.append(("compile", target))

    def on_cache_evict(self, *, target: str, key: Any) -> None:
        self.events.append(("evict", target))


def test_compile_start_and_cache_eviction_reach_hooks() -> None:
    recorder = Recorder()
    jitted = xcs.jit(traceable, cache_size=1)
    with xcs.execution_options(hooks=recorder):
        jitted("a")  # signature (str)
        jitted(b"a")  # signature (bytes): evicts (str)
    name = "traceable"
    assert recorder.events == [
        ("compile_start", name),
        ("compile", name),
        ("compile_start", name),
        ("compile", name),
        ("evict", name),
    ]


def test_engine_status_shows_queued_and_running_calls_of_a_live_run() -> None:
    wait_until_engine_idle()
    release, arrived = threading.Event(), threading.Semaphore(0)

    def call() -> bool:
        arrived.release()
        return release.wait(5)

    g = xcs.Graph()
    for i in range(5):
        g.add_node(call, node_id=f"n{i}")
    options = xcs.ExecutionOptions(scheduler="parallel", max_workers=3)
    runner = threading.Thread(target=xcs.execute_graph, args=(g,), kwargs={"options": options})
    runner.start()
    try:
        for _ in range(3):  # three calls are running, two wait for a worker
            assert arrived.acquire(timeout=5)
        status = xcs.engine_status()
    finally:
        release.set()
        runner.join()
    assert (status.runs, status.running, status.queued, status.peak) == (1, 3, 2, 3)
    assert status.busy_workers >= 3 and status.workers >= status.busy_workers
    assert xcs.engine_status().runs == 0
