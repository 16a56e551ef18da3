"""A signature whose dynamic runs overlap nothing runs its calls at once (`_jit/_serial`).

After `LEARN` runs in a row where every call ran on the body's thread, the next runs
make each call when the body makes it, as plain Python does, and go back to dispatching
the moment a call could overlap. Which path ran is read from the order of side effects:
a dynamic run holds a lone call until the body needs its value, so the body's next line
runs first; a serial run makes the call at once. Overlap is proven with barriers or
counted calls in flight, never with timing.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

import ember_xcs as xcs
from ember_xcs._jit._serial import LEARN
from ember_xcs.scheduling import _engine
from tests.in_flight import InFlight, wait_until_engine_idle


@pytest.fixture(autouse=True)
def no_starter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lone calls wait for the body however long it takes, so the order of events in a
    dynamic run cannot depend on a slow machine."""
    monkeypatch.setattr(_engine, "watch", lambda run, index: None)


@pytest.fixture(autouse=True)
def quiet_serial_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="ember_xcs.jit")


class Log:
    """`op(x)` appends `call x` to `events` (and the thread it ran on to `threads`)."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.threads: list[str] = []
        self.op = xcs.op(self._call, name="step")

    def _call(self, value: str) -> str:
        self.events.append(f"call {value}")
        self.threads.append(threading.current_thread().name)
        if value.startswith("fail"):
            raise ValueError(f"bad {value}")
        return value.upper()


def _serial_body(log: Log) -> Any:
    def body(text: str) -> str:
        first = log.op(f"{text}-a")
        log.events.append("body")  # before the value is used
        if first.endswith("A"):
            return log.op(f"{text}-b") + "!"
        return "none"

    return body


def _learned(fn: Any) -> Any:
    jitted = xcs.jit(fn)
    for i in range(LEARN):
        jitted(f"warm{i}")
    return jitted


def test_a_signature_that_never_overlapped_makes_each_call_when_the_body_makes_it() -> None:
    log = Log()
    body = _serial_body(log)
    jitted = xcs.jit(body)
    jitted("first")
    assert log.events[:2] == ["body", "call first-a"]  # dynamic: held for the body
    for i in range(LEARN - 1):
        jitted(f"more{i}")
    assert "serial: calls run at once" in xcs.explain_jit_selection(jitted)
    log.events.clear()
    log.threads.clear()
    assert jitted("x") == body("x")
    assert log.events == ["call x-a", "body", "call x-b"] * 2  # jit, then plain
    assert set(log.threads) == {threading.current_thread().name}
    stats = xcs.get_jit_stats(jitted)
    assert (stats.dynamic_calls, stats.max_in_flight) == (LEARN + 1, 1)


def test_a_call_made_while_the_last_result_is_unused_is_dispatched_and_overlaps() -> None:
    flight = InFlight(0.05)
    barrier = threading.Barrier(2, timeout=10)
    meet = xcs.op(lambda x: (barrier.wait(), x)[1], name="meet")

    def maybe_fan(text: str) -> list[str]:
        first = flight.op(text)
        if text != "fan":
            return [first.upper()]
        # `first` is unused here: the next calls are independent of it
        return [first, meet("b"), meet("c"), flight.op("d")]

    jitted = _learned(maybe_fan)
    assert "serial: calls run at once" in xcs.explain_jit_selection(jitted)
    # the barrier needs `b` and `c` in flight together (plainly it would never open)
    assert jitted("fan") == ["fan", "b", "c", "d"]
    text = xcs.explain_jit_selection(jitted)
    assert "dispatching again after a serial run found overlap" in text
    assert "was made while the result of call 'call' was unused" in text


def test_after_overlap_was_found_the_signature_dispatches_every_call_again() -> None:
    flight = InFlight(0.05)

    def maybe_fan(text: str) -> list[str]:
        first = flight.op(text)
        if text != "fan":
            return [first.upper()]
        return [first, flight.op("b"), flight.op("c")]

    jitted = _learned(maybe_fan)
    jitted("fan")  # serial: `fan` ran alone, `b` and `c` together
    flight.peak = 0
    assert jitted("fan") == ["fan", "b", "c"]
    assert flight.peak == 3  # a dynamic run again: all three at once


def test_a_body_computing_past_the_grace_before_using_a_result_goes_back_to_dispatching() -> None:
    log = Log()
    slow = threading.Event()

    def body(text: str) -> str:
        first = log.op(text)
        if text == "slow":
            slow.wait(0.05)  # 50 ms of the body's own work before it uses `first`
        return first + "!"

    jitted = _learned(body)
    assert jitted("slow") == "SLOW!"
    text = xcs.explain_jit_selection(jitted)
    assert "of its own code between call 'step' returning and using its result" in text
    jitted("next")
    assert "serial: calls run at once" not in xcs.explain_jit_selection(jitted)


def test_relearning_after_overlap_takes_twice_as_many_serial_runs() -> None:
    flight = InFlight(0.0)

    def maybe_fan(text: str) -> list[str]:
        first = flight.op(text)
        if text != "fan":
            return [first.upper()]
        return [first, flight.op("b")]

    jitted = _learned(maybe_fan)
    jitted("fan")
    for i in range(2 * LEARN - 1):
        jitted(f"one{i}")
        assert "serial: calls run at once" not in xcs.explain_jit_selection(jitted)
    jitted("last")
    assert f"({2 * LEARN} runs in a row" in xcs.explain_jit_selection(jitted)


def test_a_failed_call_raises_where_the_body_uses_its_value_in_a_serial_run() -> None:
    log = Log()

    def body(text: str) -> str:
        first = log.op(text)
        log.events.append("body")
        return first.upper()

    jitted = _learned(body)
    log.events.clear()
    with pytest.raises(ValueError, match="bad fail-1"):
        jitted("fail-1")
    assert log.events == ["call fail-1", "body"]


def test_a_try_that_began_after_a_failed_call_does_not_catch_it_in_a_serial_run() -> None:
    log = Log()

    def body(text: str) -> str:
        first = log.op(text)  # plainly, the failure is raised here, outside the `try`
        try:
            return first.upper()
        except ValueError as error:
            return f"caught {error}"

    jitted = _learned(body)
    with pytest.raises(ValueError, match="bad fail-1") as info:
        jitted("fail-1")
    assert isinstance(info.value, xcs.NodeExecutionError)


def test_a_failure_the_body_never_used_is_raised_when_the_serial_run_ends() -> None:
    log = Log()

    def body(text: str) -> str:
        log.op(text)  # result dropped
        return "done"

    jitted = _learned(body)
    with pytest.raises(xcs.NodeExecutionError, match=r"node 'step' \(step\) failed: ValueError"):
        jitted("fail-2")


def test_a_call_after_an_unused_failure_is_not_made_as_plain_python_would_not() -> None:
    log = Log()

    def body(text: str) -> str:
        first = log.op(text)
        if text.startswith("fail"):
            second = log.op("after")  # independent of `first`: dispatched from here on
            return first + second
        return first + "!"

    jitted = _learned(body)
    log.events.clear()
    with pytest.raises(xcs.NodeExecutionError, match="bad fail-3"):
        jitted("fail-3")
    assert log.events == ["call fail-3"]  # the plain function never made the second call


def test_a_deadline_keeps_dispatching_a_learned_signature() -> None:
    log = Log()
    body = _serial_body(log)
    jitted = _learned(body)
    log.events.clear()
    with xcs.execution_options(timeout_seconds=30):
        assert jitted("t") == "T-B!"
    assert log.events[:2] == ["body", "call t-a"]  # handed to a worker, not made at once


def test_node_hooks_and_the_timeline_see_every_call_of_a_serial_run() -> None:
    log = Log()
    jitted = _learned(_serial_body(log))
    timeline = xcs.Timeline()
    with xcs.execution_options(hooks=(timeline,)):
        assert jitted("h") == "H-B!"
    assert [r.node_id for r in timeline.records] == ["step", "step_1"]
    assert {r.thread for r in timeline.records} == {threading.current_thread().name}
    assert len(timeline.runs) == 1 and timeline.runs[0].num_nodes == 2


def test_retries_rerun_a_failing_call_of_a_serial_run_on_the_callers_thread() -> None:
    log = Log()
    failures = iter([])  # the learning runs succeed at once

    def flaky(text: str) -> str:
        log.events.append(f"call {text}")
        if next(failures, False):
            raise ConnectionError("try again")
        return text.upper()

    op = xcs.op(flaky, name="flaky")

    def body(text: str) -> str:
        first = op(text)
        log.events.append("body")
        return first + "!"

    jitted = xcs.jit(body)
    for i in range(LEARN):
        jitted(f"w{i}")
    failures = iter([True, False])  # the next call fails once
    log.events.clear()
    with xcs.execution_options(retries=1, retry_backoff=0.0):
        assert jitted("r") == "R!"
    assert log.events == ["call r", "call r", "body"]  # both attempts before the body went on


def test_a_custom_scheduler_object_keeps_a_learned_signature_dispatching() -> None:
    class Mine:  # follows the Scheduler protocol; unhashable, as an eq-dataclass would be
        __hash__ = None  # type: ignore[assignment]

        def run(self, plan: Any, inputs: Any, options: Any) -> Any:
            raise AssertionError("a dynamic run has no plan to hand over")

    log = Log()
    body = _serial_body(log)
    jitted = _learned(body)
    log.events.clear()
    with xcs.execution_options(scheduler=Mine()):
        assert jitted("c") == "C-B!"
    assert log.events == ["call c-a", "body", "call c-b"]  # inline when made, as sequential


def test_engine_status_counts_the_call_a_serial_run_has_in_flight() -> None:
    wait_until_engine_idle()
    release, arrived = threading.Event(), threading.Semaphore(0)

    def slow(text: str) -> str:
        if text == "block":
            arrived.release()
            assert release.wait(5)
        return text

    step = xcs.op(slow, name="slow")
    jitted = _learned(lambda text: step(text) + step("b"))
    assert "serial: calls run at once" in xcs.explain_jit_selection(jitted)
    runner = threading.Thread(target=jitted, args=("block",))
    runner.start()
    try:
        assert arrived.acquire(timeout=5)
        status = xcs.engine_status()
    finally:
        release.set()
        runner.join()
    assert (status.runs, status.running, status.queued, status.peak) == (1, 1, 0, 1)
    assert xcs.engine_status().runs == 0


class Ends(xcs.ExecutionHooks):
    def __init__(self) -> None:
        self.ends: list[str] = []

    def on_node_end(self, *, node_id: str, name: str, seconds: float) -> None:
        self.ends.append(node_id)


def test_options_set_inside_the_body_reach_the_calls_of_a_serial_run() -> None:
    log = Log()

    def body(text: str) -> tuple:
        seen = Ends()
        with xcs.execution_options(hooks=(seen,), retries=1, retry_backoff=0.0):
            first = log.op(f"{text}-a")
            second = log.op(first.lower() + "-b")  # uses the value: nothing overlaps
        return second, seen.ends

    jitted = _learned(body)
    assert "serial: calls run at once" in xcs.explain_jit_selection(jitted)
    log.threads.clear()
    assert jitted("x") == ("X-A-B", ["step", "step_1"])
    assert set(log.threads) == {threading.current_thread().name}
    assert "serial: calls run at once" in xcs.explain_jit_selection(jitted)


def test_a_node_timeout_set_inside_the_body_makes_a_serial_run_dispatch() -> None:
    limit: list[float | None] = [None]
    slow = xcs.op(lambda x: (threading.Event().wait(0.05), x)[1], name="slow")

    def body(text: str) -> str:
        with xcs.execution_options(node_timeout_seconds=limit[0]):
            return slow(text).upper()

    jitted = _learned(body)
    assert "serial: calls run at once" in xcs.explain_jit_selection(jitted)
    limit[0] = 0.001  # a call on the body's thread could not be stopped at it
    with pytest.raises(xcs.ExecutionTimeoutError, match=r"node 'slow' \(slow\) did not finish"):
        jitted("t")
    assert "under node_timeout_seconds=0.001" in xcs.explain_jit_selection(jitted)
