"""Ensemble blocks under `jit`: same answers, every call once, full concurrency, flat graphs."""

from __future__ import annotations

import pytest

import ember_xcs as xcs
from ember_xcs import autograph, get_jit_stats, jit
from ember_xcs.models import (
    JudgeSynthesis,
    LLMOperator,
    MostCommon,
    Sequential,
    SimulatedModel,
    UniformEnsemble,
    Verifier,
    nested_ensemble,
)

MODES = ["auto", "trace", "structural", "dynamic"]
QUESTIONS = ["What is XLA?", "Why shard?", "What is a pytree?"]  # 1st, 2nd, n-th call
VOTES = ["Paris", "Lyon", "Paris", "Nice"]


def _verdict_reply(prompt: str, sample: int) -> str:
    passed = "PASS" if len(prompt) % 2 else "FAIL"
    return f"Verdict: {passed}\nExplanation: length {len(prompt)}"


def _judge_reply(prompt: str, sample: int) -> str:
    return f"Final answer: {prompt.count('Paris')} votes for Paris"


def _vote(model):
    return Sequential([UniformEnsemble(5, model, "Q: {question}"), MostCommon()])


def _judged(model):
    return Sequential([UniformEnsemble(4, model), JudgeSynthesis(model)])


def _verified(model):
    return Sequential([LLMOperator(model, "{question}"), Verifier(model)])


def _nested(model):
    return nested_ensemble(model, width=3, depth=2)


