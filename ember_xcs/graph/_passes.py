"""Graph passes: rewrite a graph into one that gives the same answers with fewer calls.

Three passes, each a function from a graph to a new graph (the input is never changed),
also reachable as `Graph` methods and, for `execute_graph`, through the execution option
`graph_passes` (off by default):

| pass | what it does | which nodes it touches |
|---|---|---|
| `eliminate_dead_nodes` | drops every node the requested outputs do not need | any node (like Dask's `cull`): a node nothing requested depends on does not run |
| `merge_common_subexpressions` | keeps one of several nodes that call the same operator on the same inputs | *pure* nodes only |
| `fold_constants` | a pure node whose inputs are all constants computes once, on its first run, and is a lookup afterwards | *pure* nodes only |

**How a node is marked.** An operator is *pure* when `pure=True` (`@xcs.op(pure=True)`,
or the class attribute `pure = True` on an `Operator`) or when it is numeric
(`@xcs.op(numeric=True)`: pure array code, which `jax.jit` already assumes), and it is
not `stochastic`. Pure means the output depends only on the arguments, so a repeated call
may be skipped. A `stochastic` operator (`@xcs.op(stochastic=True)`, `stochastic = True`),
and any operator not marked pure, such as an `LLMOperator` that samples, is never merged
or folded: two calls of it stay two calls.

**Same answers.** Merging keeps the first node (in insertion order) of each group of equal
calls. A merged node that is a requested output, or whose consumer would then receive the
same producer twice, stays as a pass-through of the node it was merged into, so every
requested output keeps its id. Folding keeps the graph's shape: the folded node keeps its
id, name, signature and edges, and remembers its value after its first successful run (a
failure is not remembered, so it is retried on the next run like any other). "Constant"
means none of its arguments can come from a run's inputs: it has no parameter left unfed
by edges (a parameter with a default could still be given in `inputs`), and its producers
are constants. Two runs racing on the first call may both compute it; it is pure, so both
values are the same.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .._errors import UnknownNodeError
from .._options import GRAPH_PASSES
from ..operators import FunctionOperator, Operator, is_async_operator, operator_signature

if TYPE_CHECKING:
    from ._graph import Edge, Graph, Node

__all__ = [
    "PassReport",
    "apply_passes",
    "eliminate_dead_nodes",
    "fold_constants",
    "is_pure",
    "merge_common_subexpressions",
    "optimized_graph",
    "requested_outputs",
]


@dataclasses.dataclass(frozen=True)
class PassReport:
    """What the graph passes did to one graph.

    **Attributes:**

    - `passes`: the passes applied, in order.
    - `removed`: ids of the dead nodes dropped by `eliminate_dead_nodes`.
    - `merged`: duplicate id -> the id of the node it was merged into.
    - `folded`: ids of the constant nodes `fold_constants` made compute once.
    """

    passes: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    merged: Mapping[str, str] = dataclasses.field(default_factory=dict)
    folded: tuple[str, ...] = ()

    def then(self, later: PassReport) -> PassReport:
        """This report followed by `later`'s (for a chain of passes)."""
        return PassReport(
            self.passes + later.passes,
            self.removed + later.removed,
            {**self.merged, **later.merged},
            self.folded + later.folded,
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for JSON): the lists and the counts."""
        return {
            "passes": list(self.passes),
            "removed": list(self.removed),
            "merged": dict(self.merged),
            "folded": list(self.folded),
            "nodes_removed": len(self.removed),
            "nodes_merged": len(self.merged),
            "nodes_folded": len(self.folded),
        }

    def __str__(self) -> str:
        return (
            f"{len(self.removed)} removed, {len(self.merged)} merged, "
            f"{len(self.folded)} folded ({', '.join(self.passes) or 'no passes'})"
        )


def is_pure(operator: Operator) -> bool:
    """True when `operator` may be merged and folded (see the module docstring)."""
    if getattr(operator, "stochastic", False):
        return False
    return bool(getattr(operator, "pure", False) or getattr(operator, "numeric", False))


# --- the passes ---------------------------------------------------------------------


def eliminate_dead_nodes(
    graph: Graph, outputs: Iterable[str] | None = None
) -> tuple[Graph, PassReport]:
    """Drop every node that none of `outputs` (default: the sinks) depends on."""
    wanted = requested_outputs(graph, outputs, "eliminate_dead_nodes")
    keep = set(wanted).union(*(graph.dependencies(n) for n in wanted))
    removed = tuple(n for n in graph.nodes if n not in keep)
    report = PassReport(("eliminate_dead_nodes",), removed=removed)
    return _rebuild(graph, report, [n for n in graph.nodes if n in keep]), report


def merge_common_subexpressions(
    graph: Graph, outputs: Iterable[str] | None = None, *, separate: Collection[str] = ()
) -> tuple[Graph, PassReport]:
    """Keep one node of each group of pure nodes calling one operator on the same inputs.

    `separate` lists node ids never merged (`execute_graph` passes the ids given their
    own `inputs[node_id]`, which two otherwise equal nodes may not share).
    """
    wanted = set(requested_outputs(graph, outputs, "merge_common_subexpressions"))
    first: dict[tuple[Any, ...], str] = {}
    merged: dict[str, str] = {}
    for node_id in graph.topological_order():
        node = graph.nodes[node_id]
        if not is_pure(node.operator) or node_id in separate:
            continue
        key = (_operator_key(node.operator), _inputs_key(graph, node_id, merged))
        if key in first:
            merged[node_id] = first[key]
        else:
            first[key] = node_id
    passthrough = _passthroughs(graph, merged, wanted)
    report = PassReport(("merge_common_subexpressions",), merged=merged)
    new = _rebuild(
        graph,
        report,
        [n for n in graph.nodes if n not in merged or n in passthrough],
        operator=lambda node: (
            _SameAs(merged[node.node_id]) if node.node_id in passthrough else None
        ),
        incoming=lambda n: _merged_incoming(graph, n, merged, passthrough),
    )
    return new, report


def fold_constants(graph: Graph) -> tuple[Graph, PassReport]:
    """Make every pure node whose inputs are all constants compute once, then reuse it."""
    constants: set[str] = set()
    for node_id in graph.topological_order():
        if _is_constant(graph, graph.nodes[node_id], constants):
            constants.add(node_id)
    # a pass-through of a constant is constant too, but costs nothing to run as it is
    folded = [n for n in graph.topological_order() if n in constants and _computes(graph, n)]
    report = PassReport(("fold_constants",), folded=tuple(folded))
    new = _rebuild(
        graph,
        report,
        list(graph.nodes),
        operator=lambda node: _Folded(node.operator) if node.node_id in folded else None,
    )
    return new, report


def _computes(graph: Graph, node_id: str) -> bool:
    return not isinstance(graph.nodes[node_id].operator, _SameAs | _Folded)


def apply_passes(
    graph: Graph,
    passes: Iterable[str],
    outputs: Iterable[str] | None = None,
    *,
    separate: Collection[str] = (),
) -> tuple[Graph, PassReport]:
    """Apply the named passes (from `GRAPH_PASSES`) in order; returns the graph and report."""
    outputs = None if outputs is None else list(outputs)
    report = PassReport()
    for name in passes:
        if name == "eliminate_dead_nodes":
            graph, step = eliminate_dead_nodes(graph, outputs)
        elif name == "merge_common_subexpressions":
            graph, step = merge_common_subexpressions(graph, outputs, separate=separate)
        elif name == "fold_constants":
            graph, step = fold_constants(graph)
        else:
            raise ValueError(f"unknown graph pass {name!r}; choose from {', '.join(GRAPH_PASSES)}")
        report = report.then(step)
    return graph, report


_optimized: weakref.WeakKeyDictionary[Graph, tuple[int, dict[Any, tuple[Graph, PassReport]]]] = (
    weakref.WeakKeyDictionary()
)


def optimized_graph(
    graph: Graph,
    passes: tuple[str, ...],
    outputs: Iterable[str] | None = None,
    *,
    separate: Collection[str] = (),
) -> tuple[Graph, PassReport]:
    """`apply_passes`, cached until `graph` changes, so folded constants outlive a run."""
    outputs = None if outputs is None else tuple(outputs)
    key = (passes, outputs, frozenset(separate))
    version, cache = _optimized.get(graph, (None, {}))
    if version != graph.version:
        cache = {}
        _optimized[graph] = (graph.version, cache)
    if key not in cache:
        cache[key] = apply_passes(graph, passes, outputs, separate=separate)
    return cache[key]


# --- helpers --------------------------------------------------------------------------


def requested_outputs(graph: Graph, outputs: Iterable[str] | None, where: str) -> list[str]:
    """`outputs` checked against `graph` (a single id may be a str); `None`: the sinks."""
    if outputs is None:
        return graph.sinks()
    if isinstance(outputs, str):
        outputs = [outputs]
    wanted = list(dict.fromkeys(outputs))
    unknown = [n for n in wanted if n not in graph]
    if unknown:
        known = ", ".join(list(graph.nodes)[:8]) or "none"
        raise UnknownNodeError(
            f"{where}(outputs=...): no node {', '.join(map(repr, unknown))} in this graph "
            f"(nodes: {known}); name the node ids whose outputs you want"
        )
    return wanted


def _rebuild(
    graph: Graph,
    report: PassReport,
    order: list[str],
    *,
    operator: Callable[[Node], Operator | None] = lambda node: None,
    incoming: Callable[[str], list[Edge]] | None = None,
) -> Graph:
    """A new graph with the nodes `order` names (ids and names kept, operators replaced
    where `operator` returns one) and their edges, added in their original order so
    positional arguments keep their places. Its `pass_report` adds `report` to `graph`'s."""
    new = type(graph)()
    for node_id in order:
        node = graph.nodes[node_id]
        new.add_node(operator(node) or node.operator, node_id=node_id, name=node.name)
    for node_id in order:
        for edge in incoming(node_id) if incoming else graph.incoming(node_id):
            new.add_edge(edge.src, edge.dst, field_mappings=edge.field_mappings)
    new.pass_report = (graph.pass_report or PassReport()).then(report)
    return new


