"""The scheduler contract: one suite of behaviours every scheduler inherits.

As with Dask's `GetFunctionTestMixin`, `SchedulerContract` holds the tests and each
subclass only says which scheduler to run: the built-in `sequential`, `parallel`, `wave`
and `dask` (an in-process `distributed.Client`), and a toy `lifo` scheduler made of the
shared engine plus a custom executor, registered by name as a user would.

Nodes that must be "slow" wait on a `threading.Event` that the test sets when it is done,
so no test depends on how fast the machine is.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

import pytest

import ember_xcs as xcs
from ember_xcs._options import current_options
from ember_xcs.scheduling import (
    EngineScheduler,
    NodeCall,
    _node_call,
    register_scheduler,
    shared_pool,
)

# --- a toy custom scheduler: the engine plus a LIFO executor on one thread ---------------


class LifoExecutor:
    """Runs submitted calls one at a time on its own thread, newest first."""

    capacity = None

    def __init__(self, options: xcs.ExecutionOptions):
        self._stack: list[tuple[int, NodeCall, Any]] = []
        self._cond = threading.Condition()
        self._closed = False
        threading.Thread(target=self._work, name="lifo-worker", daemon=True).start()

    def submit(self, index: int, call: NodeCall, done: Any) -> None:
        with self._cond:
            self._stack.append((index, call, done))
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._stack.clear()  # nothing queued may run after the engine gave up on it
            self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stack and not self._closed:
                    self._cond.wait()
                if not self._stack:
                    return
                index, call, done = self._stack.pop()
            try:
                done.put((index, True, call()))
            except BaseException as exc:  # noqa: BLE001 - the engine decides
                done.put((index, False, exc))


register_scheduler("lifo", EngineScheduler("lifo", LifoExecutor), replace=True)


# --- helpers -------------------------------------------------------------------------------


class Recorder:
    """Thread-safe call log shared by the operators of one test."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def hit(self, name: str) -> None:
        with self._lock:
            self.calls.append(name)

    def count(self, name: str) -> int:
        with self._lock:
            return self.calls.count(name)


