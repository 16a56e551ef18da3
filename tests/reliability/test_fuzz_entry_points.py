"""Property-based fuzz of the public entry points: any value in any one argument.

Every entry point is called with one argument replaced by an arbitrary value (None,
bools, numbers including NaN and infinities, strings, bytes, containers, types, plain
objects) and the others valid. The call may succeed; if it raises, the error must be an
`XCSError`, a `TypeError` or a `ValueError` (never an `AttributeError`, a `KeyError`
from a dict lookup, a `RecursionError`, ...), and its message must name the argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ember_xcs as xcs

ALLOWED = (xcs.XCSError, TypeError, ValueError)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.inf, -math.inf, math.nan, 0, -1, 1e300, "", ".", "*", "a.b"]),
    st.text(max_size=12),
    st.binary(max_size=8),
    st.sampled_from([int, str, Exception, object, type, print, len]),
    st.builds(object),
)
values = scalars | st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), inner, max_size=3),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=8,
)


def f(x: Any) -> Any:
    return x


def graph() -> xcs.Graph:
    g = xcs.Graph()
    g.add_node(f, node_id="a")
    g.add_node(f, node_id="b")
    return g


def mesh() -> xcs.DeviceMesh:
    return xcs.DeviceMesh((2,), ("data",))


# entry point -> (call with the fuzzed value, words of which the message must hold one)
ENTRY_POINTS: dict[str, tuple[Callable[[Any], Any], tuple[str, ...]]] = {
    "Graph.add_node(operator)": (lambda v: graph().add_node(v), ("operator", "function")),
    "Graph.add_node(node_id)": (lambda v: graph().add_node(f, node_id=v), ("node_id", "node id")),
    "Graph.add_node(name)": (lambda v: graph().add_node(f, name=v), ("name",)),
    "Graph.add_edge(src)": (lambda v: graph().add_edge(v, "b"), ("node",)),
    "Graph.add_edge(dst)": (lambda v: graph().add_edge("a", v), ("node",)),
    "Graph.add_edge(field_mappings)": (
        lambda v: graph().add_edge("a", "b", field_mappings=v),
        ("field_mappings", "field", "parameter"),
    ),
    "Graph.connect(endpoint)": (lambda v: graph().connect("a", v), ("connect", "node")),
    "Graph.remove_node(node_id)": (lambda v: graph().remove_node(v), ("node",)),
    "Graph.remove_edge(src)": (lambda v: graph().remove_edge(v, "b"), ("node", "edge")),
    "Graph.critical_path(weights)": (lambda v: graph().critical_path(v), ("weight",)),
    "Graph.dependencies(node_id)": (lambda v: graph().dependencies(v), ("node",)),
    "execute_graph(graph)": (lambda v: xcs.execute_graph(v, {}), ("graph",)),
    "execute_graph(inputs)": (lambda v: xcs.execute_graph(graph(), v), ("input", "a.x")),
    "execute_graph(options)": (
        lambda v: xcs.execute_graph(graph(), {"x": 1}, options=v),
        ("options",),
    ),
    "jit(fn)": (lambda v: xcs.jit(v), ("jit",)),
    "jit(mode)": (lambda v: xcs.jit(f, mode=v), ("mode",)),
    "jit(cache_size)": (lambda v: xcs.jit(f, cache_size=v), ("cache_size",)),
    "jit(static_argnums)": (lambda v: xcs.jit(f, static_argnums=v), ("static_argnums",)),
    "jit(static_argnames)": (lambda v: xcs.jit(f, static_argnames=v), ("static_argnames",)),
    "op(fn)": (lambda v: xcs.op(v), ("function",)),
    "op(name)": (lambda v: xcs.op(f, name=v), ("name",)),
    "op(numeric)": (lambda v: xcs.op(f, numeric=v), ("numeric",)),
    "op(stochastic)": (lambda v: xcs.op(f, stochastic=v), ("stochastic",)),
    "vmap(fn)": (lambda v: xcs.vmap(v), ("function",)),
    "vmap(in_axes)": (lambda v: xcs.vmap(f, in_axes=v), ("in_axes",)),
    "vmap(out_axes)": (lambda v: xcs.vmap(f, out_axes=v), ("out_axes",)),
    "vmap(axis_size)": (lambda v: xcs.vmap(f, axis_size=v), ("axis_size",)),
    "vmap(numeric)": (lambda v: xcs.vmap(f, numeric=v), ("numeric",)),
    "pmap(num_workers)": (lambda v: xcs.pmap(f, num_workers=v), ("num_workers",)),
    "pmap(devices)": (lambda v: xcs.pmap(f, devices=v), ("devices",)),
    "pmap(in_axes)": (lambda v: xcs.pmap(f, in_axes=v), ("in_axes",)),
    "pmap(axis_name)": (lambda v: xcs.pmap(f, axis_name=v), ("axis_name",)),
    "DeviceMesh(shape)": (lambda v: xcs.DeviceMesh(v), ("shape", "devices")),
    "DeviceMesh(axis_names)": (lambda v: xcs.DeviceMesh((2,), v), ("axis_names", "axis names")),
    "mesh_sharded(mesh)": (
        lambda v: xcs.mesh_sharded(f, v, in_specs=None, out_specs=None),
        ("mesh",),
    ),
    "mesh_sharded(in_specs)": (
        lambda v: xcs.mesh_sharded(f, mesh(), in_specs=v, out_specs=None),
        ("in_specs",),
    ),
    "mesh_sharded(out_specs)": (
        lambda v: xcs.mesh_sharded(f, mesh(), in_specs=None, out_specs=v),
        ("out_specs",),
    ),
}
OPTION_FIELDS = sorted(xcs.ExecutionOptions.__dataclass_fields__)


def check(call: Callable[[Any], Any], words: tuple[str, ...], value: Any) -> None:
    try:
        call(value)
    except ALLOWED as exc:
        message = str(exc).lower()
        assert any(w.lower() in message for w in words), (
            f"{type(exc).__name__}: {exc!s} names none of {words} (value {value!r})"
        )
    except Exception as exc:  # noqa: BLE001 - the point: nothing else may escape
        pytest.fail(f"{type(exc).__name__} escaped for {value!r}: {exc}")


FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@FUZZ
@given(value=values)
def test_any_value_in_any_argument_gets_a_clear_error_or_works(entry: str, value: Any) -> None:
    call, words = ENTRY_POINTS[entry]
    check(call, words, value)


@pytest.mark.parametrize("field", OPTION_FIELDS)
@FUZZ
@given(value=values)
def test_any_value_of_any_execution_option_gets_a_clear_error_or_works(
    field: str, value: Any
) -> None:
    check(lambda v: xcs.ExecutionOptions(**{field: v}), (field,), value)

    def in_block(v: Any) -> None:
        with xcs.execution_options(**{field: v}):
            pass

    check(in_block, (field,), value)


@FUZZ
@given(name=st.text(max_size=20), value=values)
def test_any_option_name_is_an_options_error_or_a_real_option(name: str, value: Any) -> None:
    check(lambda v: xcs.ExecutionOptions(**{name: v}), (repr(name),), value)


def test_the_fuzz_reaches_every_public_callable_it_claims() -> None:
    assert jax.device_count() >= 2  # DeviceMesh((2,), ...) and mesh() need two devices
    reached = {e.split("(")[0].split(".")[0] for e in ENTRY_POINTS}
    assert reached >= set("Graph execute_graph jit op vmap pmap DeviceMesh mesh_sharded".split())
