"""`xcs.vmap`: the same answers as `jax.vmap` for numeric functions, concurrent and
ordered scheduler calls for Python operators, and errors in the user's names."""

from __future__ import annotations

import inspect
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from in_flight import InFlight
from weighted_ops import counting_scale

import ember_xcs as xcs
from ember_xcs import ExecutionError, NodeExecutionError, TransformError

# --- numeric: equal to jax.vmap -------------------------------------------------------------


def affine(x, w, b):
    return jnp.tanh(x @ w + b)


def nested(tree, scale):
    return {"sum": tree["a"] + tree["b"][0] * scale, "pair": (tree["b"][1], tree["a"] * 2)}


X = jnp.arange(24.0).reshape(4, 6) / 10
W = jnp.linspace(-1, 1, 18).reshape(6, 3)
B = jnp.arange(3.0)


@pytest.mark.parametrize(
    ("in_axes", "args"),
    [
        ((0, None, None), (X, W, B)),
        ((1, None, None), (X.T, W, B)),
        ((-1, None, None), (X.T, W, B)),
        ((0, None, 0), (X, W, jnp.ones((4, 3)))),
        ([0, None, None], (X, W, B)),
    ],
    ids=["axis0-broadcast", "axis1", "negative-axis", "two-mapped", "list-in_axes"],
)
def test_numeric_vmap_equals_jax_vmap_across_in_axes(in_axes, args):
    ours = xcs.vmap(affine, in_axes=in_axes)(*args)
    theirs = jax.vmap(affine, in_axes=tuple(in_axes))(*args)
    chex.assert_trees_all_close(ours, theirs)


@pytest.mark.parametrize("out_axes", [0, 1, -1])
def test_numeric_vmap_equals_jax_vmap_across_out_axes(out_axes):
    ours = xcs.vmap(affine, in_axes=(0, None, None), out_axes=out_axes)(X, W, B)
    theirs = jax.vmap(affine, in_axes=(0, None, None), out_axes=out_axes)(X, W, B)
    chex.assert_trees_all_close(ours, theirs)


def test_numeric_vmap_handles_nested_pytrees_with_prefix_in_axes():
    tree = {"a": jnp.ones((5, 2)), "b": [jnp.arange(10.0).reshape(5, 2), jnp.zeros((2, 5))]}
    in_axes = ({"a": 0, "b": [0, 1]}, None)
    out_axes = {"sum": 0, "pair": (1, 0)}
    ours = xcs.vmap(nested, in_axes=in_axes, out_axes=out_axes)(tree, 3.0)
    theirs = jax.vmap(nested, in_axes=in_axes, out_axes=out_axes)(tree, 3.0)
    chex.assert_trees_all_close(ours, theirs)


def test_numeric_vmap_maps_keyword_arguments_along_axis_zero_like_jax():
    ours = xcs.vmap(affine, in_axes=(0, None))(X, W, b=jnp.ones((4, 3)))
    theirs = jax.vmap(affine, in_axes=(0, None))(X, W, b=jnp.ones((4, 3)))
    chex.assert_trees_all_close(ours, theirs)


def test_numeric_vmap_passes_axis_name_for_collectives():
    ours = xcs.vmap(lambda x: x / jax.lax.psum(x, "batch"), axis_name="batch")(jnp.arange(1.0, 5))
    chex.assert_trees_all_close(ours, jnp.arange(1.0, 5) / 10)


def test_numeric_vmap_with_axis_size_and_nothing_mapped_broadcasts():
    out = xcs.vmap(lambda w: w.sum(), in_axes=None, axis_size=3)(W)
    chex.assert_trees_all_close(out, jnp.full((3,), W.sum()))


def test_numeric_vmap_over_an_empty_batch_returns_empty_arrays():
    out = xcs.vmap(affine, in_axes=(0, None, None))(jnp.zeros((0, 6)), W, B)
    assert out.shape == (0, 3)


def test_vmap_works_as_bare_and_configured_decorator():
    @xcs.vmap
    def square(x):
        return x * x

    @xcs.vmap(in_axes=(0, None))
    def shift(x, d):
        return x + d

    chex.assert_trees_all_close(square(jnp.arange(3.0)), jnp.array([0.0, 1.0, 4.0]))
    chex.assert_trees_all_close(shift(jnp.arange(3.0), 1.0), jnp.array([1.0, 2.0, 3.0]))


def test_numeric_vmap_of_numeric_operator_uses_its_weights():
    class Linear(xcs.Operator):
        numeric = True

        def __init__(self, w):
            self.w = w

        def forward(self, x):
            return x @ self.w

    layer = Linear(W)
    chex.assert_trees_all_close(xcs.vmap(layer)(X), X @ W)


