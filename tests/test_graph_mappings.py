"""`identity_mapping` / `prefix_mapping` and the check of a producer's declared fields."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, TypedDict

import pytest

import ember_xcs as xcs


class Retrieved(TypedDict):
    query: str
    docs: list
    scores: list


@dataclasses.dataclass
class Scored:
    best: str
    score: float

    @property
    def label(self) -> str:
        return f"{self.best}:{self.score}"


class Pair(NamedTuple):
    left: int
    right: int


@xcs.op
def retrieve(query: str) -> Retrieved:
    return {"query": query, "docs": [f"{query} 1", f"{query} 22"], "scores": [0.5, 0.25]}


@xcs.op
def rank(query: str, docs: list, k: int = 1) -> str:
    return f"{query}: {sorted(docs, key=len)[-k]}"


@xcs.op
def rank_ctx(ctx_query: str, ctx_docs: list, ctx_unused: int = 0) -> str:
    return f"{ctx_query}/{len(ctx_docs)}"


@xcs.op
def untyped(query):
    return {"query": query, "docs": [query]}


@xcs.op
def score(query: str) -> Scored:
    return Scored(query, 1.0)


@xcs.op
def split(query: str) -> Pair:
    return Pair(len(query), 2)


@xcs.op
def show(text: str = "", best: str = "", left: int = 0) -> str:
    return f"{text}{best}{left}"


def graph_with(*ops) -> xcs.Graph:
    g = xcs.Graph()
    for operator in ops:
        g.add_node(operator)
    return g


def test_identity_mapping_with_names_is_a_plain_dict():
    assert xcs.identity_mapping("docs", "query") == {"docs": "docs", "query": "query"}


def test_prefix_mapping_with_names_prefixes_each_parameter():
    assert xcs.prefix_mapping("ctx_", "query", "docs") == {
        "query": "ctx_query",
        "docs": "ctx_docs",
    }


def test_identity_mapping_feeds_same_named_parameters():
    g = graph_with(retrieve, rank)
    g.add_edge("retrieve", "rank", field_mappings=xcs.identity_mapping("query", "docs"))
    assert xcs.execute_graph(g, {"query": "q"}) == {"rank": "q: q 22"}


def test_identity_mapping_without_names_matches_every_declared_field_the_consumer_takes():
    g = graph_with(retrieve, rank)
    g.connect("retrieve", "rank", field_mappings=xcs.identity_mapping())
    assert g.incoming("rank")[0].field_mappings == {"query": "query", "docs": "docs"}
    assert xcs.execute_graph(g, {"query": "q"}) == {"rank": "q: q 22"}


def test_prefix_mapping_without_names_matches_prefixed_parameters():
    g = graph_with(retrieve, rank_ctx)
    g.add_edge("retrieve", "rank_ctx", field_mappings=xcs.prefix_mapping("ctx_"))
    assert g.incoming("rank_ctx")[0].field_mappings == {"query": "ctx_query", "docs": "ctx_docs"}
    assert xcs.execute_graph(g, {"query": "q"}) == {"rank_ctx": "q/2"}


def test_helpers_combine_with_dict_unpacking():
    g = graph_with(retrieve, rank_ctx)
    mapping = {**xcs.prefix_mapping("ctx_", "docs"), "query": "ctx_query"}
    g.add_edge("retrieve", "rank_ctx", field_mappings=mapping)
    assert xcs.execute_graph(g, {"query": "q"}) == {"rank_ctx": "q/2"}


def test_field_the_producer_does_not_declare_is_refused_when_the_edge_is_added():
    g = graph_with(retrieve, rank)
    with pytest.raises(xcs.FieldMappingError, match=r"'doc'.*\(query, docs, scores\)"):
        g.add_edge("retrieve", "rank", field_mappings=xcs.identity_mapping("doc"))
    assert g.edges == []


def test_parameter_the_consumer_does_not_take_is_refused_naming_its_parameters():
    g = graph_with(retrieve, rank)
    with pytest.raises(xcs.FieldMappingError, match=r"'scores'.*takes \(query, docs, k\)"):
        g.add_edge("retrieve", "rank", field_mappings=xcs.identity_mapping("scores"))


def test_matching_without_declared_fields_asks_for_names():
    g = graph_with(untyped, rank)
    with pytest.raises(xcs.FieldMappingError, match=r"declares none; name them, e\.g\. identity"):
        g.add_edge("untyped", "rank", field_mappings=xcs.identity_mapping())


def test_matching_that_finds_nothing_names_both_sides():
    g = graph_with(retrieve, show)
    with pytest.raises(
        xcs.FieldMappingError,
        match=r"matched nothing: retrieve returns \(query, docs, scores\) and show .* "
        r"takes \(best, left, text\)",
    ):
        g.add_edge("retrieve", "show", field_mappings=xcs.prefix_mapping("x_"))


def test_undeclared_producer_fields_are_still_checked_at_run_time():
    g = graph_with(untyped, rank)
    g.add_edge("untyped", "rank", field_mappings={"query": "query", "documents": "docs"})
    with pytest.raises(xcs.XCSError, match="'documents'"):
        xcs.execute_graph(g, {"query": "q"})


@pytest.mark.parametrize(
    ("producer", "field", "expected"),
    [(score, "best", "q0"), (score, "label", "q:1.00"), (split, "left", "10")],
    ids=["dataclass-field", "dataclass-property", "namedtuple-field"],
)
def test_dataclass_and_namedtuple_outputs_declare_their_fields(producer, field, expected):
    g = graph_with(producer, show)
    g.add_edge(producer.name, "show", field_mappings={field: "text"})
    assert xcs.execute_graph(g, {"query": "q"})["show"] == expected
    with pytest.raises(xcs.FieldMappingError, match="declares its output fields"):
        graph_with(producer, show).add_edge(producer.name, "show", field_mappings={"nope": "text"})


def test_whole_output_is_always_allowed_from_a_declared_producer():
    g = graph_with(split, show)
    g.add_edge("split", "show", field_mappings={"*": "text"})
    assert xcs.execute_graph(g, {"query": "abc"}) == {"show": "Pair(left=3, right=2)0"}


def test_connect_with_mappings_takes_two_plain_ids():
    g = graph_with(retrieve, rank)
    with pytest.raises(xcs.GraphError, match="two plain node ids"):
        g.connect("retrieve.docs", "rank", field_mappings=xcs.identity_mapping())
    with pytest.raises(xcs.GraphError, match="two plain node ids"):
        g.connect("retrieve", "rank", "show", field_mappings={})


@pytest.mark.parametrize("bad", [("",), (3,)])
def test_field_names_must_be_non_empty_strings(bad):
    with pytest.raises(xcs.FieldMappingError, match="non-empty strings"):
        xcs.identity_mapping(*bad)


def test_prefix_must_be_a_string():
    with pytest.raises(xcs.FieldMappingError, match="str prefix"):
        xcs.prefix_mapping(None, "a")


def test_field_mappings_must_be_a_dict():
    g = graph_with(retrieve, rank)
    with pytest.raises(xcs.FieldMappingError, match="must be a dict.*got list"):
        g.add_edge("retrieve", "rank", field_mappings=["docs"])
