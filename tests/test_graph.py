"""Graph building, analysis and rendering (the error cases live in test_graph_errors.py)."""

from __future__ import annotations

import networkx as nx
import pytest

import ember_xcs as xcs
from ember_xcs.graph import Edge
from ember_xcs.scheduling import plan_for_graph


def ident(*xs: object) -> object:
    return xs


@pytest.fixture
def pipeline() -> xcs.Graph:
    """retrieve -> {rank, summarize} -> answer, plus a lone `log` node.

    Added out of topological order on purpose (answer before rank).
    """
    g = xcs.Graph()
    g.add_node(lambda query: {"docs": [query]}, node_id="retrieve", name="Retriever")
    g.add_node(lambda ranked, summary: (ranked, summary), node_id="answer", name="Answerer")
    g.add_node(lambda documents: documents, node_id="rank", name="Ranker")
    g.add_node(lambda documents: "summary", node_id="summarize")
    g.add_node(lambda: "log", node_id="log")
    g.connect("retrieve.docs", "rank.documents").connect("retrieve.docs", "summarize.documents")
    g.connect("rank", "answer.ranked").connect("summarize", "answer.summary")
    return g


# --- building ---------------------------------------------------------------------------------


def test_add_node_returns_the_given_id_and_keeps_the_name(pipeline: xcs.Graph) -> None:
    node = pipeline.nodes["retrieve"]
    assert node.node_id == "retrieve" and node.name == "Retriever"
    assert node.parameter_names() == ("query",)


def test_add_node_wraps_plain_functions_with_op() -> None:
    def fetch(url: str) -> str:
        return url

    g = xcs.Graph()
    node_id = g.add_node(fetch)
    assert node_id == "fetch"
    assert isinstance(g.nodes["fetch"].operator, xcs.Operator)
    assert g.nodes["fetch"].operator.name == "fetch"


def test_fresh_ids_are_the_name_then_numbered_suffixes() -> None:
    g = xcs.Graph()
    unit = xcs.op(ident, name="unit")
    assert [g.add_node(unit) for _ in range(3)] == ["unit", "unit_1", "unit_2"]
    assert g.add_node(unit, node_id="judge_1") == "judge_1"
    assert g.add_node(unit, name="judge") == "judge"
    assert g.add_node(unit, name="judge") == "judge_2"  # judge_1 is taken
    assert g.add_node(unit, name="my.judge") == "my_judge"  # dots would confuse connect()


def test_nodes_is_a_read_only_view_in_insertion_order(pipeline: xcs.Graph) -> None:
    assert list(pipeline.nodes) == ["retrieve", "answer", "rank", "summarize", "log"]
    with pytest.raises(TypeError):
        pipeline.nodes["x"] = pipeline.nodes["log"]  # type: ignore[index]
    assert len(pipeline) == 5 and "rank" in pipeline and "nope" not in pipeline
    assert list(pipeline) == list(pipeline.nodes)


def test_edges_are_grouped_by_consumer_with_their_mappings(pipeline: xcs.Graph) -> None:
    # consumers in the order they were added: answer, rank, summarize
    assert pipeline.edges == [
        Edge("rank", "answer", {"*": "ranked"}),
        Edge("summarize", "answer", {"*": "summary"}),
        Edge("retrieve", "rank", {"docs": "documents"}),
        Edge("retrieve", "summarize", {"docs": "documents"}),
    ]


def test_incoming_keeps_the_order_edges_were_added() -> None:
    g = xcs.Graph()
    for node_id in ("c", "a", "b", "join"):
        g.add_node(ident, node_id=node_id)
    g.connect("c", "join").connect("a", "join").connect("b", "join")
    assert [e.src for e in g.incoming("join")] == ["c", "a", "b"]


def test_connect_chains_plain_ids_and_returns_the_graph() -> None:
    g = xcs.Graph()
    for node_id in "abcd":
        g.add_node(ident, node_id=node_id)
    assert g.connect("a", "b", "c", "d") is g
    assert [(e.src, e.dst, e.field_mappings) for e in g.edges] == [
        ("a", "b", None),
        ("b", "c", None),
        ("c", "d", None),
    ]


def test_empty_field_mappings_make_an_ordering_only_edge() -> None:
    order: list[str] = []
    g = xcs.Graph()
    g.add_node(lambda: order.append("warm"), node_id="warm")
    g.add_node(lambda q: order.append("use") or q, node_id="use")
    g.add_edge("warm", "use", field_mappings={})
    assert g.predecessors("use") == ["warm"]
    for scheduler in ("sequential", "parallel"):
        order.clear()
        options = xcs.ExecutionOptions(scheduler=scheduler)
        assert xcs.execute_graph(g, {"q": 1}, options=options) == {"use": 1}
        assert order == ["warm", "use"]


def test_graph_version_changes_with_every_edit_and_invalidates_the_plan() -> None:
    g = xcs.Graph()
    g.add_node(ident, node_id="a")
    plan = plan_for_graph(g)
    assert plan_for_graph(g) is plan  # cached while the graph is unchanged
    version = g.version
    g.add_node(ident, node_id="b")
    assert g.version > version
    assert plan_for_graph(g) is not plan and len(plan_for_graph(g)) == 2


def test_xcs_graph_is_an_alias() -> None:
    assert xcs.XCSGraph is xcs.Graph


def test_repr_counts_nodes_and_edges(pipeline: xcs.Graph) -> None:
    assert repr(pipeline) == "Graph(5 nodes, 4 edges)"


# --- analysis ---------------------------------------------------------------------------------


