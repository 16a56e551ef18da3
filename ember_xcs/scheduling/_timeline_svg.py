"""A `Timeline` (and the graph that ran) as one SVG picture, written by hand.

Plain SVG text, so a picture costs no plotting library at runtime and opens in any
browser. Two panels share the width:

- **graph** (when given): nodes in columns by wave (`Graph.waves()`), edges as lines;
- **timeline**: one row per track (a thread, or a lane of the async thread: see
  `pack_lanes`), one bar per node attempt, a millisecond axis, and a tooltip (`<title>`)
  per bar with the node, operator, duration, attempt and outcome.

The **critical path** is the graph's heaviest chain weighted by *measured* seconds (each
node's attempts summed; a node that did not run weighs 0): the chain that set the wall
time. Its nodes and edges are drawn in orange in both panels. Failed attempts are red,
attempts that were retried amber.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from html import escape
from typing import Any

from .._errors import GraphError
from ..graph import Graph
from ._trace_export import pack_lanes

__all__ = ["check_graph", "critical_nodes", "timeline_svg"]

WIDTH = 960
MARGIN = 12
LABEL_WIDTH = 170  # track names in the timeline panel
ROW = 18
CRITICAL = "#e76f51"
COLORS = {"ok": "#4c78a8", "retried": "#f4a261", "failed": "#d62828"}
FONT = 'font-family="Helvetica, Arial, sans-serif" font-size="11"'


def critical_nodes(records: Sequence[Any], graph: Graph) -> list[str]:
    """The graph's heaviest chain by measured seconds (see the module docs)."""
    measured: dict[str, float] = defaultdict(float)
    for r in records:
        measured[r.node_id] += r.end - r.start
    return graph.critical_path({n: measured.get(n, 0.0) for n in graph.nodes})


def timeline_svg(records: Sequence[Any], *, graph: Graph | None = None) -> str:
    """The SVG document for `records` (and `graph`); see the module docs."""
    critical: list[str] = []
    parts: list[str] = []
    top = MARGIN
    if graph is not None:
        check_graph(graph, records)
        critical = critical_nodes(records, graph) if records else []
        failed = {r.node_id for r in records if r.outcome == "failed"}
        height = _graph_panel(parts, graph, set(critical), failed, top)
        top += height + 2 * MARGIN
    top += _gantt_panel(parts, records, set(critical), top)
    title = "ember_xcs timeline" + (f", critical path: {' → '.join(critical)}" if critical else "")
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{top + MARGIN}" '
        f'viewBox="0 0 {WIDTH} {top + MARGIN}" {FONT}>'
        f"<title>{escape(title)}</title>"
        f'<rect width="100%" height="100%" fill="white"/>'
    )
    return "\n".join([head, *parts, "</svg>\n"])


def check_graph(graph: Any, records: Sequence[Any]) -> None:
    """Raise `GraphError` unless `graph` is a `Graph` holding some recorded node."""
    if not isinstance(graph, Graph):
        raise GraphError(
            f"graph= needs the xcs.Graph that ran, got {type(graph).__name__}; "
            "for to_svg, leave graph out to draw the timeline alone"
        )
    ran = {r.node_id for r in records}
    if ran and not ran & set(graph.nodes):
        shown = ", ".join(sorted(ran)[:5])
        raise GraphError(
            f"graph=: none of the recorded nodes ({shown}) is in this graph; "
            "pass the graph this timeline recorded"
        )


# --- graph panel -------------------------------------------------------------------------


