"""An explicit graph run inside a jitted function becomes part of the jit's plan.

Running it concretely during a trace would hand its operators the trace's placeholders
(and run them a second time when the plan runs)."""

from __future__ import annotations

import threading

import pytest

import ember_xcs as xcs

MODES = ["auto", "trace", "structural", "dynamic"]


def _graph(calls: list) -> xcs.Graph:
    # record the raw argument first: a placeholder reaching an operator is recorded too
    @xcs.op
    def retrieve(query: str) -> dict:
        calls.append(("retrieve", query))
        return {"docs": [f"{query}-doc"], "n": 1}

    @xcs.op
    def answer(documents: list, query: str) -> str:
        calls.append(("answer", query))
        return f"{query} from {documents[0]}"

    graph = xcs.Graph()
    graph.add_node(retrieve, node_id="retrieve")
    graph.add_node(answer, node_id="answer")
    graph.connect("retrieve.docs", "answer.documents")
    return graph


@pytest.mark.parametrize("mode", MODES)
def test_graph_inside_jit_runs_each_operator_once_per_call_with_real_values(mode):
    calls: list = []
    graph = _graph(calls)

    @xcs.jit(mode=mode)
    def ask(query):
        return xcs.execute_graph(graph, {"query": query})["answer"]

    for query in ("xla", "mlir", "hlo"):
        calls.clear()
        assert ask(query) == f"{query} from {query}-doc"
        assert calls == [("retrieve", query), ("answer", query)]


def test_graph_inside_jit_is_traced_into_the_plan_not_run_during_the_trace():
    graph = xcs.Graph()
    graph.add_node(xcs.op(lambda text: text.upper(), name="shout"), node_id="shout")

    @xcs.jit
    def loud(text):
        return xcs.execute_graph(graph, {"text": text})["shout"]

    assert loud("hi") == "HI"
    assert xcs.get_jit_strategy_used(loud) == "trace"
    assert xcs.get_jit_stats(loud).leaf_calls == 1


@pytest.mark.parametrize("mode", ["trace", "dynamic"])
def test_independent_graph_nodes_inside_jit_run_concurrently(mode):
    width = 6
    barrier = threading.Barrier(width, timeout=10)

    @xcs.op
    def unit(query: str, i: int) -> str:
        barrier.wait()  # passes only when all units are in flight together
        return f"{query}{i}"

    graph = xcs.Graph()
    for i in range(width):
        graph.add_node(unit, node_id=f"u{i}")
    inputs = {f"u{i}": {"i": i} for i in range(width)}

    @xcs.jit(mode=mode)
    def fan(query):
        out = xcs.execute_graph(graph, {"query": query, **inputs})
        return [out[f"u{i}"] for i in range(width)]

    assert fan("q") == [f"q{i}" for i in range(width)]
    barrier.reset()
    assert fan("r") == [f"r{i}" for i in range(width)]
