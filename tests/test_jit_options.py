"""Every `ExecutionOptions` field has a consumer in every way a jitted call runs.

The ways (`RUNS`): a traced plan on the engine, dynamic dispatch on the worker pool, and
dynamic dispatch inline (`scheduler="sequential"`, where each call runs when it is made).
Blocking operators wait on `threading.Event`s released by the test, so nothing here
depends on how fast the machine is.
"""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Any

import pytest
from jit_user_code import pipeline as p

import ember_xcs as xcs
from tests.in_flight import InFlight

RUNS = [("trace", "parallel"), ("dynamic", "parallel"), ("dynamic", "sequential")]
RUN_IDS = ["plan", "dynamic-threads", "dynamic-inline"]


class Recorder(xcs.ExecutionHooks):
    """Records graph and node events (thread-safe)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def _add(self, kind: str, **fields: Any) -> None:
        with self._lock:
            self.events.append((kind, fields))

    def on_graph_start(self, **fields: Any) -> None:
        self._add("graph_start", **fields)

    def on_graph_end(self, **fields: Any) -> None:
        self._add("graph_end", **fields)

    def on_node_start(self, **fields: Any) -> None:
        self._add("node_start", **fields)

    def on_node_end(self, **fields: Any) -> None:
        self._add("node_end", **fields)

    def on_node_failure(self, **fields: Any) -> None:
        self._add("node_failure", **fields)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [fields for k, fields in self.events if k == kind]


class Flaky(xcs.Operator):
    """Fails its first `failures` calls with `error`, then answers."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError):
        self.failures = failures
        self.error = error
        self.calls = p.CallCounter()

    def forward(self, prompt: str) -> str:
        self.calls.tick()
        if self.calls.count <= self.failures:
            raise self.error(f"attempt {self.calls.count} failed")
        return f"flaky({prompt})"


class Gate(xcs.Operator):
    """Blocks until `release` is set (at most 10 s), then answers."""

    def __init__(self, release: threading.Event):
        self.release = release

    def forward(self, prompt: str) -> str:
        self.release.wait(10)
        return f"gate({prompt})"


@xcs.op
def nap(prompt: str) -> str:
    time.sleep(0.05)
    return f"nap({prompt})"


def run(mode: str, scheduler: str, fn: Any, *args: Any, **options: Any) -> Any:
    with xcs.execution_options(scheduler=scheduler, **options):
        return xcs.jit(fn, mode=mode)(*args)


# --- timeouts --------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "scheduler"), RUNS[:2], ids=RUN_IDS[:2])
def test_node_timeout_names_the_node_and_operator(mode, scheduler):
    release = threading.Event()
    gate = Gate(release)
    try:
        with pytest.raises(xcs.ExecutionTimeoutError) as info:
            run(mode, scheduler, lambda q: p.llm(gate(q)), "q", node_timeout_seconds=0.02)
    finally:
        release.set()
    error = info.value
    assert (error.node_id, error.operator_name) == ("Gate", "Gate")
    assert "node 'Gate' (Gate) did not finish within node_timeout_seconds=0.02" in str(error)


def test_node_timeout_fails_an_inline_call_when_it_returns_late():
    with pytest.raises(xcs.ExecutionTimeoutError, match=r"node 'nap' \(nap\) did not finish"):
        run("dynamic", "sequential", lambda q: p.llm(nap(q)), "q", node_timeout_seconds=0.001)


def test_a_dispatched_call_that_returns_late_fails_even_if_nobody_waited():
    def body(q):
        answer = nap(q)  # dispatched; the body does not wait for it
        time.sleep(0.1)  # the call returns meanwhile, 50 ms late for its 1 ms limit
        return answer

    with pytest.raises(xcs.ExecutionTimeoutError, match="node 'nap'"):
        run("dynamic", "parallel", body, "q", node_timeout_seconds=0.001)


def test_a_generous_node_timeout_changes_nothing():
    for mode, scheduler in RUNS:
        assert run(mode, scheduler, p.chain, "q", node_timeout_seconds=30) == p.chain("q")