def _operator_key(operator: Operator) -> tuple[Any, ...]:
    # `g.add_node(f)` wraps a plain function anew each time: two wrappers of one
    # function with the same flags are the same operator
    if isinstance(operator, FunctionOperator):
        return ("function", id(operator.fn), operator.numeric, operator.pure)
    return ("operator", id(operator))


def _inputs_key(graph: Graph, node_id: str, merged: Mapping[str, str]) -> tuple[Any, ...]:
    return tuple(
        (
            merged.get(edge.src, edge.src),
            None if edge.field_mappings is None else tuple(sorted(edge.field_mappings.items())),
        )
        for edge in graph.incoming(node_id)
    )


def _passthroughs(graph: Graph, merged: Mapping[str, str], wanted: set[str]) -> set[str]:
    """Merged nodes that must keep their id: requested outputs, and those whose consumer
    would otherwise receive the same producer over two edges (a graph has one edge per
    pair of nodes)."""
    keep = {n for n in merged if n in wanted}
    for node_id in graph.nodes:
        edges = graph.incoming(node_id)
        sources = [merged.get(e.src, e.src) for e in edges]
        # keeping a node gives its edge back its own id, so no new clash can appear
        keep |= {e.src for e, src in zip(edges, sources, strict=True)
                 if e.src in merged and sources.count(src) > 1}  # fmt: skip
    return keep


