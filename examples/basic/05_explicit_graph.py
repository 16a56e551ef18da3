"""An explicit graph: retrieval feeding three answers and a judge, with field mappings.

Builds the graph by hand, runs it with the sequential and the parallel scheduler, checks
both give the same answer, and draws the parallel run as a timeline.

    python examples/basic/05_explicit_graph.py
"""

# expect: ^graph: 6 nodes, critical path 3 calls$
# expect: ^sequential: +\d+ ms
# expect: ^  parallel: +\d+ ms
# expect: ^same answer: True$
# expect: ^nodes in flight at once: 4$
# expect: ^judge +\| +#
# expect: retrieve -->\|docs→documents\| answer_small

from __future__ import annotations

import time

import ember_xcs as xcs

LATENCY = 0.05  # seconds per simulated model call


@xcs.op
def retrieve(question: str, k: int = 3) -> dict:
    """Find passages for the question; returns several fields."""
    time.sleep(LATENCY)
    docs = [f"passage {i} about {question}" for i in range(k)]
    return {
        "docs": docs,
        "scores": [round(1.0 / (i + 1), 2) for i in range(k)],
    }


@xcs.op
def answer(question: str, documents: list, model: str) -> str:
    """One model's answer, grounded in the retrieved documents."""
    time.sleep(LATENCY)
    return f"{model}: XLA compiles array programs ({len(documents)} sources)"


@xcs.op
def cite(weights: list) -> str:
    """Format the retrieval scores as a citation line."""
    time.sleep(LATENCY)
    return "sources weighted " + ", ".join(map(str, weights))


@xcs.op
def judge(*candidates: str, citation: str) -> str:
    """Pick the longest answer and attach the citation."""
    return f"{max(candidates, key=len)} [{citation}]"


def build() -> xcs.Graph:
    graph = xcs.Graph()
    graph.add_node(retrieve, node_id="retrieve")
    graph.add_node(judge, node_id="judge")
    for model in ("small", "medium", "large"):
        node = graph.add_node(answer, node_id=f"answer_{model}")
        graph.connect(
            "retrieve.docs", f"{node}.documents"
        )  # output["docs"] -> documents=
        graph.add_edge(node, "judge")  # positional: the judge's *candidates
    graph.add_node(cite, node_id="cite")
    graph.add_edge("retrieve", "cite", field_mappings={"scores": "weights"})
    graph.connect("cite", "judge.citation")  # the whole output -> citation=
    return graph


def main() -> None:
    graph = build()
    inputs = {
        "question": "what does XLA do?",  # every node with an unfed `question` parameter
        **{f"answer_{m}": {"model": m} for m in ("small", "medium", "large")},
    }
    print(
        f"graph: {len(graph)} nodes, critical path {graph.critical_path_length():.0f} calls"
    )
    print("waves:", graph.waves())

    results = {}
    for scheduler in ("sequential", "parallel"):
        timeline = xcs.Timeline()
        options = xcs.ExecutionOptions(scheduler=scheduler, hooks=(timeline,))
        start = time.perf_counter()
        results[scheduler] = xcs.execute_graph(graph, inputs, options=options)
        print(
            f"{scheduler:>10}: {(time.perf_counter() - start) * 1000:6.0f} ms"
        )

    parallel = results["parallel"]
    print("answer:", parallel["judge"])
    print("same answer:", results["sequential"]["judge"] == parallel["judge"])
    print("nodes in flight at once:", parallel.stats.max_in_flight)
    print(timeline.render(width=48))
    print(graph.to_mermaid())


if __name__ == "__main__":
    main()