def test_graph_timeout_stops_an_inline_dynamic_call():
    def body(q):
        return [nap(q), nap(q + "!"), nap(q + "?")]

    with pytest.raises(xcs.ExecutionTimeoutError, match="timeout_seconds=0.01"):
        run("dynamic", "sequential", body, "q", timeout_seconds=0.01)


# --- hooks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "scheduler"), RUNS, ids=RUN_IDS)
def test_graph_hooks_fire_once_per_call(mode, scheduler):
    recorder = Recorder()
    jitted = xcs.jit(p.containers, mode=mode)
    with xcs.execution_options(scheduler=scheduler, hooks=(recorder,)):
        for q in ("a", "b"):
            assert jitted(q) == p.containers(q)
    starts, ends = recorder.of("graph_start"), recorder.of("graph_end")
    assert len(starts) == len(ends) == 2
    assert {s["scheduler"] for s in starts} == {scheduler}
    assert [e["num_nodes"] for e in ends] == [3, 3]
    assert not any(e["failed"] for e in ends)
    assert len(recorder.of("node_end")) == 6


@pytest.mark.parametrize(("mode", "scheduler"), RUNS, ids=RUN_IDS)
def test_graph_hooks_fire_for_a_call_without_operator_calls(mode, scheduler):
    recorder = Recorder()
    assert run(mode, scheduler, lambda q: {"q": q}, "x", hooks=(recorder,)) == {"q": "x"}
    assert [e["num_nodes"] for e in recorder.of("graph_end")] == [0]
    assert len(recorder.of("graph_start")) == 1


@pytest.mark.parametrize(("mode", "scheduler"), RUNS, ids=RUN_IDS)
def test_graph_end_hook_reports_a_failed_call(mode, scheduler):
    recorder = Recorder()
    with pytest.raises(xcs.NodeExecutionError):
        run(mode, scheduler, lambda q: p.llm(Flaky(1)(q)), "q", hooks=(recorder,))
    assert [e["failed"] for e in recorder.of("graph_end")] == [True]
    assert [f["will_retry"] for f in recorder.of("node_failure")] == [False]


class Router(xcs.Operator):
    """A composite whose trace stops on a value: an opaque node run dynamically in auto."""

    def __init__(self) -> None:
        self.model = p.Echo("routed")

    def forward(self, q: str) -> str:
        first = self.model(q)
        return self.model(first) if first.endswith(")") else first


def test_an_opaque_dynamic_composite_reports_one_graph_not_two():
    recorder = Recorder()
    jitted = xcs.jit(lambda q: p.llm(Router()(q)))
    with xcs.execution_options(hooks=(recorder,)):
        assert jitted("q") == "llm(routed(routed(q)))"
    assert len(recorder.of("graph_start")) == len(recorder.of("graph_end")) == 1
    assert len(recorder.of("node_end")) == 2 + 2  # the composite and llm; the two inner calls


# --- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "scheduler"), RUNS, ids=RUN_IDS)
def test_retries_rerun_a_failing_call_and_hooks_see_each_attempt(mode, scheduler):
    flaky, recorder = Flaky(2), Recorder()
    answer = run(
        mode, scheduler, lambda q: p.llm(flaky(q)), "q",
        retries=2, retry_backoff=0.0, hooks=(recorder,),
    )  # fmt: skip
    assert answer == "llm(flaky(q))"
    assert flaky.calls.count == 3
    failures = recorder.of("node_failure")
    assert [(f["attempt"], f["will_retry"]) for f in failures] == [(0, True), (1, True)]


@pytest.mark.parametrize(("mode", "scheduler"), RUNS, ids=RUN_IDS)
def test_retry_on_limits_which_errors_are_retried(mode, scheduler):
    flaky = Flaky(1, error=ValueError)
    with pytest.raises(xcs.NodeExecutionError, match="attempt 1 failed"):
        run(mode, scheduler, lambda q: flaky(q), "q", retries=3, retry_on=(ConnectionError,))
    assert flaky.calls.count == 1


