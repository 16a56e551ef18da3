"""Transform errors are what JAX users catch: JAX's own vmap error cases, ported.

Each case below is a misuse `jax.vmap` documents an error for, written from its
behaviour (not copied from its tests): the same call is made with `jax.vmap` and with
`xcs.vmap`, and ours must be an instance of the builtin class JAX raised (`TypeError`,
`ValueError`, `NameError`), raised at the same moment (when the transform is built, or
when it is called), and an `XCSError` whose message names the argument.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ember_xcs as xcs
from ember_xcs._errors import AxisNameError, TransformTypeError

x4 = jnp.arange(4.0)
m23 = jnp.ones((2, 3))


def ident(x: Any) -> Any:
    return x


def add(x: Any, y: Any) -> Any:
    return x + y


# (id, function, build keywords, call arguments, words our message must contain)
CASES: list[tuple[str, Callable[..., Any], dict[str, Any], tuple[Any, ...], str]] = [
    ("in_axes is a str", ident, {"in_axes": "0"}, (x4,), "in_axes is '0'"),
    ("in_axes is a float", ident, {"in_axes": 0.0}, (x4,), "in_axes is 0.0"),
    ("in_axes is a top-level dict", ident, {"in_axes": {"x": 0}}, (x4,), "in_axes is a dict"),
    ("in_axes leaf is a str", add, {"in_axes": (0, "1")}, (x4, x4), "in_axes[1] is '1'"),
    ("in_axes leaf is a float", add, {"in_axes": (0, (1.0,))}, (x4, (x4,)), "in_axes[1][0]"),
    ("out_axes is a str", ident, {"out_axes": "0"}, (x4,), "out_axes is '0'"),
    ("in_axes tuple too long", ident, {"in_axes": (0, 0)}, (x4,), "in_axes has 2 entries"),
    ("in_axes tuple too short", add, {"in_axes": (0,)}, (x4, x4), "in_axes has 1 entries"),
    ("mapped sizes differ", add, {}, (x4, jnp.ones(3)), "disagree on the batch size"),
    (
        "sizes differ in a nested tuple",
        lambda t: t[0] + t[1],
        {},
        ((x4, jnp.ones(5)),),
        "t[1] has size 5",
    ),
    ("axis beyond the rank", ident, {"in_axes": 1}, (x4,), "valid axes are -1..0"),
    ("negative axis beyond the rank", ident, {"in_axes": -3}, (m23,), "valid axes are -2..1"),
    ("a scalar mapped", ident, {}, (jnp.float32(2.0),), "(rank 0)"),
    ("a Python number mapped", ident, {}, (3.0,), "(rank 0)"),
    ("nothing mapped and no axis_size", ident, {"in_axes": None}, (x4,), "nothing to map"),
    ("axis_size disagrees with the batch", ident, {"axis_size": 3}, (x4,), "axis_size=3"),
    ("out_axes beyond the output rank", ident, {"out_axes": 2}, (x4,), "out_axes=2"),
    (
        "dict in_axes with other keys",
        lambda d: d["a"],
        {"in_axes": ({"b": 0},)},
        ({"a": x4},),
        "lacks keys 'b'",
    ),
    (
        "tuple in_axes for a non-tuple",
        lambda p: p,
        {"in_axes": ((0, 0),)},
        (x4,),
        "in_axes for p is a tuple of 2 entries",
    ),
    (
        "collective on an unbound axis",
        lambda v: jax.lax.psum(v, "j"),
        {"axis_name": "i"},
        (x4,),
        "uses axis name 'j'",
    ),
    (
        "collective with no axis_name",
        lambda v: jax.lax.pmean(v, "j"),
        {},
        (x4,),
        "binds no axis name",
    ),
    ("fn is not callable", 5, {}, (x4,), "needs a function or operator, got int"),
]


def outcome(vmap: Callable[..., Any], fn: Any, build: dict[str, Any], args: tuple) -> tuple:
    """`(stage, exception)`: stage is "build" or "call" (or "ok" with no exception)."""
    try:
        mapped = vmap(fn, **build)
    except Exception as exc:  # noqa: BLE001 - what was raised is the point
        return "build", exc
    try:
        jax.block_until_ready(mapped(*args))
    except Exception as exc:  # noqa: BLE001
        return "call", exc
    return "ok", None


@pytest.mark.parametrize(
    ("fn", "build", "args", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_our_vmap_raises_what_jax_vmap_raises_when_jax_raises_it(
    fn: Any, build: dict[str, Any], args: tuple, words: str
) -> None:
    jax_stage, jax_error = outcome(jax.vmap, fn, build, args)
    our_stage, our_error = outcome(xcs.vmap, fn, build, args)
    assert jax_stage != "ok", "the case must be an error in JAX too"
    builtin = next(c for c in type(jax_error).__mro__ if c.__module__ == "builtins")
    assert isinstance(our_error, builtin), (type(jax_error), repr(our_error))
    assert isinstance(our_error, xcs.XCSError), repr(our_error)
    assert our_stage == jax_stage
    assert words in str(our_error)


def test_a_bad_in_axes_type_is_a_transform_type_error_catchable_as_either() -> None:
    with pytest.raises(TransformTypeError) as info:
        xcs.vmap(ident, in_axes="x")
    assert isinstance(info.value, TypeError) and isinstance(info.value, xcs.TransformError)
    assert isinstance(info.value, ValueError)  # every TransformError is one


def test_pmap_names_an_unbound_collective_axis_with_a_name_error() -> None:
    with pytest.raises(AxisNameError) as info:
        xcs.pmap(lambda v: jax.lax.psum(v, "j"), axis_name="i")(jnp.ones(8))
    assert isinstance(info.value, NameError)
    assert str(info.value) == (
        "pmap(<lambda>): a collective in the function uses axis name 'j', which no enclosing "
        "transform binds; pmap(<lambda>) binds only 'i' (axis_name='i')"
    )
    with pytest.raises(NameError):  # JAX's own class, for comparison
        jax.pmap(lambda v: jax.lax.psum(v, "j"), axis_name="i")(jnp.ones(8))


def test_mesh_sharded_names_a_collective_axis_the_mesh_does_not_have() -> None:
    mesh = xcs.DeviceMesh((2, 4), ("rows", "cols"))
    summed = xcs.mesh_sharded(
        lambda v: jax.lax.psum(v, "j"),
        mesh,
        in_specs=xcs.PartitionSpec("rows"),
        out_specs=xcs.PartitionSpec(),
    )
    with pytest.raises(AxisNameError) as info:
        summed(jnp.ones(8))
    assert isinstance(info.value, NameError)
    assert str(info.value) == (
        "mesh_sharded(<lambda>): a collective in the function uses axis name 'j', which the "
        "mesh does not have; its axes are ('rows', 'cols')"
    )


def test_a_name_error_from_the_users_own_code_passes_through_unchanged() -> None:
    def broken(v: Any) -> Any:
        return v + undefined_name  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(NameError) as info:
        xcs.vmap(broken)(x4)
    assert not isinstance(info.value, xcs.XCSError)
    assert "undefined_name" in str(info.value)


def scan_with_axis_index(v: Any) -> Any:
    """A scan whose carry starts as a constant and picks up the device index."""

    def step(carry: Any, _: Any) -> tuple[Any, None]:
        return carry + jax.lax.axis_index("i"), None

    total, _ = jax.lax.scan(step, 0, None, length=3)
    return v + total


def test_pmap_runs_a_scan_whose_carry_uses_axis_index_as_jax_pmap_does() -> None:
    batch = jnp.zeros(8)
    expected = jax.pmap(scan_with_axis_index, axis_name="i")(batch)
    ours = xcs.pmap(scan_with_axis_index, axis_name="i")(batch)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(expected))
    np.testing.assert_array_equal(np.asarray(ours), 3.0 * np.arange(8))


def test_vmap_keeps_the_functions_docstring_and_wrapped() -> None:
    def score(q: Any, k: Any) -> Any:
        """Dot product of a query with a key."""
        return q @ k

    mapped = xcs.vmap(score, in_axes=(0, None))
    assert mapped.__doc__ == "Dot product of a query with a key."
    assert mapped.__wrapped__ is score
    assert inspect.unwrap(mapped) is score
    assert list(inspect.signature(mapped).parameters) == ["q", "k"]
    assert not mapped.is_composite  # __wrapped__ does not make the operator a composite
    assert xcs.pmap(score).__doc__ == score.__doc__


def test_vmap_of_an_operator_keeps_it_a_leaf_with_wrapped() -> None:
    answer = xcs.op(lambda q: q.upper(), name="answer")
    mapped = xcs.vmap(answer)
    assert mapped.__wrapped__ is answer and not mapped.is_composite
    assert mapped(["a", "b"]) == ["A", "B"]


def test_a_fourth_positional_axis_name_as_in_jax_vmap_says_to_pass_it_by_keyword() -> None:
    with pytest.raises(TypeError, match="pass axis_name='batch' by keyword"):
        xcs.vmap(ident, 0, 0, "batch")
    mapped = xcs.vmap(lambda v: jax.lax.psum(v, "batch"), 0, 0, axis_name="batch")
    np.testing.assert_allclose(np.asarray(mapped(x4)), np.full(4, 6.0))
