"""`Timeline.to_svg`: the graph and its timeline as SVG, critical path highlighted.

The SVG is parsed as XML; bars and boxes are found by their tooltips (`<title>`), so the
checks read what a viewer shows. The critical path is measured: `slow` sleeps and
`fast` does not, so `slow -> join` is the chain that set the wall time.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import pytest
from test_timeline_trace import run_flaky_and_broken

import ember_xcs as xcs
from ember_xcs.scheduling._timeline_svg import COLORS, CRITICAL

SVG = "{http://www.w3.org/2000/svg}"


@xcs.op
def slow(prompt: str) -> str:
    time.sleep(0.05)
    return prompt


@xcs.op
def fast(prompt: str) -> str:
    return prompt


@xcs.op
def join(a: str, b: str) -> str:
    return a + b


def diamond() -> xcs.Graph:
    graph = xcs.Graph()
    graph.add_node(slow, node_id="slow")
    graph.add_node(fast, node_id="fast")
    graph.add_node(join, node_id="join")
    graph.connect("slow", "join.a")
    graph.connect("fast", "join.b")
    return graph


def run(graph, **options):
    timeline = xcs.Timeline()
    xcs.execute_graph(
        graph, {"prompt": "p"}, options=xcs.ExecutionOptions(hooks=(timeline,), **options)
    )
    return timeline


def shapes(svg: str) -> dict[str, list[ET.Element]]:
    """Tooltip text -> the rects of the groups carrying it."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    found: dict[str, list[ET.Element]] = {}
    for group in root.iter(f"{SVG}g"):
        title = group.find(f"{SVG}title")
        found.setdefault(title.text, []).extend(group.iter(f"{SVG}rect"))
    return found


def fill_of(found, prefix: str) -> set[str]:
    return {
        rect.get("fill")
        for text, rects in found.items()
        if text.startswith(prefix)
        for rect in rects
    }


def test_svg_highlights_the_measured_critical_path_in_graph_and_timeline(tmp_path):
    graph = diamond()
    timeline = run(graph)
    path = tmp_path / "run.svg"
    svg = timeline.to_svg(path, graph=graph)
    assert path.read_text() == svg
    found = shapes(svg)
    boxes = {text.split(" ")[0]: rects for text, rects in found.items() if ")" == text[-1]}
    assert {node: rects[0].get("fill") for node, rects in boxes.items()} == {
        "slow": CRITICAL,
        "join": CRITICAL,
        "fast": "#e9ecef",
    }
    bars = {text.split(" ")[0]: rects for text, rects in found.items() if "ms, attempt" in text}
    assert set(bars) == {"slow", "fast", "join"}  # one bar per attempt
    assert bars["slow"][0].get("fill") == CRITICAL and bars["fast"][0].get("fill") == COLORS["ok"]
    root = ET.fromstring(svg)
    assert "critical path: slow → join" in root.find(f"{SVG}title").text
    thick = [line for line in root.iter(f"{SVG}line") if line.get("stroke") == CRITICAL]
    assert len(thick) == 1  # the one edge on the path: slow -> join
    assert timeline.critical_path(graph) == ["slow", "join"]


def test_svg_without_a_graph_draws_the_timeline_alone():
    timeline = run(diamond())
    found = shapes(timeline.to_svg())
    assert len([t for t in found if "ms, attempt" in t]) == 3
    assert CRITICAL not in fill_of(found, "")


def test_failed_and_retried_attempts_are_coloured_by_outcome():
    graph, timeline = run_flaky_and_broken()
    found = shapes(timeline.to_svg(graph=graph))
    assert fill_of(found, "broken (broken): ") == {COLORS["failed"]}
    assert fill_of(found, "flaky (flaky): ") >= {COLORS["retried"]}
    broken_box = found["broken (broken)"][0]
    assert broken_box.get("stroke") == COLORS["failed"]


def test_an_empty_timeline_draws_a_placeholder():
    svg = xcs.Timeline().to_svg()
    assert "(no nodes ran)" in svg
    ET.fromstring(svg)


def test_svg_needs_the_graph_that_ran():
    timeline = run(diamond())
    with pytest.raises(
        xcs.GraphError,
        match=r"^graph= needs the xcs.Graph that ran, got dict; for to_svg, leave graph out",
    ):
        timeline.to_svg(graph={"slow": "join"})
    other = xcs.Graph()
    other.add_node(fast, node_id="elsewhere")
    for draw in (lambda: timeline.to_svg(graph=other), lambda: timeline.critical_path(other)):
        with pytest.raises(
            xcs.GraphError, match=r"^graph=: none of the recorded nodes \(fast, join, slow\) is in"
        ):
            draw()


def test_node_ids_are_escaped_in_the_svg():
    graph = xcs.Graph()
    graph.add_node(fast, node_id="a<b>&c")
    timeline = run(graph)
    found = shapes(timeline.to_svg(graph=graph))  # parses: the id is escaped
    assert "a<b>&c (fast)" in found