# --- one return value ------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "scheduler"), RUNS, ids=RUN_IDS)
def test_partial_results_still_raise_the_failure_for_a_function(mode, scheduler):
    flaky = Flaky(5)
    with pytest.raises(xcs.NodeExecutionError, match=r"node 'Flaky' \(Flaky\) failed"):
        run(mode, scheduler, lambda q: [flaky(q), p.llm(q)], "q", return_partial_results=True)


@pytest.mark.parametrize(("mode", "scheduler"), RUNS, ids=RUN_IDS)
def test_include_intermediates_leaves_the_return_value_alone(mode, scheduler):
    assert run(mode, scheduler, p.containers, "q", include_intermediates=True) == p.containers("q")


@pytest.mark.parametrize("scheduler", ["sequential", "parallel"])
def test_a_failure_the_body_catches_is_the_bodys_on_every_scheduler(scheduler):
    flaky = Flaky(5)

    def careful(q):
        try:
            return flaky(q)
        except xcs.NodeExecutionError:
            return "caught"

    assert run("dynamic", scheduler, careful, "q") == "caught"


# --- schedulers ------------------------------------------------------------------------------


def test_noop_scheduler_refuses_a_dynamic_call_and_says_why():
    with pytest.raises(xcs.OptionsError, match="no plan to return; use mode='trace'"):
        run("dynamic", "noop", p.chain, "q")


def test_wave_scheduler_runs_a_dynamic_call_as_dataflow():
    barrier = threading.Barrier(3, timeout=30)

    class Meet(xcs.Operator):
        def forward(self, prompt: str) -> str:
            barrier.wait()  # opens only with all three calls in flight together
            return f"met({prompt})"

    units = [Meet() for _ in range(3)]
    recorder = Recorder()
    answer = run("dynamic", "wave", lambda q: [u(q) for u in units], "q", hooks=(recorder,))
    assert answer == ["met(q)"] * 3
    assert [s["scheduler"] for s in recorder.of("graph_start")] == ["parallel"]


def test_dask_scheduler_and_client_run_a_dynamic_call():
    distributed = pytest.importorskip("distributed")
    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=4, dashboard_address=":0",
        set_as_default=False,
    ) as client:  # fmt: skip
        seen: set[str] = set()

        @xcs.op
        def where(prompt: str) -> str:
            seen.add(threading.current_thread().name)
            return f"where({prompt})"

        def branching(q):
            first = where(q)
            return p.llm(first) if first.startswith("where") else "never"

        answer = run("dynamic", "dask", branching, "q", dask_client=client)
    assert answer == "llm(where(q))"
    assert seen and not any(name.startswith("ember-xcs-worker") for name in seen)


# --- a body or composite that runs as written ------------------------------------------------
# A body whose trace stops runs dynamically, or as written in `"structural"` (one opaque
# node); a composite whose trace stops is an opaque node of the plan. Either way each leaf
# call it makes is a node of its own, retried and reported as in every other mode, and the
# body or composite itself is never run twice.

MODES = ["auto", "trace", "structural", "dynamic"]


def _untraceable(first: xcs.Operator, second: Any) -> Any:
    def body(q: str) -> list[str]:
        a = first(q + "!")  # `+` on an input stops the trace
        return [a, second(a)]

    return body


class Stopping(xcs.Operator):
    """A composite whose trace stops: opaque, run dynamically (auto) or as written."""

    def __init__(self, first: xcs.Operator, second: Any):
        self.first = first
        self.second = second

    def forward(self, q: str) -> list[str]:
        return _untraceable(self.first, self.second)(q)


SHAPES = {
    "body": _untraceable,
    "composite": lambda first, second: Stopping(first, second),
}


def _as_written_in_structural(jitted: Any, shape: str, mode: str) -> None:
    """The call took the path under test: as written in structural."""
    if mode == "structural":
        how = "runs as written" if shape == "body" else "runs as written: "
        assert how in xcs.explain_jit_selection(jitted)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", MODES)
