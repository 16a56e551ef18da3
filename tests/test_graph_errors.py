"""Every error a user can make building or feeding a graph, with its message pinned.

Messages say what happened in the user's names and what to do; these tests hold them to
exact text so a refactor cannot quietly make them vaguer.
"""

from __future__ import annotations

import dataclasses

import pytest

import ember_xcs as xcs


def retrieve(query: str) -> dict[str, list[str]]:
    return {"docs": [query]}


def rank(documents: list[str], top_k: int = 3) -> list[str]:
    return documents[:top_k]


@pytest.fixture
def g() -> xcs.Graph:
    graph = xcs.Graph()
    graph.add_node(retrieve, node_id="retrieve")
    graph.add_node(rank, node_id="rank")
    return graph


def message(exc_info: pytest.ExceptionInfo[BaseException]) -> str:
    return str(exc_info.value)


# --- building --------------------------------------------------------------------------------


def test_duplicate_node_id_is_refused(g: xcs.Graph) -> None:
    with pytest.raises(xcs.DuplicateNodeError) as info:
        g.add_node(rank, node_id="rank")
    assert message(info) == (
        "node id 'rank' is already used by rank; pick another node_id or leave it out to "
        "get a fresh one"
    )


def test_edge_to_an_unknown_node_is_refused(g: xcs.Graph) -> None:
    with pytest.raises(xcs.UnknownNodeError) as info:
        g.add_edge("retrieve", "rerank")
    assert message(info) == (
        "edge retrieve -> rerank: no node 'rerank' in this graph (nodes: retrieve, rank); "
        "add it with add_node() first"
    )


def test_edge_from_an_unknown_node_is_refused(g: xcs.Graph) -> None:
    with pytest.raises(xcs.UnknownNodeError) as info:
        g.connect("fetch", "rank.documents")
    assert "edge fetch -> rank: no node 'fetch' in this graph" in message(info)


def test_unknown_node_error_is_also_a_key_error_without_quotes(g: xcs.Graph) -> None:
    with pytest.raises(KeyError) as info:
        g.dependencies("nope")
    assert message(info).startswith("dependencies(): no node 'nope' in this graph")


def test_mapping_to_a_parameter_the_operator_does_not_take(g: xcs.Graph) -> None:
    with pytest.raises(xcs.FieldMappingError) as info:
        g.add_edge("retrieve", "rank", field_mappings={"docs": "docs"})
    assert message(info) == (
        "edge retrieve -> rank maps field 'docs' to parameter 'docs', but rank (rank) takes "
        "(documents, top_k); map to one of those"
    )


def test_mapping_must_use_strings(g: xcs.Graph) -> None:
    with pytest.raises(xcs.FieldMappingError) as info:
        g.add_edge("retrieve", "rank", field_mappings={1: "documents"})  # type: ignore[dict-item]
    assert message(info) == (
        "edge retrieve -> rank: field_mappings must map output field names to parameter "
        "names (strings), got 1: 'documents'"
    )


def test_a_parameter_takes_one_producer(g: xcs.Graph) -> None:
    g.add_node(lambda: ["x"], node_id="other")
    g.connect("retrieve.docs", "rank.documents")
    with pytest.raises(xcs.FieldMappingError) as info:
        g.connect("other", "rank.documents")
    assert message(info) == (
        "edge other -> rank: parameter 'documents' of rank is already fed by another edge; "
        "each parameter takes one producer"
    )


def test_too_many_positional_edges(g: xcs.Graph) -> None:
    g.add_node(lambda q: q, node_id="single")
    g.connect("retrieve", "single")
    with pytest.raises(xcs.GraphError) as info:
        g.connect("rank", "single")
    assert message(info) == (
        "edge rank -> single: single (<lambda>) takes 1 positional argument(s) (q), already "
        "fed by retrieve; map this output to a parameter with connect('rank', "
        "'single.<parameter>')"
    )


def test_positional_edge_onto_a_mapped_parameter(g: xcs.Graph) -> None:
    g.add_node(lambda: [], node_id="other")
    g.connect("other", "rank.documents")
    with pytest.raises(xcs.FieldMappingError) as info:
        g.connect("retrieve", "rank")
    assert message(info) == (
        "edge retrieve -> rank would pass retrieve's output as parameter 'documents' of rank "
        "(rank), which the edge from other already feeds; name the parameter with "
        "field_mappings instead"
    )