def test_waves_are_topological_generations_in_insertion_order(pipeline: xcs.Graph) -> None:
    assert pipeline.waves() == [["retrieve", "log"], ["rank", "summarize"], ["answer"]]
    assert [set(w) for w in pipeline.waves()] == [
        set(w) for w in nx.topological_generations(pipeline.to_networkx())
    ]


def test_topological_order_flattens_the_waves(pipeline: xcs.Graph) -> None:
    order = pipeline.topological_order()
    assert order == ["retrieve", "log", "rank", "summarize", "answer"]
    position = {n: i for i, n in enumerate(order)}
    assert all(position[e.src] < position[e.dst] for e in pipeline.edges)


def test_validate_returns_the_graph(pipeline: xcs.Graph) -> None:
    assert pipeline.validate() is pipeline


def test_critical_path_with_unit_weights(pipeline: xcs.Graph) -> None:
    path = pipeline.critical_path()
    assert path in (["retrieve", "rank", "answer"], ["retrieve", "summarize", "answer"])
    assert pipeline.critical_path_length() == 3


def test_critical_path_follows_weights(pipeline: xcs.Graph) -> None:
    weights = {"retrieve": 1.0, "rank": 5.0, "summarize": 2.0, "answer": 1.0, "log": 1.0}
    assert pipeline.critical_path(weights) == ["retrieve", "rank", "answer"]
    assert pipeline.critical_path_length(weights) == 7.0
    heavy_log = {"log": 100.0}  # missing nodes weigh 1
    assert pipeline.critical_path(heavy_log) == ["log"]
    assert pipeline.critical_path_length(heavy_log) == 100.0


def test_critical_path_accepts_a_weight_function(pipeline: xcs.Graph) -> None:
    by_name = pipeline.critical_path(lambda node: 10.0 if node.node_id == "summarize" else 1.0)
    assert by_name == ["retrieve", "summarize", "answer"]


def test_critical_path_of_an_empty_graph() -> None:
    assert xcs.Graph().critical_path() == []
    assert xcs.Graph().critical_path_length() == 0.0
    assert xcs.Graph().waves() == [] and xcs.Graph().topological_order() == []


def test_predecessors_and_successors(pipeline: xcs.Graph) -> None:
    assert sorted(pipeline.predecessors("answer")) == ["rank", "summarize"]
    assert sorted(pipeline.successors("retrieve")) == ["rank", "summarize"]
    assert pipeline.predecessors("log") == [] and pipeline.successors("log") == []


def test_dependencies_and_dependents_are_transitive(pipeline: xcs.Graph) -> None:
    assert pipeline.dependencies("answer") == {"retrieve", "rank", "summarize"}
    assert pipeline.dependents("retrieve") == {"rank", "summarize", "answer"}
    assert pipeline.dependencies("retrieve") == set() == pipeline.dependents("answer")


def test_components_separate_disconnected_parts(pipeline: xcs.Graph) -> None:
    components = sorted(pipeline.components(), key=len)
    assert components == [{"log"}, {"retrieve", "rank", "summarize", "answer"}]


def test_sources_and_sinks(pipeline: xcs.Graph) -> None:
    assert pipeline.sources() == ["retrieve", "log"]
    assert pipeline.sinks() == ["answer", "log"]


# --- renderings -------------------------------------------------------------------------------


def test_to_networkx_is_a_copy_with_attributes(pipeline: xcs.Graph) -> None:
    g = pipeline.to_networkx()
    assert isinstance(g, nx.DiGraph)
    assert set(g.nodes) == set(pipeline.nodes)
    assert g.nodes["retrieve"]["name"] == "Retriever"
    assert g.nodes["retrieve"]["operator"] is pipeline.nodes["retrieve"].operator
    assert g.edges["retrieve", "rank"]["field_mappings"] == {"docs": "documents"}
    g.remove_node("log")
    assert "log" in pipeline  # the copy is independent


def test_to_mermaid_lists_nodes_and_labelled_edges(pipeline: xcs.Graph) -> None:
    text = pipeline.to_mermaid()
    lines = text.splitlines()
    assert lines[0] == "graph TD"
    assert '    retrieve["retrieve: Retriever"]' in lines
    assert "    retrieve -->|docs→documents| rank" in lines
    assert "    rank -->|*→ranked| answer" in lines
    assert '    log["log: <lambda>"]' in lines


def test_to_mermaid_leaves_positional_edges_unlabelled() -> None:
    g = xcs.Graph()
    g.add_node(ident, node_id="a")
    g.add_node(ident, node_id="b")
    g.connect("a", "b")
    assert "    a --> b" in g.to_mermaid().splitlines()


def test_to_dot_is_a_labelled_digraph(pipeline: xcs.Graph) -> None:
    text = pipeline.to_dot()
    lines = text.splitlines()
    assert lines[0] == "digraph xcs {" and lines[-1] == "}"
    assert '    "retrieve" [label="retrieve\\nRetriever"];' in lines
    assert '    "retrieve" -> "rank" [label="docs→documents"];' in lines
    assert text.count("->") == 4


def test_renderings_escape_quotes_in_names() -> None:
    g = xcs.Graph()
    g.add_node(ident, node_id="a", name='say "hi"')
    assert "say 'hi'" in g.to_mermaid() and "say 'hi'" in g.to_dot()


def test_to_mermaid_renames_ids_mermaid_cannot_parse_and_keeps_them_in_labels() -> None:
    g = xcs.Graph()
    g.add_node(lambda x: x, node_id="vmap(score)")
    g.add_node(lambda x: x, node_id="end")
    g.add_edge("vmap(score)", "end")
    lines = g.to_mermaid().splitlines()
    assert lines[1].startswith('    n0["vmap(score): ')
    assert lines[2].startswith('    n1["end: ')
    assert "    n0 --> n1" in lines
