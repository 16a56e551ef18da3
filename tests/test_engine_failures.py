"""How the engine fails: nothing swallowed, nothing left running, nothing started late.

Slow nodes wait on events that a hook or the test sets, so every ordering here is forced
by the program, not by timing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import ember_xcs as xcs
from ember_xcs.scheduling import EngineScheduler, NodeCall, shared_pool


class Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started: list[str] = []
        self.finished: list[str] = []

    def start(self, name: str) -> None:
        with self._lock:
            self.started.append(name)

    def finish(self, name: str) -> None:
        with self._lock:
            self.finished.append(name)


class ReleaseOnFailure(xcs.ExecutionHooks):
    """Sets `event` once a node has failed *and* the engine has taken the failure in (the
    failed call no longer counts as running): the blocked nodes may finish only after
    that. Setting it from the hook alone raced: the hook runs on the worker before the
    failure reaches the engine, so under load a blocked node's success could arrive first
    and free a worker for the next node."""

    def __init__(self, event: threading.Event, running_after: int):
        self.event = event
        self.running_after = running_after  # the calls still in flight once it is taken in

    def on_node_failure(self, **kwargs: Any) -> None:
        threading.Thread(target=self._release_when_taken_in, daemon=True).start()

    def _release_when_taken_in(self) -> None:
        for _ in range(2000):  # up to 10 s; the failure is taken in within milliseconds
            if xcs.engine_status().running <= self.running_after:
                break
            threading.Event().wait(0.005)
        self.event.set()


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def ember_threads() -> int:
    """Live threads the library started (pool workers and the event loop)."""
    return sum(t.name.startswith("ember-xcs") for t in threading.enumerate())


def failing(*args: Any) -> None:
    raise ValueError("operator failed")


def test_failure_stops_new_submissions_and_waits_for_running_nodes(
    release: threading.Event,
) -> None:
    counter = Counter()

    def blocked(i: int) -> int:
        counter.start(f"b{i}")
        assert release.wait(10)
        counter.finish(f"b{i}")
        return i

    g = xcs.Graph()
    g.connect(g.add_node(failing, node_id="fail"), g.add_node(failing, node_id="after"))
    for i in range(30):
        g.add_node(lambda i=i: blocked(i), node_id=f"b{i}")
    options = xcs.ExecutionOptions(
        scheduler="parallel", max_workers=4, hooks=(ReleaseOnFailure(release, 3),)
    )
    busy_before = shared_pool().busy()  # other tests' stragglers, if any
    with pytest.raises(xcs.NodeExecutionError, match="'fail'"):
        xcs.execute_graph(g, options=options)
    # "fail" heads the longest chain, so it went first; three others filled the workers,
    # were held until the failure, and were allowed to finish before the error was raised
    assert len(counter.started) == 3
    assert sorted(counter.finished) == sorted(counter.started)
    assert shared_pool().busy() <= busy_before


def test_failed_runs_leave_no_busy_worker_and_start_no_new_threads() -> None:
    g = xcs.Graph()
    for i in range(16):
        g.add_node(lambda i=i: i, node_id=f"ok{i}")
        g.add_node(failing, node_id=f"bad{i}")
        g.connect(f"ok{i}", f"bad{i}")
    options = xcs.ExecutionOptions(scheduler="parallel")
    # The pool grows to the most calls ever in flight at once, which here is at most 16
    # (one per chain). Hold 16 calls in flight together once, so the pool has reached
    # that size; from then on no run of this graph may add a thread.
    barrier = threading.Barrier(16, timeout=30)
    warm = xcs.Graph()
    for i in range(16):
        warm.add_node(lambda: barrier.wait(), node_id=f"w{i}")
    xcs.execute_graph(warm, options=options)
    threads, pool_size = ember_threads(), shared_pool().size()
    busy_before = shared_pool().busy()  # other tests' stragglers, if any
    for _ in range(20):
        with pytest.raises(xcs.NodeExecutionError):
            xcs.execute_graph(g, options=options)
        assert shared_pool().busy() <= busy_before
    assert ember_threads() <= threads
    assert shared_pool().size() <= pool_size


def test_successful_runs_do_not_grow_the_pool() -> None:
    g = xcs.Graph()
    ids = [g.add_node(lambda *x: 1, node_id=f"n{i}") for i in range(100)]
    g.connect(*ids)  # a chain needs one worker at a time
    options = xcs.ExecutionOptions(scheduler="parallel")
    xcs.execute_graph(g, options=options)
    size = shared_pool().size()
    for _ in range(10):
        xcs.execute_graph(g, options=options)
    assert shared_pool().size() <= size


def test_first_failure_is_the_one_raised() -> None:
    g = xcs.Graph()
    g.add_node(lambda: 1 / 0, node_id="first")
    g.add_node(lambda: {}["key"], node_id="second")
    with pytest.raises(xcs.NodeExecutionError) as info:
        xcs.execute_graph(g, options=xcs.ExecutionOptions(scheduler="sequential"))
    assert info.value.node_id == "first"
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_a_failure_beats_a_later_deadline(release: threading.Event) -> None:
    counter = Counter()

    def fail_after_slow_started() -> None:
        # wait until the slow node is running, so the run is draining when time runs out
        for _ in range(10_000):
            if counter.started:
                break
            threading.Event().wait(0.001)
        raise ValueError("the real problem")

    g = xcs.Graph()
    g.add_node(fail_after_slow_started, node_id="fail")
    g.add_node(lambda: counter.start("slow") or release.wait(10), node_id="slow")
    options = xcs.ExecutionOptions(scheduler="parallel", timeout_seconds=0.2)
    with pytest.raises(xcs.NodeExecutionError, match="the real problem"):
        xcs.execute_graph(g, options=options)


def test_timed_out_nodes_are_not_waited_for_and_their_late_results_are_dropped(
    release: threading.Event,
) -> None:
    finished = threading.Event()

    def slow() -> str:
        release.wait(10)
        finished.set()
        return "late"

    g = xcs.Graph()
    g.add_node(slow, node_id="slow")
    g.add_node(lambda: "fast", node_id="fast")
    options = xcs.ExecutionOptions(
        scheduler="parallel", node_timeout_seconds=0.05, return_partial_results=True
    )
    result = xcs.execute_graph(g, options=options)
    assert not finished.is_set()  # the run returned while the slow call was still going
    release.set()
    assert finished.wait(10)
    assert dict(result) == {"fast": "fast"} and list(result.failures) == ["slow"]


def test_partial_results_skip_only_dependents_of_failures() -> None:
    g = xcs.Graph()
    # a -> {b, c} -> d ; b fails, so d is skipped; c and e still run
    g.add_node(lambda: 1, node_id="a")
    g.add_node(failing, node_id="b")
    g.add_node(lambda x: x + 1, node_id="c")
    g.add_node(lambda p, q: p + q, node_id="d")
    g.add_node(lambda: "e", node_id="e")
    g.connect("a", "b").connect("a", "c").connect("b", "d.p").connect("c", "d.q")
    for scheduler in ("sequential", "parallel", "wave"):
        options = xcs.ExecutionOptions(scheduler=scheduler, return_partial_results=True)
        result = xcs.execute_graph(g, options=options)
        assert dict(result) == {"a": 1, "c": 2, "e": "e"}, scheduler
        assert list(result.failures) == ["b"] and result.skipped == ["d"]
        assert result.stats.nodes_run == 4


def test_two_failures_skip_a_shared_dependent_once() -> None:
    g = xcs.Graph()
    g.add_node(failing, node_id="x")
    g.add_node(failing, node_id="y")
    g.add_node(lambda p, q: p, node_id="join")
    g.add_node(lambda v: v, node_id="after")
    g.connect("x", "join.p").connect("y", "join.q").connect("join", "after")
    options = xcs.ExecutionOptions(scheduler="parallel", return_partial_results=True)
    result = xcs.execute_graph(g, options=options)
    assert sorted(result.failures) == ["x", "y"]
    assert sorted(result.skipped) == ["after", "join"]
    assert dict(result) == {}


@pytest.mark.parametrize("scheduler", ["sequential", "parallel", "wave"])
def test_a_parent_finishing_between_two_failures_loses_no_node(scheduler: str) -> None:
    # d <- a (fails), b, c (fails); x <- e. b finishes between the two failures, which
    # once made the second failure skip d again, end the run early and lose x.
    g = xcs.Graph()
    g.add_node(failing, node_id="a")
    g.add_node(lambda: 2, node_id="b")
    g.add_node(failing, node_id="c")
    g.add_node(lambda p, q, r: p, node_id="d")
    g.add_node(lambda: 5, node_id="e")
    g.add_node(lambda v: v + 1, node_id="x")
    g.connect("a", "d.p").connect("b", "d.q").connect("c", "d.r").connect("e", "x")
    options = xcs.ExecutionOptions(scheduler=scheduler, return_partial_results=True)
    result = xcs.execute_graph(g, options=options)
    assert sorted(result.failures) == ["a", "c"]
    assert result.skipped == ["d"]
    assert dict(result) == {"b": 2, "e": 5, "x": 6}


def test_partial_results_on_success_return_the_sinks_only() -> None:
    g = xcs.Graph()
    g.connect(g.add_node(lambda: 1, node_id="a"), g.add_node(lambda x: x, node_id="b"))
    result = xcs.execute_graph(g, options=xcs.ExecutionOptions(return_partial_results=True))
    assert dict(result) == {"b": 1} and result.ok


class _RawErrorExecutor:
    """Delivers a plain exception, as a broken backend might."""

    capacity = None

    def __init__(self, options: xcs.ExecutionOptions):
        pass

    def submit(self, index: int, call: NodeCall, done: Any) -> None:
        done.put((index, False, ConnectionResetError("backend went away")))

    def close(self) -> None:
        pass


def test_executor_errors_are_wrapped_to_name_the_node() -> None:
    g = xcs.Graph()
    g.add_node(lambda: 1, node_id="call", name="Caller")
    options = xcs.ExecutionOptions(scheduler=EngineScheduler("raw", _RawErrorExecutor))
    with pytest.raises(xcs.NodeExecutionError) as info:
        xcs.execute_graph(g, options=options)
    assert info.value.node_id == "call" and info.value.operator_name == "Caller"
    assert str(info.value) == (
        "node 'call' (Caller) failed: ConnectionResetError: backend went away"
    )
    assert isinstance(info.value.__cause__, ConnectionResetError)
    partial = options.replace(return_partial_results=True)
    failure = xcs.execute_graph(g, options=partial).failures["call"]
    assert isinstance(failure, xcs.NodeExecutionError)


class Abort(BaseException):
    """Like KeyboardInterrupt: not an Exception, so it must not become a node error."""


@pytest.mark.parametrize("partial", [False, True])
def test_base_exceptions_pass_through_unwrapped(partial: bool) -> None:
    def abort() -> None:
        raise Abort

    counter = Counter()
    g = xcs.Graph()
    g.connect(g.add_node(abort, node_id="abort"), g.add_node(counter.start, node_id="after"))
    g.add_node(lambda: counter.start("other"), node_id="other")
    options = xcs.ExecutionOptions(scheduler="sequential", return_partial_results=partial)
    with pytest.raises(Abort):
        xcs.execute_graph(g, options=options)
    assert counter.started == []


def test_sequential_timeout_starts_nothing_after_the_deadline() -> None:
    counter = Counter()
    g = xcs.Graph()
    g.add_node(lambda: threading.Event().wait(0.1), node_id="slow")
    g.add_node(lambda flag: counter.start("next"), node_id="next")
    g.connect("slow", "next")
    options = xcs.ExecutionOptions(scheduler="sequential", timeout_seconds=0.02)
    with pytest.raises(xcs.ExecutionTimeoutError) as info:
        xcs.execute_graph(g, options=options)
    assert info.value.running == ["slow"] and counter.started == []


def test_graph_timeout_error_counts_nodes_not_started(release: threading.Event) -> None:
    g = xcs.Graph()
    g.add_node(lambda: release.wait(10), node_id="slow", name="Slow")
    for i in range(3):
        g.add_node(lambda x: x, node_id=f"after{i}")
        g.connect("slow" if i == 0 else f"after{i - 1}", f"after{i}")
    options = xcs.ExecutionOptions(scheduler="parallel", timeout_seconds=0.05)
    with pytest.raises(xcs.ExecutionTimeoutError) as info:
        xcs.execute_graph(g, options=options)
    assert str(info.value) == (
        "execution did not finish within timeout_seconds=0.05; still running: slow (Slow); "
        "3 node(s) not started"
    )
    assert isinstance(info.value, xcs.ExecutionError)


def test_node_timeout_error_message(release: threading.Event) -> None:
    g = xcs.Graph()
    g.add_node(lambda: release.wait(10), node_id="slow", name="Slow")
    options = xcs.ExecutionOptions(scheduler="parallel", node_timeout_seconds=0.05)
    with pytest.raises(xcs.ExecutionTimeoutError) as info:
        xcs.execute_graph(g, options=options)
    assert str(info.value) == (
        "node 'slow' (Slow) did not finish within node_timeout_seconds=0.05; raise the limit "
        "or make the call faster"
    )
    assert info.value.operator_name == "Slow"


def test_inputs_summary_shortens_large_values() -> None:
    import numpy as np

    g2 = xcs.Graph()
    g2.add_node(lambda big, text: failing(), node_id="f")
    with pytest.raises(xcs.NodeExecutionError) as info:
        xcs.execute_graph(g2, {"big": np.zeros((3, 4), np.float32), "text": "x" * 500})
    summary = info.value.inputs_summary
    assert summary is not None and summary.startswith("(big=ndarray[float32[3, 4]], text='xxx")
    assert len(summary) <= 240


def test_a_hook_that_raises_fails_its_node_by_name() -> None:
    class Broken(xcs.ExecutionHooks):
        def on_node_start(self, **kwargs: Any) -> None:
            raise RuntimeError("hook bug")

    g = xcs.Graph()
    g.add_node(lambda: 1, node_id="n")
    options = xcs.ExecutionOptions(scheduler="parallel", hooks=(Broken(),))
    busy_before = shared_pool().busy()
    with pytest.raises(xcs.NodeExecutionError, match="node 'n'.*hook bug"):
        xcs.execute_graph(g, options=options)
    assert shared_pool().busy() <= busy_before


def test_nested_runs_inside_operators_do_not_deadlock() -> None:
    inner = xcs.Graph()
    for i in range(4):
        inner.add_node(lambda x, i=i: x * i, node_id=f"i{i}")

    def run_inner(x: int) -> int:
        return sum(xcs.execute_graph(inner, {"x": x}).values())

    outer = xcs.Graph()
    for i in range(4):
        outer.add_node(run_inner, node_id=f"o{i}")
    with xcs.execution_options(scheduler="parallel", max_workers=1):
        result = xcs.execute_graph(outer, {"x": 1})
    assert dict(result) == {f"o{i}": 6 for i in range(4)}


@pytest.mark.parametrize("scheduler", ["sequential", "parallel"])
def test_a_node_failure_carries_the_path_of_nodes_that_led_to_it(scheduler: str) -> None:
    g = xcs.Graph()
    g.add_node(lambda x: x, node_id="load")
    g.add_node(lambda v: v, node_id="clean")
    g.add_node(lambda: 0, node_id="unrelated")
    g.add_node(failing, node_id="score")
    g.connect("load", "clean", "score")
    options = xcs.ExecutionOptions(scheduler=scheduler)
    with pytest.raises(xcs.NodeExecutionError) as info:
        xcs.execute_graph(g, {"x": 1}, options=options)
    assert info.value.path == ["load", "clean"]
    assert "after: load -> clean" in str(info.value)


def test_a_long_path_is_kept_on_the_error_but_not_spelled_out_in_the_message() -> None:
    g = xcs.Graph()
    g.add_node(lambda x: x, node_id="n0")
    for k in range(1, 9):
        g.add_node(lambda v: v, node_id=f"n{k}")
        g.connect(f"n{k - 1}", f"n{k}")
    g.connect("n8", g.add_node(failing, node_id="last"))
    with pytest.raises(xcs.NodeExecutionError) as info:
        xcs.execute_graph(g, {"x": 1})
    assert info.value.path == [f"n{k}" for k in range(9)]
    assert "after:" not in str(info.value)


def test_a_root_failure_has_an_empty_path() -> None:
    g = xcs.Graph()
    g.add_node(failing, node_id="root")
    with pytest.raises(xcs.NodeExecutionError) as info:
        xcs.execute_graph(g)
    assert info.value.path == [] and "after:" not in str(info.value)
