"""Pipelines deployed the way users deploy them: many threads, nested jit, options blocks.

Each test runs a program plainly and under `xcs.jit` and compares results and leaf calls
(as multisets, from `RECORDER`), or counts events (hooks, `Timeline` records, threads,
`engine_status`). Overlap is proven with the recorder's in-flight peak or barriers,
never with timing.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import threading
import time
from typing import Any

import pytest
from corpus_harness import RECORDER, Program, cases, check, leaf

import ember_xcs as xcs
from ember_xcs._jit._serial import LEARN
from tests.in_flight import wait_until_engine_idle

THREADS = 12


@leaf
def draft(question: str, i: int) -> str:
    return f"draft {i} of {question}"


@leaf
def judge(drafts: list[str], question: str) -> str:
    return f"{question}: " + max(drafts)


@leaf
def classify(question: str) -> str:
    return "math" if any(ch.isdigit() for ch in question) else "chat"


@leaf
def solve(question: str) -> str:
    return f"solved {question}"


@leaf
def chat(question: str) -> str:
    return f"chatted {question}"


def fan(question: str) -> str:
    """Traces fully: four drafts at once, then a judge."""
    return judge([draft(question, i) for i in range(4)], question)


def route(question: str) -> str:
    """Width 1: the body uses each value before the next call (learns serial runs)."""
    kind = classify(question)
    if kind == "math":
        return solve(question)
    return chat(question)


def fan_then_route(question: str) -> str:
    """Dynamic with overlap: two drafts at once, then a branch on a value."""
    a, b = draft(question, 0), draft(question, 1)
    if classify(question) == "math":
        return solve(a) + b
    return chat(b) + a


# --- many threads, different inputs ----------------------------------------------------


def _questions(n: int) -> list[str]:
    return [f"q{i} {'+' if i % 2 else 'why'} {i}" if i % 3 else f"q{i} hello" for i in range(n)]


def _from_threads(fn: Any, inputs: list[Any], rounds: int = 1) -> list[list[Any]]:
    """`fn(x)` for each input, each on its own thread, all started together; per thread
    the outcomes of `rounds` calls (a value, or the exception raised). Each thread runs
    in a copy of the caller's context, so an `execution_options` block around this call
    applies (as a web framework hands a request's context to its worker)."""
    out: list[list[Any]] = [[] for _ in inputs]
    barrier = threading.Barrier(len(inputs), timeout=30)

    def worker(i: int) -> None:
        barrier.wait()
        for _ in range(rounds):
            try:
                out[i].append(fn(inputs[i]))
            except Exception as exc:  # noqa: BLE001 - compared with the plain outcome
                out[i].append(exc)

    pool = [
        threading.Thread(target=contextvars.copy_context().run, args=(worker, i))
        for i in range(len(inputs))
    ]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    assert not any(t.is_alive() for t in pool), "a jitted call hung"
    return out


def _plain_calls(
    fn: Any, inputs: list[Any], rounds: int = 1
) -> tuple[list[Any], collections.Counter]:
    RECORDER.reset()
    expected = [fn(x) for x in inputs]
    calls = collections.Counter({k: v * rounds for k, v in RECORDER.calls.items()})
    RECORDER.reset()
    return expected, calls


@pytest.mark.parametrize("fn", [fan, route, fan_then_route], ids=lambda f: f.__name__)
@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic", "structural"])
def test_threads_with_different_inputs_get_their_own_answers(fn: Any, mode: str) -> None:
    inputs = _questions(THREADS)
    expected, calls = _plain_calls(fn, inputs, rounds=3)
    jitted = xcs.jit(fn, mode=mode)
    got = _from_threads(jitted, inputs, rounds=3)
    assert got == [[e] * 3 for e in expected]
    assert RECORDER.calls == calls


def test_a_learned_serial_function_called_from_many_threads() -> None:
    jitted = xcs.jit(route)
    for i in range(LEARN):
        jitted(f"warm {i}")
    assert "serial: calls run at once" in xcs.explain_jit_selection(jitted)
    inputs = _questions(16)
    expected, calls = _plain_calls(route, inputs, rounds=5)
    got = _from_threads(jitted, inputs, rounds=5)
    assert got == [[e] * 5 for e in expected]
    assert RECORDER.calls == calls
    wait_until_engine_idle()


def test_a_learned_serial_function_that_escalates_in_some_threads() -> None:
    """Some threads' runs find overlap (escalate) while others run serially."""
    barrier = threading.Barrier(2, timeout=10)
    meet = xcs.op(lambda x: (barrier.wait(), x)[1], name="meet")
    lock = threading.Lock()

    def maybe_fan(text: str) -> list[str]:
        first = classify(text)
        if not text.startswith("fan"):
            return [first.upper()]
        return [first, meet(text + "b"), meet(text + "c")]

    jitted = xcs.jit(maybe_fan)
    for i in range(LEARN):
        jitted(f"warm {i}")
    inputs = [f"fan{i}" if i % 4 == 0 else f"plain {i}" for i in range(16)]

    def call(text: str) -> list[str]:
        if text.startswith("fan"):
            with lock:  # one fan-out at a time: the barrier pairs its own two calls
                return jitted(text)
        return jitted(text)

    got = _from_threads(call, inputs, rounds=3)
    expected = [
        [["math", f"{t}b", f"{t}c"]] * 3 if t.startswith("fan") else [[classify(t).upper()]] * 3
        for t in inputs
    ]
    assert got == expected
    wait_until_engine_idle()


# --- re-entrancy -----------------------------------------------------------------------


@xcs.jit
def inner_pipeline(question: str) -> str:
    return judge([draft(question, i) for i in range(2)], question)


def outer(question: str) -> list[str]:
    return [inner_pipeline(question), inner_pipeline(question + "?")]


def outer_dynamic(question: str) -> str:
    first = inner_pipeline(question)
    if first.startswith(question):
        return inner_pipeline(first)
    return first


@xcs.op
def nested_leaf(question: str) -> str:
    """A leaf whose body runs a jitted pipeline: a nested run on the leaf's thread."""
    return inner_pipeline(question).upper()


def top_with_nested_leaf(question: str) -> list[str]:
    return [nested_leaf(question), nested_leaf(question + "!"), draft(question, 9)]


PROGRAMS = [
    # the threads' runs are independent of each other; width and depth are one thread's
    # (every thread's calls could meet too, but threads start their calls at different
    # moments on a loaded machine, so their meeting is not the program's to promise)
    Program(
        "fan-threads", fan, [("why is the sky blue",)], width=4, depth=2, traces=True, threads=8
    ),
    Program("route-threads", route, [("2 + 2",), ("hello",)], width=1, depth=2, threads=8),
    # a thread's two drafts and its `classify` are independent: 3 per thread
    Program(
        "fan-route-threads", fan_then_route, [("3 * 3",), ("hi",)], width=3, depth=2, threads=8
    ),
    # each inner pipeline is drafts, then a judge; the dynamic outer chains two of them
    Program("jit-in-jit", outer, [("why",)], width=4, depth=2, threads=4),
    Program("jit-in-jit-dynamic", outer_dynamic, [("why",)], width=2, depth=4, threads=4),
    # `nested_leaf` records nothing itself: its depth is the inner pipeline's, and its two
    # drafts run beside the other's and the top-level draft (5 per thread)
    Program("jit-in-op-leaf", top_with_nested_leaf, [("why",)], width=5, depth=2, threads=4),
    # one caller: the overlap must come from the program itself
    Program("jit-in-jit-1", outer, [("why",)], width=4, depth=2),
    Program("jit-in-jit-dynamic-1", outer_dynamic, [("why",)], width=2, depth=4),
    Program("jit-in-op-leaf-1", top_with_nested_leaf, [("why",)], width=5, depth=2),
]


@pytest.mark.parametrize(("program", "mode"), cases(PROGRAMS))
def test_corpus_deploy(program: Program, mode: str) -> None:
    check(program, mode)


@pytest.mark.parametrize("fn", [outer, outer_dynamic], ids=lambda f: f.__name__)
@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic", "structural"])
def test_jit_calling_jit_from_threads(fn: Any, mode: str) -> None:
    inputs = _questions(8)
    expected, calls = _plain_calls(fn, inputs, rounds=2)
    got = _from_threads(xcs.jit(fn, mode=mode), inputs, rounds=2)
    assert got == [[e] * 2 for e in expected]
    assert RECORDER.calls == calls


class Ensemble(xcs.Operator):
    def __init__(self, n: int, tag: str):
        self.units = [draft] * n
        self.judge = judge
        self.tag = tag

    def forward(self, question: str) -> str:
        return self.judge([u(question, i) for i, u in enumerate(self.units)], self.tag)


def test_jitted_operator_class_on_many_instances_from_threads() -> None:
    Jitted = xcs.jit(Ensemble)
    instances = [Jitted(1 + i % 3, f"t{i}") for i in range(THREADS)]
    plain = [Ensemble(1 + i % 3, f"t{i}") for i in range(THREADS)]
    RECORDER.reset()
    expected = [p(f"q{i}") for i, p in enumerate(plain)]
    calls = RECORDER.calls
    RECORDER.reset()
    got = _from_threads(lambda i: instances[i](f"q{i}"), list(range(THREADS)))
    assert got == [[e] for e in expected]
    assert RECORDER.calls == calls


def test_a_jitted_function_used_inside_an_op_leaf_runs_nested() -> None:
    @xcs.op
    def wrapper(question: str) -> str:
        return inner_pipeline(question).upper()

    def top(question: str) -> list[str]:
        return [wrapper(question), wrapper(question + "!"), draft(question, 9)]

    inputs = _questions(8)
    expected, calls = _plain_calls(top, inputs, rounds=2)
    for mode in ("auto", "dynamic", "structural"):
        RECORDER.reset()
        got = _from_threads(xcs.jit(top, mode=mode), inputs, rounds=2)
        assert got == [[e] * 2 for e in expected], mode
        assert RECORDER.calls == calls, mode


# --- execution options -----------------------------------------------------------------


@pytest.mark.parametrize(
    "fn", [fan, route, fan_then_route, outer, top_with_nested_leaf], ids=lambda f: f.__name__
)
@pytest.mark.parametrize(
    "options",
    [{"scheduler": "sequential"}, {"max_workers": 1}, {"max_workers": 2}],
    ids=["sequential", "workers1", "workers2"],
)
def test_options_around_jitted_calls_cap_what_runs_at_once(fn: Any, options: dict) -> None:
    inputs = _questions(4)
    expected, calls = _plain_calls(fn, inputs)
    jitted = xcs.jit(fn)
    RECORDER.target = 4
    try:
        with xcs.execution_options(**options):
            got = [jitted(x) for x in inputs]
    finally:
        RECORDER.target = 0
    assert got == expected
    assert RECORDER.calls == calls
    cap = options.get("max_workers", 1)
    if fn is top_with_nested_leaf and cap > 1:
        # `max_workers` caps each run: every `nested_leaf` node in flight runs a jitted
        # pipeline of its own, which inherits the cap (docs/execution.md, Options)
        cap *= cap
    assert RECORDER.peak <= cap


@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic", "structural"])
@pytest.mark.parametrize(
    "options",
    [{"scheduler": "sequential"}, {"max_workers": 1}, {"max_workers": 2}, {"retries": 2}],
    ids=["sequential", "workers1", "workers2", "retries"],
)
def test_options_block_inside_a_jitted_body(mode: str, options: dict) -> None:
    def body(question: str) -> str:
        with xcs.execution_options(**options):
            drafts = [draft(question, i) for i in range(3)]
        return judge(drafts, question)

    inputs = _questions(3)
    expected, calls = _plain_calls(body, inputs)
    got = _from_threads(xcs.jit(body, mode=mode), inputs)
    assert got == [[e] for e in expected]
    assert RECORDER.calls == calls


class Flaky:
    """Fails the first `fails` attempts for each argument, then answers."""

    def __init__(self, fails: int):
        self.fails = fails
        self.seen: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.op = xcs.op(self._call, name="flaky")

    def _call(self, text: str) -> str:
        with self.lock:
            self.seen[text] += 1
            n = self.seen[text]
        if n <= self.fails:
            raise ConnectionError(f"rate limited {text}")
        return text.upper()


@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic", "structural"])
def test_retries_on_a_flaky_leaf_from_threads(mode: str) -> None:
    flaky = Flaky(2)

    def body(text: str) -> list[str]:
        return [flaky.op(text + "-a"), flaky.op(text + "-b")]

    jitted = xcs.jit(body, mode=mode)
    inputs = [f"t{i}" for i in range(8)]
    with xcs.execution_options(retries=2, retry_backoff=0.0):
        got = _from_threads(jitted, inputs)
    assert got == [[[f"T{i}-A", f"T{i}-B"]] for i in range(8)]
    assert set(flaky.seen.values()) == {3}


def test_retries_on_a_flaky_leaf_of_a_learned_serial_function() -> None:
    flaky = Flaky(1)

    def body(text: str) -> str:
        first = flaky.op(text)
        return flaky.op(first + "x")

    jitted = xcs.jit(body)
    with xcs.execution_options(retries=1, retry_backoff=0.0):
        for i in range(LEARN):
            jitted(f"w{i}")
        got = _from_threads(jitted, [f"t{i}" for i in range(8)])
    assert got == [[f"T{i}X"] for i in range(8)]
    assert set(flaky.seen.values()) == {2}


def _slow(release: threading.Event) -> xcs.Operator:
    def slow(text: str) -> str:
        release.wait(10)
        return text

    return xcs.op(slow, name="slow")


@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic", "structural"])
@pytest.mark.parametrize("option", ["timeout_seconds", "node_timeout_seconds"])
def test_a_deadline_raises_the_timeout_error_and_leaves_nothing_running(
    mode: str, option: str
) -> None:
    wait_until_engine_idle()
    release = threading.Event()
    slow = _slow(release)

    def body(text: str) -> list[str]:
        return [slow(text), draft(text, 0)]

    jitted = xcs.jit(body, mode=mode)
    try:
        with xcs.execution_options(**{option: 0.05}):
            with pytest.raises(xcs.ExecutionTimeoutError) as caught:
                jitted("x")
    finally:
        release.set()
    assert "slow" in str(caught.value)
    wait_until_engine_idle()
    status = xcs.engine_status()
    assert (status.runs, status.running, status.queued) == (0, 0, 0)


@pytest.mark.parametrize("option", ["timeout_seconds", "node_timeout_seconds"])
def test_deadlines_from_eight_threads(option: str) -> None:
    wait_until_engine_idle()
    release = threading.Event()
    slow = _slow(release)

    def body(text: str) -> str:
        if classify(text) == "math":
            return slow(text)
        return chat(text)

    jitted = xcs.jit(body)
    inputs = [f"{i} + 1" if i % 2 else f"hello {chr(97 + i)}" for i in range(8)]
    try:
        with xcs.execution_options(**{option: 0.1}):
            got = _from_threads(jitted, inputs)
    finally:
        release.set()
    for text, (outcome,) in zip(inputs, got, strict=True):
        if text.startswith("hello"):
            assert outcome == f"chatted {text}"
        else:
            assert isinstance(outcome, xcs.ExecutionTimeoutError), outcome
    wait_until_engine_idle()


# --- observability ---------------------------------------------------------------------


class Counting(xcs.ExecutionHooks):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: collections.Counter[str] = collections.Counter()

    def _count(self, name: str) -> None:
        with self.lock:
            self.events[name] += 1

    def on_graph_start(self, *, num_nodes: int, scheduler: str) -> None:
        self._count("graph_start")

    def on_graph_end(self, *, num_nodes: int, seconds: float, failed: bool) -> None:
        self._count("graph_end")

    def on_node_start(self, *, node_id: str, name: str, attempt: int) -> None:
        self._count("node_start")

    def on_node_end(self, *, node_id: str, name: str, seconds: float) -> None:
        self._count("node_end")

    def on_node_failure(self, *, node_id, name, error, attempt, will_retry) -> None:  # noqa: ANN001
        self._count("node_failure")


@pytest.mark.parametrize("fn", [fan, route, fan_then_route], ids=lambda f: f.__name__)
@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic", "structural"])
def test_hooks_timeline_and_progress_count_every_leaf_call(fn: Any, mode: str) -> None:
    inputs = _questions(THREADS)
    _, calls = _plain_calls(fn, inputs, rounds=LEARN + 2)
    leaf_calls = sum(calls.values())
    jitted = xcs.jit(fn, mode=mode)
    hooks, timeline = Counting(), xcs.Timeline()
    with xcs.execution_options(hooks=(hooks, timeline), progress=True):
        got = _from_threads(jitted, inputs, rounds=LEARN + 2)
    assert all(not isinstance(x, Exception) for row in got for x in row)
    assert RECORDER.calls == calls
    n_calls = THREADS * (LEARN + 2)
    # structural runs route and fan_then_route as written: each leaf call is still a node
    assert hooks.events["node_start"] == hooks.events["node_end"] == leaf_calls
    assert len(timeline.records) == leaf_calls
    assert hooks.events["graph_start"] == hooks.events["graph_end"] == n_calls
    assert len(timeline.runs) == n_calls


def test_hooks_count_a_learned_serial_function_from_threads() -> None:
    jitted = xcs.jit(route)
    for i in range(LEARN):
        jitted(f"warm {i}")
    inputs = _questions(16)
    _, calls = _plain_calls(route, inputs, rounds=4)
    hooks, timeline = Counting(), xcs.Timeline()
    with xcs.execution_options(hooks=(hooks, timeline)):
        _from_threads(jitted, inputs, rounds=4)
    assert hooks.events["node_start"] == hooks.events["node_end"] == sum(calls.values())
    assert len(timeline.records) == sum(calls.values())
    assert hooks.events["graph_start"] == hooks.events["graph_end"] == 64


# --- the plan cache --------------------------------------------------------------------


class CacheEvents(xcs.ExecutionHooks):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[str] = []

    def on_cache_evict(self, *, target: Any, key: Any) -> None:
        with self.lock:
            self.events.append("evict")

    def on_cache_miss(self, *, target: Any, key: Any) -> None:
        with self.lock:
            self.events.append("miss")

    def on_cache_hit(self, *, target: Any, key: Any) -> None:
        with self.lock:
            self.events.append("hit")


def shaped(items: list[str]) -> list[str]:
    return [draft(x, i) for i, x in enumerate(items)]


def test_cache_eviction_and_invalidate_from_threads() -> None:
    jitted = xcs.jit(shaped, cache_size=2)
    inputs = [[f"x{j}" for j in range(1 + i % 4)] for i in range(THREADS)]
    expected, calls = _plain_calls(shaped, inputs, rounds=3)
    hooks = CacheEvents()
    with xcs.execution_options(hooks=(hooks,)):
        got = _from_threads(jitted, inputs, rounds=3)
        assert got == [[e] * 3 for e in expected]
        assert RECORDER.calls == calls
        stats = xcs.get_jit_stats(jitted)
        assert stats.cache_entries <= 2
        assert stats.cache_evictions == hooks.events.count("evict") > 0
        jitted.invalidate()
        assert xcs.get_jit_stats(jitted).cache_entries == 0
        RECORDER.reset()
        got = _from_threads(jitted, inputs, rounds=3)
    assert got == [[e] * 3 for e in expected]
    assert RECORDER.calls == calls


@contextlib.contextmanager
def _invalidating(jitted: Any, every: float) -> Any:
    """`jitted.invalidate()` every `every` seconds on another thread, for the block."""
    stop = threading.Event()

    def invalidator() -> None:
        while not stop.is_set():
            jitted.invalidate()
            time.sleep(every)

    t = threading.Thread(target=invalidator)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()


def test_invalidate_while_other_threads_call() -> None:
    jitted = xcs.jit(fan)
    inputs = _questions(8)
    expected, _ = _plain_calls(fan, inputs, rounds=1)
    with _invalidating(jitted, 0.001):
        got = _from_threads(jitted, inputs, rounds=5)
    assert got == [[e] * 5 for e in expected]


# --- transforms, generators, errors, threads -------------------------------------------


def test_jit_inside_vmap_over_a_python_operator() -> None:
    jitted = xcs.jit(fan)
    questions = _questions(6)
    RECORDER.reset()
    expected = [fan(q) for q in questions]
    calls = RECORDER.calls
    RECORDER.reset()
    assert list(xcs.vmap(jitted)(questions)) == expected
    assert RECORDER.calls == calls


def _drafts(question: str, n: int) -> Any:
    for i in range(n):
        yield draft(question, i)


def with_generator(question: str) -> str:
    return judge(list(_drafts(question, 3)), question)


def with_generator_expression(question: str) -> str:
    drafts = (draft(question, i) for i in range(3))
    return judge([d for d in drafts if d], question)


def generator_closed_early(question: str) -> str:
    gen = _drafts(question, 5)
    first = next(gen)
    gen.close()
    return judge([first], question)


@pytest.mark.parametrize(
    "fn",
    [with_generator, with_generator_expression, generator_closed_early],
    ids=lambda f: f.__name__,
)
@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic", "structural"])
def test_generators_in_the_body_from_threads(fn: Any, mode: str) -> None:
    inputs = _questions(8)
    expected, calls = _plain_calls(fn, inputs)
    got = _from_threads(xcs.jit(fn, mode=mode), inputs)
    assert got == [[e] for e in expected]
    assert RECORDER.calls == calls


def raises_midway(question: str) -> list[str]:
    """Dispatches two calls, then raises before using them (cancellation by error)."""
    a, b = draft(question, 0), draft(question, 1)
    if question.endswith("!"):
        raise LookupError(question)
    return [a, b]


@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic", "structural"])
def test_a_body_raising_with_calls_in_flight_leaves_nothing_running(mode: str) -> None:
    wait_until_engine_idle()
    inputs = [f"q{i}!" if i % 2 else f"q{i}" for i in range(8)]
    RECORDER.reset()
    got = _from_threads(xcs.jit(raises_midway, mode=mode), inputs)
    for text, (outcome,) in zip(inputs, got, strict=True):
        if text.endswith("!"):
            assert type(outcome) is LookupError and outcome.args == (text,)
        else:
            assert outcome == [f"draft 0 of {text}", f"draft 1 of {text}"]
    status = xcs.engine_status()
    assert (status.runs, status.running, status.queued) == (0, 0, 0)


@leaf
def parse(text: str) -> str:
    if "bad" in text:
        raise ValueError(f"cannot parse {text}")
    return text


def parse_all(text: str) -> list[str]:
    return [parse(text), draft(text, 0)]


def parse_then_use(text: str) -> str:
    parsed = parse(text)
    if parsed:
        return draft(parsed, 1)
    return ""


@pytest.mark.parametrize("fn", [parse_all, parse_then_use], ids=lambda f: f.__name__)
@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic", "structural"])
def test_exceptions_from_eight_threads_at_once(fn: Any, mode: str) -> None:
    jitted = xcs.jit(fn, mode=mode)
    for i in range(LEARN):
        jitted(f"warm {i}")
    inputs = [f"bad {i}" if i % 2 else f"good {i}" for i in range(8)]
    got = _from_threads(jitted, inputs, rounds=2)
    for text, row in zip(inputs, got, strict=True):
        for outcome in row:
            if "bad" in text:
                assert isinstance(outcome, ValueError), outcome
                assert f"cannot parse {text}" in str(outcome) or f"cannot parse {text}" in str(
                    outcome.__cause__
                )
            else:
                assert outcome == fn(text)
    wait_until_engine_idle()


@pytest.mark.parametrize("fn", [fan, route, fan_then_route, parse_all], ids=lambda f: f.__name__)
def test_no_thread_growth_after_many_jitted_calls(fn: Any) -> None:
    jitted = xcs.jit(fn)
    for i in range(20):  # warm the pool and the cache
        try:
            jitted(f"warm {i}" if i % 2 else f"{i} bad")
        except ValueError:
            pass
    wait_until_engine_idle()
    before = threading.active_count()
    for i in range(200):
        try:
            jitted(f"q {i}" if i % 2 else f"{i} bad")
        except ValueError:
            pass
    wait_until_engine_idle()
    assert threading.active_count() <= before


@pytest.mark.parametrize("option", ["timeout_seconds", "node_timeout_seconds"])
def test_a_deadline_on_a_learned_serial_function_from_threads(option: str) -> None:
    """A deadline keeps a learned signature dispatching (a call on the body's thread
    could not be interrupted): the slow calls time out, the others answer."""
    wait_until_engine_idle()
    release = threading.Event()
    slow = _slow(release)

    def body(text: str) -> str:
        if classify(text) == "math":
            return slow(text)
        return chat(text)

    jitted = xcs.jit(body)
    for i in range(LEARN):
        jitted(f"warm {chr(97 + i)}")
    assert "serial: calls run at once" in xcs.explain_jit_selection(jitted)
    hooks = Counting()
    inputs = [f"{i} + 1" if i % 2 else f"hello {chr(97 + i)}" for i in range(8)]
    try:
        with xcs.execution_options(**{option: 0.1}, hooks=(hooks,)):
            got = _from_threads(jitted, inputs)
    finally:
        release.set()
    for text, (outcome,) in zip(inputs, got, strict=True):
        if text.startswith("hello"):
            assert outcome == f"chatted {text}"
        else:
            assert isinstance(outcome, xcs.ExecutionTimeoutError), outcome
    assert hooks.events["graph_start"] == hooks.events["graph_end"] == 8
    wait_until_engine_idle()
    assert "serial: calls run at once" in xcs.explain_jit_selection(jitted)


def test_invalidate_while_threads_call_a_learned_serial_function() -> None:
    jitted = xcs.jit(route)
    for i in range(LEARN):
        jitted(f"warm {i}")
    inputs = _questions(8)
    expected, calls = _plain_calls(route, inputs, rounds=6)
    with _invalidating(jitted, 0.002):
        got = _from_threads(jitted, inputs, rounds=6)
    assert got == [[e] * 6 for e in expected]
    assert RECORDER.calls == calls


def test_vmap_over_a_learned_serial_function_from_threads() -> None:
    jitted = xcs.jit(route)
    for i in range(LEARN):
        jitted(f"warm {i}")
    batches = [_questions(5 + i % 3) for i in range(8)]
    RECORDER.reset()
    expected = [[route(q) for q in batch] for batch in batches]
    calls = collections.Counter({k: v * 2 for k, v in RECORDER.calls.items()})
    RECORDER.reset()
    hooks = Counting()
    with xcs.execution_options(hooks=(hooks,)):
        got = _from_threads(lambda b: list(xcs.vmap(jitted)(b)), batches, rounds=2)
    assert got == [[e] * 2 for e in expected]
    assert RECORDER.calls == calls
    # one node per item (the batch) plus one per leaf call (the jitted runs inside them)
    items = sum(len(b) for b in batches) * 2
    assert hooks.events["node_end"] == items + sum(calls.values())


class FailedRuns(xcs.ExecutionHooks):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ends: collections.Counter[bool] = collections.Counter()
        self.failures = 0

    def on_graph_end(self, *, num_nodes: int, seconds: float, failed: bool) -> None:
        with self.lock:
            self.ends[failed] += 1

    def on_node_failure(self, *, node_id, name, error, attempt, will_retry) -> None:  # noqa: ANN001
        with self.lock:
            self.failures += 1


@pytest.mark.parametrize("fn", [parse_all, parse_then_use], ids=lambda f: f.__name__)
@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic"])
def test_failed_runs_from_eight_threads_are_reported_once_each(fn: Any, mode: str) -> None:
    jitted = xcs.jit(fn, mode=mode)
    for i in range(LEARN):
        jitted(f"warm {i}")
    hooks = FailedRuns()
    inputs = [f"bad {i}" if i % 2 else f"good {i}" for i in range(8)]
    with xcs.execution_options(hooks=(hooks,)):
        _from_threads(jitted, inputs, rounds=3)
    assert hooks.ends == {True: 12, False: 12}
    assert hooks.failures == 12
    wait_until_engine_idle()