def test_mapping_onto_a_positionally_fed_parameter(g: xcs.Graph) -> None:
    g.add_node(lambda: [], node_id="other")
    g.connect("other", "rank")
    with pytest.raises(xcs.FieldMappingError, match="parameter 'documents' of rank is already fed"):
        g.connect("retrieve.docs", "rank.documents")


def test_the_same_edge_twice_is_refused(g: xcs.Graph) -> None:
    g.connect("retrieve", "rank")
    with pytest.raises(xcs.GraphError) as info:
        g.connect("retrieve", "rank")
    assert message(info) == (
        "edge retrieve -> rank already exists; give all fields in one field_mappings dict "
        "instead of adding the edge twice"
    )


def test_mappings_from_one_producer_merge_into_one_edge() -> None:
    g = xcs.Graph()
    g.add_node(lambda: {"a": 1, "b": 2}, node_id="src")
    g.add_node(lambda x, y: x + y, node_id="dst")
    g.connect("src.a", "dst.x").connect("src.b", "dst.y")
    assert g.edges == [xcs.graph.Edge("src", "dst", {"a": "x", "b": "y"})]


def test_self_loop_is_a_cycle(g: xcs.Graph) -> None:
    with pytest.raises(xcs.CycleError) as info:
        g.add_edge("retrieve", "retrieve")
    assert message(info) == (
        "graph has a cycle: retrieve -> retrieve; remove one edge or merge the nodes"
    )


def test_an_edge_closing_a_cycle_is_refused_printing_the_cycle_from_the_first_node() -> None:
    g = xcs.Graph()
    for node_id in ("a", "b"):
        g.add_node(lambda *xs: xs, node_id=node_id)
    g.connect("b", "a")  # against insertion order on purpose
    with pytest.raises(xcs.CycleError) as info:
        g.connect("a", "b")
    assert message(info) == (
        "edge a -> b would close a cycle: a -> b -> a; the graph is unchanged. Data flows "
        "one way: merge the nodes, or remove an edge of the cycle first (Graph.remove_edge)"
    )
    assert info.value.cycle == ["a", "b"]


def test_a_refused_cycle_leaves_the_graph_unchanged_and_runnable() -> None:
    g = xcs.Graph()
    for node_id in "abc":
        g.add_node(lambda *xs: sum(xs, 1), node_id=node_id)
    g.connect("a", "b", "c")
    version, edges = g.version, g.edges
    with pytest.raises(xcs.CycleError, match="a -> b -> c -> a"):
        g.add_edge("c", "a")
    assert (g.version, g.edges) == (version, edges)
    assert g.topological_order() == ["a", "b", "c"]
    assert xcs.execute_graph(g) == {"c": 3}


def test_node_id_with_a_dot_is_refused(g: xcs.Graph) -> None:
    with pytest.raises(xcs.GraphError) as info:
        g.add_node(rank, node_id="my.rank")
    assert message(info) == (
        "node id 'my.rank' contains '.', which connect() uses to separate a node from a "
        "field; choose an id without dots"
    )


@pytest.mark.parametrize("bad", ["", 3, None.__class__])
def test_node_id_must_be_a_non_empty_string(g: xcs.Graph, bad: object) -> None:
    with pytest.raises(xcs.GraphError, match=r"node_id must be a non-empty string, got "):
        g.add_node(rank, node_id=bad)  # type: ignore[arg-type]


def test_add_node_needs_a_callable(g: xcs.Graph) -> None:
    with pytest.raises(xcs.GraphError) as info:
        g.add_node(42)  # type: ignore[arg-type]
    assert message(info) == "add_node() needs an Operator or a function, got int"


def test_connect_needs_two_endpoints(g: xcs.Graph) -> None:
    with pytest.raises(xcs.GraphError) as info:
        g.connect("retrieve")
    assert message(info) == "connect() needs at least two endpoints, e.g. connect('a', 'b')"


def test_connect_field_needs_a_parameter(g: xcs.Graph) -> None:
    with pytest.raises(xcs.GraphError) as info:
        g.connect("retrieve.docs", "rank")
    assert message(info) == (
        "connect('retrieve.docs', 'rank'): a field needs a parameter to go to; write "
        "connect('retrieve.docs', 'rank.<parameter>')"
    )


def test_connect_chains_take_plain_ids(g: xcs.Graph) -> None:
    with pytest.raises(xcs.GraphError) as info:
        g.connect("retrieve.docs", "rank.documents", "retrieve")
    assert message(info) == (
        "connect() with more than two endpoints takes plain node ids; use "
        "connect('a.field', 'b.param') one edge at a time for fields"
    )