@settings(max_examples=15, deadline=None)
@given(
    batch=st.integers(0, 5),
    rows=st.integers(1, 4),
    cols=st.integers(1, 4),
    axis=st.sampled_from([0, 1, 2, -1]),
)
def test_numeric_vmap_equals_jax_vmap_for_random_shapes(batch, rows, cols, axis):
    shape = [rows, cols]
    shape.insert(axis if axis >= 0 else len(shape) + 1 + axis, batch)
    x = jnp.arange(float(np.prod(shape))).reshape(shape)
    y = jnp.ones((cols,))

    def f(a, v):
        return jnp.sin(a) @ v + a.sum()

    ours = xcs.vmap(f, in_axes=(axis, None))(x, y)
    chex.assert_trees_all_close(ours, jax.vmap(f, in_axes=(axis, None))(x, y))


# --- numeric: compiled once per shape -------------------------------------------------------


def test_numeric_vmap_traces_once_per_new_shape_not_per_call():
    traces = []

    def f(x):
        traces.append(x.shape)  # a Python side effect: runs only while JAX traces
        return x * 2

    mapped = xcs.vmap(f)
    for _ in range(5):
        mapped(jnp.ones((4, 3)))
    assert len(traces) == 1
    for _ in range(3):
        mapped(jnp.ones((7, 3)))
    assert len(traces) == 2


def test_transformed_callables_are_numeric_leaf_operators_jax_jit_can_trace():
    mapped = xcs.vmap(affine, in_axes=(0, None, None))
    assert isinstance(mapped, xcs.Operator) and mapped.numeric and not mapped.is_composite
    chex.assert_trees_all_close(
        jax.jit(mapped)(X, W, B), jax.vmap(affine, (0, None, None))(X, W, B)
    )


# --- Python operators: concurrent, ordered, failures named ----------------------------------


@xcs.op
def shout(text: str) -> str:
    return text.upper() + "!"


def test_python_vmap_returns_results_in_input_order_even_when_finishing_out_of_order():
    @xcs.op
    def slow_echo(text: str, delay: float) -> str:
        time.sleep(delay)
        return text

    delays = [0.08, 0.0, 0.05, 0.01]
    out = xcs.vmap(slow_echo)(["a", "b", "c", "d"], delays)
    assert out == ["a", "b", "c", "d"]


def test_python_vmap_runs_items_concurrently():
    counter = InFlight(0.05)
    call = counter.op

    start = time.perf_counter()
    xcs.vmap(call)([f"q{i}" for i in range(8)])
    assert counter.peak >= 4
    assert time.perf_counter() - start < 8 * 0.05


def test_python_vmap_honours_max_workers_from_execution_options():
    counter = InFlight(0.02)
    call = counter.op

    with xcs.execution_options(max_workers=2):
        xcs.vmap(call)(list("abcdef"))
    assert counter.peak <= 2


def test_python_vmap_error_names_the_failing_index():
    @xcs.op
    def fragile(text: str) -> str:
        if text == "bad":
            raise ValueError("cannot answer")
        return text

    with pytest.raises(NodeExecutionError, match=r"'fragile\[2\]'.*ValueError: cannot answer"):
        xcs.vmap(fragile)(["a", "b", "bad", "c"])


def test_python_vmap_with_partial_results_still_reports_every_failed_item():
    @xcs.op
    def fragile(n: int) -> int:
        if n % 2:
            raise ValueError(f"odd {n}")
        return n

    with xcs.execution_options(return_partial_results=True):
        with pytest.raises(
            ExecutionError, match=r"2 item\(s\) of the batch failed: fragile\[1\], fragile\[3\]"
        ):
            xcs.vmap(fragile)([0, 1, 2, 3])


def test_python_vmap_broadcasts_none_axes_and_maps_dicts_of_lists():
    @xcs.op
    def ask(question: dict, system: str) -> str:
        return f"{system}|{question['q']}|{question['lang']}"

    out = xcs.vmap(ask, in_axes=(0, None))({"q": ["a", "b"], "lang": ["en", "fr"]}, "sys")
    assert out == ["sys|a|en", "sys|b|fr"]


def test_python_vmap_follows_tuple_in_axes_inside_an_argument():
    @xcs.op
    def pair(p: tuple) -> str:
        return f"{p[0]}-{p[1]}"

    assert xcs.vmap(pair, in_axes=((0, None),))((["x", "y"], "k")) == ["x-k", "y-k"]


def test_python_vmap_splits_arrays_along_their_axis():
    @xcs.op
    def describe(row) -> str:
        return f"{float(row.sum()):.0f}"

    assert xcs.vmap(describe, in_axes=1)(np.arange(6.0).reshape(2, 3)) == ["3", "5", "7"]


