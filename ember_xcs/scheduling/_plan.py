"""`ExecutionPlan`: a graph compiled to integer-indexed arrays for the engine loop.

The engine never touches networkx or dicts keyed by node id on its hot path. A plan lists
nodes in a topological order; each `PlanNode` knows the indices it depends on and a `bind`
function that turns finished outputs (and the call's inputs) into the operator's
`(args, kwargs)`. `Graph`s become plans here (cached by graph version); `jit` builds plans
directly from traces with its own `bind` functions.

Priorities: a node's *rank* is the length of the longest path from it to a sink, so when
more nodes are ready than there are workers, the ones on the critical path go first.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from .._errors import FieldMappingError, GraphError, MissingInputError, summarize_value
from ..graph import WHOLE_OUTPUT, Graph, Node
from ..operators import Operator, engine_form, is_async_operator

__all__ = ["ExecutionPlan", "PlanNode", "plan_for_graph"]

Bind = Callable[[list[Any], Mapping[str, Any]], tuple[Sequence[Any], dict[str, Any]]]


class PlanNode(NamedTuple):
    """One operator call in a plan (a named tuple: a dynamic jit run makes one per leaf
    call, and a frozen dataclass takes several times as long to build)."""

    node_id: str
    name: str
    operator: Operator
    deps: tuple[int, ...]
    bind: Bind
    is_async: bool = False


class ExecutionPlan:
    """Nodes in topological order plus the arrays the engine loop needs."""

    def __init__(self, nodes: Sequence[PlanNode]):
        self.nodes = tuple(nodes)
        n = len(self.nodes)
        successors: list[list[int]] = [[] for _ in range(n)]
        wave = [0] * n
        for i, node in enumerate(self.nodes):
            for d in dict.fromkeys(node.deps):
                if d >= i:
                    raise GraphError(
                        f"plan is not in topological order: {node.node_id} depends on "
                        f"{self.nodes[d].node_id}, which comes later"
                    )
                successors[d].append(i)
                wave[i] = max(wave[i], wave[d] + 1)
        rank = [1] * n
        for i in range(n - 1, -1, -1):
            if successors[i]:
                rank[i] = 1 + max(rank[s] for s in successors[i])
        self.successors = tuple(tuple(s) for s in successors)
        self.indegree = tuple(len(set(node.deps)) for node in self.nodes)
        self.rank = tuple(rank)
        self.wave = tuple(wave)
        self.roots = tuple(i for i in range(n) if not self.nodes[i].deps)
        self.sinks = tuple(i for i in range(n) if not successors[i])
        self.index = {node.node_id: i for i, node in enumerate(self.nodes)}
        self.num_waves = (max(wave) + 1) if n else 0
        # required inputs per node, filled in by plan_for_graph
        self.input_rules: tuple[_InputRule, ...] | None = None
        self.valid_input_shapes: set[Hashable] = set()  # see check_inputs

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def critical_path_length(self) -> int:
        """Calls on the longest dependency chain (the best any scheduler can do)."""
        return max(self.rank, default=0)

    @functools.cached_property
    def max_width(self) -> int:
        """The widest wave: how many calls could ever run at once."""
        return self._widest(range(len(self.nodes)))

    @functools.cached_property
    def thread_width(self) -> int:
        """The widest wave counting only sync nodes: the threads a run can keep busy.
        `async def` nodes run on the event loop and need no thread of their own."""
        return self._widest(i for i, node in enumerate(self.nodes) if not node.is_async)

    @functools.cached_property
    def has_async(self) -> bool:
        """True when any node is an `async def` operator (it needs the event loop)."""
        return any(node.is_async for node in self.nodes)

    def _widest(self, indices: Iterable[int]) -> int:
        counts: dict[int, int] = {}
        for i in indices:
            w = self.wave[i]
            counts[w] = counts.get(w, 0) + 1
        return max(counts.values(), default=0)

    def waves(self) -> list[list[str]]:
        """Node ids grouped by wave (topological generation)."""
        groups: list[list[str]] = [[] for _ in range(self.num_waves)]
        for node, w in zip(self.nodes, self.wave, strict=True):
            groups[w].append(node.node_id)
        return groups

    def describe(self) -> str:
        """A readable summary: one line per wave."""
        lines = [
            f"ExecutionPlan: {len(self)} nodes, {self.num_waves} waves, "
            f"critical path {self.critical_path_length}, max width {self.max_width}"
        ]
        lines += [f"  wave {i}: {', '.join(ids)}" for i, ids in enumerate(self.waves())]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"ExecutionPlan({len(self)} nodes, critical path {self.critical_path_length}, "
            f"max width {self.max_width})"
        )


# --- graphs to plans -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _InputRule:
    node_id: str
    name: str
    free_params: tuple[str, ...]  # parameters no edge feeds: inputs[node_id] may give them
    by_name: tuple[str, ...]  # of those, the ones inputs[parameter] feeds (not named like a node)
    required: tuple[str, ...]  # of the free ones, those without defaults
    open_keywords: bool  # the operator takes **kwargs


_plans: weakref.WeakKeyDictionary[Graph, tuple[int, ExecutionPlan]] = weakref.WeakKeyDictionary()


def plan_for_graph(graph: Graph) -> ExecutionPlan:
    """The plan for `graph`, validated, and cached until the graph changes."""
    cached = _plans.get(graph)
    if cached is not None and cached[0] == graph.version:
        return cached[1]
    plan = _build_plan(graph)
    _plans[graph] = (graph.version, plan)
    return plan


def _build_plan(graph: Graph) -> ExecutionPlan:
    order = graph.topological_order()  # validates: raises CycleError with the cycle
    index = {node_id: i for i, node_id in enumerate(order)}
    node_ids = frozenset(order)
    nodes, rules = [], []
    for node_id in order:
        node = graph.nodes[node_id]
        edges = graph.incoming(node_id)
        positional = tuple(index[e.src] for e in edges if e.field_mappings is None)
        mapped = tuple(
            (index[e.src], e.src, field, param)
            for e in edges
            if e.field_mappings is not None
            for field, param in e.field_mappings.items()
        )
        rule = _input_rule(node, len(positional), {m[3] for m in mapped}, node_ids)
        deps = tuple(dict.fromkeys([index[e.src] for e in edges]))
        bind = _graph_bind(node_id, positional, mapped, rule.by_name)
        operator = engine_form(node.operator)  # an LLMOperator over HTTP: awaited, no thread
        nodes.append(
            PlanNode(node_id, node.name, operator, deps, bind, is_async_operator(operator))
        )
        rules.append(rule)
    plan = ExecutionPlan(nodes)
    plan.input_rules = tuple(rules)
    return plan


def _input_rule(
    node: Node, n_positional: int, mapped: set[str], node_ids: frozenset[str]
) -> _InputRule:
    if node.signature is None:
        return _InputRule(node.node_id, node.name, (), (), (), True)
    params = list(node.signature.parameters.values())
    fed_positionally = {
        p.name
        for p in params[:n_positional]
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    }
    free = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in mapped
        and p.name not in fed_positionally
    ]
    # a node id always means inputs[node_id]: a parameter named like one is fed only there
    by_name = tuple(p.name for p in free if p.name not in node_ids)
    required = tuple(p.name for p in free if p.default is p.empty)
    open_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    names = tuple(p.name for p in free)
    return _InputRule(node.node_id, node.name, names, by_name, required, open_kw)


def _graph_bind(
    node_id: str,
    positional: tuple[int, ...],
    mapped: tuple[tuple[int, str, str, str], ...],
    by_name: tuple[str, ...],
) -> Bind:
    def bind(results: list[Any], inputs: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        args = [results[i] for i in positional]
        kwargs: dict[str, Any] = {}
        for i, src_id, field, param in mapped:
            value = results[i]
            kwargs[param] = (
                value
                if field == WHOLE_OUTPUT
                else _take_field(value, field, src_id, node_id, param)
            )
        if inputs:
            for param in by_name:
                if param in inputs:
                    kwargs[param] = inputs[param]
            own = inputs.get(node_id)
            if own is not None:
                kwargs.update(own)
        return args, kwargs

    return bind


def _take_field(output: Any, field: str, src: str, dst: str, param: str) -> Any:
    if isinstance(output, Mapping):
        if field in output:
            return output[field]
        have = ", ".join(map(repr, list(output)[:8])) or "no fields"
    elif hasattr(output, field):
        return getattr(output, field)
    else:
        text, kind = summarize_value(output, 50), type(output).__name__
        have = text if text.startswith(kind) else f"{kind} {text}"
    raise FieldMappingError(
        f"edge {src} -> {dst} maps field {field!r} to parameter {param!r}, but {src} "
        f"returned {have} without {field!r}; return a dict with that key or fix the mapping"
    )


def check_inputs(plan: ExecutionPlan, inputs: Mapping[str, Any]) -> None:
    """Raise a `GraphError` naming any input no node takes or any argument left unfed."""
    if plan.input_rules is None:
        return
    if not isinstance(inputs, Mapping):
        raise GraphError(f"inputs must be a dict, got {type(inputs).__name__}")
    if not inputs and not any(rule.required for rule in plan.input_rules):
        return  # the common jit replay of a graph with no free parameters
    shape = _input_shape(plan, inputs)
    if shape in plan.valid_input_shapes:
        return  # validity depends on the keys only; these keys passed before
    _check_input_keys(plan, inputs)
    if len(plan.valid_input_shapes) < 64:
        plan.valid_input_shapes.add(shape)


def _input_shape(plan: ExecutionPlan, inputs: Mapping[str, Any]) -> Hashable:
    """What validity depends on: the keys, and the keys of each per-node dict."""
    own = tuple(
        (key, frozenset(value) if isinstance(value, Mapping) else type(value))
        for key, value in inputs.items()
        if key in plan.index
    )
    return frozenset(inputs), own


def _check_input_keys(plan: ExecutionPlan, inputs: Mapping[str, Any]) -> None:
    assert plan.input_rules is not None
    used: set[str] = set()
    missing: list[str] = []
    for rule in plan.input_rules:
        own = inputs.get(rule.node_id)
        if rule.node_id in inputs:
            _check_own_inputs(rule, own)
            used.add(rule.node_id)
        own = own or {}
        used.update(p for p in rule.by_name if p in inputs)
        missing += [
            f"{rule.node_id}.{p}"
            for p in rule.required
            if p not in own and (p not in inputs or p not in rule.by_name)
        ]
    unused = [k for k in inputs if k not in used]
    if unused:  # first: a misspelt key also leaves its parameter missing
        vocabulary = {p for r in plan.input_rules for p in r.by_name} | set(plan.index)
        hints = [_did_you_mean(k, vocabulary) for k in unused]
        raise GraphError(
            f"input {', '.join(hints)} matches no node id and no unfed parameter of any node; "
            "remove it or fix its name"
        )
    if missing:
        shadowed = [m.split(".", 1) for m in missing if m.partition(".")[2] in plan.index]
        note = "".join(
            f"; {param!r} is also a node id, so only inputs[{node!r}] = {{{param!r}: ...}} feeds it"
            for node, param in shadowed
        )
        raise MissingInputError(
            f"no value for {', '.join(missing)}: pass each in inputs by parameter name, as "
            f"inputs[node_id] = {{parameter: value}}, or connect an edge that produces it{note}"
        )


def _check_own_inputs(rule: _InputRule, own: Any) -> None:
    if not isinstance(own, Mapping):
        raise GraphError(
            f"inputs[{rule.node_id!r}] must be a dict of keyword arguments for "
            f"{rule.name}, got {type(own).__name__}"
        )
    if rule.open_keywords:
        return
    unknown = [k for k in own if k not in rule.free_params]
    if unknown:
        raise GraphError(
            f"inputs[{rule.node_id!r}] gives {', '.join(map(repr, unknown))}, which "
            f"{rule.node_id} ({rule.name}) does not take from inputs; it takes "
            f"({', '.join(rule.free_params) or 'nothing'})"
        )


def _did_you_mean(name: str, vocabulary: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(vocabulary), n=1)
    return f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