def _graph_panel(
    parts: list[str], graph: Graph, critical: set[str], failed: set[str], top: int
) -> int:
    waves = graph.waves()
    if not waves:
        return 0
    deepest = max(len(w) for w in waves)
    row = ROW + 6 if deepest <= 30 else max(3.0, 720 / deepest)  # wide ensembles: no labels
    column = (WIDTH - 2 * MARGIN) / len(waves)
    box_w, box_h = min(column * 0.7, 140), min(ROW, row * 0.8)
    height = deepest * row
    where: dict[str, tuple[float, float]] = {}
    for i, wave in enumerate(waves):
        offset = (height - len(wave) * row) / 2  # centre each wave vertically
        for j, node_id in enumerate(wave):
            where[node_id] = (MARGIN + i * column, top + 14 + offset + j * row)
    parts.append(f'<text x="{MARGIN}" y="{top + 9}" font-weight="bold">graph</text>')
    on_path = set(zip(_ordered(critical, graph), _ordered(critical, graph)[1:], strict=False))
    for edge in graph.edges:
        (x1, y1), (x2, y2) = where[edge.src], where[edge.dst]
        hot = (edge.src, edge.dst) in on_path
        colour, width = (CRITICAL, 2.5) if hot else ("#adb5bd", 0.8)
        parts.append(
            f'<line x1="{x1 + box_w:.1f}" y1="{y1 + box_h / 2:.1f}" x2="{x2:.1f}" '
            f'y2="{y2 + box_h / 2:.1f}" stroke="{colour}" stroke-width="{width}"/>'
        )
    for node_id, (x, y) in where.items():
        fill = CRITICAL if node_id in critical else "#e9ecef"
        stroke = COLORS["failed"] if node_id in failed else "#495057"
        parts.append(
            f"<g><title>{escape(node_id)} ({escape(graph.nodes[node_id].name)})</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{box_w:.1f}" height="{box_h:.1f}" rx="3" '
            f'fill="{fill}" stroke="{stroke}"/>'
            + (_label(x + 4, y + box_h - 5, node_id, box_w - 8) if box_h >= 12 else "")
            + "</g>"
        )
    return int(height + 14)


def _ordered(critical: set[str], graph: Graph) -> list[str]:
    return [n for n in graph.topological_order() if n in critical]


# --- timeline panel ----------------------------------------------------------------------


def _gantt_panel(parts: list[str], records: Sequence[Any], critical: set[str], top: int) -> int:
    parts.append(f'<text x="{MARGIN}" y="{top + 9}" font-weight="bold">timeline</text>')
    if not records:
        parts.append(f'<text x="{MARGIN}" y="{top + 28}">(no nodes ran)</text>')
        return 36
    tracks = pack_lanes(records)
    rows: dict[tuple[int, str], int] = {}
    for r in sorted(records, key=lambda r: r.start):
        rows.setdefault(tracks[id(r)], len(rows))
    t0 = min(r.start for r in records)
    span = max(max(r.end for r in records) - t0, 1e-9)
    left, width = MARGIN + LABEL_WIDTH, WIDTH - 2 * MARGIN - LABEL_WIDTH
    scale = width / span
    body = top + 16
    for (_, name), i in rows.items():
        y = body + i * ROW
        parts.append(_label(MARGIN, y + ROW - 5, name, LABEL_WIDTH - 6))
    for r in records:
        y = body + rows[tracks[id(r)]] * ROW
        x, w = left + (r.start - t0) * scale, max((r.end - r.start) * scale, 1.0)
        fill = CRITICAL if r.node_id in critical and r.ok else COLORS[r.outcome]
        tip = (
            f"{r.node_id} ({r.name}): {(r.end - r.start) * 1e3:.2f} ms, attempt {r.attempt}, "
            f"{r.outcome}" + (f" ({r.error})" if r.error else "")
        )
        parts.append(
            f'<g><title>{escape(tip)}</title><rect x="{x:.2f}" y="{y + 2}" width="{w:.2f}" '
            f'height="{ROW - 4}" fill="{fill}" stroke="white" stroke-width="0.5"/>'
            + (_label(x + 3, y + ROW - 5, r.node_id, w - 6, "white") if w > 30 else "")
            + "</g>"
        )
    axis = body + len(rows) * ROW + 4
    parts.extend(_axis(left, width, axis, span))
    return axis - top + 20


def _axis(left: float, width: float, y: float, span: float) -> list[str]:
    step = _nice_step(span * 1e3 / 8)  # about eight ticks, in ms
    out = [f'<line x1="{left}" y1="{y}" x2="{left + width}" y2="{y}" stroke="#495057"/>']
    ticks = int(span * 1e3 / step) + 1
    for k in range(ticks):
        x = left + k * step / 1e3 * width / span
        out.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" stroke="#495057"/>')
        out.append(f'<text x="{x:.1f}" y="{y + 15}" text-anchor="middle">{k * step:g} ms</text>')
    return out


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least `raw`."""
    power = 10 ** math.floor(math.log10(max(raw, 1e-6)))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _label(x: float, y: float, text: str, room: float, fill: str = "#212529") -> str:
    fits = max(int(room / 6.2), 0)  # ~6 px per character at 11 px
    shown = text if len(text) <= fits else text[: max(fits - 1, 0)] + "…"
    if not shown:
        return ""
    return f'<text x="{x:.1f}" y="{y:.1f}" fill="{fill}">{escape(shown)}</text>'