class EventLog(xcs.ExecutionHooks):
    """Every hook event in order, as tuples."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()

    def _add(self, *event: Any) -> None:
        with self._lock:
            self.events.append(event)

    def on_graph_start(self, *, num_nodes: int, scheduler: str) -> None:
        self._add("graph_start", num_nodes, scheduler)

    def on_graph_end(self, *, num_nodes: int, seconds: float, failed: bool) -> None:
        self._add("graph_end", num_nodes, failed)

    def on_node_start(self, *, node_id: str, name: str, attempt: int) -> None:
        self._add("node_start", node_id, attempt)

    def on_node_end(self, *, node_id: str, name: str, seconds: float) -> None:
        assert seconds >= 0
        self._add("node_end", node_id)

    def on_node_failure(
        self, *, node_id: str, name: str, error: BaseException, attempt: int, will_retry: bool
    ) -> None:
        self._add("node_failure", node_id, attempt, will_retry, type(error).__name__)


@dataclasses.dataclass
class Answer:
    text: str
    score: float


def add_one(x: int) -> int:
    return x + 1


def double(v: int) -> int:
    return v * 2


def triple(v: int) -> int:
    return v * 3


def add(p: int, q: int) -> int:
    return p + q


def total(*values: int) -> int:
    return sum(values)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event slow nodes wait on; set at teardown so no worker stays blocked."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    client = distributed.Client(
        processes=False, n_workers=1, threads_per_worker=8, dashboard_address=":0"
    )
    yield client
    client.close()


# --- the contract ----------------------------------------------------------------------------


class SchedulerContract:
    """Behaviours every scheduler must have. Subclasses set `scheduler`."""

    scheduler: Any = None
    overlaps_waves = True  # may a node start while an earlier wave is still running?

    @pytest.fixture(autouse=True)
    def _scheduler_options(self) -> None:
        self.extra: dict[str, Any] = {}

    def options(self, **overrides: Any) -> xcs.ExecutionOptions:
        return xcs.ExecutionOptions(scheduler=self.scheduler, **self.extra, **overrides)

    def run(self, graph: xcs.Graph, inputs: Any = None, **overrides: Any) -> xcs.ExecutionResult:
        return xcs.execute_graph(graph, inputs, options=self.options(**overrides))

    # shapes

    def test_diamond_joins_both_branches(self) -> None:
        g = xcs.Graph()
        g.add_node(add_one, node_id="a")
        g.add_node(double, node_id="b")
        g.add_node(triple, node_id="c")
        g.add_node(add, node_id="d")
        g.connect("a", "b").connect("a", "c")
        g.connect("b", "d.p").connect("c", "d.q")
        result = self.run(g, {"x": 1})
        assert dict(result) == {"d": 2 * 2 + 2 * 3}
        assert result.ok and result.stats.nodes_run == 4

    def test_chain_passes_each_output_to_the_next_node(self) -> None:
        g = xcs.Graph()
        ids = [g.add_node(add_one, node_id=f"step{i}") for i in range(12)]
        g.connect(*ids)
        assert self.run(g, {"x": 0}) == {"step11": 12}

    def test_wide_fan_out_and_fan_in(self) -> None:
        g = xcs.Graph()
        g.add_node(add_one, node_id="source")
        g.add_node(total, node_id="join")
        for i in range(40):
            g.add_node(lambda v, i=i: v * i, node_id=f"unit{i}")
            g.connect("source", f"unit{i}")
            g.connect(f"unit{i}", "join")
        assert self.run(g, {"x": 1}) == {"join": 2 * sum(range(40))}

    def test_fan_in_keeps_positional_order_of_edges(self) -> None:
        g = xcs.Graph()
        g.add_node(lambda *parts: "".join(parts), node_id="join")
        for letter in "edcba":
            g.add_node(lambda letter=letter: letter, node_id=letter)
            g.connect(letter, "join")
        assert self.run(g) == {"join": "edcba"}

    def test_disconnected_components_all_run(self) -> None:
        g = xcs.Graph()
        g.connect(g.add_node(add_one, node_id="a1"), g.add_node(double, node_id="a2"))
        g.connect(g.add_node(add_one, node_id="b1"), g.add_node(triple, node_id="b2"))
        g.add_node(lambda: "alone", node_id="c")
        result = self.run(g, {"a1": {"x": 1}, "b1": {"x": 10}})
        assert dict(result) == {"a2": 4, "b2": 33, "c": "alone"}

    def test_empty_graph_returns_no_outputs(self) -> None:
        result = self.run(xcs.Graph())
        assert dict(result) == {} and result.ok
        assert result.stats.nodes_run == 0

    def test_single_node_graph_returns_its_output(self) -> None:
        g = xcs.Graph()
        g.add_node(add_one, node_id="only")
        assert self.run(g, {"x": 41}) == {"only": 42}

    def test_include_intermediates_returns_every_output(self) -> None:
        g = xcs.Graph()
        g.add_node(add_one, node_id="a")
        g.add_node(double, node_id="b")
        g.connect("a", "b")
        assert self.run(g, {"x": 1}, include_intermediates=True) == {"a": 2, "b": 4}

    # field mappings

    def test_field_mapping_passes_a_dict_field_as_keyword(self) -> None:
        g = xcs.Graph()
        g.add_node(lambda query: {"docs": [query, query.upper()], "n": 2}, node_id="retrieve")
        g.add_node(lambda documents, n: f"{n}:{documents}", node_id="rank")
        g.add_edge("retrieve", "rank", field_mappings={"docs": "documents", "n": "n"})
        assert self.run(g, {"query": "q"}) == {"rank": "2:['q', 'Q']"}

    def test_star_field_passes_the_whole_output(self) -> None:
        g = xcs.Graph()
        g.add_node(lambda: {"a": 1}, node_id="make")
        g.add_node(lambda blob, tag: (tag, blob), node_id="use")
        g.connect("make", "use.blob")  # no field: the whole output, as in {"*": "blob"}
        g.add_node(lambda everything: everything, node_id="also")
        g.add_edge("make", "also", field_mappings={"*": "everything"})
        assert self.run(g, {"tag": "t"}) == {"use": ("t", {"a": 1}), "also": {"a": 1}}

    def test_field_mapping_reads_dataclass_attributes(self) -> None:
        g = xcs.Graph()
        g.add_node(lambda: Answer("yes", 0.9), node_id="answer")
        g.add_node(lambda text, score: f"{text}@{score}", node_id="format")
        g.connect("answer.text", "format.text").connect("answer.score", "format.score")
        assert self.run(g) == {"format": "yes@0.9"}

    def test_missing_output_field_fails_naming_both_nodes(self) -> None:
        g = xcs.Graph()
        g.add_node(lambda: {"doc": 1}, node_id="retrieve")
        g.add_node(lambda documents: documents, node_id="rank")
        g.connect("retrieve.docs", "rank.documents")
        with pytest.raises(xcs.FieldMappingError) as info:
            self.run(g)
        message = str(info.value)
        assert "retrieve -> rank" in message and "'docs'" in message and "'doc'" in message

    # failures

    def test_failure_names_node_operator_and_inputs_and_chains_the_cause(self) -> None:
        @xcs.op(name="explode")
        def explode(value: int) -> int:
            raise ValueError(f"bad value {value}")

        g = xcs.Graph()
        g.add_node(add_one, node_id="a")
        g.add_node(explode, node_id="boom")
        g.connect("a", "boom")
        with pytest.raises(xcs.NodeExecutionError) as info:
            self.run(g, {"x": 41})
        error = info.value
        assert isinstance(error, xcs.XCSError)
        assert error.node_id == "boom" and error.operator_name == "explode"
        assert error.inputs_summary == "(42)"
        assert "'boom' (explode)" in str(error) and "ValueError: bad value 42" in str(error)
        assert "inputs: (42)" in str(error)
        assert isinstance(error.__cause__, ValueError)

    def test_nodes_depending_on_a_failure_never_run(self) -> None:
        seen = Recorder()

        def fail() -> int:
            raise RuntimeError("down")

        g = xcs.Graph()
        g.add_node(fail, node_id="fail")
        for i in range(3):
            g.add_node(lambda v, i=i: seen.hit(f"after{i}"), node_id=f"after{i}")
            g.connect("fail" if i == 0 else f"after{i - 1}", f"after{i}")
        with pytest.raises(xcs.NodeExecutionError):
            self.run(g)
        assert seen.calls == []

    def test_pending_nodes_do_not_start_after_a_failure(self) -> None:
        seen = Recorder()

        def fail(x: int) -> int:
            seen.hit("fail")
            raise RuntimeError("down")

        g = xcs.Graph()
        # the failing node heads the longest chain, so it is submitted first
        g.connect(g.add_node(fail, node_id="fail"), g.add_node(add_one, node_id="next"))
        for i in range(6):
            g.add_node(lambda i=i: seen.hit(f"other{i}"), node_id=f"other{i}")
        with pytest.raises(xcs.NodeExecutionError):
            self.run(g, {"x": 1}, max_workers=1)
        assert seen.calls == ["fail"]

    def test_partial_results_keep_completed_outputs_and_list_failures(self) -> None:
        def fail(x: int) -> int:
            raise KeyError("missing")

        g = xcs.Graph()
        g.add_node(fail, node_id="bad")
        g.add_node(double, node_id="after_bad")
        g.add_node(triple, node_id="after_after")
        g.connect("bad", "after_bad", "after_after")
        g.add_node(add_one, node_id="good")
        g.add_node(double, node_id="after_good")
        g.connect("good", "after_good")
        result = self.run(g, {"x": 1}, return_partial_results=True)
        assert dict(result) == {"good": 2, "after_good": 4}
        assert set(result.failures) == {"bad"}
        assert isinstance(result.failures["bad"], xcs.NodeExecutionError)
        assert isinstance(result.failures["bad"].__cause__, KeyError)
        assert sorted(result.skipped) == ["after_after", "after_bad"]
        assert not result.ok

    # timeouts

    def test_graph_timeout_names_the_running_nodes(self, release: threading.Event) -> None:
        g = xcs.Graph()
        g.add_node(lambda: release.wait(0.5), node_id="slow")
        g.add_node(lambda flag: flag, node_id="after")
        g.connect("slow", "after")
        with pytest.raises(xcs.ExecutionTimeoutError) as info:
            self.run(g, timeout_seconds=0.05)
        assert info.value.running == ["slow"]
        assert "timeout_seconds=0.05" in str(info.value)
        assert "still running: slow" in str(info.value)
        assert "1 node(s) not started" in str(info.value)

    def test_graph_timeout_with_partial_results_keeps_finished_nodes(
        self, release: threading.Event
    ) -> None:
        g = xcs.Graph()
        g.add_node(lambda: "fast", node_id="fast")
        # 1 s, past the deadline: a scheduler that runs `slow` inline (sequential) sees
        # the timeout only when it returns; the others stop waiting at the deadline
        g.add_node(lambda value: release.wait(1), node_id="slow")
        g.add_node(lambda flag: flag, node_id="after")
        g.connect("fast", "slow", "after")
        # 0.5 s: room for a loaded 2-core machine to run `fast` (Dask included)
        result = self.run(g, timeout_seconds=0.5, return_partial_results=True)
        assert dict(result) == {"fast": "fast"}
        assert set(result.failures) == {"slow"}
        assert isinstance(result.failures["slow"], xcs.ExecutionTimeoutError)
        assert result.skipped == ["after"]

    def test_node_timeout_fails_the_slow_node(self, release: threading.Event) -> None:
        g = xcs.Graph()
        g.add_node(lambda: release.wait(0.5), node_id="slow")
        with pytest.raises(xcs.ExecutionTimeoutError) as info:
            self.run(g, node_timeout_seconds=0.05)
        assert info.value.node_id == "slow" and info.value.running == ["slow"]
        assert "node_timeout_seconds=0.05" in str(info.value)

    # retries

    def test_retries_rerun_a_failing_node_until_it_succeeds(self) -> None:
        seen = Recorder()

        def flaky() -> str:
            seen.hit("flaky")
            if seen.count("flaky") < 3:
                raise ConnectionError("try again")
            return "ok"

        g = xcs.Graph()
        g.add_node(flaky, node_id="flaky")
        assert self.run(g, retries=2, retry_backoff=0) == {"flaky": "ok"}
        assert seen.count("flaky") == 3

    def test_retries_give_up_after_the_last_attempt(self) -> None:
        seen = Recorder()

        def broken() -> str:
            seen.hit("broken")
            raise ConnectionError("still down")

        g = xcs.Graph()
        g.add_node(broken, node_id="broken")
        with pytest.raises(xcs.NodeExecutionError, match="after 3 attempts") as info:
            self.run(g, retries=2, retry_backoff=0)
        assert isinstance(info.value.__cause__, ConnectionError)
        assert seen.count("broken") == 3

    def test_retry_on_limits_which_errors_are_retried(self) -> None:
        seen = Recorder()

        def wrong() -> str:
            seen.hit("wrong")
            raise TypeError("a bug, not a blip")

        g = xcs.Graph()
        g.add_node(wrong, node_id="wrong")
        with pytest.raises(xcs.NodeExecutionError):
            self.run(g, retries=5, retry_backoff=0, retry_on=(ConnectionError,))
        assert seen.count("wrong") == 1

    def test_retry_backoff_doubles_each_attempt(self, monkeypatch: pytest.MonkeyPatch) -> None:
        slept: list[float] = []
        fake_time = types.SimpleNamespace(sleep=slept.append, perf_counter=time.perf_counter)
        monkeypatch.setattr(_node_call, "time", fake_time)

        def broken() -> None:
            raise ConnectionError("down")

        g = xcs.Graph()
        g.add_node(broken, node_id="broken")
        with pytest.raises(xcs.NodeExecutionError, match="after 4 attempts"):
            self.run(g, retries=3, retry_backoff=0.25)
        assert slept == [0.25, 0.5, 1.0]

    # scheduling order

    def test_the_critical_path_goes_first_when_workers_are_scarce(self) -> None:
        seen = Recorder()
        g = xcs.Graph()
        g.add_node(lambda: seen.hit("short"), node_id="short")  # added first, rank 1
        g.add_node(lambda: seen.hit("long1"), node_id="long1")  # heads a chain of 3
        g.add_node(lambda v: seen.hit("long2"), node_id="long2")
        g.add_node(lambda v: seen.hit("long3"), node_id="long3")
        g.connect("long1", "long2", "long3")
        self.run(g, max_workers=1)
        assert seen.calls[0] == "long1"
        assert seen.calls.index("long2") < seen.calls.index("long3")

    def test_a_node_starts_as_soon_as_its_inputs_are_ready(self) -> None:
        if not self.overlaps_waves:
            pytest.skip("this scheduler runs one wave (or one node) at a time by design")
        late_wave_ran = threading.Event()
        g = xcs.Graph()
        # wave 0: "slow" and "quick"; wave 1: "next". "slow" waits for "next" to have run,
        # which only a dataflow scheduler allows (a wave barrier would wait for "slow").
        g.add_node(lambda: late_wave_ran.wait(30), node_id="slow")
        g.add_node(lambda: 1, node_id="quick")
        g.add_node(lambda v: late_wave_ran.set(), node_id="next")
        g.connect("quick", "next")
        assert self.run(g)["slow"] is True

    # hooks and options

    def test_hooks_see_graph_and_node_events_in_order(self) -> None:
        log = EventLog()
        seen = Recorder()

        def flaky(x: int) -> int:
            seen.hit("flaky")
            if seen.count("flaky") == 1:
                raise ConnectionError("blip")
            return x

        g = xcs.Graph()
        g.add_node(add_one, node_id="a")
        g.add_node(flaky, node_id="b")
        g.connect("a", "b")
        self.run(g, {"x": 1}, hooks=(log,), retries=1, retry_backoff=0)
        name = self.options().scheduler
        assert log.events == [
            ("graph_start", 2, name if isinstance(name, str) else name.name),
            ("node_start", "a", 0),
            ("node_end", "a"),
            ("node_start", "b", 0),
            ("node_failure", "b", 0, True, "ConnectionError"),
            ("node_start", "b", 1),
            ("node_end", "b"),
            ("graph_end", 2, False),
        ]

    def test_hooks_report_a_failed_graph(self) -> None:
        log = EventLog()

        def fail() -> None:
            raise ValueError("no")

        g = xcs.Graph()
        g.add_node(fail, node_id="fail")
        with pytest.raises(xcs.NodeExecutionError):
            self.run(g, hooks=(log,))
        assert ("node_failure", "fail", 0, False, "ValueError") in log.events
        assert log.events[-1] == ("graph_end", 1, True)

    def test_operators_see_the_run_options(self) -> None:
        g = xcs.Graph()
        g.add_node(lambda: current_options().max_workers, node_id="read")
        assert self.run(g, max_workers=3) == {"read": 3}

    def test_async_operators_run(self) -> None:
        import asyncio

        async def fetch(x: int) -> int:
            await asyncio.sleep(0)
            return x * 10

        g = xcs.Graph()
        g.add_node(add_one, node_id="a")
        g.add_node(xcs.op(fetch), node_id="fetch")
        g.add_node(double, node_id="b")
        g.connect("a", "fetch", "b")
        assert self.run(g, {"x": 1}) == {"b": 40}

    def test_max_workers_caps_nodes_in_flight(self) -> None:
        lock = threading.Lock()
        state = {"now": 0, "peak": 0}

        def unit() -> None:
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            time.sleep(0.002)
            with lock:
                state["now"] -= 1

        g = xcs.Graph()
        for i in range(12):
            g.add_node(unit, node_id=f"u{i}")
        result = self.run(g, max_workers=2)
        assert state["peak"] <= 2 and result.stats.max_in_flight <= 2

    def test_stats_name_the_scheduler(self) -> None:
        g = xcs.Graph()
        g.add_node(add_one, node_id="a")
        stats = self.run(g, {"x": 1}).stats
        expected = self.scheduler if isinstance(self.scheduler, str) else self.scheduler.name
        assert stats.scheduler == expected and stats.nodes_run == 1

    def test_a_failed_run_leaves_none_of_its_calls_running(self) -> None:
        lock, state = threading.Lock(), {"in_flight": 0}

        def tracked(i: int) -> int:
            with lock:
                state["in_flight"] += 1
            threading.Event().wait(0.001)
            with lock:
                state["in_flight"] -= 1
            return i

        def fail(value: int) -> None:
            raise ValueError("no")

        g = xcs.Graph()
        for i in range(8):
            g.add_node(lambda i=i: tracked(i), node_id=f"ok{i}")
            g.add_node(fail, node_id=f"bad{i}")
            g.connect(f"ok{i}", f"bad{i}")
        busy_before = shared_pool().busy()  # other tests' stragglers, if any
        for _ in range(3):
            with pytest.raises(xcs.NodeExecutionError):
                self.run(g)
            assert state["in_flight"] == 0
        assert shared_pool().busy() <= busy_before


# --- the schedulers ----------------------------------------------------------------------------


class TestSequentialScheduler(SchedulerContract):
    scheduler = "sequential"
    overlaps_waves = False

    def test_runs_every_node_on_the_calling_thread(self) -> None:
        threads = Recorder()
        g = xcs.Graph()
        for i in range(5):
            g.add_node(lambda: threads.hit(threading.current_thread().name), node_id=f"n{i}")
        self.run(g)
        assert set(threads.calls) == {threading.current_thread().name}


class TestParallelScheduler(SchedulerContract):
    scheduler = "parallel"

    def test_reaches_twenty_in_flight_with_twenty_workers(self) -> None:
        barrier = threading.Barrier(20, timeout=30)
        g = xcs.Graph()
        for i in range(20):
            g.add_node(lambda: barrier.wait(), node_id=f"call{i}")
        result = self.run(g, max_workers=20)
        assert sorted(result.values()) == list(range(20))  # every party reached the barrier
        assert result.stats.max_in_flight == 20

    def test_user_context_variables_reach_worker_threads(self) -> None:
        import contextvars

        request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
        g = xcs.Graph()
        for i in range(4):
            g.add_node(lambda: request_id.get("unset"), node_id=f"n{i}")
        token = request_id.set("req-7")
        try:
            result = self.run(g)
        finally:
            request_id.reset(token)
        assert set(result.values()) == {"req-7"}


class TestWaveScheduler(SchedulerContract):
    scheduler = "wave"
    overlaps_waves = False

    def test_waits_for_each_wave_before_starting_the_next(self) -> None:
        log = EventLog()
        g = xcs.Graph()
        # a1 -> a2 -> a3 is the critical path; b1 sits in wave 0 with a1, b2 in wave 1
        g.connect(g.add_node(add_one, node_id="a1"), g.add_node(add_one, node_id="a2"))
        g.connect("a2", g.add_node(add_one, node_id="a3"))
        g.connect(g.add_node(add_one, node_id="b1"), g.add_node(add_one, node_id="b2"))
        self.run(g, {"x": 0}, hooks=(log,))
        order = [e[1] for e in log.events if e[0] == "node_end"]
        waves = {"a1": 0, "b1": 0, "a2": 1, "b2": 1, "a3": 2}
        assert [waves[n] for n in order] == sorted(waves[n] for n in order)


class TestLifoCustomScheduler(SchedulerContract):
    scheduler = "lifo"
    overlaps_waves = False

    def test_runs_ready_nodes_newest_first(self) -> None:
        seen = Recorder()
        g = xcs.Graph()
        for i in range(5):
            g.add_node(lambda i=i: seen.hit(f"n{i}"), node_id=f"n{i}")
        self.run(g)
        # the engine submits equal-priority nodes in graph order; LIFO runs them reversed,
        # except the first, which the worker may take before the others arrive
        assert seen.calls[-4:] == ["n4", "n3", "n2", "n1"] or seen.calls == [
            "n4",
            "n3",
            "n2",
            "n1",
            "n0",
        ]


class TestDaskScheduler(SchedulerContract):
    scheduler = "dask"

    @pytest.fixture(autouse=True)
    def _scheduler_options(self, dask_client: Any) -> None:
        self.extra = {"dask_client": dask_client}


def test_every_built_in_scheduler_has_a_contract_suite() -> None:
    covered = {
        cls.scheduler
        for cls in (
            TestSequentialScheduler,
            TestParallelScheduler,
            TestWaveScheduler,
            TestLifoCustomScheduler,
            TestDaskScheduler,
        )
    }
    built_in = {"sequential", "parallel", "wave", "dask"}  # noop and auto have own tests
    assert built_in | {"lifo"} == covered
    assert covered | {"noop", "auto"} <= set(xcs.scheduling.available_schedulers())


def test_noop_scheduler_returns_the_plan_without_calling_anything() -> None:
    seen = Recorder()
    g = xcs.Graph()
    g.add_node(lambda x: seen.hit("a"), node_id="a")
    g.add_node(lambda v: seen.hit("b"), node_id="b")
    g.add_node(lambda v: seen.hit("c"), node_id="c")
    g.connect("a", "b").connect("a", "c")
    result = xcs.execute_graph(g, {"x": 1}, options=xcs.ExecutionOptions(scheduler="noop"))
    assert seen.calls == [] and dict(result) == {}
    assert result.plan.waves() == [["a"], ["b", "c"]]
    assert result.stats.nodes_run == 0


def test_noop_scheduler_still_validates_inputs() -> None:
    g = xcs.Graph()
    g.add_node(lambda x: x, node_id="a")
    with pytest.raises(xcs.MissingInputError):
        xcs.execute_graph(g, {}, options=xcs.ExecutionOptions(scheduler="noop"))


def test_auto_picks_parallel_only_when_the_graph_has_parallelism() -> None:
    chain, fan = xcs.Graph(), xcs.Graph()
    chain.connect(chain.add_node(add_one, node_id="a"), chain.add_node(add_one, node_id="b"))
    fan.add_node(add_one, node_id="a")
    fan.add_node(add_one, node_id="b")
    auto = xcs.ExecutionOptions(scheduler="auto")
    assert xcs.execute_graph(chain, {"x": 0}, options=auto).stats.scheduler == "sequential"
    assert xcs.execute_graph(fan, {"x": 0}, options=auto).stats.scheduler == "parallel"


def test_a_scheduler_object_can_be_passed_directly() -> None:
    g = xcs.Graph()
    g.add_node(add_one, node_id="a")
    custom = EngineScheduler("mine", LifoExecutor)
    result = xcs.execute_graph(g, {"x": 1}, options=xcs.ExecutionOptions(scheduler=custom))
    assert result == {"a": 2} and result.stats.scheduler == "mine"


# --- the same contract on dynamic dispatch -----------------------------------------------------


class DynamicDispatchContract(SchedulerContract):
    """The contract where it applies to a jitted body run dynamically.

    `execute_graph` inside a jitted body hands each node to the run's call handler, so the
    graph's nodes become leaf calls that the body's dynamic `Run` discovers one by one, on
    the same engine loop. What the graph returns is the function's value, so the cases
    about `ExecutionResult` details (stats, partial results, `include_intermediates`, the
    exact graph hook events, a `dict` of failures) are the plan runs' alone; a dynamic run
    raises the failure instead and reports `on_graph_start` with 0 nodes (unknown yet).
    """

    def run(self, graph: xcs.Graph, inputs: Any = None, **overrides: Any) -> Any:
        options = self.options(**overrides)

        @xcs.jit(mode="dynamic")
        def body() -> Any:
            return dict(xcs.execute_graph(graph, inputs))

        fields = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
        with xcs.execution_options(**fields):
            return body()

    # ExecutionResult details a function's return value does not have
    test_empty_graph_returns_no_outputs = None
    test_include_intermediates_returns_every_output = None
    test_partial_results_keep_completed_outputs_and_list_failures = None
    test_graph_timeout_with_partial_results_keeps_finished_nodes = None
    test_hooks_see_graph_and_node_events_in_order = None
    test_hooks_report_a_failed_graph = None
    test_stats_name_the_scheduler = None
    test_diamond_joins_both_branches = None
    test_wide_fan_out_and_fan_in = None
    test_single_node_graph_returns_its_output = None
    # a plan's priorities: a dynamic run knows no ranks, ready calls go first in, first out
    test_the_critical_path_goes_first_when_workers_are_scarce = None

    def test_max_workers_caps_nodes_in_flight(self) -> None:
        lock = threading.Lock()
        state = {"now": 0, "peak": 0}

        def unit(i: int) -> int:
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            time.sleep(0.002)
            with lock:
                state["now"] -= 1
            return i

        g = xcs.Graph()
        for i in range(12):
            g.add_node(lambda i=i: unit(i), node_id=f"u{i}")
        assert sorted(self.run(g, max_workers=2).values()) == list(range(12))
        assert state["peak"] == (1 if self.scheduler == "sequential" else 2)


class TestDynamicDispatchOnThreads(DynamicDispatchContract):
    scheduler = "parallel"


class TestDynamicDispatchInline(DynamicDispatchContract):
    scheduler = "sequential"
    overlaps_waves = False

    def test_graph_timeout_names_the_running_nodes(self, release: threading.Event) -> None:
        # inline, the body is still inside the slow call when the deadline passes: the
        # call after it was never made, so the run does not know of it
        g = xcs.Graph()
        g.add_node(lambda: release.wait(0.5), node_id="slow")
        g.add_node(lambda flag: flag, node_id="after")
        g.connect("slow", "after")
        with pytest.raises(xcs.ExecutionTimeoutError) as info:
            self.run(g, timeout_seconds=0.05)
        assert info.value.running == ["slow"]
        assert "timeout_seconds=0.05; still running: slow" in str(info.value)


def test_dynamic_dispatch_reports_its_calls_to_node_hooks_and_the_graph_end() -> None:
    log = EventLog()
    g = xcs.Graph()
    g.add_node(add_one, node_id="a")
    g.add_node(double, node_id="b")
    g.connect("a", "b")

    @xcs.jit(mode="dynamic")
    def body(x: int) -> Any:
        return xcs.execute_graph(g, {"x": x})["b"]

    with xcs.execution_options(scheduler="parallel", hooks=(log,)):
        assert body(1) == 4
    assert log.events == [
        ("graph_start", 0, "parallel"),
        ("node_start", "a", 0),
        ("node_end", "a"),
        ("node_start", "b", 0),
        ("node_end", "b"),
        ("graph_end", 2, False),
    ]
