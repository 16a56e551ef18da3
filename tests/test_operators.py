"""Operators: calling, pytree behaviour under JAX, structure, and the `op` decorator."""

from __future__ import annotations

import inspect
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ember_xcs as xcs
from ember_xcs.operators import FunctionOperator, intercept_calls, operator_signature


class Linear(xcs.Operator):
    """A numeric operator with a weight (a leaf) and an activation name (static)."""

    numeric = True

    def __init__(self, weight: jax.Array, activation: str = "relu"):
        self.weight = weight
        self.activation = activation

    def forward(self, x: jax.Array) -> jax.Array:
        y = x @ self.weight
        return jax.nn.relu(y) if self.activation == "relu" else y


class Echo(xcs.Operator):
    def __init__(self, prefix: str = ""):
        self.prefix = prefix

    def forward(self, text: str, *, loud: bool = False) -> str:
        out = self.prefix + text
        return out.upper() if loud else out


class Ensemble(xcs.Operator):
    def __init__(self, units: list[xcs.Operator], judge: xcs.Operator, experts: dict[str, Any]):
        self.units = units
        self.judge = judge
        self.experts = experts
        self.temperature = 0.7

    def forward(self, question: str) -> str:
        return self.judge(" ".join(unit(question) for unit in self.units))


# --- calling -------------------------------------------------------------------------------------


def test_calling_an_operator_runs_forward() -> None:
    assert Echo(">")("hi") == ">hi"
    assert Echo()("hi", loud=True) == "HI"


def test_operator_signature_is_forwards_without_self() -> None:
    assert str(operator_signature(Echo())) == "(text: 'str', *, loud: 'bool' = False) -> 'str'"


def test_name_defaults_to_the_class_name() -> None:
    assert Echo().name == "Echo"


def test_forward_is_abstract() -> None:
    class Nothing(xcs.Operator):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Nothing()  # type: ignore[abstract]


