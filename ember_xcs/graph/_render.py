"""Text renderings of a `Graph` for docs and debugging: Mermaid and Graphviz DOT."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._graph import Edge, Graph


_MERMAID_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _edge_label(edge: Edge) -> str:
    if not edge.field_mappings:
        return ""
    return ", ".join(f"{field}→{param}" for field, param in edge.field_mappings.items())


def _escape(text: str) -> str:
    return text.replace('"', "'")


def _mermaid_ids(graph: Graph) -> dict[str, str]:
    """Node ids as Mermaid accepts them: plain words as they are, others as `n<index>`
    (the real id stays in the label). `end` is a Mermaid keyword."""
    return {
        node_id: node_id if _MERMAID_ID.fullmatch(node_id) and node_id != "end" else f"n{i}"
        for i, node_id in enumerate(graph.nodes)
    }


def to_mermaid(graph: Graph) -> str:
    """A Mermaid `graph TD` diagram; edges with mappings are labelled `field→param`."""
    ids = _mermaid_ids(graph)
    lines = ["graph TD"]
    for node in graph.nodes.values():
        label = f"{_escape(node.node_id)}: {_escape(node.name)}"
        lines.append(f'    {ids[node.node_id]}["{label}"]')
    for edge in graph.edges:
        label = _edge_label(edge)
        arrow = f"-->|{_escape(label)}|" if label else "-->"
        lines.append(f"    {ids[edge.src]} {arrow} {ids[edge.dst]}")
    return "\n".join(lines)


def to_dot(graph: Graph) -> str:
    """A Graphviz DOT digraph; render with `dot -Tpng`."""
    lines = ["digraph xcs {", "    rankdir=TB;"]
    for node in graph.nodes.values():
        lines.append(
            f'    "{_escape(node.node_id)}" [label="{_escape(node.node_id)}\\n{_escape(node.name)}"];'
        )
    for edge in graph.edges:
        label = _edge_label(edge)
        attrs = f' [label="{_escape(label)}"]' if label else ""
        lines.append(f'    "{_escape(edge.src)}" -> "{_escape(edge.dst)}"{attrs};')
    lines.append("}")
    return "\n".join(lines)
