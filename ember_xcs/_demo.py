"""The explicit-graph demo (`ember-xcs demo --graph`): one graph, sequential vs parallel.

Twenty independent 50 ms "LLM calls" feed one join node, so the critical path is two
calls (100 ms) while running them one by one takes 21 calls (1.05 s).
"""

from __future__ import annotations

import time
from pathlib import Path

from ._options import ExecutionOptions
from .graph import Graph
from .operators import op
from .scheduling import Timeline, execute_graph


def _build(width: int, latency: float) -> Graph:
    @op
    def answer(question: str, unit: int) -> str:
        time.sleep(latency)
        return f"answer {unit} to {question!r}"

    @op
    def join(*answers: str) -> str:
        time.sleep(latency)
        return f"{len(answers)} answers joined"

    graph = Graph()
    units = [graph.add_node(answer, node_id=f"unit_{i}") for i in range(width)]
    graph.add_node(join, node_id="join")
    for unit in units:
        graph.add_edge(unit, "join")
    return graph


def write_timeline(timeline: Timeline, path: str | None) -> None:
    """`--timeline PATH`: write the Chrome trace and say how to open it."""
    if path is None:
        return
    timeline.to_chrome_trace(path)
    print(
        f"timeline: {len(timeline.records)} node attempts -> {Path(path)} "
        "(open it at https://ui.perfetto.dev or chrome://tracing)"
    )


def run_demo(quick: bool = False, timeline_path: str | None = None) -> int:
    latency = 0.005 if quick else 0.05
    width = 20
    graph = _build(width, latency)
    inputs = {
        "question": "What does XLA compile?",
        **{f"unit_{i}": {"unit": i} for i in range(width)},
    }
    print(f"graph: {width} independent calls of {latency * 1000:.0f} ms -> 1 join")
    print(
        f"critical path: {graph.critical_path_length():.0f} calls = {graph.critical_path_length() * latency * 1000:.0f} ms"
    )
    times = {}
    recorded = Timeline()
    for scheduler in ("sequential", "parallel"):
        hooks = (recorded,) if scheduler == "parallel" else ()
        start = time.perf_counter()
        options = ExecutionOptions(scheduler=scheduler, hooks=hooks)
        result = execute_graph(graph, inputs, options=options)
        times[scheduler] = time.perf_counter() - start
        print(f"{scheduler:>10}: {times[scheduler] * 1000:8.1f} ms  -> {result['join']}")
    print(f"speedup: {times['sequential'] / times['parallel']:.1f}x")
    write_timeline(recorded, timeline_path)
    return 0