def _merged_incoming(
    graph: Graph, node_id: str, merged: Mapping[str, str], passthrough: set[str]
) -> list[Edge]:
    if node_id in passthrough:
        from ._graph import Edge

        return [Edge(merged[node_id], node_id)]  # positional: `_SameAs` passes it through
    return [
        dataclasses.replace(edge, src=merged[edge.src])
        if edge.src in merged and edge.src not in passthrough
        else edge
        for edge in graph.incoming(node_id)
    ]


def _is_constant(graph: Graph, node: Node, constants: set[str]) -> bool:
    if isinstance(node.operator, _Folded):
        return True  # folded by an earlier pass
    if not is_pure(node.operator) or node.signature is None or node.accepts_any_keyword():
        return False
    edges = graph.incoming(node.node_id)
    if any(edge.src not in constants for edge in edges):
        return False
    return not _unfed_parameters(graph, node, edges)


def _unfed_parameters(graph: Graph, node: Node, edges: list[Edge]) -> list[str]:
    """Parameters a run's inputs could feed: those no edge feeds (see `execute_graph`)."""
    assert node.signature is not None
    params = list(node.signature.parameters.values())
    positional = sum(edge.field_mappings is None for edge in edges)
    fed = {p.name for p in params[:positional] if p.kind is not p.KEYWORD_ONLY}
    fed |= {param for edge in edges for param in (edge.field_mappings or {}).values()}
    return [
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in fed
        and p.name not in graph  # a parameter named like a node id is never fed by inputs
    ]


# --- the operators the passes put in --------------------------------------------------


class _SameAs(Operator):
    """A merged node kept as a pass-through of the node it was merged into."""

    pure = True

    def __init__(self, source: str):
        self.source = source

    def forward(self, value: Any) -> Any:
        return value

    @property
    def name(self) -> str:
        return f"same_as({self.source})"


class _Folded(Operator):
    """A constant node: calls its operator until one call succeeds, then returns that.

    It holds the operator's bound `forward`, not the operator, so it stays a leaf (`jit`
    never traces into it) while keeping the operator's name and signature.
    """

    pure = True

    def __init__(self, operator: Operator):
        self._forward = operator.forward
        self._name = operator.name
        self._signature = operator_signature(operator)
        self.__wrapped__ = vars(operator).get("__wrapped__") or operator.forward
        self._is_async = is_async_operator(operator)
        self._lock = threading.Lock()
        self._done = False
        self._value: Any = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def __signature__(self) -> Any:
        return self._signature

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._done:
            return self._ready() if self._is_async else self._value
        result = self._forward(*args, **kwargs)
        if self._is_async:
            return self._keep_when_done(result)
        return self._keep(result)

    def _keep(self, value: Any) -> Any:
        with self._lock:
            self._value, self._done = value, True
        return value

    async def _keep_when_done(self, pending: Any) -> Any:
        return self._keep(await pending)

    async def _ready(self) -> Any:
        return self._value

    def __repr__(self) -> str:
        return f"folded({self._name})"
