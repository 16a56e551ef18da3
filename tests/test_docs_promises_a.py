"""What the README, the getting-started page, jit, sharp bits, the tutorials, the cookbook,
troubleshooting and command-line pages promise in their prose, checked the way a user
would check it: one test per promise, named after the behaviour.

Overlap is proven with a `threading.Barrier` that only opens when every call of a group
is running at once (a broken barrier fails the test), never with wall-clock time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import io
import json
import logging
import sys
import threading

import jax
import jax.numpy as jnp
import pytest

import ember_xcs as xcs
from ember_xcs import models

pytest_plugins = ("loopback",)  # the `server` and `fresh` fixtures

BARRIER_SECONDS = 10.0


def together(n: int) -> threading.Barrier:
    """A barrier that opens only when `n` calls wait on it at once."""
    return threading.Barrier(n, timeout=BARRIER_SECONDS)


GATE: list[threading.Barrier] = []
CALLS: list[str] = []


@xcs.op
def gated(prompt: str) -> str:
    """A leaf that returns only once every call of its group is running."""
    CALLS.append(prompt)
    if GATE:
        GATE[0].wait()
    return f"answer to {prompt}"


@xcs.op
def ask(prompt: str) -> str:
    CALLS.append(prompt)
    return f"answer to {prompt}"


@xcs.op
def judge(answers: list[str]) -> str:
    return " | ".join(answers)


@pytest.fixture(autouse=True)
def _fresh_calls():
    CALLS.clear()
    GATE.clear()
    yield
    GATE.clear()


def gate(n: int) -> None:
    GATE[:] = [together(n)]


class Ensemble(xcs.Operator):
    def __init__(self, units, judge):
        self.units = units
        self.judge = judge

    def forward(self, question):
        return self.judge([unit(question) for unit in self.units])


# --- README, index, getting started ---------------------------------------------------


def test_readme_poll_runs_its_three_calls_at_once_and_replays_the_plan_for_a_new_question():
    @xcs.jit
    def poll(question: str) -> list[str]:
        return [gated(f"{model}") for model in ("small", "medium", "large")]

    gate(3)
    assert poll("6 x 7?") == ["answer to small", "answer to medium", "answer to large"]
    gate(3)
    assert poll("other?") == ["answer to small", "answer to medium", "answer to large"]
    stats = xcs.get_jit_stats(poll)
    assert (stats.traces, stats.cache_hits, stats.max_in_flight) == (1, 1, 3)
    assert xcs.get_jit_strategy_used(poll) is xcs.JITMode.TRACE
    assert len(CALLS) == 6  # each call exactly once per jitted call


def test_xcsgraph_is_an_alias_of_graph():
    assert xcs.XCSGraph is xcs.Graph


def test_op_keeps_the_signature_of_sync_and_async_functions():
    def plain(question: str, model: str = "small") -> str:
        return model

    async def coroutine(question: str, model: str = "small") -> str:
        return model

    assert inspect.signature(xcs.op(plain)) == inspect.signature(plain)
    assert inspect.signature(xcs.op(coroutine)) == inspect.signature(coroutine)
    assert xcs.op(plain)("q", model="large") == "large"  # called like the function it wraps


class Linear(xcs.Operator):
    def __init__(self, weights, label):
        self.weights = weights
        self.label = label

    def forward(self, x):
        return x @ self.weights


def test_operator_array_fields_are_pytree_leaves_and_other_fields_static():
    layer = Linear(jnp.ones((3, 2)), "proj")
    leaves = jax.tree.leaves(layer)
    assert len(leaves) == 1 and leaves[0] is layer.weights
    grads = jax.grad(lambda m, x: m(x).sum())(layer, jnp.ones(3))
    assert type(grads) is Linear and grads.label == "proj" and grads.weights.shape == (3, 2)
    assert jax.jit(lambda m, x: m(x))(layer, jnp.ones(3)).tolist() == [3.0, 3.0]


def test_sub_operators_lists_each_operator_field_by_path():
    ensemble = Ensemble([ask, ask], judge)
    assert [path for path, _ in ensemble.sub_operators()] == ["units[0]", "units[1]", "judge"]
    assert ensemble("q") == "answer to q | answer to q"  # called directly: runs its forward


def test_execute_graph_auto_picks_parallel_and_returns_sinks_with_stats_failures_skipped_plan():
    graph = xcs.Graph()
    for model in ("small", "medium", "large"):
        graph.add_node(gated, node_id=model)
    graph.add_node(lambda *answers: min(answers), node_id="judge")
    for model in ("small", "medium", "large"):
        graph.add_edge(model, "judge")
    gate(3)
    result = xcs.execute_graph(graph, {"prompt": "q", "large": {"prompt": "big"}})
    assert dict(result) == {"judge": "answer to big"}
    assert (result.stats.scheduler, result.stats.nodes_run, result.stats.max_in_flight) == (
        "parallel",
        4,
        3,
    )
    assert result.failures == {} and list(result.skipped) == []
    assert isinstance(result.plan, xcs.ExecutionPlan)


def test_a_failing_node_raises_node_execution_error_naming_node_operator_and_inputs():
    @xcs.op
    def flaky(question: str) -> str:
        raise ConnectionError("model endpoint unavailable")

    broken = xcs.Graph()
    broken.add_node(flaky, node_id="ask")
    with pytest.raises(xcs.NodeExecutionError) as caught:
        xcs.execute_graph(broken, {"question": "hi"})
    assert str(caught.value) == (
        "node 'ask' (flaky) failed: ConnectionError: model endpoint unavailable\n"
        "  inputs: (question='hi')"
    )
    assert (caught.value.node_id, caught.value.operator_name) == ("ask", "flaky")
    assert isinstance(caught.value.__cause__, ConnectionError)


# --- jit: how a call runs, leaves and composites, modes ----------------------------------


def test_jit_on_an_operator_instance_is_still_an_operator():
    jitted = xcs.jit(Ensemble([ask] * 3, judge))
    assert isinstance(jitted, xcs.Operator)
    assert jitted("q") == "answer to q | answer to q | answer to q"


def test_jit_on_an_operator_class_gives_each_instance_its_own_plan_cache():
    Traced = xcs.jit(mode="trace")(Ensemble)
    two, three = Traced([ask] * 2, judge), Traced([ask] * 3, judge)
    assert two("x") == "answer to x | answer to x"
    assert three("x") == "answer to x | answer to x | answer to x"
    assert xcs.get_jit_stats(two).traces == 1 and xcs.get_jit_stats(three).traces == 1
    assert xcs.get_jit_stats(three).leaf_calls == 4


def test_nested_jit_flattens_into_the_outer_plan():
    @xcs.jit
    def inner(question):
        return ask(question)

    @xcs.jit
    def outer(question):
        return judge([inner(question), inner(question)])

    assert outer("q") == "answer to q | answer to q"
    stats = xcs.get_jit_stats(outer)
    assert (stats.last_strategy, stats.nodes, stats.leaf_calls) == ("trace", 3, 3)


def test_a_ten_unit_ensemble_nested_two_deep_is_111_leaf_nodes_with_critical_path_3():
    nested = xcs.jit(Ensemble([Ensemble([ask] * 10, judge) for _ in range(10)], judge))
    nested("q")
    stats = xcs.get_jit_stats(nested)
    assert (stats.nodes, stats.leaf_calls, stats.critical_path) == (111, 111, 3)
    assert len(CALLS) == 100


def test_node_ids_follow_the_operator_structure():
    timeline = xcs.Timeline()
    with xcs.execution_options(hooks=(timeline,)):
        xcs.jit(Ensemble([Ensemble([ask] * 2, judge)], judge))("q")
    ids = {record.node_id for record in timeline.records}
    assert ids == {"units[0]/units[0]", "units[0]/units[1]", "units[0]/judge", "judge"}


def test_execute_graph_inside_a_jitted_function_joins_the_plan_and_runs_once_per_call():
    graph = xcs.Graph()
    graph.add_node(ask, node_id="a")
    graph.add_node(ask, node_id="b")

    @xcs.jit
    def with_graph(prompt):
        out = xcs.execute_graph(graph, {"prompt": prompt})
        return judge([out["a"], out["b"]])

    assert with_graph("one") == "answer to one | answer to one"
    assert with_graph("two") == "answer to two | answer to two"
    assert CALLS == ["one", "one", "two", "two"]
    assert xcs.get_jit_stats(with_graph).nodes == 3
    assert xcs.get_jit_strategy_used(with_graph) is xcs.JITMode.TRACE


def _stops_in_the_function(prompt):
    first = ask(prompt)
    if first == "never":
        return first
    return judge([ask("a"), ask("b")])


@pytest.mark.parametrize(
    ("mode", "strategy", "plain_calls"),
    [("auto", "dynamic", 0), ("trace", "dynamic", 0), ("structural", "structural", 1),
     ("dynamic", "dynamic", 0)],
)  # fmt: skip
def test_a_stop_in_the_function_itself_runs_the_call_as_the_modes_table_says(
    mode, strategy, plain_calls
):
    jitted = xcs.jit(_stops_in_the_function, mode=mode)
    assert jitted("q") == _stops_in_the_function("q")
    stats = xcs.get_jit_stats(jitted)
    assert (stats.last_strategy, stats.plain_calls) == (strategy, plain_calls)


class Refining(xcs.Operator):
    def __init__(self):
        self.ask = ask

    def forward(self, prompt):
        first = self.ask(prompt)
        return self.ask(f"refine {first}")  # needs the value: this composite's trace stops


REFINING = Refining()


def _calls_a_stopping_composite(prompt):
    return judge([REFINING(prompt), ask(prompt)])


@pytest.mark.parametrize(
    ("mode", "how"), [("auto", "runs with dynamic dispatch"), ("structural", "runs as written")]
)
def test_a_stopped_composite_becomes_one_opaque_node(mode, how):
    jitted = xcs.jit(_calls_a_stopping_composite, mode=mode)
    assert jitted("q") == _calls_a_stopping_composite("q")
    assert xcs.get_jit_strategy_used(jitted) is xcs.JITMode.STRUCTURAL
    assert f"opaque node 'Refining' (Refining) {how}" in xcs.explain_jit_selection(jitted)


TABLE: dict[str, str] = {}


def _raises_its_own_error(prompt):
    ask(prompt)
    return TABLE["missing"]


@pytest.mark.parametrize("mode", ["auto", "trace", "structural", "dynamic"])
def test_an_exception_the_body_raises_while_tracing_reaches_the_caller_as_written(mode):
    jitted = xcs.jit(_raises_its_own_error, mode=mode)
    with pytest.raises(KeyError) as caught:
        jitted("q")
    assert not isinstance(caught.value, xcs.XCSError)
    if mode != "dynamic":
        assert "tracing raised KeyError: 'missing'" in xcs.explain_jit_selection(jitted)


def test_strict_raises_trace_error_with_the_reason_instead_of_a_fallback():
    with pytest.raises(xcs.TraceError, match=r"Python applied `==` to the output of node 'ask'"):
        xcs.jit(_stops_in_the_function, strict=True)("q")


def _joins_a_generator_of_calls(prompts):
    return ", ".join(gated(p) for p in prompts)


def test_a_generator_passed_whole_to_str_join_overlaps_its_calls_when_it_stops_the_trace():
    jitted = xcs.jit(_joins_a_generator_of_calls)
    gate(3)
    assert jitted(["a", "b", "c"]) == "answer to a, answer to b, answer to c"
    assert xcs.get_jit_strategy_used(jitted) is xcs.JITMode.DYNAMIC
    assert xcs.get_jit_stats(jitted).max_in_flight == 3
    assert "Python passed to str.join() the output of node" in xcs.explain_jit_selection(jitted)


# --- trace-stop reasons ------------------------------------------------------------------


def _stop_if(p):
    out = ask(p)
    if out:
        pass
    return judge([out])


def _stop_fstring(p):
    out = ask(p)
    return ask(f"{out}")


def _stop_str(p):
    out = ask(p)
    return ask(str(out))


def _stop_len(p):
    out = ask(p)
    return judge([out] * len(out))


def _stop_for(p):
    out = ask(p)
    return judge([c for c in out])


def _stop_in(p):
    out = ask(p)
    return judge([out, str("x" in out)])


def _stop_eq(p):
    out = ask(p)
    return judge([out, str(out == "yes")])


def _stop_plus(p):
    out = ask(p)
    return ask(out + "!")


def _stop_method(p):
    out = ask(p)
    return ask(out.strip())


def _stop_isinstance(p):
    out = ask(p)
    return judge([out, str(isinstance(out, dict))])


def _stop_hash(p):
    out = ask(p)
    return judge(list({out: 1}))


def _stop_json(p):
    out = ask(p)
    return json.loads(out)


@pytest.mark.parametrize(
    ("fn", "reason"),
    [
        (_stop_if, "needed the truth value (if / and / or / not) of the output of node 'ask'"),
        (_stop_fstring, "formatted (f-string or format()) the output of node 'ask'"),
        (_stop_str, "passed to str() the output of node 'ask'"),
        (_stop_len, "passed to len() the output of node 'ask'"),
        (_stop_for, "iterated over (for, unpacking, list()) the output of node 'ask'"),
        (_stop_in, "used `in` on the output of node 'ask'"),
        (_stop_eq, "applied `==` to the output of node 'ask'"),
        (_stop_plus, "applied `+` to the output of node 'ask'"),
        (_stop_method, "called .strip() on the output of node 'ask'"),
        (_stop_isinstance, "passed to isinstance() the output of node 'ask'"),
        (_stop_hash, "hashed (as a dict key or set member) the output of node 'ask'"),
        (_stop_json, "passed to loads() the output of node 'ask'"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[6:],
)
def test_a_trace_stop_names_file_line_what_python_asked_and_of_which_value(fn, reason):
    jitted = xcs.jit(fn)
    if fn is _stop_json:
        with pytest.raises(json.JSONDecodeError):
            jitted("q")
    else:
        assert jitted("q") == fn("q")
    explained = xcs.explain_jit_selection(jitted)
    assert f"test_docs_promises_a.py:{fn.__code__.co_firstlineno + 2}: Python {reason}" in (
        explained
    ), explained


@dataclasses.dataclass
class Pair:
    left: object
    right: object


@xcs.op
def record(prompt: str) -> dict:
    return {"key": prompt, "items": [prompt, prompt]}


def test_containers_dataclasses_and_projections_do_not_stop_a_trace():
    def body(prompt):
        out = record(prompt)
        built = [out, out]
        return judge([out["key"], out["items"][0], str(len(built))]), Pair(out["key"], built)

    jitted = xcs.jit(body)
    assert jitted("q") == body("q")
    assert xcs.get_jit_strategy_used(jitted) is xcs.JITMode.TRACE


HISTORY: list[str] = []


class Chat(xcs.Operator):
    def __init__(self):
        self.ask = ask
        self.history = []

    def forward(self, prompt):
        reply = self.ask(prompt)
        self.history.append(reply)
        return reply


def test_a_result_stored_where_it_outlives_the_call_runs_dynamically_with_real_values():
    def to_argument(prompt, out):
        out.append(ask(prompt))
        return "done"

    def to_global(prompt):
        HISTORY.append(ask(prompt))
        return "done"

    kept: list[str] = []
    jitted_argument, jitted_global = xcs.jit(to_argument), xcs.jit(to_global)
    HISTORY.clear()
    for prompt in ("a", "b"):
        jitted_argument(prompt, kept)
        jitted_global(prompt)
    chat = Chat()
    jitted_chat = xcs.jit(chat)
    jitted_chat("a"), jitted_chat("b")
    assert kept == HISTORY == chat.history == ["answer to a", "answer to b"]
    for jitted in (jitted_argument, jitted_global, jitted_chat):
        assert xcs.get_jit_strategy_used(jitted) is xcs.JITMode.DYNAMIC


def test_a_result_assigned_to_a_nonlocal_name_holds_the_plain_value_after_the_call():
    box = []

    def make():
        kept = None

        def body(prompt):
            nonlocal kept
            kept = ask(prompt)
            return kept

        box.append(lambda: kept)
        return body

    jitted = xcs.jit(make())
    assert jitted("q") == "answer to q"
    assert box[0]() + "!" == "answer to q!"
    assert jitted("r") == "answer to r" and box[0]() == "answer to r"


# --- cache keys and invalidation ----------------------------------------------------------


def test_a_new_string_is_a_cache_hit_and_a_new_list_length_a_miss():
    @xcs.jit
    def answer_all(prompts):
        return [ask(p) for p in prompts]

    answer_all(["a", "b"]), answer_all(["c", "d"]), answer_all(["e"])
    stats = xcs.get_jit_stats(answer_all)
    assert (stats.cache_hits, stats.cache_misses, stats.traces) == (1, 2, 2)


@xcs.op(numeric=True)
def doubled(x):
    return x * 2


def test_a_new_array_shape_or_dtype_is_a_miss_and_new_values_a_hit():
    @xcs.jit
    def double(x):
        return doubled(x)

    double(jnp.ones(3)), double(jnp.zeros(3)), double(jnp.ones(4))
    double(jnp.ones(3, dtype=jnp.int32))
    stats = xcs.get_jit_stats(double)
    assert (stats.cache_hits, stats.cache_misses) == (1, 3)
    assert stats.signatures == ("(float32[3])", "(float32[4])", "(int32[3])")


def test_static_arguments_are_keyed_by_value_and_concrete_in_the_body():
    @xcs.jit(static_argnums=(1,))
    def drafts(prompt, n):
        return [ask(prompt) for _ in range(n)]

    assert len(drafts("a", 2)) == 2 and len(drafts("b", 3)) == 3 and len(drafts("c", 2)) == 2
    stats = xcs.get_jit_stats(drafts)
    assert (stats.cache_hits, stats.cache_misses, stats.last_strategy) == (1, 2, "trace")


def test_cache_size_bounds_the_cached_signatures_and_counts_evictions():
    @xcs.jit(cache_size=2)
    def answer_all(prompts):
        return [ask(p) for p in prompts]

    for n in range(1, 5):
        answer_all(["q"] * n)
    stats = xcs.get_jit_stats(answer_all)
    assert (stats.cache_entries, stats.cache_evictions) == (2, 2)


def test_jit_defaults_match_the_documented_signature():
    parameters = inspect.signature(xcs.jit).parameters
    assert parameters["mode"].default == "auto"
    assert parameters["cache_size"].default == 128
    assert parameters["strict"].default is False
    assert parameters["preserve_stochasticity"].default is False


STYLE = ["short"]


def test_invalidate_drops_the_plans_so_a_changed_global_is_seen():
    @xcs.jit
    def styled(prompt):
        return judge([ask(prompt), ask(STYLE[0])])

    assert styled("a") == "answer to a | answer to short"
    STYLE[0] = "long"
    assert styled("b") == "answer to b | answer to short"  # the plan holds the constant
    styled.invalidate()
    assert styled("c") == "answer to c | answer to long"
    assert xcs.get_jit_stats(styled).traces == 2


class Switchable(xcs.Operator):
    def __init__(self, units):
        self.units = units
        self.judge = judge
        self.mode = "all"

    def forward(self, prompt):
        if self.mode == "first":
            return self.units[0](prompt)
        return self.judge([unit(prompt) for unit in self.units])


def test_a_jitted_operator_traces_again_when_its_structure_changes():
    ensemble = Switchable([ask, ask])
    jitted = xcs.jit(ensemble)
    assert jitted("q") == "answer to q | answer to q"
    ensemble.units.append(ask)
    assert jitted("q") == "answer to q | answer to q | answer to q"
    ensemble.mode = "first"
    assert jitted("q") == "answer to q"
    assert xcs.get_jit_stats(jitted).traces == 3


# --- stochastic and numeric -----------------------------------------------------------------

COUNTER = [0.0]


def _next_noise() -> float:
    COUNTER[0] += 1.0
    return COUNTER[0]


@xcs.op(numeric=True)
def noisy(x):
    return x + _next_noise()  # Python-level state: frozen at trace time under jax.jit


@xcs.op(numeric=True, stochastic=True)
def marked_noisy(x):
    return x + _next_noise()


def test_preserve_stochasticity_keeps_numeric_operators_out_of_jax_jit():
    kept = xcs.jit(lambda x: noisy(x), preserve_stochasticity=True)
    frozen = xcs.jit(lambda x: noisy(x))
    assert float(kept(jnp.zeros(()))) != float(kept(jnp.zeros(())))
    assert float(frozen(jnp.zeros(()))) == float(frozen(jnp.zeros(())))
    assert (xcs.get_jit_stats(kept).xla_compiles, xcs.get_jit_stats(frozen).xla_compiles) == (0, 1)


def test_an_operator_marked_stochastic_is_never_compiled():
    jitted = xcs.jit(lambda x: marked_noisy(x))
    assert float(jitted(jnp.zeros(()))) != float(jitted(jnp.zeros(())))
    assert xcs.get_jit_stats(jitted).xla_compiles == 0


SHAPES: list[tuple[int, ...]] = []


@xcs.op(numeric=True)
def noted(x):
    SHAPES.append(x.shape)
    return x * 2


@pytest.mark.parametrize("mode", ["auto", "dynamic"])
def test_a_side_effect_in_a_numeric_operator_runs_once_per_new_shape(mode):
    jitted = xcs.jit(lambda x: noted(x), mode=mode)
    SHAPES.clear()
    for x in (jnp.ones(3), jnp.ones(3), jnp.zeros(3), jnp.ones(5), jnp.ones(5)):
        assert jitted(x).tolist() == (x * 2).tolist()
    assert SHAPES == [(3,), (5,)]
    assert xcs.get_jit_stats(jitted).xla_compiles == 2


class Scaled(xcs.Operator):
    numeric = True

    def __init__(self, weights, factor):
        self.weights = weights
        self.factor = factor

    def forward(self, x):
        return (x @ self.weights) * self.factor


def test_new_weights_take_effect_without_recompiling_and_a_new_setting_recompiles():
    layer = Scaled(jnp.ones((3, 2)), 1)
    jitted = xcs.jit(lambda x: layer(x))
    assert jitted(jnp.ones(3)).tolist() == [3.0, 3.0]
    layer.weights = jnp.ones((3, 2)) * 2
    assert jitted(jnp.ones(3)).tolist() == [6.0, 6.0]
    assert xcs.get_jit_stats(jitted).xla_compiles == 1
    layer.factor = 3
    assert jitted(jnp.ones(3)).tolist() == [18.0, 18.0]
    assert xcs.get_jit_stats(jitted).xla_compiles == 2


@xcs.op(numeric=True)
def scale(x, t):
    return x * t


def test_a_python_number_reaching_a_numeric_operator_compiles_once_per_value():
    by_value = xcs.jit(lambda x, t: scale(x, t))
    by_array = xcs.jit(lambda x, t: scale(x, t))
    for t in (0.1, 0.2, 0.3, 0.1):
        by_value(jnp.ones(3), t)
        by_array(jnp.ones(3), jnp.asarray(t))
    assert xcs.get_jit_stats(by_value).xla_compiles == 3
    assert xcs.get_jit_stats(by_array).xla_compiles == 1


# --- statistics, introspection, hooks ------------------------------------------------------

STATS_FIELDS = (
    "calls cache_hits cache_misses cache_evictions cache_entries traces trace_seconds "
    "plan_calls replay_seconds dynamic_calls plain_calls leaf_calls nodes critical_path "
    "max_in_flight peak_in_flight numeric_segments xla_compiles last_strategy compile_seconds "
    "call_seconds_p50 call_seconds_p95 signatures model_calls prompt_tokens completion_tokens "
    "total_tokens"
).split()


def test_get_jit_stats_reports_every_documented_field_and_all_jitted_callables_by_name():
    @xcs.jit
    def documented_stats(prompt):
        return judge([ask(prompt), ask(prompt)])

    documented_stats("q")
    stats = xcs.get_jit_stats(documented_stats)
    assert [name for name in STATS_FIELDS if not hasattr(stats, name)] == []
    assert (stats.calls, stats.plan_calls, stats.leaf_calls, stats.last_strategy) == (
        1,
        1,
        3,
        "trace",
    )
    assert set(stats.compile_seconds) == {"trace"}
    by_name = xcs.get_jit_stats()  # keyed by qualified name
    assert by_name[documented_stats.__qualname__].calls == 1


def test_is_jit_compiled_once_a_plan_is_cached_and_the_strategy_is_a_jitmode():
    traced = xcs.jit(lambda p: judge([ask(p)]))
    dynamic = xcs.jit(lambda p: ask(f"{p}!"))
    assert not xcs.is_jit_compiled(traced) and xcs.get_jit_strategy_used(traced) is None
    traced("q"), dynamic("q")
    assert xcs.is_jit_compiled(traced) and not xcs.is_jit_compiled(dynamic)
    assert xcs.get_jit_strategy_used(traced) is xcs.JITMode.TRACE
    assert xcs.get_jit_strategy_used(dynamic) is xcs.JITMode.DYNAMIC


def test_cache_hooks_report_compiles_hits_misses_and_evictions():
    events = []

    class Recorder(xcs.ExecutionHooks):
        def on_compile_start(self, *args, **kwargs):
            events.append("compile_start")

        def on_cache_hit(self, *args, **kwargs):
            events.append("hit")

        def on_cache_miss(self, *args, **kwargs):
            events.append("miss")

        def on_cache_evict(self, *args, **kwargs):
            events.append("evict")

    @xcs.jit(cache_size=1)
    def answer_all(prompts):
        return [ask(p) for p in prompts]

    with xcs.execution_options(hooks=(Recorder(),)):
        answer_all(["a"]), answer_all(["b"]), answer_all(["a", "b"])
    assert sorted(events) == sorted(["compile_start", "miss", "hit", "compile_start", "miss",
                                     "evict"])  # fmt: skip


def _exclaim(prompt):
    return ask(f"{prompt}!")


def test_with_every_strategy_ruled_out_a_call_raises_trace_error_saying_why_each_was_out():
    with pytest.raises(xcs.TraceError) as caught:
        xcs.jit(_exclaim, disable_strategies=("dynamic", "plain"))("q")
    message = str(caught.value)
    assert "has no strategy left" in message
    assert "dynamic: disabled by disable_strategies" in message
    assert "trace: the trace stopped" in message


def test_an_unknown_strategy_or_mode_is_an_options_error():
    with pytest.raises(xcs.OptionsError, match="the strategies are 'trace'"):
        xcs.jit(_exclaim, disable_strategies="bogus")
    with pytest.raises(xcs.OptionsError, match="unknown jit mode 'bogus'"):
        xcs.jit(_exclaim, mode="bogus")


# --- autograph, async and generator bodies -----------------------------------------------


def test_autograph_records_calls_without_running_them_and_runs_later_with_new_inputs():
    recording = xcs.autograph()
    with recording as graph:
        drafts = [ask(prompt="X") for _ in range(3)]
        judge(answers=drafts)
    assert CALLS == []
    assert len(graph.nodes) == 5  # three calls, the pack node building the list, the judge
    assert dict(xcs.execute_graph(graph, {"prompt": "Y"})) == {
        "judge": " | ".join(["answer to Y"] * 3)
    }
    assert dict(xcs.execute_graph(graph, recording.inputs)) == {
        "judge": " | ".join(["answer to X"] * 3)
    }


def test_autograph_around_code_that_prints_a_result_raises_trace_error():
    with pytest.raises(xcs.TraceError, match=r"asked for str\(\) of the output of node 'ask'"):
        with xcs.autograph():
            print(ask(prompt="x"))


async def _coroutine_body(prompt):
    return prompt


def _returns_a_coroutine(prompt):
    return _coroutine_body(prompt)


class AsyncComposite(xcs.Operator):
    def __init__(self):
        self.ask = ask

    async def forward(self, prompt):
        return prompt


class ReturnsCoroutine(xcs.Operator):
    def __init__(self):
        self.ask = ask

    def forward(self, prompt):
        return _coroutine_body(prompt)


def test_jit_refuses_async_def_functions_and_operators_when_applied():
    for target in (_coroutine_body, AsyncComposite()):
        with pytest.raises(xcs.TraceError, match="is `async def`"):
            xcs.jit(target)


@pytest.mark.parametrize("mode", ["auto", "dynamic"])
def test_a_body_that_returns_a_coroutine_raises_trace_error_naming_the_function(mode):
    with pytest.raises(xcs.TraceError, match=r"jit\(_returns_a_coroutine\): the body returned"):
        xcs.jit(_returns_a_coroutine, mode=mode)("q")
    with pytest.raises(xcs.TraceError, match=r"jit\(ReturnsCoroutine\): the body returned"):
        xcs.jit(ReturnsCoroutine(), mode=mode)("q")


def test_an_async_operator_called_from_a_plain_jitted_body_from_async_code_via_to_thread():
    @xcs.op
    async def fetch(prompt: str) -> str:
        await asyncio.sleep(0)
        return f"fetched {prompt}"

    research = xcs.jit(lambda p: judge([fetch(p), ask(p)]))

    async def handler(prompt):
        return await asyncio.to_thread(research, prompt)

    assert asyncio.run(handler("q")) == "fetched q | answer to q"


def test_jit_refuses_generator_bodies_but_a_yielding_leaf_is_one_call():
    def steps(prompt):
        yield ask(prompt)

    with pytest.raises(xcs.TraceError, match="is a generator"):
        xcs.jit(steps)

    @xcs.op
    def tokens(prompt):
        yield from prompt.split()

    assert list(xcs.jit(tokens)("a b")) == ["a", "b"]


# --- errors and options in a jitted call -----------------------------------------------------


@xcs.op
def parse(text: str) -> dict:
    return json.loads(text)


@pytest.mark.parametrize("mode", ["auto", "trace", "structural", "dynamic"])
def test_a_leaf_error_is_a_node_execution_error_of_the_original_type_in_every_mode(mode):
    jitted = xcs.jit(lambda text: judge([parse(text), ask(text)]), mode=mode)
    with pytest.raises(json.JSONDecodeError) as caught:
        jitted("not json")
    assert isinstance(caught.value, xcs.NodeExecutionError)
    assert caught.value.node_id == "parse"


def test_an_except_in_the_body_sees_the_error_as_the_leaf_raised_it():
    def parse_or_none(text):
        try:
            return parse(text)
        except json.JSONDecodeError as error:
            return (type(error).__name__, str(error), error.pos, error.node_id)

    assert xcs.jit(parse_or_none)("bad") == (
        "JSONDecodeError",
        "Expecting value: line 1 column 1 (char 0)",
        0,
        "parse",
    )


def test_return_partial_results_still_raises_for_a_jitted_call():
    jitted = xcs.jit(lambda text: judge([parse(text), ask(text)]))
    with xcs.execution_options(return_partial_results=True):
        with pytest.raises(xcs.NodeExecutionError):
            jitted("not json")


def test_noop_returns_a_traced_calls_dry_run_and_refuses_a_dynamic_call():
    traced = xcs.jit(lambda p: judge([ask(p), ask(p)]))
    with xcs.execution_options(scheduler="noop"):
        result = traced("q")
        assert isinstance(result, xcs.ExecutionResult) and result.plan is not None
        with pytest.raises(xcs.OptionsError, match="no plan to return"):
            xcs.jit(_exclaim)("q")
    assert CALLS == []


def _fan_out(prompt):
    first = ask(prompt)
    if first == "never":
        return first
    return judge([gated("a"), gated("b"), gated("c")])


def test_a_dynamic_run_overlaps_calls_and_max_workers_or_sequential_cap_them():
    jitted = xcs.jit(_fan_out, mode="dynamic")
    gate(3)
    jitted("q")
    assert xcs.get_jit_stats(jitted).max_in_flight == 3
    GATE.clear()
    with xcs.execution_options(max_workers=2):
        jitted("q")
    assert xcs.get_jit_stats(jitted).max_in_flight == 2
    with xcs.execution_options(scheduler="sequential"):
        jitted("q")
    assert xcs.get_jit_stats(jitted).max_in_flight == 1


@xcs.op
def waits(prompt: str) -> str:
    GATE[0].wait()  # released by the test once the deadline has passed
    return prompt


def test_a_dynamic_calls_timeout_names_the_calls_still_running():
    GATE[:] = [threading.Barrier(3, timeout=BARRIER_SECONDS)]
    jitted = xcs.jit(lambda p: judge([waits(p), waits(p)]), mode="dynamic")
    try:
        with xcs.execution_options(timeout_seconds=0.05):
            with pytest.raises(xcs.ExecutionTimeoutError, match=r"still running: waits \(waits\)"):
                jitted("q")
    finally:
        GATE[0].wait()


def test_a_dynamic_node_timeout_names_node_and_operator():
    GATE[:] = [threading.Barrier(2, timeout=BARRIER_SECONDS)]
    jitted = xcs.jit(lambda p: waits(p), mode="dynamic")
    try:
        with xcs.execution_options(node_timeout_seconds=0.05):
            with pytest.raises(xcs.ExecutionTimeoutError) as caught:
                jitted("q")
        assert (caught.value.node_id, caught.value.operator_name) == ("waits", "waits")
    finally:
        GATE[0].wait()


ATTEMPTS = [0]


@xcs.op
def transient(prompt: str) -> str:
    ATTEMPTS[0] += 1
    if ATTEMPTS[0] < 3:
        raise ConnectionError("try again")
    return prompt


def test_retries_apply_per_call_in_a_dynamic_run():
    ATTEMPTS[0] = 0
    with xcs.execution_options(retries=2):
        assert xcs.jit(lambda p: transient(p), mode="dynamic")("q") == "q"
    assert ATTEMPTS[0] == 3


def test_a_dynamic_run_reports_graph_start_with_no_nodes_and_graph_end_with_the_calls_made():
    seen = []

    class Recorder(xcs.ExecutionHooks):
        def on_graph_start(self, **kwargs):
            seen.append(("start", kwargs["num_nodes"], kwargs["scheduler"]))

        def on_graph_end(self, **kwargs):
            seen.append(("end", kwargs["num_nodes"]))

    with xcs.execution_options(hooks=(Recorder(),)):
        xcs.jit(_fan_out, mode="dynamic")("q")
    assert seen == [("start", 0, "parallel"), ("end", 5)]


@pytest.mark.parametrize("mode", ["auto", "trace", "structural", "dynamic"])
def test_an_options_block_inside_a_jitted_body_applies_to_the_calls_made_in_it(mode):
    def body(prompt):
        with xcs.execution_options(retries=2):
            return transient(prompt)

    ATTEMPTS[0] = 0
    assert xcs.jit(body, mode=mode)("q") == "q"


# --- sharp bits -------------------------------------------------------------------------------


@xcs.op
def rating(text: str) -> float:
    if GATE:
        GATE[0].wait()
    return float(len(text))


def test_a_sort_key_that_calls_an_operator_makes_every_key_call_at_once():
    def ranked(prompts):
        return sorted(prompts, key=lambda p: rating(p), reverse=True)

    jitted = xcs.jit(ranked, mode="dynamic")
    gate(4)
    assert jitted(["a", "bbb", "cc", "dddd"]) == ["dddd", "bbb", "cc", "a"]
    assert xcs.get_jit_stats(jitted).max_in_flight == 4


def test_any_pulls_one_item_at_a_time_so_its_calls_do_not_overlap():
    logging.getLogger("ember_xcs.jit").setLevel(logging.ERROR)
    try:
        jitted = xcs.jit(lambda ps: any(ask(p) == "x" for p in ps))
        assert jitted(["a", "b", "c"]) is False
    finally:
        logging.getLogger("ember_xcs.jit").setLevel(logging.NOTSET)
    assert xcs.get_jit_stats(jitted).max_in_flight == 1


def test_a_loop_that_waits_for_each_result_logs_one_warning_per_function(caplog):
    def one_at_a_time(prompt):
        return [ask(f"{prompt} #{i}").upper() for i in range(3)]

    jitted = xcs.jit(one_at_a_time)
    with caplog.at_level(logging.WARNING, logger="ember_xcs.jit"):
        jitted("q"), jitted("r")
    warnings = [r for r in caplog.records if r.name == "ember_xcs.jit"]
    assert len(warnings) == 1
    assert "3 leaf calls ran one at a time" in warnings[0].getMessage()


def test_calls_in_a_lock_body_overlap_and_calls_in_a_try_or_suppress_body_do_not():
    lock = threading.Lock()

    def in_lock(prompt):
        with lock:
            drafts = [gated(f"{prompt}{i}") for i in range(3)]
        return judge(drafts)

    def in_try(prompt):
        try:
            drafts = [ask(f"{prompt}{i}") for i in range(3)]
        except ValueError:
            drafts = []
        return judge(drafts)

    def in_suppress(prompt):
        drafts = []
        with contextlib.suppress(ValueError):
            drafts = [ask(f"{prompt}{i}") for i in range(3)]
        return judge(drafts)

    gate(3)
    locked = xcs.jit(in_lock)
    locked("q")
    assert xcs.get_jit_stats(locked).max_in_flight == 3
    GATE.clear()
    logging.getLogger("ember_xcs.jit").setLevel(logging.ERROR)
    try:
        for body in (in_try, in_suppress):
            jitted = xcs.jit(body)
            assert jitted("q") == body("q")
            assert xcs.get_jit_stats(jitted).max_in_flight == 1
    finally:
        logging.getLogger("ember_xcs.jit").setLevel(logging.NOTSET)


@xcs.op
def shouts(prompt: str) -> str:
    print(f"leaf says {prompt}")
    return prompt


def test_a_leaf_that_prints_inside_redirect_stdout_prints_into_the_redirected_stream():
    def captured(prompt):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            outs = [shouts(f"{prompt}{i}") for i in range(2)]
        return buffer.getvalue(), outs

    text, outs = xcs.jit(captured)("q")
    assert sorted(text.splitlines()) == ["leaf says q0", "leaf says q1"]
    assert outs == ["q0", "q1"]


def test_a_function_without_source_runs_as_written_and_explain_says_so():
    shout = xcs.jit(eval("lambda q: ask(q.upper())", {"ask": ask}))
    assert shout("hi") == "answer to HI"
    assert "body runs as written (LazyResult proxies)" in xcs.explain_jit_selection(shout)


def test_model_complete_called_in_the_body_runs_its_samples_at_once():
    def latency(rng):
        GATE[0].wait()  # the latency is waited in the call's slot: opens once all six are
        return 0.0  # in flight

    model = models.SimulatedModel("sampler", latency=latency, responses=lambda p, i: f"{p} #{i}")
    jitted = xcs.jit(lambda p: [model.complete(p, sample=i).text for i in range(6)])
    gate(6)
    assert jitted("hi") == [f"hi #{i}" for i in range(6)]
    assert model.max_in_flight == 6


# --- troubleshooting: the error table -------------------------------------------------------


def test_error_classes_are_also_the_builtin_errors_the_table_says():
    assert issubclass(xcs.OptionsError, ValueError)
    assert issubclass(xcs.UnknownNodeError, KeyError)
    for name in ("OptionsError", "GraphError", "TraceError", "TransformError", "ModelError",
                 "ExecutionError"):  # fmt: skip
        assert issubclass(getattr(xcs, name), xcs.XCSError)
    for name in ("DuplicateNodeError", "UnknownNodeError", "CycleError", "FieldMappingError",
                 "MissingInputError"):  # fmt: skip
        assert issubclass(getattr(xcs, name), xcs.GraphError)
    assert issubclass(xcs.NodeExecutionError, xcs.ExecutionError)
    assert issubclass(xcs.ExecutionTimeoutError, xcs.ExecutionError)


def test_graph_error_for_a_node_that_is_not_callable_and_a_connect_with_one_endpoint():
    graph = xcs.Graph()
    with pytest.raises(xcs.GraphError, match="needs an Operator or a function"):
        graph.add_node(42)
    with pytest.raises(xcs.GraphError, match="at least two endpoints"):
        graph.connect("a")


def test_a_negative_count_is_an_options_error():
    for field in ("max_workers", "retries", "timeout_seconds"):
        with pytest.raises(xcs.OptionsError, match=field):
            xcs.ExecutionOptions(**{field: -1})


def test_execution_timeout_error_lists_the_nodes_still_in_flight():
    graph = xcs.Graph()
    graph.add_node(waits, node_id="s1")
    graph.add_node(waits, node_id="s2")
    GATE[:] = [threading.Barrier(3, timeout=BARRIER_SECONDS)]
    try:
        with pytest.raises(xcs.ExecutionTimeoutError) as caught:
            xcs.execute_graph(
                graph, {"prompt": "q"}, options=xcs.ExecutionOptions(timeout_seconds=0.05)
            )
        assert sorted(caught.value.running) == ["s1", "s2"]
    finally:
        GATE[0].wait()


# --- cookbook: options per part, rate limits -----------------------------------------------


def test_an_explicit_execution_options_is_used_whole_not_merged_with_the_block():
    graph = xcs.Graph()
    graph.add_node(transient, node_id="t")
    ATTEMPTS[0] = 0
    with xcs.execution_options(retries=3):
        with pytest.raises(xcs.NodeExecutionError):
            xcs.execute_graph(graph, {"prompt": "q"}, options=xcs.ExecutionOptions())
    assert ATTEMPTS[0] == 1


def test_execution_options_blocks_are_per_thread_and_restored_on_error():
    from ember_xcs._options import current_options

    seen = []
    with pytest.raises(RuntimeError):
        with xcs.execution_options(max_workers=3):
            worker = threading.Thread(target=lambda: seen.append(current_options().max_workers))
            worker.start()
            worker.join()
            seen.append(current_options().max_workers)
            raise RuntimeError
    assert seen == [None, 3]
    assert current_options().max_workers is None


def test_a_block_around_a_jitted_call_applies_to_that_call():
    jitted = xcs.jit(_fan_out)
    with xcs.execution_options(max_workers=1):
        jitted("q")
    assert xcs.get_jit_stats(jitted).max_in_flight == 1


def test_http_models_with_the_same_endpoint_name_and_limits_share_one_cap(fresh):
    fresh.latency = 0.05
    one = models.OpenAICompatibleModel(fresh.url, "shared", max_concurrency=2)
    two = models.OpenAICompatibleModel(fresh.url, "shared", max_concurrency=2)
    try:
        assert one.limits is two.limits
        ops = [models.LLMOperator(m, "{question}") for m in (one, two)]
        jitted = xcs.jit(lambda q: [op(f"{q}{i}") for op in ops for i in range(3)])
        assert len(jitted("q")) == 6
        assert fresh.max_concurrent <= 2 and fresh.requests == 6
    finally:
        one.close()
        two.close()


# --- command line ---------------------------------------------------------------------------

PIPELINE = """
import ember_xcs as xcs


