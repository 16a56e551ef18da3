"""jit on the one engine: hooks, nested runs, results, errors and names behave the same in
every mode, and as the plain function does where the function's own code is concerned."""

from __future__ import annotations

import dataclasses
import importlib
import json
import threading
import time
import types
from typing import Any

import jax
import jax.numpy as jnp
import pytest

import ember_xcs as xcs

MODES = ["auto", "trace", "structural", "dynamic"]


@xcs.op
def shout(prompt: str) -> str:
    return prompt.upper()


class EngineEventsOnly:
    """A hooks object written without the base class: the five engine events only."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def on_graph_start(self, **kwargs: Any) -> None:
        self.events.append("graph_start")

    def on_graph_end(self, **kwargs: Any) -> None:
        self.events.append("graph_end")

    def on_node_start(self, **kwargs: Any) -> None:
        self.events.append("node_start")

    def on_node_end(self, **kwargs: Any) -> None:
        self.events.append("node_end")

    def on_node_failure(self, **kwargs: Any) -> None:
        self.events.append("node_failure")


@pytest.mark.parametrize("mode", MODES)
def test_a_hooks_object_with_only_the_engine_events_works_under_jit(mode: str) -> None:
    hooks = EngineEventsOnly()
    jitted = xcs.jit(lambda q: [shout(q), shout(q)], mode=mode)
    with xcs.execution_options(hooks=(hooks,)):
        assert jitted("a") == ["A", "A"]
        assert jitted("b") == ["B", "B"]
    assert hooks.events.count("node_end") == 4 and "graph_end" in hooks.events


def test_a_hook_may_implement_a_single_event() -> None:
    class CacheHits:
        def __init__(self) -> None:
            self.hits = 0

        def on_cache_hit(self, **kwargs: Any) -> None:
            self.hits += 1

    hits = CacheHits()
    jitted = xcs.jit(lambda q: shout(q))
    with xcs.execution_options(hooks=hits):
        jitted("a"), jitted("b"), jitted("c")
    assert hits.hits == 2


def test_a_hooks_object_with_no_event_is_rejected_by_name() -> None:
    with pytest.raises(xcs.OptionsError, match="implements no event"):
        xcs.ExecutionOptions(hooks=(object(),))


class Fussy:
    """`fussy(item)` fails for item 1; counts every call per item."""

    def __init__(self) -> None:
        self.calls: dict[int, int] = {}
        self._lock = threading.Lock()
        self.op = xcs.op(self._call, name="fussy")

    def _call(self, item: int) -> int:
        with self._lock:
            self.calls[item] = self.calls.get(item, 0) + 1
        if item == 1:
            raise ValueError("item 1 is fussy")
        return item * 10


@pytest.mark.parametrize("mode", MODES)
def test_retries_through_a_python_vmap_in_jit_run_each_item_per_its_own_attempts(
    mode: str,
) -> None:
    fussy = Fussy()
    batch = xcs.vmap(fussy.op, numeric=False)
    jitted = xcs.jit(lambda items: batch(items), mode=mode)
    with xcs.execution_options(retries=2, retry_backoff=0), pytest.raises(xcs.XCSError):
        jitted([0, 1, 2])
    assert fussy.calls == {0: 1, 1: 3, 2: 1}


def test_retries_through_a_python_vmap_graph_node_are_not_multiplied() -> None:
    fussy = Fussy()
    g = xcs.Graph()
    g.add_node(xcs.vmap(fussy.op, numeric=False), node_id="batch")
    options = xcs.ExecutionOptions(retries=2, retry_backoff=0)
    with pytest.raises(xcs.XCSError):
        xcs.execute_graph(g, {"batch": {"item": [0, 1, 2]}}, options=options)
    assert fussy.calls == {0: 1, 1: 3, 2: 1}


@pytest.mark.parametrize("mode", MODES)
def test_a_failing_item_of_a_python_vmap_in_jit_is_named_by_its_item(mode: str) -> None:
    fussy = Fussy()
    batch = xcs.vmap(fussy.op, numeric=False)
    jitted = xcs.jit(lambda items: batch(items), mode=mode)
    with pytest.raises(xcs.NodeExecutionError) as info:
        jitted([0, 1, 2])
    error = info.value
    assert error.node_id == "fussy[1]" and error.operator_name == "fussy"
    assert type(error.__cause__) is ValueError


@dataclasses.dataclass
class Report:
    answer: str
    notes: dict[str, list[str]]


class PlainResult:
    def __init__(self, answer: Any) -> None:
        self.answer = answer


@pytest.mark.parametrize("mode", MODES)
def test_objects_the_body_builds_hold_real_values_in_every_mode(mode: str) -> None:
    def body(q: str) -> tuple[Report, PlainResult]:
        first = shout(f"{q}?")  # the f-string stops a trace: auto runs dynamically
        return Report(first, {"more": [shout(q)]}), PlainResult(shout(q + "!"))

    report, plain = xcs.jit(body, mode=mode)("hi")
    assert json.dumps(dataclasses.asdict(report)) == json.dumps(dataclasses.asdict(body("hi")[0]))
    assert type(report.answer) is str and type(plain.answer) is str and plain.answer == "HI!"


def own_code_key_error(q: str) -> str:
    table: dict[str, str] = {}
    return table[q]


def own_code_value_error(q: str) -> str:
    raise ValueError(f"bad question {q}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("fn", "kind"), [(own_code_key_error, KeyError), (own_code_value_error, ValueError)]
)
def test_the_bodys_own_exception_reaches_the_caller_as_the_plain_function_raises_it(
    mode: str, fn: Any, kind: type[Exception]
) -> None:
    with pytest.raises(kind) as plain:
        fn("k")
    with pytest.raises(kind) as jitted:
        xcs.jit(fn, mode=mode)("k")
    assert type(jitted.value) is type(plain.value) and str(jitted.value) == str(plain.value)


class Composite(xcs.Operator):
    def __init__(self) -> None:
        self.step = shout

    def forward(self, q: str) -> str:
        raise ValueError("the composite's own check failed")


@pytest.mark.parametrize("mode", MODES)
def test_an_opaque_composites_own_exception_is_raised_unwrapped(mode: str) -> None:
    with pytest.raises(ValueError, match="own check failed"):
        xcs.jit(Composite(), mode=mode)("q")


class CountedStep(xcs.Operator):
    def __init__(self) -> None:
        self.calls = 0

    def forward(self, x: str) -> str:
        self.calls += 1
        if self.calls == 1:
            raise ValueError("the first stage fails")
        return x


class Stages(xcs.Operator):
    def __init__(self, step: xcs.Operator) -> None:
        self.stages = [step, step, step]

    def forward(self, x: str) -> str:
        for stage in self.stages:
            x = stage(x)
        return x


@pytest.mark.parametrize("mode", ["auto", "trace", "structural"])
def test_one_instance_in_several_fields_is_named_after_the_position_that_ran(mode: str) -> None:
    with pytest.raises(xcs.NodeExecutionError) as info:
        xcs.jit(Stages(CountedStep()), mode=mode)("q")
    assert info.value.node_id == "stages[0]"


@xcs.op(numeric=True)
def square(x: jax.Array) -> jax.Array:
    return x * x


@pytest.mark.parametrize("mode", MODES)
def test_a_jitted_numeric_function_works_under_jax_transformations(mode: str) -> None:
    def f(x: jax.Array) -> jax.Array:
        return square(x) + 1.0

    jitted = xcs.jit(f, mode=mode)
    x = jnp.arange(3.0)
    assert jnp.allclose(jax.jit(jitted)(x), f(x))
    assert jnp.allclose(jax.grad(lambda v: jitted(v).sum())(x), 2 * x)
    assert jax.vmap(jitted)(jnp.ones((2, 3))).shape == (2, 3)


def test_the_jit_function_and_the_jit_package_no_longer_share_a_name() -> None:
    assert callable(xcs.jit) and not isinstance(xcs.jit, type(importlib))
    assert importlib.import_module("ember_xcs._jit").jit is xcs.jit


# --- deadlines -------------------------------------------------------------------------------


def test_a_node_timeout_also_ends_the_nodes_retries() -> None:
    calls: list[float] = []

    def slow_and_failing() -> None:
        calls.append(time.perf_counter())
        time.sleep(0.05)
        raise ConnectionError("down")

    g = xcs.Graph()
    g.add_node(slow_and_failing, node_id="flaky")
    options = xcs.ExecutionOptions(
        scheduler="parallel", node_timeout_seconds=0.12, retries=10, retry_backoff=0.01
    )
    with pytest.raises(xcs.ExecutionError):  # the timeout, or the error of the last try
        xcs.execute_graph(g, options=options)
    made = len(calls)
    time.sleep(0.5)  # retries left in the background would call it again meanwhile
    assert len(calls) == made <= 3


def test_auto_runs_a_chain_on_threads_when_a_deadline_is_set() -> None:
    release = threading.Event()
    g = xcs.Graph()
    g.add_node(lambda: release.wait(5), node_id="slow")
    g.add_node(lambda v: v, node_id="next")
    g.connect("slow", "next")
    try:
        with pytest.raises(xcs.ExecutionTimeoutError) as info:
            xcs.execute_graph(g, options=xcs.ExecutionOptions(timeout_seconds=0.1))
    finally:
        release.set()
    # on the caller's thread the loop would have seen the deadline only after `slow`
    # returned; on threads it stops waiting at the deadline with `slow` still running
    assert info.value.running == ["slow"]


class ProtocolModel:
    """A user's own model: no base class, just `name`, `complete` and `acomplete`. Each call
    waits (up to 0.3 s) for `width` calls to be in flight together, and records the peak."""

    name = "mine"

    def __init__(self, width: int) -> None:
        self.width, self.active, self.peak, self.calls = width, 0, 0, 0
        self._cond = threading.Condition()

    def complete(self, prompt: str, *, sample: int = 0) -> Any:
        with self._cond:
            self.calls += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self.active >= self.width, timeout=0.3)
            self.active -= 1
        return types.SimpleNamespace(text=f"{prompt}#{sample % 2}")

    async def acomplete(self, prompt: str, *, sample: int = 0) -> Any:
        return self.complete(prompt, sample=sample)


def test_a_model_called_directly_is_one_leaf_call_and_its_samples_overlap() -> None:
    model = ProtocolModel(width=4)

    def self_consistency(question: str) -> str:
        answers = [model.complete(f"Q: {question}", sample=i).text for i in range(4)]
        return max(sorted(set(answers)), key=answers.count)

    plain = self_consistency("why")
    model.peak = model.calls = 0
    assert xcs.jit(self_consistency)("why") == plain
    assert model.calls == 4 and model.peak == 4


def test_calls_after_a_failure_the_body_caught_run_even_if_their_result_is_unused() -> None:
    logged: list[str] = []

    @xcs.op
    def flaky(q: str) -> str:
        raise ValueError("down")

    @xcs.op
    def log(q: str) -> None:
        logged.append(q)

    def body(q: str) -> str:
        try:
            answer = flaky(q).upper()
        except Exception:  # noqa: BLE001 - the program's own fallback
            answer = "fallback"
        log(q)  # its result is never used
        return answer

    assert body("a") == "fallback" and logged == ["a"]
    assert xcs.jit(body, mode="dynamic")("b") == "fallback"
    assert logged == ["a", "b"]