PIPELINES = {
    "vote": (_vote, 5, lambda: SimulatedModel(responses=VOTES)),
    "judged": (_judged, 5, lambda: SimulatedModel(responses=_judge_reply)),
    "verified": (_verified, 2, lambda: SimulatedModel(responses=_verdict_reply)),
    "nested": (_nested, 13, lambda: SimulatedModel()),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_ensemble_blocks_give_the_same_answers_under_every_jit_mode(name, mode):
    build, leaves, make_model = PIPELINES[name]
    plain, jitted_model = build(make_model()), make_model()
    jitted = jit(build(jitted_model), mode=mode)
    for question in QUESTIONS:
        jitted_model.reset_counters()
        assert jitted(question) == plain(question)
        assert jitted_model.calls == leaves  # each leaf call exactly once per call
        assert len(set(jitted_model.call_log)) == leaves


@pytest.mark.parametrize("mode", MODES)
def test_ensemble_concurrency_reaches_its_width(mode):
    model = SimulatedModel(latency=0.2)
    ensemble = jit(UniformEnsemble(8, model), mode=mode)
    assert len(ensemble("q")) == 8
    assert model.calls == 8 and model.max_in_flight == 8


@pytest.mark.parametrize("mode", ["trace", "dynamic"])
def test_ensemble_concurrency_is_bounded_by_the_model_cap(mode):
    model = SimulatedModel(latency=0.05, max_concurrency=3)
    ensemble = jit(Sequential([UniformEnsemble(9, model), MostCommon()]), mode=mode)
    ensemble("q")
    assert model.calls == 9 and model.max_in_flight == 3


def test_nested_ensemble_flattens_to_111_leaf_nodes_with_critical_path_3():
    model = SimulatedModel()
    tree = nested_ensemble(model, width=10, depth=2)
    with autograph() as graph:
        tree("What limits parallel speedup?")
    assert model.calls == 0  # recording runs nothing
    llm_nodes = [n for n in graph.nodes.values() if isinstance(n.operator, LLMOperator)]
    assert len(llm_nodes) == 111  # units and judges; autograph adds list-building nodes
    weights = {n: float(isinstance(graph.nodes[n].operator, LLMOperator)) for n in graph}
    assert graph.critical_path_length(weights) == 3  # unit -> inner judge -> outer judge
    jitted = jit(tree, mode="trace")
    jitted("What limits parallel speedup?")
    stats = get_jit_stats(jitted)
    assert stats.leaf_calls == 111 and stats.critical_path == 3
    assert model.calls == 111


def test_nested_ensemble_runs_all_units_of_a_level_at_once():
    model = SimulatedModel(latency=0.2)
    jitted = jit(nested_ensemble(model, width=4, depth=2), mode="trace")
    jitted("q")
    assert model.calls == 21
    assert model.max_in_flight == 16  # every unit of both levels of ensembles together


def test_timeline_of_a_jitted_ensemble_records_each_leaf_once():
    timeline = xcs.Timeline()
    model = SimulatedModel(latency=0.05)
    jitted = jit(_judged(model), mode="trace")
    with xcs.execution_options(hooks=(timeline,)):
        jitted("q")
    assert len(timeline.records) == 5
    assert timeline.max_concurrency() == 4


@pytest.mark.parametrize(("cap", "expected"), [(None, 10), (4, 4)])
def test_jitted_http_ensemble_concurrency_measured_server_side(cap, expected):
    from ember_xcs.models import OpenAICompatibleModel
    from ember_xcs.models.testing import OpenAITestServer

    # 0.3 s per request: wide enough that on a loaded 2-core machine every unit's request
    # is in flight before the first one returns (the count is measured server-side)
    with OpenAITestServer(latency=0.3) as server:
        with OpenAICompatibleModel(server.url, "m", max_concurrency=cap, seed=0) as model:
            jitted = jit(_judged_wide(model), mode="trace")
            plain_answer = _judged_wide(model)("q")
            server.reset()
            assert jitted("q") == plain_answer  # seeds make the server's answers repeatable
        assert server.requests == 11
        assert server.max_concurrent == expected


def _judged_wide(model):
    return Sequential([UniformEnsemble(10, model), JudgeSynthesis(model)])


@pytest.mark.parametrize("mode", ["auto", "trace", "structural"])
def test_direct_http_model_calls_trace_into_a_plan_like_simulated_ones(mode):
    from ember_xcs.models import OpenAICompatibleModel
    from ember_xcs.models.testing import OpenAITestServer

    with OpenAITestServer(latency=0.3) as server:
        model = OpenAICompatibleModel(server.url, "m", seed=0)

        def body(question):
            texts = [model.complete(question, sample=i).text for i in range(3)]
            pieces = model.stream(question, sample=3)
            return texts, pieces

        texts, pieces = body("q")
        plain = (texts, list(pieces))  # inside jit a stream is its list of pieces (docs)
        jitted = jit(body, mode=mode)
        server.reset()
        assert jitted("q") == plain
        assert xcs.get_jit_strategy_used(jitted) == (
            "structural" if mode == "structural" else "trace"
        )
        assert (server.requests, server.max_concurrent) == (4, 4)


@pytest.mark.parametrize("mode", ["auto", "trace", "structural", "dynamic"])
def test_model_stats_read_in_a_body_count_the_calls_made_before_the_read(mode):
    model = SimulatedModel(latency=0.05)

    def body(question):
        before, calls_before = model.stats()["calls"], model.calls
        texts = [model.complete(question, sample=i).text for i in range(3)]
        return texts, model.stats()["calls"] - before, model.calls - calls_before

    plain = body("q")
    assert plain[1:] == (3, 3)
    jitted = jit(body, mode=mode)
    assert jitted("q") == plain
    assert jitted("r") == body("r")
    if mode != "structural":  # structural runs an untraceable body as written
        model.reset_counters()
        jitted("s")
        assert model.max_in_flight == 3


def _samples(model, question):
    return [model.complete(question, sample=i).text for i in range(3)]


@pytest.mark.parametrize("mode", ["auto", "trace", "structural"])
def test_a_model_passed_as_an_argument_traces_as_a_global_model_does(mode):
    model, twin = SimulatedModel("m", latency=0.05), SimulatedModel("m", latency=0.05)
    jitted = jit(_samples, mode=mode)
    for question in QUESTIONS:
        assert jitted(model, question) == _samples(twin, question)
    assert xcs.get_jit_strategy_used(jitted) == ("structural" if mode == "structural" else "trace")
    assert "signature (m, str):" in xcs.explain_jit_selection(jitted)
    stats = get_jit_stats(jitted)
    assert (stats.cache_misses, stats.cache_hits) == (1, len(QUESTIONS) - 1)
    assert model.calls == 3 * len(QUESTIONS)
    assert model.max_in_flight == 3  # the plan overlaps the samples


def test_two_models_passed_in_turn_each_get_their_own_calls_and_plan():
    a, b = SimulatedModel("a", seed=1), SimulatedModel("b", seed=2)
    twins = {a: SimulatedModel("a", seed=1), b: SimulatedModel("b", seed=2)}
    jitted = jit(_samples)
    for model in (a, b, a, b):
        assert jitted(model, "q") == _samples(twins[model], "q")
    assert (a.calls, b.calls) == (6, 6)
    assert _samples(twins[a], "q") != _samples(twins[b], "q")
    stats = get_jit_stats(jitted)
    assert (stats.cache_misses, stats.cache_hits) == (2, 2)
    explained = xcs.explain_jit_selection(jitted)
    assert "signature (a, str):" in explained and "signature (b, str):" in explained