@xcs.op
def answer(docs: list, question: str) -> str:
    return f"{question}: {len(docs)} sources"


@xcs.op
def retrieve(question: str) -> dict:
    return {"docs": [f"{question} doc {i}" for i in range(3)]}


graph = xcs.Graph()
graph.add_node(retrieve)
graph.add_node(answer)
graph.connect("retrieve.docs", "answer.docs")


@xcs.jit
def ask(question: str) -> list:
    return [answer([question], question), answer([question, question], question)]


def add(a, b=1):
    print("the target prints")
    return {"sum": a + b, "pair": (a, b)}
"""


@pytest.fixture
def run_here(tmp_path, monkeypatch, capsys):
    from ember_xcs.cli import main

    (tmp_path / "docs_pipeline_a.py").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))

    def run(*args):
        code = main(["run", *args])
        captured = capsys.readouterr()
        return code, json.loads(captured.out), captured.err

    yield run
    sys.modules.pop("docs_pipeline_a", None)


def test_run_reports_a_jitted_functions_strategy(run_here):
    code, report, _ = run_here("docs_pipeline_a:ask", '{"question": "q"}')
    assert (code, report["kind"], report["jit_strategy"]) == (0, "function", "trace")
    assert report["result"] == ["q: 1 sources", "q: 2 sources"]


def test_run_with_scheduler_noop_calls_nothing_and_returns_no_results(run_here):
    code, report, _ = run_here("docs_pipeline_a:graph", '{"question": "q"}', "--scheduler", "noop")
    assert (code, report["status"], report["result"]) == (0, "ok", {})
    assert report["stats"]["nodes_run"] == 0


def test_run_takes_a_json_array_as_positional_arguments_and_converts_tuples(run_here):
    code, report, err = run_here("docs_pipeline_a:add", "[1, 2]")
    assert (code, report["result"]) == (0, {"sum": 3, "pair": [1, 2]})
    assert "the target prints" in err  # stdout holds the JSON alone


def test_run_outputs_returns_the_named_nodes_instead_of_the_sinks(run_here):
    code, report, _ = run_here(
        "docs_pipeline_a:graph", '{"question": "q"}', "--outputs", "retrieve,answer"
    )
    assert code == 0 and set(report["result"]) == {"retrieve", "answer"}


def test_run_with_a_malformed_command_line_exits_2_with_the_usage_on_stderr(capsys):
    from ember_xcs.cli import main

    with pytest.raises(SystemExit) as caught:
        main(["run"])
    assert caught.value.code == 2
    assert "usage: ember-xcs run" in capsys.readouterr().err