def test_retries_apply_to_each_leaf_call_of_an_untraceable_body(mode, shape):
    first, flaky, recorder = p.Echo("first"), Flaky(2), Recorder()
    jitted = xcs.jit(SHAPES[shape](first, flaky), mode=mode)
    with xcs.execution_options(retries=2, retry_backoff=0.0, hooks=(recorder,)):
        assert jitted("q") == ["first(q!)", "flaky(first(q!))"]
    assert (first.counter.count, flaky.calls.count) == (1, 3)
    _as_written_in_structural(jitted, shape, mode)
    ends = [e["name"] for e in recorder.of("node_end")]
    assert sorted(n for n in ends if n != "Stopping") == ["Echo", "Flaky"]  # each leaf once
    failures = recorder.of("node_failure")
    assert [(f["name"], f["attempt"], f["will_retry"]) for f in failures] == [
        ("Flaky", 0, True),
        ("Flaky", 1, True),
    ]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", MODES)
def test_a_leaf_that_keeps_failing_names_itself_and_its_callers_run_once(mode, shape):
    first, flaky = p.Echo("first"), Flaky(5)
    jitted = xcs.jit(SHAPES[shape](first, flaky), mode=mode)
    with xcs.execution_options(retries=1, retry_backoff=0.0):
        with pytest.raises(ConnectionError) as info:
            jitted("q")
    assert (first.counter.count, flaky.calls.count) == (1, 2)
    assert isinstance(info.value, xcs.NodeExecutionError)
    assert info.value.operator_name == "Flaky"


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", MODES)
def test_the_bodys_own_error_is_raised_once_and_never_retried(mode, shape):
    first = p.Echo("first")

    def refuse(answer: str) -> str:  # a plain function: the body's own code
        raise ValueError(f"the body refused {answer}")

    jitted = xcs.jit(SHAPES[shape](first, refuse), mode=mode)
    recorder = Recorder()
    with xcs.execution_options(retries=3, retry_backoff=0.0, hooks=(recorder,)):
        with pytest.raises(ValueError, match=r"the body refused first\(q!\)") as info:
            jitted("q")
    assert not isinstance(info.value, xcs.XCSError)  # as the plain function raised it
    assert first.counter.count == 1
    assert not any(f["will_retry"] for f in recorder.of("node_failure"))


@pytest.mark.parametrize("mode", ["structural", "dynamic"])
def test_node_timeout_of_an_untraceable_body_names_the_leaf_call(mode):
    release = threading.Event()
    jitted = xcs.jit(_untraceable(Gate(release), p.Echo("second")), mode=mode)
    try:
        with xcs.execution_options(node_timeout_seconds=0.02):
            with pytest.raises(xcs.ExecutionTimeoutError) as info:
                jitted("q")
    finally:
        release.set()
    assert (info.value.node_id, info.value.operator_name) == ("Gate", "Gate")


@pytest.mark.parametrize("mode", ["structural", "dynamic"])
def test_node_timeout_bounds_each_call_of_an_untraceable_body_not_the_body(mode):
    @xcs.op
    def pause(prompt: str) -> str:
        time.sleep(0.2)  # each call well within the limit, the three together beyond it
        return f"pause({prompt})"

    def body(q: str) -> str:
        return pause(pause(pause(q + "!")))

    with xcs.execution_options(node_timeout_seconds=0.5):
        assert xcs.jit(body, mode=mode)("q") == "pause(pause(pause(q!)))"


def test_node_timeout_bounds_an_opaque_composite_as_a_whole():
    # A composite that stops the trace is a node of its plan, so the limit bounds it too.
    @xcs.op
    def pause(prompt: str) -> str:
        time.sleep(0.2)
        return f"pause({prompt})"

    class Pauses(xcs.Operator):
        def __init__(self) -> None:
            self.pause = pause

        def forward(self, q: str) -> str:
            return self.pause(self.pause(self.pause(q + "!")))

    with xcs.execution_options(node_timeout_seconds=0.5):
        with pytest.raises(xcs.ExecutionTimeoutError) as info:
            xcs.jit(lambda q: p.llm(Pauses()(q)), mode="structural")("q")
    assert info.value.operator_name == "Pauses"


