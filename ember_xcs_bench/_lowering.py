"""Lowering a benchmark program to leaf calls with dependencies, and to a `Graph`.

A `Lowered` program is the neutral form every contender shares: its leaf operators in
a topological order, each with the ids of the leaves whose outputs are its positional
arguments (no dependencies = it takes the program's input). The explicit-graph variants
run `to_graph(lowered)`; the hand-written baselines walk `lowered.nodes` themselves.

The critical path is computed from the graph (`Graph.critical_path` with each LLM
leaf weighted by its latency and every other leaf by 0), so "wall / critical path" is
measured against the exact best any scheduler could do.
"""

from __future__ import annotations

import dataclasses

from ember_xcs.graph import Graph
from ember_xcs.operators import Operator, operator_signature

from ._programs import Chain, Ensemble, Layered

__all__ = ["LNode", "Lowered", "critical_path", "lower", "root_parameters", "to_graph"]


@dataclasses.dataclass(frozen=True)
class LNode:
    """One leaf call: its operator, the leaves it reads, and its simulated latency."""

    node_id: str
    operator: Operator
    deps: tuple[str, ...]
    weight: float


@dataclasses.dataclass
class Lowered:
    """A program as leaf calls in topological order, plus its outputs (`sinks`)."""

    nodes: list[LNode]
    sinks: list[str]

    def successors(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {n.node_id: [] for n in self.nodes}
        for node in self.nodes:
            for dep in node.deps:
                out[dep].append(node.node_id)
        return out

    def width(self) -> int:
        """The widest topological generation: calls that could ever run at once."""
        level: dict[str, int] = {}
        for node in self.nodes:
            level[node.node_id] = 1 + max((level[d] for d in node.deps), default=-1)
        counts: dict[int, int] = {}
        for value in level.values():
            counts[value] = counts.get(value, 0) + 1
        return max(counts.values(), default=0)

    def total_latency(self) -> float:
        """Seconds of simulated waiting if every call ran one after another."""
        return sum(n.weight for n in self.nodes)


def lower(program: Operator) -> Lowered:
    """Flatten `program` into leaf calls; raises on duplicate leaf names."""
    nodes: list[LNode] = []
    sinks = _walk(program, (), nodes)
    ids = [n.node_id for n in nodes]
    if len(set(ids)) != len(ids):
        raise ValueError("benchmark programs need unique leaf names")
    return Lowered(nodes, sinks)


def _walk(operator: Operator, upstream: tuple[str, ...], nodes: list[LNode]) -> list[str]:
    if isinstance(operator, Chain):
        for step in operator.steps:
            upstream = tuple(_walk(step, upstream, nodes))
        return list(upstream)
    if isinstance(operator, Ensemble):
        answers = [_walk(unit, upstream, nodes)[0] for unit in operator.units]
        return _walk(operator.judge, tuple(answers), nodes)
    if isinstance(operator, Layered):
        return _walk_layers(operator, upstream, nodes)
    return [_leaf(operator, upstream, nodes)]


def _walk_layers(program: Layered, upstream: tuple[str, ...], nodes: list[LNode]) -> list[str]:
    grid = program.rows()
    row = [_leaf(leaf, upstream, nodes) for leaf in grid[0]]
    width = len(row)
    for leaves in grid[1:]:
        row = [_leaf(leaf, (row[i], row[(i + 1) % width]), nodes) for i, leaf in enumerate(leaves)]
    return row


def _leaf(operator: Operator, deps: tuple[str, ...], nodes: list[LNode]) -> str:
    weight = float(getattr(operator, "latency", 0.0))  # LLM leaves declare their latency
    nodes.append(LNode(operator.name, operator, deps, weight))
    return operator.name


def to_graph(lowered: Lowered) -> Graph:
    """The same calls as an explicit `Graph` with positional edges."""
    graph = Graph()
    for node in lowered.nodes:
        graph.add_node(node.operator, node_id=node.node_id)
        for dep in node.deps:
            graph.add_edge(dep, node.node_id)
    return graph


def root_parameters(lowered: Lowered) -> tuple[str, ...]:
    """The first parameter of every root: `execute_graph` feeds the input under these."""
    names = {
        next(iter(operator_signature(n.operator).parameters)) for n in lowered.nodes if not n.deps
    }
    return tuple(sorted(names))


def critical_path(graph: Graph, lowered: Lowered) -> tuple[float, int]:
    """(seconds, LLM calls) along the heaviest dependency chain of `graph`."""
    weights = {n.node_id: n.weight for n in lowered.nodes}
    path = graph.critical_path(weights)
    return sum(weights[n] for n in path), sum(1 for n in path if weights[n] > 0)
