"""`execute_graph`: run a `Graph` with the options in force."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
    resolved = resolve_options(options)
    if not isinstance(graph, Graph):
        from .._errors import GraphError

        raise GraphError(f"execute_graph() needs a Graph, got {type(graph).__name__}")
    plan = plan_for_graph(graph)
    inputs = {} if inputs is None else inputs
    check_inputs(plan, inputs)
    handler = current_call_handler()
    if handler is not None and resolved.scheduler != "noop":
        return _through_handler(plan, inputs, resolved, handler)
    return resolve_scheduler(resolved.scheduler, plan, resolved).run(plan, inputs, resolved)


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
        results[i] = handler(node.operator, tuple(args), kwargs, node.node_id)
    wanted = range(len(plan)) if options.include_intermediates else plan.sinks
    outputs = {plan.nodes[i].node_id: results[i] for i in wanted}
    return ExecutionResult(
        outputs, plan=plan, stats=ExecutionStats("intercepted", 0.0, len(plan), 0)
    )
