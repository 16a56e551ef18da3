"""`Graph`: operators as nodes, data dependencies as edges, backed by networkx.

**Edges and arguments.** An edge `src -> dst` passes `src`'s output into `dst`:

- *without* `field_mappings`, the whole output becomes the next positional argument of
  `dst`, in the order the edges were added (an edge beyond the operator's positional
  parameters, or onto one a mapping already feeds, is refused when it is added);
- *with* `field_mappings={output_field: input_param}`, `dst` receives
  `output[output_field]` (or `getattr(output, output_field)`) as keyword `input_param`.
  The field `"*"` stands for the whole output: `{"*": "documents"}`;
- with `field_mappings={}`, `dst` waits for `src` but receives nothing from it (an
  ordering-only edge, e.g. "warm the cache first").

Mappings are checked against the consumer's signature when the edge is added; a field
the producer does not return is reported when it runs, naming both nodes. An edge that
would close a cycle is refused when it is added, printing the cycle from the node added
first: `edge b -> a would close a cycle: a -> b -> a`. How graph `inputs` reach nodes is
described in `ember_xcs.scheduling.execute_graph`.

**Editing.** `remove_edge(src, dst)` and `remove_node(node_id)` (which also removes the
node's edges) bump `version`, so a plan cached for the old graph is never reused. After a
positional edge is removed, the later positional edges into the same node move up one
argument.

Analysis delegates to networkx: `waves()` is `nx.topological_generations`, and
`topological_order()` flattens the waves.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import networkx as nx

from .._errors import (
    CycleError,
    DuplicateNodeError,
    FieldMappingError,
    GraphError,
    UnknownNodeError,
)
from ..operators import Operator, op, operator_signature
from ._mappings import resolve_field_mappings
from ._passes import (
    PassReport,
    eliminate_dead_nodes,
    fold_constants,
    merge_common_subexpressions,
)

__all__ = ["WHOLE_OUTPUT", "Edge", "Graph", "Node", "XCSGraph"]

WHOLE_OUTPUT = "*"


@dataclasses.dataclass(frozen=True)
class Node:
    """A node: an operator under an id, with a readable name."""

    node_id: str
    operator: Operator
    name: str
    signature: inspect.Signature | None

    def parameter_names(self) -> tuple[str, ...]:
        """Names the operator accepts as keywords (empty when it cannot be inspected)."""
        if self.signature is None:
            return ()
        return tuple(
            p.name
            for p in self.signature.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )

    def positional_parameter_names(self) -> tuple[str, ...] | None:
        """Parameters positional edges fill, in order; `None` when any number fit."""
        if self.signature is None:
            return None
        params = self.signature.parameters.values()
        if any(p.kind is p.VAR_POSITIONAL for p in params):
            return None
        return tuple(
            p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        )

    def accepts_any_keyword(self) -> bool:
        if self.signature is None:
            return True
        return any(p.kind is p.VAR_KEYWORD for p in self.signature.parameters.values())


@dataclasses.dataclass(frozen=True)
class Edge:
    """A data dependency; `field_mappings` is `None` for a positional edge."""

    src: str
    dst: str
    field_mappings: Mapping[str, str] | None = None


class Graph:
    """A directed acyclic graph of operator calls.

    Nodes are operator calls under string ids; an edge `src -> dst` passes `src`'s
    output (or a field of it) into `dst`, see the module docstring. Run it with
    `execute_graph`; analyse it with `waves`, `critical_path`, `to_networkx`; draw it
    with `to_mermaid` or `to_dot`. Networkx holds the structure.

    !!! example
        ```python
        @xcs.op
        def retrieve(query: str) -> dict:
            return {"docs": [f"{query} doc {i}" for i in range(3)]}


        @xcs.op
        def rank(documents: list) -> str:
            return documents[0]


        g = xcs.Graph()
        g.add_node(retrieve, node_id="retrieve")
        g.add_node(rank, node_id="rank")
        g.connect("retrieve.docs", "rank.documents")  # rank(documents=out["docs"])
        results = xcs.execute_graph(g, {"query": "xla"})
        assert results == {"rank": "xla doc 0"}
        ```
    """

    pass_report: PassReport | None = None  # what the graph passes did, on graphs they return

    def __init__(self) -> None:
        self._g = nx.DiGraph()
        self._nodes: dict[str, Node] = {}
        self._incoming: dict[str, list[Edge]] = {}
        self._order: dict[str, int] = {}  # insertion rank: ties and cycles print in it
        self._ranks = itertools.count()
        # True while every edge points from an older node to a newer one: then a new
        # forward edge cannot close a cycle and add_edge skips the path search
        self._forward_only = True
        self._suffixes: dict[str, int] = {}  # next suffix to try per name
        self.version = 0  # bumped on every change; executors cache plans by it

    # --- building ---------------------------------------------------------------------

    def add_node(
        self,
        operator: Operator | Callable[..., Any],
        *,
        node_id: str | None = None,
        name: str | None = None,
    ) -> str:
        """Add `operator` (a plain function is wrapped with `op`) and return its id.

        Without `node_id`, the id is the operator's name, suffixed `_1`, `_2`, ... when
        that is taken. `name` is the readable label used in errors and renderings
        (default: the operator's name).

        **Returns:** the node id.

        **Raises:** `DuplicateNodeError` when `node_id` is taken; `GraphError` when
        `operator` is neither an `Operator` nor callable.

        !!! example
            ```python
            g = xcs.Graph()
            assert g.add_node(len) == "len"
            assert g.add_node(len) == "len_1"  # a fresh id
            assert g.add_node(len, node_id="count") == "count"
            ```
        """
        if not isinstance(operator, Operator):
            if not callable(operator):
                raise GraphError(
                    f"add_node() needs an Operator or a function, got {type(operator).__name__}"
                )
            operator = op(operator)
        if name is not None and (not isinstance(name, str) or not name):
            raise GraphError(
                f"add_node(name=...) must be a non-empty string, got {name!r}; the name "
                "labels the node in errors and renderings"
            )
        label = name or operator.name
        node_id = self._check_new_id(node_id) if node_id is not None else self._fresh_id(label)
        node = Node(node_id, operator, label, _signature_or_none(operator))
        self._nodes[node_id] = node
        self._incoming[node_id] = []
        self._order[node_id] = next(self._ranks)
        self._g.add_node(node_id)
        self.version += 1
        return node_id

    def add_edge(
        self, src: str, dst: str, *, field_mappings: Mapping[str, str] | None = None
    ) -> Graph:
        """Make `dst` depend on `src`; see the module docstring for how values flow.

        - `field_mappings=None`: `src`'s whole output is `dst`'s next positional argument;
        - `{"field": "param"}`: `output["field"]` (or `.field`) as keyword `param`;
          `{"*": "param"}` maps the whole output;
        - `{}`: an ordering-only edge.

        **Returns:** the graph itself, so calls chain.

        **Raises:** `UnknownNodeError` when either end is not in the graph;
        `CycleError` for an edge from a node to itself or one that would close a cycle
        (the graph is left unchanged); `FieldMappingError` when a mapping names a
        parameter `dst` does not take or one another edge already feeds; `GraphError`
        when a positional edge has no parameter left to fill, or the same edge is added
        twice without mappings.

        !!! example
            ```python
            g = xcs.Graph()
            g.add_node(lambda text: text.split(), node_id="split")
            g.add_node(lambda words: len(words), node_id="count")
            g.add_edge("split", "count")  # count(<split's output>)
            assert xcs.execute_graph(g, {"text": "a b c"}) == {"count": 3}
            ```
        """
        self._require(src, f"edge {src} -> {dst}")
        self._require(dst, f"edge {src} -> {dst}")
        self._check_no_cycle(src, dst)
        mappings = resolve_field_mappings(self._nodes[src], self._nodes[dst], field_mappings)
        if mappings is not None:
            self._check_mappings(src, dst, mappings)
        elif not any(edge.src == src for edge in self._incoming[dst]):
            self._check_positional(src, dst)
        edge = self._merge_with_existing(src, dst, mappings)
        self._g.add_edge(src, dst, field_mappings=edge.field_mappings)
        self._forward_only &= self._order[src] < self._order[dst]
        self.version += 1
        return self

    def remove_edge(self, src: str, dst: str) -> Graph:
        """Remove the edge `src -> dst` (all of its field mappings); returns the graph."""
        self._require(src, f"remove_edge({src!r}, {dst!r})")
        self._require(dst, f"remove_edge({src!r}, {dst!r})")
        if not self._g.has_edge(src, dst):
            feeders = ", ".join(e.src for e in self._incoming[dst]) or "nothing"
            raise GraphError(
                f"remove_edge({src!r}, {dst!r}): there is no edge {src} -> {dst}; {dst} is "
                f"fed by {feeders}"
            )
        self._incoming[dst] = [e for e in self._incoming[dst] if e.src != src]
        self._g.remove_edge(src, dst)
        self.version += 1
        return self

    def remove_node(self, node_id: str) -> Graph:
        """Remove `node_id` and every edge into or out of it; returns the graph.

        Nodes that consumed its output lose that input: a required parameter it fed is
        reported as missing when the graph next runs.
        """
        self._require(node_id, f"remove_node({node_id!r})")
        for dst in self._g.successors(node_id):
            self._incoming[dst] = [e for e in self._incoming[dst] if e.src != node_id]
        self._g.remove_node(node_id)
        del self._nodes[node_id], self._incoming[node_id], self._order[node_id]
        self.version += 1
        return self

    def connect(self, *endpoints: str, field_mappings: Any = None) -> Graph:
        """Fluent edges from `"node"` or `"node.field"` strings; returns the graph.

        - `connect("a", "b", "c")`: positional edges `a -> b -> c`.
        - `connect("retrieve.docs", "rank.documents")`: `rank(documents=out["docs"])`.
        - `connect("retrieve", "rank.documents")`: the whole output as `documents`.
        - `connect("retrieve.docs", "rank")`: `out["docs"]` as the next positional argument
          is not expressible; name the parameter instead.
        - `connect("retrieve", "rank", field_mappings=xcs.identity_mapping())`: two plain
          ids and any `field_mappings`, including `identity_mapping` and `prefix_mapping`.

        **Returns:** the graph itself, so calls chain.

        **Raises:** `GraphError` for fewer than two endpoints, a field on a graph of more
        than two endpoints, or a field without a parameter; and what `add_edge` raises.

        !!! example
            ```python
            g = xcs.Graph()
            for name in ("a", "b", "c"):
                g.add_node(lambda x=0: x + 1, node_id=name)
            g.connect("a", "b", "c")  # a -> b -> c, positional
            assert g.topological_order() == ["a", "b", "c"]
            ```
        """
        if field_mappings is not None:
            if len(endpoints) != 2 or any("." in e for e in endpoints):
                raise GraphError(
                    "connect(..., field_mappings=...) takes two plain node ids, e.g. "
                    "connect('retrieve', 'rank', field_mappings=xcs.identity_mapping())"
                )
            return self.add_edge(*endpoints, field_mappings=field_mappings)
        if len(endpoints) < 2:
            raise GraphError("connect() needs at least two endpoints, e.g. connect('a', 'b')")
        if len(endpoints) > 2 and any("." in e for e in endpoints):
            raise GraphError(
                "connect() with more than two endpoints takes plain node ids; "
                "use connect('a.field', 'b.param') one edge at a time for fields"
            )
        for src_spec, dst_spec in itertools.pairwise(endpoints):
            src, field = _split_endpoint(src_spec, "a node output")
            dst, param = _split_endpoint(dst_spec, "a node parameter")
            if field is not None and param is None:
                raise GraphError(
                    f"connect({src_spec!r}, {dst_spec!r}): a field needs a parameter to go "
                    f"to; write connect({src_spec!r}, '{dst}.<parameter>')"
                )
            mappings = None if param is None else {field or WHOLE_OUTPUT: param}
            self.add_edge(src, dst, field_mappings=mappings)
        return self

    # --- passes (see ember_xcs.graph._passes) -----------------------------------------

    def eliminate_dead_nodes(self, outputs: Iterable[str] | None = None) -> Graph:
        """A new graph without the nodes that none of `outputs` (default: the sinks) needs."""
        return eliminate_dead_nodes(self, outputs)[0]

    def merge_common_subexpressions(self, outputs: Iterable[str] | None = None) -> Graph:
        """A new graph where pure nodes calling one operator on the same inputs are one
        node; each of `outputs` (default: the sinks) keeps its id."""
        return merge_common_subexpressions(self, outputs)[0]

    def fold_constants(self) -> Graph:
        """A new graph where each pure node whose inputs are all constants runs once."""
        return fold_constants(self)[0]

    # --- queries ----------------------------------------------------------------------

    @property
    def nodes(self) -> Mapping[str, Node]:
        """Node id -> `Node`, in insertion order (read-only view)."""
        return _ReadOnly(self._nodes)

    @property
    def edges(self) -> list[Edge]:
        """Every edge, grouped by consumer in insertion order."""
        return [edge for edges in self._incoming.values() for edge in edges]

    def incoming(self, node_id: str) -> list[Edge]:
        """Edges into `node_id` in the order they were added (positional order)."""
        self._require(node_id, "incoming()")
        return list(self._incoming[node_id])

    def predecessors(self, node_id: str) -> list[str]:
        self._require(node_id, "predecessors()")
        return list(self._g.predecessors(node_id))

    def successors(self, node_id: str) -> list[str]:
        self._require(node_id, "successors()")
        return list(self._g.successors(node_id))

    def dependencies(self, node_id: str) -> set[str]:
        """Every node `node_id` depends on, directly or transitively."""
        self._require(node_id, "dependencies()")
        return set(nx.ancestors(self._g, node_id))

    def dependents(self, node_id: str) -> set[str]:
        """Every node that depends on `node_id`, directly or transitively."""
        self._require(node_id, "dependents()")
        return set(nx.descendants(self._g, node_id))

    def components(self) -> list[set[str]]:
        """Groups of nodes with no edges between groups (weakly connected components)."""
        return [set(c) for c in nx.weakly_connected_components(self._g)]

    def sources(self) -> list[str]:
        return [n for n in self._nodes if self._g.in_degree(n) == 0]

    def sinks(self) -> list[str]:
        return [n for n in self._nodes if self._g.out_degree(n) == 0]

    def validate(self) -> Graph:
        """Check that the graph is a DAG.

        `add_edge` already refuses an edge that would close a cycle, so any graph built
        with these methods passes; the engine calls `validate` before it plans a run.

        **Returns:** the graph itself.

        **Raises:** `CycleError` printing the cycle (`a -> b -> a`), starting at the node
        added first.

        !!! example
            ```python
            g = xcs.Graph()
            g.add_node(lambda x: x, node_id="a")
            g.add_node(lambda x: x, node_id="b")
            g.add_edge("a", "b")
            assert g.validate() is g
            ```
        """
        if not nx.is_directed_acyclic_graph(self._g):
            cycle = [u for u, _ in nx.find_cycle(self._g)]
            first = min(range(len(cycle)), key=lambda k: self._order[cycle[k]])
            raise CycleError(cycle[first:] + cycle[:first])  # start at the oldest node
        return self

    def waves(self) -> list[list[str]]:
        """Topological generations: each wave depends only on earlier waves.

        Wave 0 holds the nodes with no dependencies; nodes keep insertion order within a
        wave. A view for analysis and the `"wave"` scheduler; the parallel scheduler does
        not wait for waves.

        **Returns:** a list of waves, each a list of node ids.

        **Raises:** `CycleError` when the graph has a cycle.

        !!! example
            ```python
            g = xcs.Graph()
            for name in ("a", "b", "judge"):
                g.add_node(lambda *xs: xs, node_id=name)
            g.add_edge("a", "judge")
            g.add_edge("b", "judge")
            assert g.waves() == [["a", "b"], ["judge"]]
            ```
        """
        self.validate()
        order = self._order
        return [sorted(w, key=order.__getitem__) for w in nx.topological_generations(self._g)]

    def topological_order(self) -> list[str]:
        """Node ids such that every edge points forward (the waves, flattened).

        **Returns:** every node id once. **Raises:** `CycleError` for a cyclic graph.
        """
        return [n for wave in self.waves() for n in wave]

    def critical_path(
        self, weights: Mapping[str, float] | Callable[[Node], float] | None = None
    ) -> list[str]:
        """The heaviest dependency chain; node weights default to 1 (one call each).

        `weights` is a mapping `{node_id: weight}` (missing nodes weigh 1) or a function
        of the `Node`. No schedule can finish the graph faster than this chain.

        **Returns:** the node ids of the chain, first to last (`[]` for an empty graph).

        **Raises:** `CycleError` for a cyclic graph.

        !!! example
            ```python
            g = xcs.Graph()
            for name in ("fast", "slow", "join"):
                g.add_node(lambda *xs: xs, node_id=name)
            g.add_edge("fast", "join")
            g.add_edge("slow", "join")
            assert g.critical_path({"slow": 3.0}) == ["slow", "join"]
            assert g.critical_path_length({"slow": 3.0}) == 4.0
            ```
        """
        weight = self._weight_fn(weights)
        best: dict[str, tuple[float, str | None]] = {}
        for n in self.topological_order():
            preds = [(best[p][0], p) for p in self._g.predecessors(n)]
            top = max(preds, default=(0.0, None))
            best[n] = (top[0] + weight(n), top[1])
        if not best:
            return []
        node: str | None = max(best, key=lambda n: best[n][0])
        path = []
        while node is not None:
            path.append(node)
            node = best[node][1]
        return path[::-1]

    def critical_path_length(
        self, weights: Mapping[str, float] | Callable[[Node], float] | None = None
    ) -> float:
        """Total weight of `critical_path(weights)`; with unit weights, its node count.

        **Returns:** a float. **Raises:** `CycleError` for a cyclic graph.
        """
        weight = self._weight_fn(weights)
        return float(sum(weight(n) for n in self.critical_path(weights)))

    def to_networkx(self) -> nx.DiGraph:
        """A copy as `networkx.DiGraph`: `operator`/`name` node attributes and
        `field_mappings` edge attributes."""
        g = nx.DiGraph()
        for node in self._nodes.values():
            g.add_node(node.node_id, operator=node.operator, name=node.name)
        for edge in self.edges:
            g.add_edge(edge.src, edge.dst, field_mappings=edge.field_mappings)
        return g

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart (`graph TD`), edges labelled with mappings.

        **Returns:** Mermaid source text, for Markdown renderers that draw it.
        """
        from ._render import to_mermaid

        return to_mermaid(self)

    def to_dot(self) -> str:
        """The graph in Graphviz DOT, edges labelled with their field mappings.

        **Returns:** DOT source text (`dot -Tsvg` draws it).
        """
        from ._render import to_dot

        return to_dot(self)

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    def __repr__(self) -> str:
        return f"Graph({len(self._nodes)} nodes, {self._g.number_of_edges()} edges)"

    # --- helpers ----------------------------------------------------------------------

    def _weight_fn(self, weights: Any) -> Callable[[str], float]:
        if weights is None:
            return lambda n: 1.0
        if callable(weights):
            return lambda n: _weight(_call_weights(weights, self._nodes[n]), n)
        if not isinstance(weights, Mapping):
            raise GraphError(
                f"weights must be a dict {{node_id: seconds}}, a function of a Node, or "
                f"None, got {type(weights).__name__}"
            )
        return lambda n: _weight(weights.get(n, 1.0), n)

    def _require(self, node_id: str, where: str) -> None:
        if not isinstance(node_id, str):
            raise UnknownNodeError(
                f"{where}: node ids are strings, got {node_id!r} ({type(node_id).__name__}); "
                "use the id add_node() returned"
            )
        if node_id not in self._nodes:
            known = ", ".join(list(self._nodes)[:8]) or "none yet"
            raise UnknownNodeError(
                f"{where}: no node {node_id!r} in this graph (nodes: {known}); "
                "add it with add_node() first"
            )

    def _check_new_id(self, node_id: str) -> str:
        if not isinstance(node_id, str) or not node_id:
            raise GraphError(f"node_id must be a non-empty string, got {node_id!r}")
        if "." in node_id:
            raise GraphError(
                f"node id {node_id!r} contains '.', which connect() uses to separate a node "
                "from a field; choose an id without dots"
            )
        if node_id in self._nodes:
            raise DuplicateNodeError(
                f"node id {node_id!r} is already used by {self._nodes[node_id].name}; "
                "pick another node_id or leave it out to get a fresh one"
            )
        return node_id

    def _check_no_cycle(self, src: str, dst: str) -> None:
        """Refuse `src -> dst` when `dst` already reaches `src`, printing the cycle."""
        if src == dst:
            raise CycleError([src])
        if self._forward_only and self._order[src] < self._order[dst]:
            return
        if not nx.has_path(self._g, dst, src):
            return
        cycle = nx.shortest_path(self._g, dst, src)
        first = min(range(len(cycle)), key=lambda k: self._order[cycle[k]])
        raise CycleError(cycle[first:] + cycle[:first], closing=(src, dst))

    def _fresh_id(self, label: str) -> str:
        base = label.replace(".", "_") or "node"
        if base not in self._nodes:
            return base
        suffix = self._suffixes.get(base, 1)
        while f"{base}_{suffix}" in self._nodes:
            suffix += 1
        self._suffixes[base] = suffix + 1
        return f"{base}_{suffix}"

    def _check_mappings(self, src: str, dst: str, mappings: dict[str, str]) -> None:
        node = self._nodes[dst]
        taken = {
            param
            for edge in self._incoming[dst]
            if edge.src != src and edge.field_mappings
            for param in edge.field_mappings.values()
        }
        for field, param in mappings.items():
            if not isinstance(field, str) or not isinstance(param, str):
                raise FieldMappingError(
                    f"edge {src} -> {dst}: field_mappings must map output field names to "
                    f"parameter names (strings), got {field!r}: {param!r}"
                )
            if param in taken or param in self._positionally_fed(dst):
                raise FieldMappingError(
                    f"edge {src} -> {dst}: parameter {param!r} of {dst} is already fed by "
                    "another edge; each parameter takes one producer"
                )
            if param not in node.parameter_names() and not node.accepts_any_keyword():
                accepted = ", ".join(node.parameter_names()) or "no keyword parameters"
                raise FieldMappingError(
                    f"edge {src} -> {dst} maps field {field!r} to parameter {param!r}, but "
                    f"{dst} ({node.name}) takes ({accepted}); map to one of those"
                )

    def _positionally_fed(self, dst: str) -> tuple[str, ...]:
        slots = self._nodes[dst].positional_parameter_names() or ()
        count = sum(edge.field_mappings is None for edge in self._incoming[dst])
        return slots[:count]

    def _check_positional(self, src: str, dst: str) -> None:
        node = self._nodes[dst]
        slots = node.positional_parameter_names()
        if slots is None:
            return
        fed = self._positionally_fed(dst)
        if len(fed) == len(slots):
            feeders = [e.src for e in self._incoming[dst] if e.field_mappings is None]
            raise GraphError(
                f"edge {src} -> {dst}: {dst} ({node.name}) takes {len(slots)} positional "
                f"argument(s) ({', '.join(slots) or 'none'}), already fed by "
                f"{', '.join(feeders) or 'nothing'}; map this output to a parameter with "
                f"connect('{src}', '{dst}.<parameter>')"
            )
        param = slots[len(fed)]
        for edge in self._incoming[dst]:
            if edge.field_mappings and param in edge.field_mappings.values():
                raise FieldMappingError(
                    f"edge {src} -> {dst} would pass {src}'s output as parameter {param!r} "
                    f"of {dst} ({node.name}), which the edge from {edge.src} already feeds; "
                    "name the parameter with field_mappings instead"
                )

    def _merge_with_existing(self, src: str, dst: str, mappings: dict[str, str] | None) -> Edge:
        edges = self._incoming[dst]
        for i, edge in enumerate(edges):
            if edge.src != src:
                continue
            if edge.field_mappings is None or mappings is None:
                raise GraphError(
                    f"edge {src} -> {dst} already exists; give all fields in one "
                    "field_mappings dict instead of adding the edge twice"
                )
            merged = Edge(src, dst, {**edge.field_mappings, **mappings})
            edges[i] = merged
            return merged
        edge = Edge(src, dst, mappings)
        edges.append(edge)
        return edge


XCSGraph = Graph


class _ReadOnly(Mapping[str, Node]):
    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Node]):
        self._data = data

    def __getitem__(self, key: str) -> Node:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def _split_endpoint(spec: str, what: str) -> tuple[str, str | None]:
    if not isinstance(spec, str):
        raise GraphError(f"connect() takes 'node' or 'node.field' strings, got {spec!r}")
    node, dot, field = spec.partition(".")
    if not node or (dot and not field):
        raise GraphError(
            f"connect(): {spec!r} is not 'node' or 'node.field'; name {what} like "
            "'retrieve' or 'retrieve.docs'"
        )
    return node, (field or None)


def _call_weights(weights: Callable[[Node], Any], node: Node) -> Any:
    try:
        return weights(node)
    except Exception as exc:
        raise GraphError(
            f"the weights function {getattr(weights, '__name__', weights)!r} raised "
            f"{type(exc).__name__} for node {node.node_id!r}: {exc}; it is called with each "
            "Node and returns a number >= 0"
        ) from exc


def _weight(value: Any, node_id: str) -> float:
    try:  # float() takes NumPy scalars too
        number = float(value) if not isinstance(value, bool | str | bytes) else -1.0
    except (TypeError, ValueError):
        number = -1.0
    if not number >= 0:  # also true for NaN
        raise GraphError(
            f"the weight of node {node_id!r} must be a number >= 0 (e.g. seconds), got {value!r}"
        )
    return number


def _signature_or_none(operator: Operator) -> inspect.Signature | None:
    try:
        return operator_signature(operator)
    except (TypeError, ValueError):  # builtins without introspectable signatures
        return None
