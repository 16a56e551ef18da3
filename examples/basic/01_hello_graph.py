"""Tutorial 1, hello graph: build a graph by hand, run it one node at a time, then in parallel.

Purpose: the smallest complete ember_xcs program. Three drafts of an answer are
independent; a `pick` node waits for all three. Run sequentially it costs the sum of
the calls; run by the parallel (dataflow) scheduler it costs its longest chain.

Features: `xcs.op`, `xcs.Graph` (`add_node`, `add_edge`, `waves`, `critical_path`),
`xcs.execute_graph` with `ExecutionOptions(scheduler=...)`, `ExecutionResult.stats`.

How to run (page: docs/tutorials/01-hello-graph.md):

    python examples/basic/01_hello_graph.py
"""

# expect: ^waves: \[\['draft_a', 'draft_b', 'draft_c'\], \['pick'\]\]$
# expect: ^critical path: \['draft_[abc]', 'pick'\]$
# expect: ^sequential: 'c: what is XLA\?' after 4 nodes, at most 1 in flight$
# expect: ^parallel: 'c: what is XLA\?' after 4 nodes, at most 3 in flight$
# expect: ^sequential took \d+ ms, parallel \d+ ms$

# --8<-- [start:operators]
import time

import ember_xcs as xcs

LATENCY = 0.05  # seconds: stands in for one LLM call


@xcs.op
def draft(question: str, style: str) -> str:
    time.sleep(LATENCY)
    return f"{style}: {question}"


@xcs.op
def pick(*drafts: str) -> str:
    return max(drafts)  # a real program would ask a judge model


# --8<-- [end:operators]

# --8<-- [start:graph]
graph = xcs.Graph()
for style in ("a", "b", "c"):
    graph.add_node(draft, node_id=f"draft_{style}")
graph.add_node(pick, node_id="pick")
for style in ("a", "b", "c"):
    graph.add_edge(
        f"draft_{style}", "pick"
    )  # each output becomes pick's next argument

print("waves:", graph.waves())
print("critical path:", graph.critical_path())
# --8<-- [end:graph]

# --8<-- [start:inputs]
inputs = {
    "question": "what is XLA?",  # feeds every node that has a `question` parameter
    "draft_a": {"style": "a"},  # per-node keyword arguments
    "draft_b": {"style": "b"},
    "draft_c": {"style": "c"},
}
# --8<-- [end:inputs]

# --8<-- [start:run]
walls = {}
for scheduler in ("sequential", "parallel"):
    options = xcs.ExecutionOptions(scheduler=scheduler)
    result = xcs.execute_graph(graph, inputs, options=options)
    stats = result.stats
    walls[scheduler] = stats.wall_seconds
    print(
        f"{scheduler}: {result['pick']!r} after {stats.nodes_run} nodes,"
        f" at most {stats.max_in_flight} in flight"
    )
print(
    f"sequential took {walls['sequential'] * 1000:.0f} ms, parallel {walls['parallel'] * 1000:.0f} ms"
)
# --8<-- [end:run]
