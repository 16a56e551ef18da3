"""Graph passes: dead-node elimination, common-subexpression merging, constant folding.

The property tests build random DAGs from a small palette of operators (pure, unmarked
and stochastic; some read the run input `x`), run them with and without random pass
pipelines, and compare: the answers must be equal on every run, and every node that is
not pure must still be called exactly once per run.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ember_xcs as xcs
from ember_xcs.graph import PassReport
from ember_xcs.models import LLMOperator, SimulatedModel

PRIME = 1_000_003
PASSES = ("eliminate_dead_nodes", "merge_common_subexpressions", "fold_constants")


class Calls:
    """Counts calls per palette entry and per node, thread-safely."""

    def __init__(self) -> None:
        self.by_kind: Counter[str] = Counter()
        self.lock = threading.Lock()

    def hit(self, kind: str) -> None:
        with self.lock:
            self.by_kind[kind] += 1


def palette(calls: Calls) -> list[tuple[str, xcs.Operator]]:
    """(kind, operator) pairs: deterministic bodies, marked pure, unmarked or stochastic."""
    entries = []
    for marker in ("pure", "plain", "stochastic"):
        for k in range(2):
            for reads_x in (False, True):  # so the odd entries read x
                kind = f"{marker}{k}{'x' if reads_x else ''}"
                entries.append((kind, _operator(kind, marker, reads_x, k, calls)))
    return entries


def _operator(kind: str, marker: str, reads_x: bool, k: int, calls: Calls) -> xcs.Operator:
    if reads_x:

        def body(*inputs: int, x: int) -> int:
            calls.hit(kind)
            return (k * 7 + 3 * sum(inputs) + x) % PRIME

    else:

        def body(*inputs: int) -> int:
            calls.hit(kind)
            return (k * 7 + 3 * sum(inputs) + 1) % PRIME

    body.__name__ = kind
    return xcs.op(body, pure=marker == "pure", stochastic=marker == "stochastic")


@st.composite
def pipelines(draw: Any) -> dict[str, Any]:
    """A random DAG (as node specs), requested outputs and a pass pipeline."""
    n = draw(st.integers(min_value=1, max_value=40))
    rng = draw(st.randoms(use_true_random=False))
    nodes: list[tuple[int, list[int]]] = []  # (palette index, parents)
    for i in range(n):
        if nodes and rng.random() < 0.3:  # a copy of an earlier call: something to merge
            nodes.append(nodes[rng.randrange(len(nodes))])
            continue
        parents = sorted({rng.randrange(i) for _ in range(rng.randint(0, 3))}) if i else []
        nodes.append((rng.randrange(12), parents))
    ids = [f"n{i}" for i in range(n)]
    outputs = draw(st.none() | st.lists(st.sampled_from(ids), min_size=1, max_size=4))
    passes = draw(st.lists(st.sampled_from(PASSES), unique=True))
    scheduler = draw(st.sampled_from(["sequential", "parallel"]))
    return {"nodes": nodes, "outputs": outputs, "passes": tuple(passes), "scheduler": scheduler}


def build(spec: dict[str, Any], calls: Calls) -> xcs.Graph:
    ops = palette(calls)
    g = xcs.Graph()
    for i, (entry, parents) in enumerate(spec["nodes"]):
        g.add_node(ops[entry][1], node_id=f"n{i}")
        for p in parents:
            g.add_edge(f"n{p}", f"n{i}")
    return g


def run_inputs(spec: dict[str, Any], x: int) -> dict[str, int]:
    """`{"x": x}` when some node reads `x` (an input nothing reads is an error)."""
    reads_x = any(entry % 2 for entry, _ in spec["nodes"])  # see `palette`'s order
    return {"x": x} if reads_x else {}


def inputs_for(graph: xcs.Graph, x: int) -> dict[str, int]:
    reads_x = any(n.signature and "x" in n.signature.parameters for n in graph.nodes.values())
    return {"x": x} if reads_x else {}


def not_pure_calls(calls: Calls) -> Counter[str]:
    return Counter({k: v for k, v in calls.by_kind.items() if not k.startswith("pure")})


def expected_not_pure_calls(spec: dict[str, Any], graph: xcs.Graph) -> Counter[str]:
    """One call per run of every node that is not pure, among the nodes that run: all of
    them, or with dead-node elimination those the requested outputs need."""
    ids = list(graph.nodes)
    if "eliminate_dead_nodes" in spec["passes"]:
        wanted = spec["outputs"] or graph.sinks()
        ids = [n for n in ids if n in set(wanted).union(*map(graph.dependencies, wanted))]
    kinds = Counter(graph.nodes[n].name for n in ids)
    return Counter({k: v for k, v in kinds.items() if not k.startswith("pure")})


@settings(max_examples=100, deadline=None)
@given(pipelines())
def test_passes_keep_the_answers_on_random_dags(spec):
    plain_calls, passes_calls = Calls(), Calls()
    plain, optimized = build(spec, plain_calls), build(spec, passes_calls)
    base = xcs.ExecutionOptions(scheduler=spec["scheduler"])
    with_passes = base.replace(graph_passes=spec["passes"])
    for x in (5, 11, 5):  # the third run reuses folded constants with an earlier input
        plain_calls.by_kind.clear()
        passes_calls.by_kind.clear()
        inputs = run_inputs(spec, x)
        expected = xcs.execute_graph(plain, inputs, options=base, outputs=spec["outputs"])
        got = xcs.execute_graph(optimized, inputs, options=with_passes, outputs=spec["outputs"])
        assert dict(got) == dict(expected)
        # nothing that is not pure is merged or folded: each one that runs runs once
        assert not_pure_calls(passes_calls) == expected_not_pure_calls(spec, plain)
        assert sum(passes_calls.by_kind.values()) <= sum(plain_calls.by_kind.values())


@settings(max_examples=40, deadline=None)
@given(pipelines())
def test_each_pass_method_returns_a_new_graph_with_the_same_answers(spec):
    g = build(spec, Calls())
    before = (list(g.nodes), g.edges, g.version)
    inputs = run_inputs(spec, 3)
    expected = xcs.execute_graph(g, inputs, outputs=spec["outputs"])
    for new in (
        g.eliminate_dead_nodes(outputs=spec["outputs"]),
        g.merge_common_subexpressions(outputs=spec["outputs"]),
        g.fold_constants(),
    ):
        assert new is not g
        wanted = spec["outputs"] or g.sinks()
        assert xcs.execute_graph(new, inputs_for(new, 3), outputs=wanted) == expected
    assert (list(g.nodes), g.edges, g.version) == before


# --- each pass ------------------------------------------------------------------------


def counting(name: str, calls: Counter[str], **flags: bool) -> xcs.Operator:
    def body(*inputs: Any) -> Any:
        calls[name] += 1
        return (name, *inputs)

    body.__name__ = name
    return xcs.op(body, **flags)


def diamond(calls: Counter[str], **flags: bool) -> xcs.Graph:
    """source -> (left, right: one operator) -> join, plus a debug sink off the source."""
    shared = counting("embed", calls, **flags)
    g = xcs.Graph()
    g.add_node(counting("source", calls), node_id="source")
    g.add_node(shared, node_id="left")
    g.add_node(shared, node_id="right")
    g.add_node(counting("join", calls), node_id="join")
    g.add_node(counting("debug", calls), node_id="debug")
    g.connect("source", "left").connect("source", "right").connect("source", "debug")
    g.add_edge("left", "join").add_edge("right", "join")
    return g


def test_dead_node_elimination_drops_nodes_no_requested_output_needs():
    calls: Counter[str] = Counter()
    options = xcs.ExecutionOptions(graph_passes=("eliminate_dead_nodes",))
    result = xcs.execute_graph(diamond(calls), options=options, outputs=["join"])
    assert set(result) == {"join"}
    assert calls["debug"] == 0 and calls["embed"] == 2
    assert result.stats.graph_passes.removed == ("debug",)


def test_without_the_pass_requested_outputs_only_filter_the_result():
    calls: Counter[str] = Counter()
    result = xcs.execute_graph(diamond(calls), outputs=["left", "join"])
    assert list(result) == ["left", "join"] and calls["debug"] == 1
    assert result.stats.graph_passes is None


def test_merging_runs_one_call_of_equal_pure_nodes():
    calls: Counter[str] = Counter()
    options = xcs.ExecutionOptions(graph_passes=("merge_common_subexpressions",))
    result = xcs.execute_graph(diamond(calls, pure=True), options=options, outputs=["join"])
    assert result["join"] == ("join", ("embed", ("source",)), ("embed", ("source",)))
    assert calls["embed"] == 1
    assert dict(result.stats.graph_passes.merged) == {"right": "left"}


@pytest.mark.parametrize("flags", [{}, {"stochastic": True}], ids=["unmarked", "stochastic"])
def test_merging_never_touches_nodes_not_marked_pure(flags):
    calls: Counter[str] = Counter()
    g = diamond(calls, **flags)
    merged = g.merge_common_subexpressions()
    assert xcs.execute_graph(merged) == xcs.execute_graph(g)
    assert calls["embed"] == 4 and not merged.pass_report.merged


def test_an_operator_class_marked_pure_is_merged_and_a_sampling_model_call_is_not():
    class Embed(xcs.Operator):
        pure = True

        def __init__(self) -> None:
            self.calls = 0

        def forward(self, text: str) -> int:
            self.calls += 1
            return len(text)

    model = SimulatedModel()
    sample = LLMOperator(model, "Say {text}", params={"temperature": 0.7})
    embed = Embed()
    g = xcs.Graph()
    for node_id, operator in [("e1", embed), ("e2", embed), ("s1", sample), ("s2", sample)]:
        g.add_node(operator, node_id=node_id)
    merged = g.merge_common_subexpressions()
    assert dict(merged.pass_report.merged) == {"e2": "e1"}
    assert set(xcs.execute_graph(merged, {"text": "hi"})) == {"e2", "s1", "s2"}
    assert embed.calls == 1


def test_a_merged_node_that_is_an_output_keeps_its_id_as_a_pass_through():
    calls: Counter[str] = Counter()
    g = diamond(calls, pure=True)
    options = xcs.ExecutionOptions(graph_passes=("merge_common_subexpressions",))
    result = xcs.execute_graph(g, options=options, outputs=["left", "right"])
    assert result == {"left": ("embed", ("source",)), "right": ("embed", ("source",))}
    assert calls["embed"] == 1


def test_nodes_given_their_own_inputs_are_not_merged():
    calls: Counter[str] = Counter()

    @xcs.op(pure=True)
    def greet(name: str = "world") -> str:
        calls[name] += 1
        return f"hello {name}"

    g = xcs.Graph()
    g.add_node(greet, node_id="a")
    g.add_node(greet, node_id="b")
    options = xcs.ExecutionOptions(graph_passes="all")
    result = xcs.execute_graph(g, {"b": {"name": "ada"}}, options=options)
    assert result == {"a": "hello world", "b": "hello ada"}
    assert not result.stats.graph_passes.merged


def test_constant_folding_computes_a_constant_once_across_runs():
    calls: Counter[str] = Counter()

    @xcs.op(pure=True)
    def table() -> dict:
        calls["table"] += 1
        return {"a": 1, "b": 2}

    @xcs.op(pure=True)
    def keys(t: dict) -> list:
        calls["keys"] += 1
        return sorted(t)

    @xcs.op(pure=True)
    def lookup(t: dict, key: str) -> int:
        calls["lookup"] += 1
        return t[key]

    g = xcs.Graph()
    g.add_node(table)
    g.add_node(keys)
    g.add_node(lookup)
    g.connect("table", "keys").connect("table", "lookup")
    options = xcs.ExecutionOptions(graph_passes=("fold_constants",))
    answers = [xcs.execute_graph(g, {"key": k}, options=options) for k in ("a", "b", "a")]
    assert answers == [{"keys": ["a", "b"], "lookup": v} for v in (1, 2, 1)]
    assert calls == {"table": 1, "keys": 1, "lookup": 3}  # lookup reads the input `key`
    assert answers[0].stats.graph_passes.folded == ("table", "keys")


def test_a_constant_kept_as_a_pass_through_still_lets_its_consumer_fold():
    calls: Counter[str] = Counter()

    @xcs.op(pure=True)
    def one() -> int:
        calls["one"] += 1
        return 1

    @xcs.op(pure=True)
    def add(a: int, b: int) -> int:
        calls["add"] += 1
        return a + b

    g = xcs.Graph()
    g.add_node(one, node_id="c1")
    g.add_node(one, node_id="c2")
    g.add_node(add)
    g.add_edge("c1", "add").add_edge("c2", "add")  # add takes both: c2 stays, passing c1 on
    new = g.merge_common_subexpressions().fold_constants()
    assert dict(new.pass_report.merged) == {"c2": "c1"}
    assert new.pass_report.folded == ("c1", "add")
    assert [xcs.execute_graph(new, outputs=["add"]) for _ in range(2)] == [{"add": 2}] * 2
    assert calls == {"one": 1, "add": 1}


def test_a_parameter_with_a_default_keeps_a_node_from_being_constant():
    @xcs.op(pure=True)
    def limit(n: int = 3) -> int:
        return n

    g = xcs.Graph()
    g.add_node(limit)
    options = xcs.ExecutionOptions(graph_passes=("fold_constants",))
    assert xcs.execute_graph(g, options=options) == {"limit": 3}
    assert xcs.execute_graph(g, {"n": 4}, options=options) == {"limit": 4}
    assert g.fold_constants().pass_report.folded == ()


def test_a_failing_constant_is_not_remembered_and_names_its_node():
    attempts = []

    @xcs.op(pure=True)
    def flaky() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("cold start")
        return 42

    g = xcs.Graph()
    g.add_node(flaky, node_id="load")
    folded = g.fold_constants()
    with pytest.raises(xcs.NodeExecutionError, match="load") as info:
        xcs.execute_graph(folded)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert [xcs.execute_graph(folded) for _ in range(2)] == [{"load": 42}] * 2
    assert len(attempts) == 2


def test_an_async_constant_is_folded():
    calls = []

    @xcs.op(pure=True)
    async def fetch() -> str:
        calls.append(1)
        await asyncio.sleep(0)
        return "config"

    g = xcs.Graph()
    g.add_node(fetch)
    folded = g.fold_constants()
    assert [xcs.execute_graph(folded) for _ in range(3)] == [{"fetch": "config"}] * 3
    assert len(calls) == 1


def test_numeric_operators_count_as_pure():
    calls = []

    @xcs.op(numeric=True)
    def scale(x):
        calls.append(1)
        return x * 2.0

    g = xcs.Graph()
    g.add_node(scale, node_id="s1")
    g.add_node(scale, node_id="s2")
    result = xcs.execute_graph(
        g, {"x": 1.5}, options=xcs.ExecutionOptions(graph_passes=("merge_common_subexpressions",))
    )
    assert result == {"s1": 3.0, "s2": 3.0} and len(calls) == 1


def test_noop_dry_run_reports_the_passes_and_calls_nothing():
    calls: Counter[str] = Counter()
    options = xcs.ExecutionOptions(scheduler="noop", graph_passes="all")
    result = xcs.execute_graph(diamond(calls, pure=True), options=options, outputs=["join"])
    report = result.stats.graph_passes
    assert (report.removed, dict(report.merged)) == (("debug",), {"right": "left"})
    assert str(report) == "1 removed, 1 merged, 0 folded (" + ", ".join(PASSES) + ")"
    # join takes left and right positionally, so right stays as a pass-through of left
    names = {n.node_id: n.name for n in result.plan.nodes}
    assert list(names) == ["source", "left", "right", "join"]
    assert names["right"] == "embed" and result.plan.nodes[2].operator.name == "same_as(left)"
    assert not calls


def test_report_as_dict_gives_counts_and_ids():
    report = PassReport(("fold_constants",), folded=("a", "b"))
    assert report.as_dict() == {
        "passes": ["fold_constants"],
        "removed": [],
        "merged": {},
        "folded": ["a", "b"],
        "nodes_removed": 0,
        "nodes_merged": 0,
        "nodes_folded": 2,
    }


def test_the_optimized_graph_is_rebuilt_when_the_graph_changes():
    calls: Counter[str] = Counter()
    g = diamond(calls, pure=True)
    options = xcs.ExecutionOptions(graph_passes=("eliminate_dead_nodes",))
    assert set(xcs.execute_graph(g, options=options)) == {"join", "debug"}
    g.add_node(counting("late", calls), node_id="late")
    g.add_edge("join", "late")
    assert set(xcs.execute_graph(g, options=options)) == {"late", "debug"}


def test_chained_methods_accumulate_the_report():
    g = diamond(Counter(), pure=True)
    new = g.eliminate_dead_nodes(outputs="join").merge_common_subexpressions().fold_constants()
    assert new.pass_report.passes == PASSES
    assert new.pass_report.removed == ("debug",)
    assert g.pass_report is None


# --- bad input --------------------------------------------------------------------------


def test_unknown_pass_name_suggests_the_real_one():
    with pytest.raises(xcs.OptionsError, match=r"'dce' \(did you mean 'eliminate_dead_nodes'\?\)"):
        xcs.ExecutionOptions(graph_passes=("dce",))
    with pytest.raises(xcs.OptionsError, match=r"'fold_constant' \(did you mean 'fold_constants'"):
        xcs.ExecutionOptions(graph_passes="fold_constant")


def test_graph_passes_must_be_names():
    with pytest.raises(xcs.OptionsError, match="unknown graph pass 3"):
        xcs.ExecutionOptions(graph_passes=3)


def test_unknown_output_is_named():
    g = diamond(Counter())
    with pytest.raises(xcs.UnknownNodeError, match=r"no node 'jion'.*nodes: source, left"):
        xcs.execute_graph(g, outputs=["jion"])
    with pytest.raises(xcs.UnknownNodeError, match="eliminate_dead_nodes"):
        g.eliminate_dead_nodes(outputs=["jion"])


def test_an_operator_cannot_be_pure_and_stochastic():
    with pytest.raises(ValueError, match="contradict"):
        xcs.op(lambda: 1, pure=True, stochastic=True)


def test_benchmark_scenario_gives_the_same_answers_with_fewer_calls():
    from ember_xcs_bench._graph_passes import measure

    out = measure(rounds=2, scale=0.0)
    assert out["same_answers"]
    assert out["calls_per_run"] == {"passes off": 9, "graph_passes='all'": 4}
    assert str(out["report"]).startswith("2 removed, 2 merged, 1 folded")
