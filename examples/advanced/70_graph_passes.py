"""Graph passes: the same answers with fewer calls.

A question-answering graph built from two sub-pipelines repeats work: both embed the
question, the knowledge base is loaded on every run, and a debugging branch runs although
only the answer is wanted. The example runs it three times without passes and three times
with `graph_passes="all"`, counts the calls, and prints what each pass did (first as a
`"noop"` dry run, which calls nothing).

Features: `@xcs.op(pure=True)`, `ExecutionOptions(graph_passes=...)`,
`execute_graph(..., outputs=[...])`, `result.stats.graph_passes`, and the `Graph` methods
`eliminate_dead_nodes`, `merge_common_subexpressions`, `fold_constants`.

    python examples/advanced/70_graph_passes.py
"""

# expect: ^dry run: 1 removed, 1 merged, 1 folded
# expect: ^         removed \['debug'\], merged \{'embed_2': 'embed_1'\}, calls so far: 0$
# expect: ^without passes: 18 calls$
# expect: ^with passes: +10 calls  \{.load_kb.: 1, .embed.: 3, .llm.: 6\}$
# expect: ^same answers: True \(xla is a compiler for linear algebra \[xla\]\)$
# expect: ^LLM calls per run: 2 without passes, 2 with$
# expect: ^methods: \['kb', 'embed_1', 'answer', 'cite', 'final'\]

from __future__ import annotations

from collections import Counter

import ember_xcs as xcs

calls: Counter[str] = Counter()


@xcs.op(pure=True)
def load_kb() -> dict:
    """The knowledge base: the same on every run (pure, no inputs), so it is a constant."""
    calls["load_kb"] += 1
    return {"xla": "a compiler for linear algebra", "mesh": "a grid of devices"}


@xcs.op(pure=True)
def embed(question: str) -> str:
    """Pure: equal questions give equal vectors, so two embed nodes can be one."""
    calls["embed"] += 1
    return question.split()[-1].strip("?").lower()


@xcs.op
def answer(kb: dict, topic: str) -> str:
    """An LLM call: not marked pure, so no pass merges or folds it."""
    calls["llm"] += 1
    return f"{topic} is {kb.get(topic, 'unknown')}"


@xcs.op
def cite(topic: str) -> str:
    """Another LLM call, from the second sub-pipeline."""
    calls["llm"] += 1
    return f"[{topic}]"


@xcs.op
def debug_dump(topic: str) -> str:
    """A debugging sink nobody reads."""
    calls["debug_dump"] += 1
    return f"debug: {topic}"


graph = xcs.Graph()
graph.add_node(load_kb, node_id="kb")
graph.add_node(embed, node_id="embed_1")
graph.add_node(embed, node_id="embed_2")  # the second sub-pipeline's copy
graph.add_node(answer, node_id="answer")
graph.add_node(cite, node_id="cite")
graph.add_node(lambda text, source: f"{text} {source}", node_id="final")
graph.add_node(debug_dump, node_id="debug")
graph.add_edge("kb", "answer", field_mappings={"*": "kb"})
graph.add_edge("embed_1", "answer", field_mappings={"*": "topic"})
graph.add_edge("embed_2", "cite", field_mappings={"*": "topic"})
graph.add_edge("answer", "final", field_mappings={"*": "text"})
graph.add_edge("cite", "final", field_mappings={"*": "source"})
graph.add_edge("embed_1", "debug", field_mappings={"*": "topic"})

QUESTIONS = ["what is xla?", "what is a mesh?", "what is xla?"]


def run_all(options: xcs.ExecutionOptions) -> list[str]:
    calls.clear()
    return [
        xcs.execute_graph(graph, {"question": q}, options=options, outputs=["final"])["final"]
        for q in QUESTIONS
    ]


passes = xcs.ExecutionOptions(graph_passes="all")
dry = xcs.execute_graph(
    graph, {"question": "q"}, options=passes.replace(scheduler="noop"), outputs=["final"]
)
report = dry.stats.graph_passes
print(f"dry run: {report}")
print(
    f"         removed {list(report.removed)}, merged {dict(report.merged)}, "
    f"calls so far: {sum(calls.values())}"
)

plain = run_all(xcs.ExecutionOptions())
plain_llm = calls["llm"] // len(QUESTIONS)
print(f"without passes: {sum(calls.values())} calls")
optimized = run_all(passes)
print(f"with passes:    {sum(calls.values())} calls  {dict(calls)}")
print(f"same answers: {plain == optimized} ({optimized[0]})")
print(f"LLM calls per run: {plain_llm} without passes, {calls['llm'] // len(QUESTIONS)} with")

smaller = graph.eliminate_dead_nodes(outputs=["final"]).merge_common_subexpressions()
folded = smaller.fold_constants()
print(f"methods: {list(folded.nodes)}  ({folded.pass_report})")
