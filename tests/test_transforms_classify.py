"""Numeric vs Python classification: explicit, overridable, decided without running the
callable; and the transformed callables as leaf operators that `jit` can see."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import pytest

import ember_xcs as xcs
from ember_xcs.models import LLMOperator, SimulatedModel
from ember_xcs.operators import classify, intercept_calls
from ember_xcs.operators._classify import PythonOperatorCall, guard_numeric


class Score(xcs.Operator):
    numeric = True

    def forward(self, x):
        return x.sum()


class Lookup(xcs.Operator):
    def forward(self, key):
        return {"a": 1}[key]


def plain(x):
    return x + 1


@pytest.mark.parametrize(
    ("fn", "numeric", "provisional"),
    [
        (plain, True, True),
        (lambda x: x, True, True),
        (functools.partial(plain), True, True),
        (jax.jit(plain), True, True),
        (Score(), True, False),
        (Lookup(), False, False),
        (xcs.op(plain), False, False),
        (xcs.op(plain, numeric=True), True, False),
        (xcs.vmap(plain), True, True),
    ],
    ids=[
        "function",
        "lambda",
        "partial",
        "jitted",
        "numeric-class",
        "python-class",
        "op",
        "op-numeric",
        "vmap",
    ],
)
def test_classification_rules(fn, numeric, provisional):
    result = classify(fn)
    assert (result.numeric, result.provisional) == (numeric, provisional)
    assert result.reason


def test_explicit_numeric_argument_overrides_every_rule():
    assert classify(Lookup(), numeric=True).numeric
    assert not classify(plain, numeric=False).numeric
    assert "explicitly" in classify(plain, numeric=False).reason


def test_classify_never_calls_the_callable():
    calls = []

    def spy(x):
        calls.append(x)
        return x

    classify(spy)
    classify(xcs.op(spy))
    xcs.vmap(spy)
    xcs.pmap(spy)
    assert calls == []


def test_guard_stops_a_python_operator_before_it_runs():
    ran = []
    lookup = xcs.op(lambda k: ran.append(k), name="lookup")
    guarded = guard_numeric(lambda x: lookup(x))
    with pytest.raises(PythonOperatorCall) as info:
        guarded(1)
    assert info.value.operator is lookup and ran == []


def test_guard_lets_numeric_operators_run_and_restores_the_previous_handler():
    guarded = guard_numeric(lambda x: Score()(x) * 2)
    assert guarded(jnp.ones(3)) == 6.0
    from ember_xcs.operators import current_call_handler

    assert current_call_handler() is None


def test_transformed_callables_carry_their_classification():
    assert xcs.vmap(plain).numeric
    assert not xcs.vmap(Lookup()).numeric
    assert not xcs.pmap(plain, numeric=False).numeric
    mesh = xcs.DeviceMesh((8,), ("data",))
    sharded = xcs.mesh_sharded(
        plain, mesh, in_specs=xcs.PartitionSpec("data"), out_specs=xcs.PartitionSpec("data")
    )
    assert sharded.numeric and isinstance(sharded, xcs.Operator)


def test_transformed_callables_are_leaves_jit_tracing_records_as_one_call():
    recorded = []
    mapped = xcs.vmap(Lookup())

    def handler(operator, args, kwargs):
        recorded.append(operator)
        return "placeholder"

    with intercept_calls(handler):
        assert mapped(["a"]) == "placeholder"
    assert recorded == [mapped]
    assert not mapped.is_composite and mapped.sub_operators() == []


def test_forcing_a_python_operator_numeric_runs_its_forward_under_jax():
    double = xcs.op(lambda x: x * 2, name="double")  # not marked numeric
    out = xcs.vmap(double, numeric=True)(jnp.arange(3.0))
    chex.assert_trees_all_close(out, jnp.array([0.0, 2.0, 4.0]))


def test_outer_transform_switches_when_an_inner_one_turns_out_python():
    lookups = []

    @xcs.op
    def lookup(x):
        lookups.append(x)
        return x * 10

    inner = xcs.vmap(lambda row: lookup(row))  # provisional: switches on first trace
    outer = xcs.vmap(inner)
    out = outer(jnp.arange(6.0).reshape(2, 3))
    chex.assert_trees_all_close(
        jnp.stack(out) if isinstance(out, list) else out, jnp.arange(6.0).reshape(2, 3) * 10
    )
    assert not inner.numeric and not outer.numeric
    assert all(not isinstance(x, jax.core.Tracer) for x in lookups)


def test_vmap_of_llm_operator_then_numeric_aggregation():
    model = SimulatedModel(latency=0.01, responses=["yes", "no", "maybe"])
    ask = LLMOperator(model, "Is {claim} true?", parse=str.strip)
    answers = xcs.vmap(ask)([f"claim {i}" for i in range(6)])
    assert len(answers) == 6 and set(answers) <= {"yes", "no", "maybe"}

    def score(answer):
        verdict = ask(answer)  # Python operator inside a plain function
        return jnp.float32(verdict == "yes")

    scores = xcs.vmap(score)(answers)
    assert scores.shape == (6,) and set(map(float, scores)) <= {0.0, 1.0}
