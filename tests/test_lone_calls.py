"""A call nothing else could overlap runs on the thread that would wait for it.

Width-1 work (a router, a retry loop, a chain of nodes) runs on the caller's thread, as
in plain Python; anything wider still reaches its width on worker threads. Where a call
ran is read from `threading.current_thread()` inside it, and overlap is proven with
`threading.Barrier`s, so no assertion depends on timing. The starter that hands a lone
call to a worker after its grace is switched off where a test asserts the caller's
thread, so a slow machine cannot move a call.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

import ember_xcs as xcs
from ember_xcs.scheduling import _engine, _starter


class Where:
    """`op(x)` records the name of the thread it runs on and returns `x`."""

    def __init__(self, barrier: threading.Barrier | None = None) -> None:
        self.threads: list[str] = []
        self.barrier = barrier
        self.op = xcs.op(self._call, name="where")

    def _call(self, value: Any) -> Any:
        self.threads.append(threading.current_thread().name)
        if self.barrier is not None:
            self.barrier.wait()
        return value


@pytest.fixture
def no_starter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lone calls wait for the body however long it takes (the grace never runs out)."""
    monkeypatch.setattr(_engine, "watch", lambda run, index: None)


def test_a_serial_body_runs_every_call_on_the_callers_thread(no_starter: None) -> None:
    where = Where()

    @xcs.jit(mode="dynamic")
    def retry(task: str) -> dict:
        for attempt in range(3):
            reply = where.op(json.dumps({"task": task, "ok": attempt == 2}))
            if json.loads(reply)["ok"]:  # needs the value before the next call
                return json.loads(reply)
        return {}

    with xcs.execution_options(scheduler="parallel"):
        assert retry("t") == {"task": "t", "ok": True}
    assert where.threads == [threading.current_thread().name] * 3
    assert xcs.get_jit_stats(retry).max_in_flight == 1


def test_a_chain_passing_results_on_runs_on_the_callers_thread(no_starter: None) -> None:
    where = Where()

    @xcs.jit(mode="dynamic")
    def chain(x: int) -> int:
        return where.op(where.op(where.op(x)))  # never used until returned

    assert chain(7) == 7
    assert where.threads == [threading.current_thread().name] * 3


def test_the_first_call_of_a_fan_out_still_overlaps_the_others(no_starter: None) -> None:
    where = Where(threading.Barrier(4, timeout=30))  # opens only with 4 calls in flight

    @xcs.jit(mode="dynamic")
    def fan(q: str) -> list:
        answers = [where.op(f"{q}{i}") for i in range(4)]  # the first is made alone
        return [a.upper() for a in answers]

    with xcs.execution_options(scheduler="parallel"):
        assert fan("q") == ["Q0", "Q1", "Q2", "Q3"]
    assert xcs.get_jit_stats(fan).max_in_flight == 4


def test_a_plan_runs_its_width_1_steps_on_the_callers_thread() -> None:
    where = Where()
    pair = Where(threading.Barrier(2, timeout=30))
    g = xcs.Graph()
    g.add_node(where.op, node_id="root")
    g.add_node(pair.op, node_id="left")
    g.add_node(pair.op, node_id="right")
    g.add_node(lambda a, b: where.op(a + b), node_id="join")
    g.connect("root", "left")
    g.connect("root", "right")
    g.connect("left", "join")
    g.connect("right", "join")
    result = xcs.execute_graph(
        g, {"root": {"value": 1}}, options=xcs.ExecutionOptions(scheduler="parallel")
    )
    assert result["join"] == 2
    assert result.stats.max_in_flight == 2  # left and right overlapped, on workers
    caller = threading.current_thread().name
    assert where.threads == [caller, caller]  # root and join
    assert caller not in pair.threads


def test_a_call_the_body_does_not_come_back_for_is_started_anyway() -> None:
    done = threading.Event()
    signal = xcs.op(lambda x: done.set() or x, name="signal")

    @xcs.jit(mode="dynamic")
    def body(x: int) -> bool:
        signal(x)  # its value is never used: the body waits on what the call does
        return done.wait(30)

    assert body(1) is True


def test_calls_left_waiting_are_started_whether_the_starter_lingers_or_sleeps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_starter, "LINGER", 0.05)  # then it waits to be notified

    @xcs.jit(mode="dynamic")
    def body(x: int) -> bool:
        done = threading.Event()
        xcs.op(lambda v: done.set() or v, name="signal")(x)  # never used: only its effect
        return done.wait(30)

    assert [body(1), body(2)] == [True, True]  # the second while the thread still looks
    time.sleep(0.2)  # past the linger: the thread waits for a notify
    assert body(3) is True


@pytest.mark.parametrize("limit", ["timeout_seconds", "node_timeout_seconds"])
def test_under_a_deadline_every_call_runs_on_a_worker(limit: str) -> None:
    where = Where()

    @xcs.jit(mode="dynamic")
    def chain(x: int) -> int:
        y = where.op(x)
        return where.op(y + 1)

    with xcs.execution_options(scheduler="parallel", **{limit: 30}):
        assert chain(1) == 2
    assert threading.current_thread().name not in where.threads  # could not be interrupted