def test_connect_rejects_non_strings(g: xcs.Graph) -> None:
    with pytest.raises(xcs.GraphError, match="connect\\(\\) takes 'node' or 'node.field' strings"):
        g.connect("retrieve", 3)  # type: ignore[arg-type]


# --- running -----------------------------------------------------------------------------------


def test_missing_field_at_run_time_names_both_nodes(g: xcs.Graph) -> None:
    g.add_node(lambda: {"doc": ["x"]}, node_id="fetch")
    g.connect("fetch.docs", "rank.documents")
    with pytest.raises(xcs.FieldMappingError) as info:
        xcs.execute_graph(g, {"query": "q"})
    assert message(info) == (
        "edge fetch -> rank maps field 'docs' to parameter 'documents', but fetch returned "
        "'doc' without 'docs'; return a dict with that key or fix the mapping"
    )


@dataclasses.dataclass
class Answer:
    text: str


def test_missing_attribute_at_run_time_names_both_nodes() -> None:
    g = xcs.Graph()
    g.add_node(lambda: Answer("hi"), node_id="answer")
    g.add_node(lambda score: score, node_id="judge")
    g.connect("answer.score", "judge.score")
    with pytest.raises(xcs.FieldMappingError) as info:
        xcs.execute_graph(g)
    assert message(info) == (
        "edge answer -> judge maps field 'score' to parameter 'score', but answer returned "
        "Answer(text='hi') without 'score'; return a dict with that key or fix the "
        "mapping"
    )


def test_missing_field_with_partial_results_fails_only_the_consumer() -> None:
    g = xcs.Graph()
    g.add_node(lambda: 7, node_id="p")
    g.add_node(lambda documents: documents, node_id="c")
    g.add_node(lambda: "fine", node_id="other")
    g.connect("p.docs", "c.documents")
    result = xcs.execute_graph(g, options=xcs.ExecutionOptions(return_partial_results=True))
    assert dict(result) == {"p": 7, "other": "fine"}
    assert isinstance(result.failures["c"], xcs.FieldMappingError)
    assert "but p returned int 7 without 'docs'" in str(result.failures["c"])


def test_missing_inputs_are_reported_before_running(g: xcs.Graph) -> None:
    g.connect("retrieve.docs", "rank.documents")
    with pytest.raises(xcs.MissingInputError) as info:
        xcs.execute_graph(g, {})
    assert message(info) == (
        "no value for retrieve.query: pass each in inputs by parameter name, as "
        "inputs[node_id] = {parameter: value}, or connect an edge that produces it"
    )


def test_missing_inputs_lists_every_unfed_parameter(g: xcs.Graph) -> None:
    with pytest.raises(
        xcs.MissingInputError, match=r"^no value for retrieve\.query, rank\.documents:"
    ):
        xcs.execute_graph(g)


def test_unknown_input_key_suggests_the_closest_name(g: xcs.Graph) -> None:
    g.connect("retrieve.docs", "rank.documents")
    with pytest.raises(xcs.GraphError) as info:
        xcs.execute_graph(g, {"qeury": "x"})
    assert message(info) == (
        "input 'qeury' (did you mean 'query'?) matches no node id and no unfed parameter of "
        "any node; remove it or fix its name"
    )


def test_input_for_a_parameter_an_edge_feeds_is_unknown(g: xcs.Graph) -> None:
    g.connect("retrieve.docs", "rank.documents")
    with pytest.raises(xcs.GraphError, match="input 'documents' matches no node id"):
        xcs.execute_graph(g, {"query": "x", "documents": []})


@pytest.mark.parametrize(("bad", "kind"), [(3, "int"), (None, "NoneType"), (["q"], "list")])
def test_per_node_inputs_must_be_a_dict(g: xcs.Graph, bad: object, kind: str) -> None:
    with pytest.raises(xcs.GraphError) as info:
        xcs.execute_graph(g, {"retrieve": bad, "documents": []})
    assert message(info) == (
        f"inputs['retrieve'] must be a dict of keyword arguments for retrieve, got {kind}"
    )


def test_per_node_inputs_name_only_parameters_the_node_takes_from_inputs(g: xcs.Graph) -> None:
    g.connect("retrieve.docs", "rank.documents")
    with pytest.raises(xcs.GraphError) as info:
        xcs.execute_graph(g, {"query": "x", "rank": {"documents": ["y"]}})
    assert message(info) == (
        "inputs['rank'] gives 'documents', which rank (rank) does not take from inputs; it "
        "takes (top_k)"
    )