# --- options set inside the body -------------------------------------------------------------
# A block the body enters reaches the calls made in it, whichever worker runs them and
# whenever; the run's own fields (scheduler, `max_workers`, the deadline) stay the run's.

IN_BODY = [("auto", "parallel"), *RUNS]
IN_BODY_IDS = ["auto", *RUN_IDS]


@pytest.mark.parametrize(("mode", "scheduler"), IN_BODY, ids=IN_BODY_IDS)
def test_hooks_set_inside_the_body_see_the_calls_made_in_the_block(mode, scheduler):
    outer, inner = Recorder(), Recorder()

    def body(q):
        first = p.llm(q)
        with xcs.execution_options(hooks=(inner,)):
            drafts = [p.llm(f"{q}{i}") for i in range(3)]
        seen = len(inner.of("node_end"))  # after the block: every call in it has ended
        return first, drafts, seen, p.llm(q + "!")

    out = run(mode, scheduler, body, "q", hooks=(outer,))
    assert out == ("llm(q)", ["llm(q0)", "llm(q1)", "llm(q2)"], 3, "llm(q!)")
    assert len(inner.of("node_start")) == len(inner.of("node_end")) == 3
    assert len(outer.of("node_end")) == 2  # the calls outside the block
    assert inner.of("graph_start") == [] and len(outer.of("graph_start")) == 1


@pytest.mark.parametrize(("mode", "scheduler"), IN_BODY, ids=IN_BODY_IDS)
def test_retries_set_inside_the_body_apply_to_the_calls_made_in_the_block(mode, scheduler):
    inside, outside = Flaky(2), Flaky(1)

    def body(q):
        with xcs.execution_options(retries=2, retry_backoff=0.0):
            answer = inside(q)
        return p.llm(answer)

    assert run(mode, scheduler, body, "q") == "llm(flaky(q))"
    assert inside.calls.count == 3

    def after(q):
        with xcs.execution_options(retries=2, retry_backoff=0.0):
            p.llm(q)
        return outside(q)  # after the block: the run's options, no retries

    with pytest.raises(xcs.NodeExecutionError, match="attempt 1 failed"):
        run(mode, scheduler, after, "q")
    assert outside.calls.count == 1


def test_calls_inside_an_options_block_overlap():
    barrier = threading.Barrier(3, timeout=10)
    meet = xcs.op(lambda x: (barrier.wait(), x)[1], name="meet")
    recorder = Recorder()

    def body(q):
        with xcs.execution_options(hooks=(recorder,)):
            met = [meet(f"{q}{i}") for i in range(3)]  # opens only with all three in flight
        return met

    for mode in ("auto", "dynamic"):
        assert xcs.jit(body, mode=mode)("q") == ["q0", "q1", "q2"]
    assert len(recorder.of("node_end")) == 6


def test_a_node_timeout_set_inside_the_body_bounds_the_calls_made_in_the_block():
    release = threading.Event()
    gate = Gate(release)

    def body(q):
        early = p.llm(q)
        with xcs.execution_options(node_timeout_seconds=0.02):
            late = gate(q)
        return early, late

    try:
        with pytest.raises(xcs.ExecutionTimeoutError) as info:
            xcs.jit(body)("q")
    finally:
        release.set()
    assert (info.value.node_id, info.value.operator_name) == ("Gate", "Gate")
    assert "node_timeout_seconds=0.02" in str(info.value)


def test_a_node_timeout_set_inside_the_body_fails_an_inline_call_that_returns_late():
    def body(q):
        with xcs.execution_options(node_timeout_seconds=0.001):
            return nap(q)

    with pytest.raises(xcs.ExecutionTimeoutError, match=r"node 'nap' \(nap\) did not finish"):
        run("dynamic", "sequential", body, "q")


@pytest.mark.parametrize("scheduler", ["parallel", "sequential"])
def test_a_block_inside_the_body_can_lift_the_runs_node_timeout_for_its_calls(scheduler):
    def body(q):
        with xcs.execution_options(node_timeout_seconds=None):
            slow = nap(q)  # 50 ms: over the run's limit, under the block's (none)
        return p.llm(slow)

    assert run("dynamic", scheduler, body, "q", node_timeout_seconds=0.01) == "llm(nap(q))"


