"""Numeric leaves inside jit run as compiled XLA segments, compiled once per shape."""

from __future__ import annotations

import hashlib
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from weighted_ops import counting_scale

import ember_xcs as xcs

K = 3
DOCS = [f"document about topic {i}" for i in range(8)]
traces = {"score": 0, "normalise": 0}


def vector(text: str) -> np.ndarray:
    digest = hashlib.sha256(text.encode()).digest()
    return np.frombuffer(digest, dtype=np.uint8)[:16].astype(np.float32) / 255.0


@xcs.op
def embed(texts: list[str]) -> np.ndarray:
    """A Python 'embedding model': runs on the scheduler, returns an array."""
    return np.stack([vector(t) for t in texts])


@xcs.op(numeric=True)
def score(query, docs):
    traces["score"] += 1  # runs while JAX traces: once per new shape
    return docs @ query


@xcs.op(numeric=True)
def normalise(scores):
    traces["normalise"] += 1
    return jax.nn.softmax(scores)


@xcs.op(numeric=True)
def top_k(scores, k):
    return jax.lax.top_k(scores, k)[1]


@xcs.op
def pick(docs: list[str], indices, i: int) -> str:
    return docs[int(indices[i])]


@xcs.op
def rate(question: str, doc: str) -> float:
    """An 'LLM' rating a document for the question (deterministic)."""
    return (len(question) * 7 + len(doc) * 3 + int(doc.split()[-1])) % 10 / 10.0


@xcs.op(numeric=True)
def aggregate(ratings, weights, indices):
    return jnp.sum(jnp.asarray(ratings) * weights[indices])


def retrieve_and_rate(question: str, docs: list[str]):
    """embed -> score with arrays -> LLM on the top k -> aggregate numerically."""
    q = embed([question])[0]
    weights = normalise(score(q, embed(docs)))
    best = top_k(weights, K)
    ratings = [rate(question, pick(docs, best, i)) for i in range(K)]
    return aggregate(ratings, weights, best)


def test_embed_score_llm_aggregate_pipeline_matches_plain_python():
    jitted = xcs.jit(retrieve_and_rate)
    for i in range(4):
        question = f"what is topic {i}?" + "!" * i
        expected = retrieve_and_rate(question, DOCS)
        chex.assert_trees_all_close(jitted(question, DOCS), expected, rtol=1e-6)
    assert xcs.get_jit_strategy_used(jitted) == xcs.JITMode.TRACE


def test_numeric_leaves_on_one_level_form_one_segment():
    jitted = xcs.jit(retrieve_and_rate)
    jitted("q", DOCS)
    stats = xcs.get_jit_stats(jitted)
    # score+normalise+top_k is one segment; aggregate (after the LLM calls) another
    assert stats.numeric_segments == 2
    assert stats.leaf_calls == 3 + 2 * K + 3
    assert stats.nodes == stats.leaf_calls - 2


def test_numeric_function_is_traced_once_per_shape_not_per_call():
    jitted = xcs.jit(retrieve_and_rate)
    before = dict(traces)
    for i in range(5):
        jitted(f"question {i}", DOCS)
    assert traces["score"] - before["score"] == 1
    assert traces["normalise"] - before["normalise"] == 1
    jitted("new shape", DOCS[:5])  # 5 documents: a new shape, one more trace
    assert traces["score"] - before["score"] == 2
    assert xcs.get_jit_stats(jitted).xla_compiles >= 2


def test_plain_calls_of_a_numeric_op_run_its_python_every_time():
    before = traces["score"]
    for _ in range(3):
        score(jnp.ones(4), jnp.ones((2, 4)))
    assert traces["score"] - before == 3


def test_preserve_stochasticity_keeps_numeric_code_out_of_jax_jit():
    draws = iter(range(1000))

    @xcs.op(numeric=True)
    def jitter(x):
        return x + next(draws)  # Python-level randomness: jax.jit would freeze it

    frozen = xcs.jit(lambda x: jitter(x))
    fresh = xcs.jit(lambda x: jitter(x), preserve_stochasticity=True)
    x = jnp.zeros(2)
    assert float(frozen(x)[0]) == float(frozen(x)[0])
    first, second = float(fresh(x)[0]), float(fresh(x)[0])
    assert first != second


def test_a_numeric_op_jax_cannot_trace_runs_eagerly_and_says_why():
    @xcs.op(numeric=True)
    def threshold(x):
        return x * 2 if float(x.sum()) > 0 else x  # needs a concrete value

    jitted = xcs.jit(lambda x: threshold(x))
    chex.assert_trees_all_close(jitted(jnp.ones(3)), jnp.full(3, 2.0))
    chex.assert_trees_all_close(jitted(-jnp.ones(3)), -jnp.ones(3))
    assert "runs eagerly" in xcs.explain_jit_selection(jitted)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_a_python_number_a_member_needs_static_is_used_as_a_constant(k):
    jitted = xcs.jit(lambda s, k: top_k(s, k))
    scores = jnp.arange(6.0)
    np.testing.assert_array_equal(jitted(scores, k), jax.lax.top_k(scores, k)[1])


@xcs.op(numeric=True)
def above(x, threshold=0.5):
    """Returns Python numbers JAX never traces beside the array: a size and a flag."""
    return {"count": (x > threshold).sum(), "n": len(x), "scaled": threshold * 2, "ok": True}


def above_as_json(x, threshold):
    found = above(x, threshold)
    return json.dumps({k: v if k != "count" else int(v) for k, v in found.items()})