def test_intercept_calls_routes_operator_calls_to_the_handler() -> None:
    seen: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def handler(operator: xcs.Operator, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        seen.append((operator.name, args, kwargs))
        return "recorded"

    echo = Echo()
    with intercept_calls(handler):
        assert echo("hi", loud=True) == "recorded"
        with intercept_calls(None):  # switched off inside, as the engine does
            assert echo("hi") == "hi"
        assert echo("again") == "recorded"
    assert echo("hi") == "hi"  # restored after the block
    assert seen == [("Echo", ("hi",), {"loud": True}), ("Echo", ("again",), {})]


def test_intercept_calls_restores_on_error() -> None:
    with pytest.raises(RuntimeError):
        with intercept_calls(lambda op, a, k: None):
            raise RuntimeError("trace failed")
    assert Echo()("hi") == "hi"


# --- pytrees ------------------------------------------------------------------------------------


def test_array_fields_are_leaves_and_other_fields_are_static() -> None:
    layer = Linear(jnp.ones((3, 2)), activation="identity")
    leaves, treedef = jax.tree_util.tree_flatten(layer)
    assert len(leaves) == 1 and leaves[0] is layer.weight
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
    assert type(rebuilt) is Linear and rebuilt.activation == "identity"
    assert rebuilt.weight is layer.weight


def test_numpy_fields_are_leaves_too() -> None:
    layer = Linear(np.ones((2, 2), np.float32))
    assert len(jax.tree_util.tree_leaves(layer)) == 1


def test_operator_with_weights_works_under_jit() -> None:
    traces: list[str] = []

    @jax.jit
    def apply(layer: Linear, x: jax.Array) -> jax.Array:
        traces.append(layer.activation)
        return layer(x)

    weight = jnp.array([[1.0, -1.0], [2.0, 0.5]])
    x = jnp.array([[1.0, 1.0]])
    chex.assert_trees_all_close(apply(Linear(weight), x), jnp.array([[3.0, 0.0]]))
    # new weights, same structure and static fields: no retrace
    chex.assert_trees_all_close(apply(Linear(weight * 2), x), jnp.array([[6.0, 0.0]]))
    assert traces == ["relu"]
    # a different static field is a different program
    chex.assert_trees_all_close(
        apply(Linear(weight, activation="identity"), x), jnp.array([[3.0, -0.5]])
    )
    assert traces == ["relu", "identity"]


def test_grad_with_respect_to_an_operator_returns_an_operator() -> None:
    layer = Linear(jnp.array([[1.0], [2.0]]), activation="identity")
    x = jnp.array([[3.0, 4.0]])
    grads = jax.grad(lambda op: op(x).sum())(layer)
    assert isinstance(grads, Linear) and grads.activation == "identity"
    chex.assert_trees_all_close(grads.weight, jnp.array([[3.0], [4.0]]))


def test_tree_map_reaches_weights_inside_sub_operators() -> None:
    inner = Linear(jnp.ones((2, 2)))
    outer = Ensemble([inner, Echo()], judge=Linear(jnp.ones((2, 1))), experts={"m": inner})
    leaves = jax.tree_util.tree_leaves(outer)
    assert len(leaves) == 3  # units[0], judge, experts['m']
    doubled = jax.tree_util.tree_map(lambda w: w * 2, outer)
    assert isinstance(doubled, Ensemble) and doubled.temperature == 0.7
    chex.assert_trees_all_close(doubled.judge.weight, jnp.full((2, 1), 2.0))
    assert isinstance(doubled.units[1], Echo)


def test_operators_without_arrays_flatten_to_no_leaves() -> None:
    assert jax.tree_util.tree_leaves(Echo("x")) == []
    assert jax.tree_util.tree_leaves(xcs.op(len)) == []


def test_function_operators_pass_through_jit_as_static() -> None:
    double = xcs.op(lambda v: v * 2, numeric=True)

    @jax.jit
    def apply(fn: Any, x: jax.Array) -> jax.Array:
        return fn(x)

    chex.assert_trees_all_close(apply(double, jnp.arange(3.0)), jnp.array([0.0, 2.0, 4.0]))


def test_equal_static_fields_give_equal_tree_structures() -> None:
    a = jax.tree_util.tree_structure(Linear(jnp.ones(2), activation="relu"))
    b = jax.tree_util.tree_structure(Linear(jnp.zeros(2), activation="relu"))
    c = jax.tree_util.tree_structure(Linear(jnp.zeros(2), activation="tanh"))
    assert a == b and a != c


# --- structure -----------------------------------------------------------------------------------


def test_sub_operators_lists_direct_children_with_python_paths() -> None:
    units = [Echo("a"), Echo("b")]
    judge = Echo("judge")
    math = Echo("math")
    ensemble = Ensemble(units, judge, experts={"math": math, "note": "not an operator"})
    assert ensemble.sub_operators() == [
        ("units[0]", units[0]),
        ("units[1]", units[1]),
        ("judge", judge),
        ("experts['math']", math),
    ]
    assert ensemble.is_composite and not judge.is_composite
    assert judge.sub_operators() == []


def test_sub_operators_in_tuples() -> None:
    class Pair(xcs.Operator):
        def __init__(self) -> None:
            self.pair = (Echo("l"), Echo("r"))

        def forward(self, x: str) -> str:
            return self.pair[1](self.pair[0](x))

    pair = Pair()
    assert [path for path, _ in pair.sub_operators()] == ["pair[0]", "pair[1]"]
    assert pair("x") == "rlx"


def test_numeric_and_stochastic_flags_on_classes() -> None:
    class Sampler(xcs.Operator):
        stochastic = True

        def forward(self) -> float:
            return 0.5

    assert Linear(jnp.ones(1)).numeric and not Linear(jnp.ones(1)).stochastic
    assert Sampler().stochastic and not Sampler().numeric
    assert not Echo().numeric and not Echo().stochastic


def test_a_class_declaring_pure_and_stochastic_is_refused_when_created() -> None:
    with pytest.raises(xcs.OptionsError) as info:

        class Judge(xcs.Operator):
            pure = True
            stochastic = True

            def forward(self) -> float:
                return 0.5

    assert str(info.value) == (
        "class Judge: pure=True and stochastic=True contradict each other; a stochastic "
        "result must never be reused, so drop one"
    )

    class Sampler(xcs.Operator):
        stochastic = True

        def forward(self) -> float:
            return 0.5

    with pytest.raises(xcs.OptionsError, match="^class CachedSampler: pure=True and stoch"):

        class CachedSampler(Sampler):
            pure = True


def test_a_flag_computed_per_instance_is_not_a_class_declaration() -> None:
    class Maybe(xcs.Operator):
        pure = True

        def __init__(self, temperature: float) -> None:
            self.temperature = temperature

        @property
        def stochastic(self) -> bool:
            return self.temperature > 0

        def forward(self) -> float:
            return 0.5

    assert Maybe(0.0).pure and not Maybe(0.0).stochastic


def test_repr_shows_public_fields() -> None:
    assert repr(Echo(">")) == "Echo(prefix='>')"


# --- op ---------------------------------------------------------------------------------------


def test_op_bare_keeps_name_signature_and_doc() -> None:
    @xcs.op
    def answer(question: str, *, style: str = "short") -> str:
        """Answer a question."""
        return f"{style}:{question}"

    assert isinstance(answer, FunctionOperator) and isinstance(answer, xcs.Operator)
    assert answer.name == "answer" and answer.__name__ == "answer"
    assert str(inspect.signature(answer)) == "(question: 'str', *, style: 'str' = 'short') -> 'str'"
    assert operator_signature(answer) == inspect.signature(answer.__wrapped__)
    assert answer.__doc__ == "Answer a question."
    assert answer("q", style="long") == "long:q"
    assert not answer.numeric and not answer.stochastic and not answer.is_composite
    assert repr(answer) == "op(answer)"


def test_op_with_arguments() -> None:
    @xcs.op(name="scorer", numeric=True)
    def score(x: jax.Array) -> jax.Array:
        return x.sum()

    @xcs.op(stochastic=True)
    def sample() -> float:
        return 0.1

    assert score.name == "scorer" and score.numeric and not score.stochastic
    assert str(inspect.signature(score)) == "(x: 'jax.Array') -> 'jax.Array'"
    assert sample.stochastic and sample.name == "sample"
    assert repr(score) == "op(scorer, numeric=True)"
    assert repr(sample) == "op(sample, stochastic=True)"
    assert float(score(jnp.ones(3))) == 3.0


def test_op_keeps_async_functions_async() -> None:
    import asyncio

    @xcs.op
    async def fetch(url: str) -> str:
        return url

    assert inspect.iscoroutinefunction(fetch.__wrapped__)
    assert asyncio.run(fetch("u")) == "u"


def test_op_rejects_non_callables() -> None:
    with pytest.raises(TypeError, match="op\\(\\) needs a function, got int"):
        xcs.op(3)  # type: ignore[call-overload]


def test_op_wraps_builtins_without_signatures() -> None:
    with pytest.raises(ValueError):
        inspect.signature(max)  # the case this covers
    g = xcs.Graph()
    g.add_node(lambda: [3, 1, 2], node_id="numbers")
    g.add_node(xcs.op(max), node_id="biggest")
    g.connect("numbers", "biggest")
    assert xcs.execute_graph(g) == {"biggest": 3}
