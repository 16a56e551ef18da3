"""Record a run's timeline; write it as a Chrome trace and as an SVG picture.

Purpose: see where the time of a run went. A `Timeline` hook records every node attempt
(start, end, thread, attempt, outcome); `to_chrome_trace` writes trace-event JSON that
Perfetto (https://ui.perfetto.dev) and chrome://tracing open, one track per worker
thread; `to_svg` draws the graph above its timeline with the critical path (by measured
durations) in orange.

Features: `xcs.Timeline`, `ExecutionOptions(hooks=...)`, `Timeline.to_chrome_trace`,
`Timeline.to_svg(graph=...)`, `Timeline.render` (ASCII).

How to run: `python examples/advanced/61_timeline_trace.py`; it writes into a temporary
directory and prints the paths, so open them before the next run replaces them.
"""

# expect: ^ran 6 nodes on the parallel scheduler, up to 5 at once$
# expect: ^wrote .*trace\.json: 6 node slices on \d+ tracks \(open it at https://ui\.perfetto\.dev\)$
# expect: ^wrote .*timeline\.svg: \d+ bytes, critical path research -> judge$
# expect: ^research +\|#+

import json
import tempfile
import time
from pathlib import Path

import ember_xcs as xcs


def slow_call(name: str, seconds: float) -> xcs.Operator:
    """A stand-in for an LLM call that takes `seconds`."""

    def call(question: str) -> str:
        time.sleep(seconds)
        return f"{name} on {question!r}"

    return xcs.op(call, name=name)


@xcs.op
def judge(*answers: str) -> str:
    time.sleep(0.02)
    return f"best of {len(answers)}"


def build() -> xcs.Graph:
    graph = xcs.Graph()
    graph.add_node(slow_call("research", 0.12), node_id="research")
    for i in range(4):
        graph.add_node(slow_call("draft", 0.04), node_id=f"draft_{i}")
    graph.add_node(judge, node_id="judge")
    for source in ["research", *(f"draft_{i}" for i in range(4))]:
        graph.add_edge(source, "judge")
    return graph


def main() -> None:
    graph = build()
    timeline = xcs.Timeline()
    options = xcs.ExecutionOptions(hooks=(timeline,), scheduler="parallel")
    xcs.execute_graph(graph, {"question": "what does XLA fuse?"}, options=options)
    print(
        f"ran {len(timeline.records)} nodes on the {timeline.runs[0].scheduler} scheduler, "
        f"up to {timeline.max_concurrency()} at once"
    )

    out = Path(tempfile.mkdtemp(prefix="ember_xcs_timeline_"))
    trace_path = out / "trace.json"
    trace = timeline.to_chrome_trace(trace_path)
    slices = [e for e in json.loads(trace_path.read_text())["traceEvents"] if e["ph"] == "X"]
    nodes = [e for e in slices if e["cat"] == "node"]
    tracks = len({(e["pid"], e["tid"]) for e in trace["traceEvents"] if e["ph"] == "X"})
    print(
        f"wrote {trace_path}: {len(nodes)} node slices on {tracks} tracks "
        "(open it at https://ui.perfetto.dev)"
    )

    svg_path = out / "timeline.svg"
    svg = timeline.to_svg(svg_path, graph=graph)
    path = " -> ".join(timeline.critical_path(graph))
    print(f"wrote {svg_path}: {len(svg.encode())} bytes, critical path {path}")
    print(timeline.render(width=40))


if __name__ == "__main__":
    main()
