"""The Python path of every transform: one scheduler node per item (or chunk).

`vmap`, `pmap` and `mesh_sharded` over Python/LLM operators all end here. Each call
becomes a root node of one `ExecutionPlan`, named `fn[i]` (or `fn[a:b]` for a chunk), and
the plan runs on the scheduler the current `execution_options` select, so
`max_workers`, timeouts, retries and hooks apply as they do to graphs. Outputs come back
keyed by node id and are read out in input order, so the result lines up with the inputs
whatever order the calls finished in.

Failures are never dropped. Without `return_partial_results` the engine raises the first
failure, a `NodeExecutionError` naming the node (`answer[3]`) and chained to the
operator's exception. With it, the engine returns what completed, and a transform cannot
return a batch with holes, so it raises an `ExecutionError` listing every failed item.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ExecutionError, TransformError
from .._options import current_options
from ..operators import FunctionOperator, Operator, engine_form, is_async_operator
from ..scheduling import ExecutionPlan, PlanNode, resolve_scheduler

__all__ = ["as_operator", "gather", "run_calls"]

Call = tuple[tuple[Any, ...], dict[str, Any]]


def as_operator(fn: Any, name: str) -> Operator:
    """`fn` itself when it is an operator, else a leaf operator wrapping it."""
    return fn if isinstance(fn, Operator) else FunctionOperator(fn, name=name)


def _bind_constant(call: Call) -> Callable[[list[Any], Mapping[str, Any]], Call]:
    args, kwargs = call
    return lambda results, inputs: (args, kwargs)


def run_calls(
    operator: Operator,
    node_ids: Sequence[str],
    calls: Sequence[Call],
    *,
    max_workers: int | None = None,
) -> list[Any]:
    """Run `operator(*args, **kwargs)` for every call, concurrently; outputs in call order."""
    if not calls:
        return []
    runs = engine_form(operator)  # an LLMOperator over HTTP: awaited, no thread per item
    is_async = is_async_operator(runs)
    nodes = [
        PlanNode(node_id, operator.name, runs, (), _bind_constant(call), is_async)
        for node_id, call in zip(node_ids, calls, strict=True)
    ]
    plan = ExecutionPlan(nodes)
    options = current_options()
    if max_workers is not None:
        cap = min(max_workers, options.max_workers or max_workers)
        options = options.replace(max_workers=cap)
    result = resolve_scheduler(options.scheduler, plan, options).run(plan, {}, options)
    if result.failures or result.skipped:
        raise _failed_items(operator, result.failures)
    missing = [node_id for node_id in node_ids if node_id not in result]
    if missing:
        raise TransformError(
            f"the scheduler returned no output for {', '.join(missing[:5])}: a transform "
            "needs every item's value, so it cannot run under a dry-run scheduler like "
            "'noop'; choose 'sequential', 'parallel' or 'dask'"
        )
    return [result[node_id] for node_id in node_ids]


def _failed_items(operator: Operator, failures: Mapping[str, Exception]) -> ExecutionError:
    ids = list(failures)
    first = failures[ids[0]]
    error = ExecutionError(
        f"{len(ids)} item(s) of the batch failed: {', '.join(ids)}; a mapped result "
        f"cannot have holes, so nothing is returned. First failure: {first}",
        node_id=ids[0],
        operator_name=operator.name,
    )
    error.__cause__ = first
    return error


# --- gathering per-item outputs ------------------------------------------------------------

_ARRAYS = (jax.Array, np.ndarray, np.generic)


def gather(outputs: list[Any], out_axes: Any, label: str) -> Any:
    """Per-item outputs as one batch result.

    When every item returns arrays (pytrees of arrays with one structure) they are
    stacked along `out_axes`, as `jax.vmap` would; otherwise the result is the list of
    outputs in input order. An empty batch gives `[]`.
    """
    if not isinstance(out_axes, int) or isinstance(out_axes, bool):
        raise TransformError(
            f"{label}: out_axes={out_axes!r}; Python operators' results are gathered along "
            "one axis, so out_axes must be an int (0 for lists)"
        )
    if not outputs or not _all_array_trees(outputs):
        if outputs and out_axes not in (0, -1):
            raise TransformError(
                f"{label}: out_axes={out_axes} but the items returned "
                f"{type(outputs[0]).__name__}s, which are gathered into a list; use out_axes=0"
            )
        return list(outputs)
    return jax.tree.map(lambda *xs: _stack(xs, out_axes, label), *outputs)


def _all_array_trees(outputs: list[Any]) -> bool:
    leaves, treedef = jax.tree.flatten(outputs[0])
    if not leaves or not all(isinstance(x, _ARRAYS) for x in leaves):
        return False
    for out in outputs[1:]:
        other, other_def = jax.tree.flatten(out)
        if other_def != treedef or not all(isinstance(x, _ARRAYS) for x in other):
            return False
    return True


def _stack(items: tuple[Any, ...], axis: int, label: str) -> Any:
    shapes = {np.shape(x) for x in items}
    if len(shapes) > 1:
        listed = ", ".join(f"item {i}: {list(np.shape(x))}" for i, x in enumerate(items[:6]))
        raise TransformError(
            f"{label}: items returned arrays of different shapes ({listed}); array results "
            "are stacked like jax.vmap's, so return one shape per item, or a list"
        )
    rank = len(next(iter(shapes)))
    if not -(rank + 1) <= axis <= rank:
        raise TransformError(
            f"{label}: out_axes={axis} but each item returns rank-{rank} arrays, so the batch "
            f"axis can go at {-(rank + 1)}..{rank}"
        )
    if any(isinstance(x, jax.Array) for x in items):
        return jnp.stack(items, axis=axis)
    return np.stack(items, axis=axis)