def test_max_workers_set_inside_the_body_leaves_the_run_it_is_in_alone():
    """`max_workers` is the run's capacity, read as the run starts: a block inside the body
    does not narrow the run under way (its three calls still meet), but a run that a leaf
    called in the block starts is capped by it, as a plain call in the block would be."""
    barrier = threading.Barrier(3, timeout=10)
    flight = InFlight(0.01)
    graph = xcs.Graph()
    for i in range(3):
        graph.add_node(flight.op, node_id=f"n{i}")

    @xcs.op
    def meet(x: str) -> tuple:
        barrier.wait()
        nested = xcs.execute_graph(graph, {"value": x})
        return x, nested.stats.max_in_flight

    def body(q):
        with xcs.execution_options(max_workers=1):
            return [meet(f"{q}{i}") for i in range(3)]

    for mode in ("auto", "dynamic"):
        assert xcs.jit(body, mode=mode)("q") == [("q0", 1), ("q1", 1), ("q2", 1)]


# --- context variables the body sets ---------------------------------------------------------

REQUEST = contextvars.ContextVar("request", default="none")


@xcs.op
def tagged(q: str) -> str:
    return f"{REQUEST.get()}:{q}"


def sets_a_constant(q):
    token = REQUEST.set("admin")  # traces: nothing here needs a value
    answers = [tagged(q), tagged(q)]
    REQUEST.reset(token)
    return answers, tagged(q)


def sets_per_call(q, users):
    out = []
    for user in users:
        token = REQUEST.set(user)
        out.append(tagged(q))  # stays pending past the reset
        REQUEST.reset(token)
    return out


def sets_and_leaves_it(q):
    REQUEST.set("root")
    return tagged(q)


class SetsInForward(xcs.Operator):
    def __init__(self):
        self.tagged = tagged

    def forward(self, q):
        token = REQUEST.set("composite")
        try:
            return self.tagged(q)
        finally:
            REQUEST.reset(token)


def composite_sets(q):
    return [SetsInForward()(q), tagged(q)]


@pytest.mark.parametrize("mode", ["auto", "trace", "structural", "dynamic"])
@pytest.mark.parametrize("scheduler", ["parallel", "sequential"])
@pytest.mark.parametrize(
    "body, args",
    [
        (sets_a_constant, ("q",)),
        (sets_per_call, ("q", ["ann", "bob", "cy"])),
        (sets_and_leaves_it, ("q",)),
        (composite_sets, ("q",)),
    ],
    ids=["constant", "per-call", "left-set", "in-forward"],
)
def test_context_variables_set_in_the_body_reach_its_calls(body, args, mode, scheduler):
    jitted = xcs.jit(body, mode=mode)
    expected = contextvars.copy_context().run(body, *args)
    for _ in range(3):  # the first call traces; the later ones replay what it chose
        with xcs.execution_options(scheduler=scheduler):
            assert contextvars.copy_context().run(jitted, *args) == expected


def test_calls_made_under_a_context_variable_still_overlap():
    barrier = threading.Barrier(3, timeout=10)
    meet = xcs.op(lambda x: (barrier.wait(), f"{REQUEST.get()}:{x}")[1], name="meet")

    def body(q):
        REQUEST.set("span-1")
        return [meet(f"{q}{i}") for i in range(3)]  # opens only with all three in flight

    for mode in ("auto", "dynamic"):
        got = contextvars.copy_context().run(xcs.jit(body, mode=mode), "q")
        assert got == ["span-1:q0", "span-1:q1", "span-1:q2"]


def test_a_context_variable_set_in_the_body_stops_the_trace_naming_it():
    jitted = xcs.jit(sets_a_constant)
    contextvars.copy_context().run(jitted, "q")
    assert xcs.get_jit_strategy_used(jitted) is xcs.JITMode.DYNAMIC
    assert "context variable 'request'" in xcs.explain_jit_selection(jitted)
