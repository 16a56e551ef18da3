"""`execute_graph`: run a `Graph` with the options in force."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import GraphError
from .._options import ExecutionOptions, resolve_options
from ..graph import Graph
from ..operators import current_call_handler
from ._plan import ExecutionPlan, check_inputs, plan_for_graph
from ._result import ExecutionResult, ExecutionStats
from ._schedulers import resolve_scheduler

__all__ = ["execute_graph"]


def execute_graph(
    graph: Graph,
    inputs: Mapping[str, Any] | None = None,
    *,
    options: ExecutionOptions | None = None,
    **unexpected: Any,
) -> ExecutionResult:
    """Run every node of `graph`, each as soon as its inputs are ready.

    **How `inputs` reach nodes.** A node's arguments come, in this order, from

    1. its incoming edges (see `Graph`: positional edges in the order added, mapped
       fields as keywords);
    2. `inputs[param]` for each of its parameters that no edge feeds — one global value
       can feed many nodes; keys that are node ids are never used this way;
    3. `inputs[node_id]`, a dict of keyword arguments for that node alone, which wins
       over 2.

    A required parameter fed by none of these, an input key that matches nothing, or a
    non-dict `inputs[node_id]` raises before any operator runs.

    **Returns** an `ExecutionResult`: the sink nodes' outputs keyed by node id (every
    node's with `include_intermediates=True`), with `.failures`, `.skipped`, `.stats`
    and `.plan`.

    **Options** come from `options`, else the innermost `execution_options(...)` block,
    else `EMBER_XCS_*` environment variables. While the run lasts they are the current
    options for its operators, on whichever thread or worker runs them, so an operator
    that reads `current_options()` or runs a nested graph sees them.
    """
    if unexpected:
        raise _unexpected_arguments(unexpected)
    resolved = resolve_options(options)
    if not isinstance(graph, Graph):
        raise GraphError(f"execute_graph() needs a Graph, got {type(graph).__name__}")
    plan = plan_for_graph(graph)
    inputs = {} if inputs is None else inputs
    _check_input_names(inputs)
    check_inputs(plan, inputs)
    handler = current_call_handler()
    if handler is not None and resolved.scheduler != "noop":
        return _through_handler(plan, inputs, resolved, handler)
    return resolve_scheduler(resolved.scheduler, plan).run(plan, inputs, resolved)


def _unexpected_arguments(unexpected: dict[str, Any]) -> TypeError:
    """`execute_graph(g, x, scheduler=...)`: say where execution options go."""
    names = ", ".join(map(repr, unexpected))
    options = {k: v for k, v in unexpected.items() if k in ExecutionOptions.__dataclass_fields__}
    if not options:
        return TypeError(
            f"execute_graph() got unexpected keyword argument(s) {names}; it takes "
            "(graph, inputs, *, options)"
        )
    written = ", ".join(f"{k}={v!r}" for k, v in options.items())
    return TypeError(
        f"execute_graph() got unexpected keyword argument(s) {names}; execution options go "
        f"in options=xcs.ExecutionOptions({written}) or a `with "
        f"xcs.execution_options({written}):` block"
    )


def _check_input_names(inputs: Any) -> None:
    if isinstance(inputs, Mapping):
        for key in inputs:
            if not isinstance(key, str):
                raise GraphError(
                    f"inputs keys must be parameter names or node ids (strings), got {key!r} "
                    f"({type(key).__name__})"
                )


def _through_handler(
    plan: ExecutionPlan, inputs: Mapping[str, Any], options: ExecutionOptions, handler: Any
) -> ExecutionResult:
    """Inside a jit trace or dynamic run, hand each node to the active call handler.

    Running the graph here would call its operators with the trace's placeholders (and
    call them again when the plan runs). Handing them over instead makes an explicit graph
    inside a jitted function part of that function's plan, with the graph's own
    dependencies, and lets a dynamic run dispatch its nodes as their inputs become ready.
    The enclosing jit's execution options govern how they run.
    """
    results: list[Any] = [None] * len(plan)
    for i, node in enumerate(plan.nodes):
        args, kwargs = node.bind(results, inputs)
        results[i] = handler(node.operator, tuple(args), kwargs)
    wanted = range(len(plan)) if options.include_intermediates else plan.sinks
    outputs = {plan.nodes[i].node_id: results[i] for i in wanted}
    return ExecutionResult(
        outputs, plan=plan, stats=ExecutionStats("intercepted", 0.0, len(plan), 0)
    )