def test_python_vmap_stacks_array_results_like_jax_vmap():
    @xcs.op
    def length(text: str):
        return np.array([len(text), 1.0])

    out = xcs.vmap(length, out_axes=1)(["ab", "c", "def"])
    np.testing.assert_allclose(out, np.array([[2, 1, 3], [1, 1, 1]]))


def test_python_vmap_of_empty_batch_calls_nothing_and_returns_empty_list():
    calls = []

    @xcs.op
    def record(text: str) -> str:
        calls.append(text)
        return text

    assert xcs.vmap(record)([]) == []
    assert calls == []


def test_python_vmap_with_axis_size_calls_the_operator_that_many_times():
    @xcs.op
    def sample(prompt: str) -> str:
        return prompt

    assert xcs.vmap(sample, in_axes=None, axis_size=3)("p") == ["p", "p", "p"]


def test_python_vmap_runs_async_operators():
    @xcs.op
    async def answer(q: str) -> str:
        return q * 2

    assert xcs.vmap(answer)(["a", "b"]) == ["aa", "bb"]


# --- mixing a Python operator with numeric post-processing ---------------------------------


def test_vmap_of_function_mixing_llm_call_and_numeric_scoring_runs_on_scheduler():
    llm_calls = []

    @xcs.op
    def llm(prompt: str) -> str:
        llm_calls.append(prompt)
        return prompt * 2

    def answer_and_score(prompt):
        text = llm(prompt)
        return jnp.float32(len(text)) / 10  # numeric post-processing

    mapped = xcs.vmap(answer_and_score)
    out = mapped(["ab", "cde"])
    chex.assert_trees_all_close(out, jnp.array([0.4, 0.6], dtype=jnp.float32))
    assert sorted(llm_calls) == ["ab", "cde"]
    assert mapped.numeric  # called with strings: that call went to the scheduler


def test_plain_function_calling_python_operator_in_trace_switches_without_running_it():
    seen = []

    @xcs.op
    def lookup(x):
        seen.append(type(x))
        return x + 1

    def f(x):
        return lookup(x) * 2

    mapped = xcs.vmap(f)
    out = mapped(jnp.arange(3.0))
    chex.assert_trees_all_close(out, jnp.array([2.0, 4.0, 6.0]))
    assert all(not issubclass(t, jax.core.Tracer) for t in seen)  # never saw a tracer
    assert len(seen) == 3 and not mapped.numeric
    assert "lookup" in mapped.classification.reason


def test_explicitly_numeric_function_calling_python_operator_is_an_error_before_the_call():
    ran = []

    @xcs.op
    def side_effect(x):
        ran.append(x)
        return x

    with pytest.raises(
        TransformError,
        match=r"vmap\(f\): f is numeric \(numeric=True was passed explicitly\) but calls the "
        r"Python operator 'side_effect'.*stopped before it ran",
    ):
        xcs.vmap(_calls(side_effect), numeric=True)(jnp.ones(3))
    assert ran == []


def _calls(operator):
    def f(x):
        return operator(x)

    return f


def test_numeric_operators_called_inside_a_numeric_trace_run_normally():
    double = xcs.op(lambda x: x * 2, numeric=True)
    mapped = xcs.vmap(lambda x: double(x) + 1)
    chex.assert_trees_all_close(mapped(jnp.arange(3.0)), jnp.array([1.0, 3.0, 5.0]))
    assert mapped.numeric


# --- errors, in the user's names -----------------------------------------------------------


def test_batch_size_mismatch_names_each_argument_and_size():
    with pytest.raises(
        TransformError,
        match=r"vmap\(affine\): mapped arguments disagree on the batch size: x has size 4 "
        r"along axis 0, w has size 6 along axis 0",
    ):
        xcs.vmap(affine, in_axes=(0, 0, None))(X, W, B)


def test_batch_size_mismatch_names_key_paths_inside_pytrees():
    with pytest.raises(
        TransformError, match=r"tree\['a'\] has size 5.*tree\['b'\]\[0\] has size 4"
    ):
        xcs.vmap(nested, in_axes=(0, None))(
            {"a": jnp.ones(5), "b": [jnp.ones(4), jnp.ones(5)]}, 1.0
        )


def test_python_batch_size_mismatch_names_arguments():
    @xcs.op
    def both(question: str, context: str) -> str:
        return question + context

    with pytest.raises(
        TransformError, match=r"question has size 2 along axis 0, context has size 3"
    ):
        xcs.vmap(both)(["a", "b"], ["x", "y", "z"])


def test_axis_out_of_range_names_argument_rank_and_valid_axes():
    with pytest.raises(
        TransformError,
        match=r"in_axes=2 for x, but x is float32\[4,6\] \(rank 2\); valid axes are -2\.\.1",
    ):
        xcs.vmap(affine, in_axes=(2, None, None))(X, W, B)


