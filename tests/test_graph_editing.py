"""Editing a graph: remove_edge / remove_node, and what a run sees afterwards.

Every edit bumps `graph.version`, so a plan cached for the old graph is never replayed;
these tests check it through `execute_graph` results, not the cache's internals.
"""

from __future__ import annotations

import pytest

import ember_xcs as xcs


def add(*xs: int) -> int:
    return sum(xs) + 1


@pytest.fixture
def chain() -> xcs.Graph:
    g = xcs.Graph()
    for node_id in "abc":
        g.add_node(add, node_id=node_id)
    g.connect("a", "b", "c")
    return g


def test_remove_edge_cuts_the_dependency_and_the_next_run_uses_the_new_graph(
    chain: xcs.Graph,
) -> None:
    assert xcs.execute_graph(chain) == {"c": 3}  # plan cached for this version
    version = chain.version
    assert chain.remove_edge("b", "c") is chain
    assert chain.version > version
    assert [(e.src, e.dst) for e in chain.edges] == [("a", "b")]
    assert xcs.execute_graph(chain) == {"b": 2, "c": 1}


def test_remove_node_drops_its_edges_and_the_next_run_skips_it(chain: xcs.Graph) -> None:
    assert xcs.execute_graph(chain) == {"c": 3}
    version = chain.version
    chain.remove_node("b")
    assert chain.version > version
    assert list(chain.nodes) == ["a", "c"] and chain.edges == []
    assert "b" not in chain
    assert xcs.execute_graph(chain) == {"a": 1, "c": 1}


def test_a_removed_edge_can_be_added_back_and_a_removed_id_reused(chain: xcs.Graph) -> None:
    chain.remove_edge("b", "c").add_edge("b", "c")
    assert xcs.execute_graph(chain) == {"c": 3}
    chain.remove_node("c")
    assert chain.add_node(add, node_id="c") == "c"
    chain.connect("b", "c")
    assert xcs.execute_graph(chain) == {"c": 3}


def test_removing_a_positional_edge_moves_later_positional_edges_up() -> None:
    g = xcs.Graph()
    g.add_node(lambda: "first", node_id="p")
    g.add_node(lambda: "second", node_id="q")
    g.add_node(lambda x, y="default": (x, y), node_id="pair")
    g.connect("p", "pair").connect("q", "pair")
    assert xcs.execute_graph(g) == {"pair": ("first", "second")}
    g.remove_edge("p", "pair")
    assert xcs.execute_graph(g) == {"p": "first", "pair": ("second", "default")}


def test_removing_a_producer_leaves_its_consumer_asking_for_the_input() -> None:
    g = xcs.Graph()
    g.add_node(lambda: {"docs": ["d"]}, node_id="retrieve")
    g.add_node(lambda documents: documents, node_id="rank")
    g.connect("retrieve.docs", "rank.documents")
    g.remove_node("retrieve")
    with pytest.raises(xcs.MissingInputError, match=r"rank\.documents"):
        xcs.execute_graph(g)
    assert xcs.execute_graph(g, {"documents": ["x"]}) == {"rank": ["x"]}


def test_an_edge_can_be_added_after_removing_the_one_that_would_close_a_cycle(
    chain: xcs.Graph,
) -> None:
    with pytest.raises(xcs.CycleError, match="a -> b -> c -> a"):
        chain.add_edge("c", "a")
    chain.remove_edge("a", "b")
    chain.add_edge("c", "a")
    assert chain.topological_order() == ["b", "c", "a"]


def test_a_cycle_through_nodes_added_out_of_order_is_still_refused() -> None:
    g = xcs.Graph()
    for node_id in "abcd":
        g.add_node(add, node_id=node_id)
    g.connect("d", "c").connect("c", "b")  # backwards in insertion order
    g.connect("a", "d")
    with pytest.raises(xcs.CycleError) as info:
        g.connect("b", "a")
    assert info.value.cycle == ["a", "d", "c", "b"]


def test_edits_name_unknown_nodes_and_edges() -> None:
    g = xcs.Graph()
    g.add_node(add, node_id="a")
    g.add_node(add, node_id="b")
    with pytest.raises(xcs.UnknownNodeError, match=r"remove_node\('z'\): no node 'z'"):
        g.remove_node("z")
    with pytest.raises(xcs.GraphError, match="there is no edge a -> b; b is fed by nothing"):
        g.remove_edge("a", "b")
    version = g.version
    with pytest.raises(xcs.UnknownNodeError, match="node ids are strings"):
        g.remove_edge("a", 5)  # type: ignore[arg-type]
    assert g.version == version