@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic"])
def test_a_python_number_a_numeric_leaf_returns_comes_back_as_that_number(mode):
    jitted = xcs.jit(above_as_json, mode=mode)
    for x, threshold in [(jnp.arange(4.0), 1.5), (jnp.arange(4.0), 0.5), (jnp.ones(6), 2.0)]:
        assert jitted(x, threshold) == above_as_json(x, threshold)
    found = xcs.jit(lambda x: above(x), mode=mode)(jnp.arange(3.0))
    assert [type(found[k]) for k in ("n", "scaled", "ok")] == [int, float, bool]


@xcs.op(numeric=True)
def plus_one(x):
    return x + 1


@xcs.op(numeric=True)
def double(x):
    return x * 2


@xcs.op
def minus_three(x):
    return x - 3


def two_segments(x):
    first = double(plus_one(x))
    second = double(plus_one(minus_three(first)))  # same operators, after a Python node
    return first, second


def test_segments_of_the_same_operators_on_different_levels_stay_separate():
    jitted = xcs.jit(two_segments)
    for x in (jnp.ones(2), jnp.zeros(2), jnp.arange(2.0)):
        chex.assert_trees_all_close(jitted(x), two_segments(x))
    stats = xcs.get_jit_stats(jitted)
    assert (stats.numeric_segments, stats.nodes, stats.leaf_calls) == (2, 3, 5)


# --- outside a plan: dynamic dispatch and opaque composites -----------------------------------


@pytest.mark.parametrize("scheduler", ["parallel", "sequential"])
def test_dynamic_mode_compiles_a_numeric_leaf_once_per_shape(scheduler):
    jitted = xcs.jit(retrieve_and_rate, mode="dynamic")
    questions = [f"question {i}" for i in range(5)]
    expected = [retrieve_and_rate(q, DOCS) for q in questions]  # plain calls count too
    before = dict(traces)
    with xcs.execution_options(scheduler=scheduler):
        for question, want in zip(questions, expected, strict=True):
            chex.assert_trees_all_close(jitted(question, DOCS), want, rtol=1e-6)
        assert traces["score"] - before["score"] == 1
        assert traces["normalise"] - before["normalise"] == 1
        jitted("new shape", DOCS[:5])
    assert traces["score"] - before["score"] == 2
    stats = xcs.get_jit_stats(jitted)
    # score, normalise, top_k, aggregate, per input signature (8 and 5 documents)
    assert stats.numeric_segments == 8
    assert stats.xla_compiles >= 8


def test_dynamic_mode_keeps_numeric_code_out_of_jax_jit_when_asked():
    draws = iter(range(1000))

    @xcs.op(numeric=True)
    def jitter(x):
        return x + next(draws)

    fresh = xcs.jit(lambda x: jitter(x), mode="dynamic", preserve_stochasticity=True)
    x = jnp.zeros(2)
    assert float(fresh(x)[0]) != float(fresh(x)[0])
    assert xcs.get_jit_stats(fresh).xla_compiles == 0


def test_dynamic_mode_passes_keyword_arguments_to_a_compiled_leaf():
    @xcs.op(numeric=True)
    def affine(x, *, scale, shift=0.0):
        return x * scale + shift

    jitted = xcs.jit(
        lambda x: affine(x, scale=2.0, shift=1.0) + affine(x, scale=3.0), mode="dynamic"
    )
    chex.assert_trees_all_close(jitted(jnp.arange(3.0)), jnp.arange(3.0) * 5 + 1)


def test_dynamic_mode_runs_an_untraceable_numeric_leaf_eagerly_and_says_why():
    @xcs.op(numeric=True)
    def threshold(x):
        return x * 2 if float(x.sum()) > 0 else x

    jitted = xcs.jit(lambda x: threshold(x), mode="dynamic")
    chex.assert_trees_all_close(jitted(jnp.ones(3)), jnp.full(3, 2.0))
    chex.assert_trees_all_close(jitted(-jnp.ones(3)), -jnp.ones(3))
    assert "runs eagerly" in xcs.explain_jit_selection(jitted)


class Gated(xcs.Operator):
    """A composite whose trace stops on a value: in auto it is an opaque dynamic node."""

    def __init__(self) -> None:
        self.scale = scale_op

    def forward(self, x):
        y = self.scale(x)
        return self.scale(y) if float(y.sum()) >= 0 else y


@xcs.op(numeric=True)
def scale_op(x):
    traces["scale"] = traces.get("scale", 0) + 1
    return x * 3


def test_an_opaque_dynamic_composite_compiles_its_numeric_leaves():
    jitted = xcs.jit(lambda x: Gated()(x))
    before = traces.get("scale", 0)
    for i in range(4):
        chex.assert_trees_all_close(jitted(jnp.full(2, float(i))), jnp.full(2, 9.0 * i))
    assert traces["scale"] - before == 1
    assert "opaque node" in xcs.explain_jit_selection(jitted)


@pytest.mark.parametrize("mode", ["auto", "trace", "structural", "dynamic"])
def test_new_weights_on_a_numeric_operator_take_effect_without_retracing(mode):
    # weights are traced inputs of the compiled segment, never constants captured at trace
    traces = []

    @xcs.op
    def describe(v) -> str:
        return f"first {float(v[0]):.1f}"

    class Pipeline(xcs.Operator):
        def __init__(self):
            self.layer = counting_scale(jnp.float32(2.0), traces)
            self.describe = describe

        def forward(self, x):
            return self.describe(self.layer(x))

    pipeline = Pipeline()
    jitted = xcs.jit(pipeline, mode=mode)
    assert jitted(jnp.ones(3)) == "first 2.0"
    pipeline.layer.w = jnp.float32(5.0)
    assert jitted(jnp.ones(3)) == "first 5.0"
    assert len(traces) == 1  # the same executable served both weights