def test_mapping_a_scalar_says_to_broadcast_it():
    with pytest.raises(TransformError, match=r"b is float32\[\] \(rank 0\).*in_axes=None"):
        xcs.vmap(affine)(X, jnp.ones((4, 6, 3)), 1.0)


def test_mapping_a_string_in_python_path_says_to_pass_a_list():
    with pytest.raises(TransformError, match=r"text is a str and cannot be mapped; pass a list"):
        xcs.vmap(shout)("hello")


def test_mapping_a_python_scalar_names_its_type_with_the_right_article():
    def repeat(text: str, n: int) -> str:
        return text * n

    with pytest.raises(TransformError, match=r": n is an int and cannot be mapped; pass a list"):
        xcs.vmap(repeat)(["a", "b"], 3)
    with pytest.raises(TransformError, match=r": n is an object and cannot be mapped"):
        xcs.vmap(repeat)(["a", "b"], object())


def test_in_axes_with_wrong_number_of_entries_names_the_arguments():
    with pytest.raises(
        TransformError,
        match=r"in_axes has 2 entries but the call passed 3 positional argument\(s\) \(x, w, b\)",
    ):
        xcs.vmap(affine, in_axes=(0, None))(X, W, B)


def test_in_axes_of_wrong_type_is_rejected_when_building():
    with pytest.raises(TransformError, match=r"in_axes\[1\] is 'x' \(str\)"):
        xcs.vmap(affine, in_axes=(0, "x", None))


def test_in_axes_tree_not_matching_argument_structure():
    with pytest.raises(
        TransformError,
        match=r"in_axes for tree is a dict with keys 'a', 'c' but tree lacks keys 'c'",
    ):
        xcs.vmap(nested, in_axes=({"a": 0, "c": 0}, None))({"a": jnp.ones(2), "b": [1, 2]}, 1.0)


def test_nothing_mapped_without_axis_size_is_an_error():
    with pytest.raises(TransformError, match=r"nothing to map: every argument has in_axes=None"):
        xcs.vmap(affine, in_axes=None)(X, W, B)


def test_axis_size_disagreeing_with_arguments_is_an_error():
    with pytest.raises(TransformError, match=r"axis_size=5 but x has size 4 along axis 0"):
        xcs.vmap(affine, in_axes=(0, None, None), axis_size=5)(X, W, B)


def test_out_axes_out_of_range_names_the_output_rank():
    with pytest.raises(
        TransformError,
        match=r"out_axes=3 for output.*rank 1\), so the batch axis can go at -2\.\.1",
    ):
        xcs.vmap(affine, in_axes=(0, None, None), out_axes=3)(X, W, B)


def test_python_results_of_different_shapes_cannot_be_stacked():
    @xcs.op
    def ragged(n: int):
        return np.ones(n)

    with pytest.raises(
        TransformError,
        match=r"items returned arrays of different shapes \(item 0: \[1\], item 1: \[2\]",
    ):
        xcs.vmap(ragged)([1, 2])


def test_vmap_of_non_callable_is_an_error():
    with pytest.raises(TransformError, match=r"vmap\(\) needs a function or operator, got int"):
        xcs.vmap(3)


def test_keyword_argument_that_cannot_be_mapped_says_keywords_are_always_mapped():
    with pytest.raises(
        TransformError,
        match=r"keyword argument system is a str and cannot be mapped;.*keyword arguments are "
        r"always mapped along axis 0 \(as in jax.vmap\)",
    ):
        xcs.vmap(xcs.op(lambda q, system: q, name="ask"))(["a", "b"], system="be brief")


def test_numeric_vmap_of_operator_with_weights_sees_new_weights_without_retracing():
    traces = []
    layer = counting_scale(jnp.float32(2.0), traces)
    mapped = xcs.vmap(layer)
    chex.assert_trees_all_close(mapped(jnp.ones(3)), jnp.full(3, 2.0))
    layer.w = jnp.float32(5.0)  # weights are jit arguments, not baked-in constants
    chex.assert_trees_all_close(mapped(jnp.ones(3)), jnp.full(3, 5.0))
    assert len(traces) == 1


def test_transformed_callable_keeps_the_signature_so_graphs_feed_it_by_name():
    def scale(x, factor):
        return x * factor

    batched = xcs.vmap(scale)
    assert list(inspect.signature(batched).parameters) == ["x", "factor"]
    graph = xcs.Graph()
    graph.add_node(batched, node_id="scale")
    result = xcs.execute_graph(graph, {"x": jnp.ones(3), "factor": jnp.full(3, 3.0)})
    chex.assert_trees_all_close(result["scale"], jnp.full(3, 3.0))
