"""`vmap`: map a function over a batch, with JAX or with the scheduler.

For a numeric function, `xcs.vmap(f)` *is* `jax.jit(jax.vmap(f))`: the same `in_axes`,
`out_axes`, `axis_size`, `axis_name` and `spmd_axis_name` semantics, the same pytree
handling, built once and cached, so the only cost over raw JAX is one Python frame per
call (see `docs/transforms.md` for the measured figure). The argument checks that give
errors in the user's names run inside the traced function, i.e. once per input shape.

For a Python operator (an LLM call, a tool), the batch is split into items and each item
is one scheduler node, so calls run concurrently and results come back in input order;
the splitting rules are in `_axes` (a list is a batch; `in_axes=None` broadcasts).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, overload

import jax

from ..operators import guard_numeric
from ._axes import (
    batch_size,
    check_axes_tree,
    check_out_axes,
    check_size_arg,
    mapped_leaves,
    split_calls,
)
from ._names import ArgNames, callable_name
from ._python import as_operator, gather, run_calls
from ._transformed import Transformed, holds_arrays

__all__ = ["Vmapped", "vmap"]


class Vmapped(Transformed):
    """The callable `vmap` returns; see `vmap`."""

    transform_name = "vmap"

    def __init__(
        self,
        fn: Any,
        in_axes: Any,
        out_axes: Any,
        axis_size: int | None,
        axis_name: Any,
        spmd_axis_name: Any,
        numeric: bool | None,
    ):
        super().__init__(fn, numeric)
        self.in_axes = check_axes_tree(in_axes, self._label, "in_axes")
        self.out_axes = check_axes_tree(out_axes, self._label, "out_axes")
        check_size_arg(axis_size, self._label)
        self.axis_size = axis_size
        self.axis_name = axis_name
        self.spmd_axis_name = spmd_axis_name
        self._names = ArgNames(fn)

    def _numeric_runner(self) -> Callable[..., Any]:
        return numeric_vmap(
            self.wrapped,
            self.in_axes,
            self.out_axes,
            self._names,
            self._label,
            axis_size=self.axis_size,
            axis_name=self.axis_name,
            spmd_axis_name=self.spmd_axis_name,
        )

    def _python_runner(self) -> Callable[..., Any]:
        return python_map(
            self.wrapped, self.in_axes, self.out_axes, self._names, self._label, self.axis_size
        )


def numeric_vmap(
    fn: Any,
    in_axes: Any,
    out_axes: Any,
    names: ArgNames,
    label: str,
    **vmap_kwargs: Any,
) -> Callable[..., Any]:
    """`jax.jit(jax.vmap(fn))` with checks in the user's names, run once per shape.

    An operator holding arrays (weights) is passed to the jitted function as an argument,
    not closed over, so its arrays are inputs rather than constants baked into the
    executable, and replacing them takes effect without a retrace.
    """

    def vmapped(target: Any) -> Callable[..., Any]:
        guarded = guard_numeric(target)

        def per_item(*args: Any, **kwargs: Any) -> Any:
            out = guarded(*args, **kwargs)
            check_out_axes(out, out_axes, label)
            return out

        per_item.__name__ = callable_name(target)
        return jax.vmap(per_item, in_axes=in_axes, out_axes=out_axes, **vmap_kwargs)

    def check(args: Any, kwargs: Any) -> None:
        leaves = mapped_leaves(args, kwargs, in_axes, names, label, python=False)
        batch_size(leaves, vmap_kwargs.get("axis_size"), label, python=False)

    if holds_arrays(fn):

        def batched_operator(target: Any, *args: Any, **kwargs: Any) -> Any:
            check(args, kwargs)
            return vmapped(target)(*args, **kwargs)

        jitted = jax.jit(batched_operator)
        return functools.partial(jitted, fn)

    mapped = vmapped(fn)

    def batched(*args: Any, **kwargs: Any) -> Any:
        check(args, kwargs)
        return mapped(*args, **kwargs)

    batched.__name__ = callable_name(fn)
    return jax.jit(batched)


def python_map(
    fn: Any,
    in_axes: Any,
    out_axes: Any,
    names: ArgNames,
    label: str,
    axis_size: int | None,
    max_workers: int | None = None,
) -> Callable[..., Any]:
    """Run `fn` once per item on the scheduler; gather results in input order."""
    name = callable_name(fn)
    operator = as_operator(fn, name)

    def run(*args: Any, **kwargs: Any) -> Any:
        leaves = mapped_leaves(args, kwargs, in_axes, names, label, python=True)
        size = batch_size(leaves, axis_size, label, python=True)
        calls = split_calls(args, kwargs, in_axes, size)
        node_ids = [f"{name}[{i}]" for i in range(size)]
        outputs = run_calls(operator, node_ids, calls, max_workers=max_workers)
        return gather(outputs, out_axes, label)

    return run


@overload
def vmap(
    fn: Callable[..., Any],
    /,
    in_axes: Any = 0,
    out_axes: Any = 0,
    axis_size: int | None = None,
    *,
    axis_name: Any = None,
    spmd_axis_name: Any = None,
    numeric: bool | None = None,
) -> Vmapped: ...


@overload
def vmap(
    fn: None = None,
    /,
    in_axes: Any = 0,
    out_axes: Any = 0,
    axis_size: int | None = None,
    *,
    axis_name: Any = None,
    spmd_axis_name: Any = None,
    numeric: bool | None = None,
) -> Callable[[Callable[..., Any]], Vmapped]: ...


def vmap(
    fn: Callable[..., Any] | None = None,
    /,
    in_axes: Any = 0,
    out_axes: Any = 0,
    axis_size: int | None = None,
    *,
    axis_name: Any = None,
    spmd_axis_name: Any = None,
    numeric: bool | None = None,
) -> Any:
    """Map `fn` over a batch: with `jax.vmap` when it is numeric, else on the scheduler.

    Works bare (`@xcs.vmap`) and with arguments (`@xcs.vmap(in_axes=(0, None))`).

    **Arguments:**

    - `fn`: a numeric function (array code), or a Python function / operator.
    - `in_axes`: as in `jax.vmap`: an int (the axis to map) or `None` (broadcast: every
      item gets the whole value), or a tuple with one entry per positional argument, each
      itself an int, `None`, or a tuple/list/dict shaped like that argument. Keyword
      arguments are always mapped along axis 0.
    - `out_axes`: where the batch axis goes in the outputs (numeric functions: any
      `jax.vmap` value; Python functions: an int, see below).
    - `axis_size`: the batch size, required only when no argument is mapped.
    - `axis_name`, `spmd_axis_name`: passed to `jax.vmap` (numeric only).
    - `numeric`: force the classification; default: see `ember_xcs.operators.classify`
      (operators say so themselves; plain functions are numeric until they call a Python
      operator).

    **Numeric functions** run as `jax.jit(jax.vmap(fn, ...))`, built once and compiled
    once per input shape. A Python side effect inside `fn` runs once per new shape.

    **Python functions and operators** are called once per item, concurrently, on the
    scheduler the current `execution_options` select; node ids are `fn[i]`, so an error
    names the failing index. Mapped arguments split like this: a list or tuple is the
    batch (one item per call); an array is split along its axis; a dict maps each value.
    Results come back in input order: stacked along `out_axes` when every item returns
    arrays of one shape, else as a list. An empty batch calls nothing and returns `[]`.

    **Errors** (`TransformError`): mapped arguments with different sizes (each named with
    its size), an axis outside an argument's rank, an `in_axes` tree that does not match
    the arguments, nothing mapped without `axis_size`, or a `str`/number where a batch
    was expected.

    **Returns:** a leaf `Operator` (with `numeric` and `classification` attributes) that
    takes the batched arguments and returns the batched results; without `fn`, a
    decorator that makes one.

    **Raises:** `TransformError` as listed above, when the returned operator is called.

    !!! example
        ```python
        queries, keys = jnp.ones((4, 8)), jnp.ones((8, 16))
        scores = xcs.vmap(lambda q, k: q @ k, in_axes=(0, None))(queries, keys)
        assert scores.shape == (4, 16)


        @xcs.op
        def answer(question: str) -> str:
            return f"an answer to {question}"


        answers = xcs.vmap(answer)(["2+2?", "why?"])  # concurrent, in input order
        assert answers == ["an answer to 2+2?", "an answer to why?"]
        ```
    """
    if fn is None:
        return functools.partial(
            vmap,
            in_axes=in_axes,
            out_axes=out_axes,
            axis_size=axis_size,
            axis_name=axis_name,
            spmd_axis_name=spmd_axis_name,
            numeric=numeric,
        )
    return Vmapped(fn, in_axes, out_axes, axis_size, axis_name, spmd_axis_name, numeric)