def test_unknown_keyword_lists_every_keyword_execute_graph_takes(g: xcs.Graph) -> None:
    with pytest.raises(TypeError) as info:
        xcs.execute_graph(g, {"query": "q"}, foo=1)  # type: ignore[call-arg]
    assert message(info) == (
        "execute_graph() got unexpected keyword argument(s) 'foo'; it takes "
        "(graph, inputs=None, *, options=None, outputs=None)"
    )


def test_inputs_must_be_a_mapping(g: xcs.Graph) -> None:
    with pytest.raises(xcs.GraphError) as info:
        xcs.execute_graph(g, ["x"])  # type: ignore[arg-type]
    assert message(info) == "inputs must be a dict, got list"


def test_execute_graph_needs_a_graph() -> None:
    with pytest.raises(xcs.GraphError) as info:
        xcs.execute_graph("graph", {})  # type: ignore[arg-type]
    assert message(info) == "execute_graph() needs a Graph, got str"


def test_input_errors_are_raised_before_any_operator_runs() -> None:
    calls: list[str] = []
    g = xcs.Graph()
    g.add_node(lambda: calls.append("first"), node_id="first")
    g.add_node(lambda x: calls.append("second"), node_id="second")
    with pytest.raises(xcs.MissingInputError):
        xcs.execute_graph(g, options=xcs.ExecutionOptions(scheduler="sequential"))
    assert calls == []


# --- schedulers and options at the graph boundary ---------------------------------------------


def test_unknown_scheduler_name_suggests_the_closest(g: xcs.Graph) -> None:
    with pytest.raises(xcs.OptionsError) as info:
        xcs.execute_graph(
            g, {"query": "x", "documents": []}, options=xcs.ExecutionOptions(scheduler="paralel")
        )
    assert message(info).startswith(
        "unknown scheduler 'paralel' (did you mean 'parallel'?); choose one of auto, "
        "sequential, parallel, wave, noop, dask"
    )
    assert message(info).endswith("or register your own with register_scheduler()")


def test_options_must_be_execution_options(g: xcs.Graph) -> None:
    with pytest.raises(xcs.OptionsError) as info:
        xcs.execute_graph(g, {}, options={"scheduler": "parallel"})  # type: ignore[arg-type]
    assert message(info) == (
        "options must be an ExecutionOptions, got dict; write options=ExecutionOptions(...) "
        "or use `with execution_options(...):`"
    )


def test_register_scheduler_refuses_to_shadow_a_name() -> None:
    existing = xcs.EngineScheduler("parallel", xcs.scheduling.ThreadExecutor)
    with pytest.raises(xcs.OptionsError) as info:
        xcs.register_scheduler("parallel", existing)
    assert message(info) == "a scheduler named 'parallel' exists; pass replace=True to override it"


def test_register_scheduler_reserves_auto() -> None:
    mine = xcs.EngineScheduler("auto", xcs.scheduling.InlineExecutor)
    with pytest.raises(xcs.OptionsError) as info:
        xcs.register_scheduler("auto", mine, replace=True)
    assert message(info) == "'auto' is reserved: it picks parallel or sequential per graph"


def test_register_scheduler_needs_a_run_method() -> None:
    with pytest.raises(xcs.OptionsError) as info:
        xcs.register_scheduler("broken", object())  # type: ignore[arg-type]
    assert message(info) == "scheduler 'broken' must have a run(plan, inputs, options) method"


def test_every_graph_error_is_an_xcs_error() -> None:
    for error in (
        xcs.DuplicateNodeError,
        xcs.UnknownNodeError,
        xcs.CycleError,
        xcs.FieldMappingError,
        xcs.MissingInputError,
    ):
        assert issubclass(error, xcs.GraphError) and issubclass(error, xcs.XCSError)


def test_inputs_are_checked_on_every_call_even_after_a_valid_call_with_other_keys() -> None:
    g = xcs.Graph()
    g.add_node(lambda x: x, node_id="a")
    assert xcs.execute_graph(g, {"x": 1}) == {"a": 1}
    with pytest.raises(xcs.GraphError, match="input 'xx'"):
        xcs.execute_graph(g, {"xx": 1})
    with pytest.raises(xcs.GraphError, match=r"inputs\['a'\] must be a dict"):
        xcs.execute_graph(g, {"a": 3})
    assert xcs.execute_graph(g, {"a": {"x": 2}}) == {"a": 2}
    with pytest.raises(xcs.GraphError, match="does not take"):
        xcs.execute_graph(g, {"a": {"y": 2}})
