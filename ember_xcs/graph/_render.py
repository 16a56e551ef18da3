"""Text renderings of a `Graph` for docs and debugging: Mermaid and Graphviz DOT."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._graph import Edge, Graph


def _edge_label(edge: Edge) -> str:
    if not edge.field_mappings:
        return ""
    return ", ".join(f"{field}→{param}" for field, param in edge.field_mappings.items())


def _escape(text: str) -> str:
    return text.replace('"', "'")


def to_mermaid(graph: Graph) -> str:
    """A Mermaid `graph TD` diagram; edges with mappings are labelled `field→param`."""
    lines = ["graph TD"]
    for node in graph.nodes.values():
        lines.append(f'    {node.node_id}["{_escape(node.node_id)}: {_escape(node.name)}"]')
    for edge in graph.edges:
        label = _edge_label(edge)
        arrow = f"-->|{_escape(label)}|" if label else "-->"
        lines.append(f"    {edge.src} {arrow} {edge.dst}")
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
