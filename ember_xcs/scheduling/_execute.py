"""`execute_graph`: run a `Graph` with the options in force."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from .._errors import GraphError
from .._options import ExecutionOptions, resolve_options
from ..graph import Graph, optimized_graph, requested_outputs
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
    outputs: Iterable[str] | None = None,
    **unexpected: Any,
) -> ExecutionResult:
    """Run every node of `graph`, each as soon as its inputs are ready.

    !!! example
        ```python
        g = xcs.Graph()
        g.add_node(lambda question: question.strip(), node_id="clean")
        g.add_node(lambda text: text.upper(), node_id="shout")
        g.connect("clean", "shout")
        result = xcs.execute_graph(g, {"question": "  why?  "})
        assert result == {"shout": "WHY?"} and result.stats.nodes_run == 2
        ```

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

    **`outputs`**: the node ids whose outputs to return, instead of the sinks. With the
    `eliminate_dead_nodes` graph pass, nodes none of them needs do not run at all.

    **Graph passes** named in the `graph_passes` option rewrite the graph before it runs
    (see `Graph.eliminate_dead_nodes`); `result.stats.graph_passes` reports what they did,
    in a `"noop"` dry run too.

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
    if resolved.graph_passes or outputs is not None:
        return _with_passes(graph, inputs, resolved, outputs)
    return _run(plan, inputs, resolved)


def _run(
    plan: ExecutionPlan, inputs: Mapping[str, Any], resolved: ExecutionOptions
) -> ExecutionResult:
    handler = current_call_handler()
    if handler is not None and resolved.scheduler != "noop":
        return _through_handler(plan, inputs, resolved, handler)
    return resolve_scheduler(resolved.scheduler, plan, resolved).run(plan, inputs, resolved)


def _unexpected_arguments(unexpected: dict[str, Any]) -> TypeError:
    """`execute_graph(g, x, scheduler=...)`: say where execution options go."""
    names = ", ".join(map(repr, unexpected))
    options = {k: v for k, v in unexpected.items() if k in ExecutionOptions.__dataclass_fields__}
    if not options:
        return TypeError(
            f"execute_graph() got unexpected keyword argument(s) {names}; it takes "
            f"{_signature_without_extras()}"
        )
    written = ", ".join(f"{k}={v!r}" for k, v in options.items())
    return TypeError(
        f"execute_graph() got unexpected keyword argument(s) {names}; execution options go "
        f"in options=xcs.ExecutionOptions({written}) or a `with "
        f"xcs.execution_options({written}):` block"
    )


def _signature_without_extras() -> str:
    """`execute_graph`'s parameters as a caller writes them, read from the function itself
    so the message cannot fall behind a new keyword: no annotations, no `**unexpected`."""
    signature = inspect.signature(execute_graph)
    kept = [
        p.replace(annotation=p.empty)
        for p in signature.parameters.values()
        if p.kind is not p.VAR_KEYWORD
    ]
    return str(signature.replace(parameters=kept, return_annotation=signature.empty))


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
        results[i] = handler(node.operator, tuple(args), kwargs, node.node_id)
    wanted = range(len(plan)) if options.include_intermediates else plan.sinks
    outputs = {plan.nodes[i].node_id: results[i] for i in wanted}
    return ExecutionResult(
        outputs, plan=plan, stats=ExecutionStats("intercepted", 0.0, len(plan), 0)
    )


# --- graph passes and requested outputs -------------------------------------------------


def _with_passes(
    graph: Graph,
    inputs: Mapping[str, Any],
    options: ExecutionOptions,
    outputs: Iterable[str] | None,
) -> ExecutionResult:
    """Run the graph the `graph_passes` option asks for (built once per graph version,
    so folded constants outlive the run) and return the outputs asked for.

    The passes change which nodes are sinks (a merged output becomes a pass-through of
    the node it was merged into), so the outputs are fixed on the graph as given: the
    requested ones, else every node with `include_intermediates`, else its sinks."""
    asked = outputs is not None
    if outputs is None:
        outputs = list(graph.nodes) if options.include_intermediates else graph.sinks()
    outputs = requested_outputs(graph, outputs, "execute_graph")
    separate = [key for key in inputs if key in graph]  # nodes given their own inputs
    optimized, report = optimized_graph(graph, options.graph_passes, outputs, separate=separate)
    if not options.include_intermediates:
        options = options.replace(include_intermediates=True)  # outputs may feed each other
    result = _run(plan_for_graph(optimized), inputs, options)
    if options.graph_passes:
        result.stats = dataclasses.replace(result.stats, graph_passes=report)
    if not result.ok and not asked:
        return result  # a partial result keeps every completed node, as without passes
    return ExecutionResult(
        {node_id: result[node_id] for node_id in outputs if node_id in result},
        plan=result.plan,
        stats=result.stats,
        failures=result.failures,
        skipped=result.skipped,
    )
