"""autograph records runnable graphs; stats, strategy and explanations report facts."""

from __future__ import annotations

import pytest
from jit_user_code import pipeline as p

import ember_xcs as xcs


@xcs.op
def write(question: str) -> dict:
    return {"text": f"draft for {question}", "words": len(question)}


@xcs.op
def edit(draft: str, style: str = "plain") -> str:
    return f"{style}: {draft}"


@xcs.op
def combine(parts: list, question: str) -> str:
    return f"{question} => {' / '.join(parts)}"


def test_autograph_records_a_graph_that_runs_with_new_inputs():
    recording = xcs.autograph()
    with recording as graph:
        draft = write(question="What is XLA?")
        short = edit(draft=draft["text"], style="short")
        long = edit(draft=draft["text"], style="long")
        final = combine(parts=[short, long], question="What is XLA?")
    assert isinstance(graph, xcs.Graph)
    assert len(graph) == 5  # four calls and one pack node for the list
    assert final is not None
    result = xcs.execute_graph(graph, recording.inputs)
    expected = combine.forward(
        [edit.forward(write.forward("What is XLA?")["text"], s) for s in ("short", "long")],
        "What is XLA?",
    )
    assert list(result.values()) == [expected]

    new = xcs.execute_graph(graph, {"question": "What is MLIR?", "style": "terse"})
    assert list(new.values()) == [
        "What is MLIR? => terse: draft for What is MLIR? / terse: draft for What is MLIR?"
    ]


def test_autograph_flattens_composites_into_leaf_nodes():
    ensemble = p.nested_ensemble(width=3, depth=1)
    with xcs.autograph() as graph:
        ensemble("q")
    assert len(graph) == 3 + 1 + 1  # units, pack, judge
    assert len(graph.critical_path()) == 3


def test_autograph_says_where_the_block_needed_a_value():
    with pytest.raises(xcs.TraceError, match=r"test_jit_introspection\.py:\d+"):
        with xcs.autograph():
            out = p.llm("q")
            print(out)


def test_stats_report_measured_plan_facts():
    ensemble = p.nested_ensemble(width=4, depth=2)
    jitted = xcs.jit(ensemble)
    for q in ("a", "b", "c"):
        jitted(q)
    stats = xcs.get_jit_stats(jitted)
    assert (stats.calls, stats.cache_hits, stats.cache_misses, stats.traces) == (3, 2, 1, 1)
    assert (stats.nodes, stats.leaf_calls, stats.critical_path) == (21, 21, 3)
    assert stats.plan_calls == 3 and stats.replay_seconds > 0 and stats.trace_seconds > 0
    assert 1 <= stats.max_in_flight <= 16
    assert stats.last_strategy == "trace"
    assert stats.name in xcs.get_jit_stats()


def test_strategy_used_and_compiled_flags_follow_the_calls():
    jitted = xcs.jit(p.branching)
    assert xcs.get_jit_strategy_used(jitted) is None
    assert not xcs.is_jit_compiled(jitted)
    jitted("q")
    assert xcs.get_jit_strategy_used(jitted) == xcs.JITMode.DYNAMIC
    assert not xcs.is_jit_compiled(jitted)  # dynamic: no plan
    chain = xcs.jit(p.chain)
    chain("q")
    assert xcs.is_jit_compiled(chain)
    assert not xcs.is_jit_compiled(p.chain)


def test_explain_reports_opaque_composites_with_their_reason():
    class Formatter(xcs.Operator):
        def __init__(self, model):
            self.model = model

        def forward(self, q):
            return self.model(f"formatted {self.model(q)}")  # needs a value: opaque

    top = p.Ensemble([Formatter(p.llm), p.critic], p.judge)
    jitted = xcs.jit(top)
    assert jitted("q") == top.forward("q")
    text = xcs.explain_jit_selection(jitted)
    assert "structural" in text
    assert "opaque node 'units[0]' (Formatter) runs with dynamic dispatch" in text
    assert "formatted" in text  # the reason quotes the source line


def test_structural_jit_never_runs_dynamically():
    jitted = xcs.structural_jit(p.fstring_chain)
    assert jitted("q") == p.fstring_chain("q")
    assert xcs.get_jit_strategy_used(jitted) == xcs.JITMode.STRUCTURAL
    assert "runs as written" in xcs.explain_jit_selection(jitted)


def test_explain_before_any_call_and_for_unjitted_callables():
    jitted = xcs.jit(p.chain, mode="trace")
    assert "not called yet" in xcs.explain_jit_selection(jitted)
    assert "not jitted" in xcs.explain_jit_selection(p.chain)
    with pytest.raises(TypeError, match="not jitted"):
        xcs.get_jit_stats(p.chain)


def test_noop_scheduler_returns_the_plan_without_calling_anything():
    before = p.all_counters()
    jitted = xcs.jit(p.chain)
    with xcs.execution_options(scheduler="noop"):
        result = jitted("q")
    assert isinstance(result, xcs.ExecutionResult)
    assert len(result.plan) == 2
    assert p.all_counters() == before


def test_leaf_calls_counts_the_calls_of_the_most_recent_dynamic_run():
    calls: list[str] = []

    @xcs.op
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return prompt + "!"

    def fan_out(question: str) -> list[str]:
        return [ask(f"{question} {i}") for i in range(int(question[-1]))]

    def chain(question: str) -> str:
        first = ask(question)
        return ask(first) if first.endswith("!") else first  # learns serial runs

    jitted = xcs.jit(fan_out)
    for question in ("q3", "q5", "q1"):
        calls.clear()
        jitted(question)
        stats = xcs.get_jit_stats(jitted)
        assert (stats.last_strategy, stats.leaf_calls) == ("dynamic", len(calls))
    serial = xcs.jit(chain)
    for question in ("a", "b", "c", "d", "e"):
        serial(question)
        assert xcs.get_jit_stats(serial).leaf_calls == 2
    assert "serial: calls run at once" in xcs.explain_jit_selection(serial)


def test_a_method_called_on_a_result_stops_the_trace_saying_so():
    jitted = xcs.jit(lambda q: p.llm(q).upper())
    assert jitted("x") == p.llm("x").upper()
    assert "Python called .upper() on the output of node" in xcs.explain_jit_selection(jitted)
