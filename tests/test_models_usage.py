"""Token usage summed per jitted function (`get_jit_stats`), from simulated and HTTP models
alike, on whatever thread or loop the calls ran."""

from __future__ import annotations

import pickle

import pytest

import ember_xcs as xcs
from ember_xcs import models
from ember_xcs.models import OpenAICompatibleModel, SimulatedModel

pytest_plugins = ("loopback",)  # the `server` and `fresh` fixtures


def _tokens(stats) -> tuple[int, int, int, int]:
    return stats.model_calls, stats.prompt_tokens, stats.completion_tokens, stats.total_tokens


def _totals(usage: models.UsageTotals) -> tuple[int, int, int, int]:
    return usage.calls, usage.prompt_tokens, usage.completion_tokens, usage.total_tokens


def test_jit_stats_sum_the_tokens_of_simulated_and_http_calls_over_every_call(fresh):
    simulated = SimulatedModel(seed=3)
    http = OpenAICompatibleModel(fresh.url, "m")

    def answer(question):
        draft = simulated.complete(f"Draft an answer: {question}")
        return http.complete(f"Improve: {draft.text}").text

    jitted = xcs.jit(answer)
    with models.track_usage() as expected:  # the same calls, not jitted
        plain = [answer(q) for q in ("why?", "how, exactly?")]
    assert [jitted(q) for q in ("why?", "how, exactly?")] == plain
    stats = xcs.get_jit_stats(jitted)
    assert _tokens(stats) == _totals(expected)
    assert stats.model_calls == 4 and stats.completion_tokens > 0
    assert stats.total_tokens == stats.prompt_tokens + stats.completion_tokens


def test_jit_stats_count_the_calls_of_async_nodes_on_the_engines_loop(fresh):
    ensemble = xcs.jit(models.UniformEnsemble(5, OpenAICompatibleModel(fresh.url, "m"), "Q: {q}"))
    with models.track_usage() as usage:
        ensemble("one")
        ensemble("two")
    assert fresh.requests == 10
    assert _tokens(xcs.get_jit_stats(ensemble)) == _totals(usage)
    assert xcs.get_jit_stats(ensemble).model_calls == 10


def test_response_cache_hits_add_no_model_calls_or_tokens(fresh, tmp_path):
    model = OpenAICompatibleModel(fresh.url, "m", cache=tmp_path / "responses.sqlite")
    jitted = xcs.jit(lambda q: model.complete(q).text)
    jitted("same question")
    first = xcs.get_jit_stats(jitted)
    jitted("same question")
    again = xcs.get_jit_stats(jitted)
    assert fresh.requests == 1 and model.stats()["cache_hits"] == 1
    assert _tokens(again) == _tokens(first) and first.model_calls == 1
    model.cache.close()


def test_a_failing_jitted_call_still_counts_the_calls_it_made():
    model = SimulatedModel()

    @xcs.jit
    def check(question):
        reply = model.complete(question)
        if reply.text.startswith("answer-"):
            raise ValueError("not good enough")
        return reply

    with pytest.raises(ValueError, match="not good enough"):
        check("is this right?")
    assert xcs.get_jit_stats(check).model_calls == 1
    assert xcs.get_jit_stats(check).prompt_tokens == model.stats()["prompt_tokens"] > 0


def test_simulated_model_reports_usage_like_a_real_model():
    model = SimulatedModel()
    seen = []

    class Usage(xcs.ExecutionHooks):
        def on_model_usage(self, *, model, usage, cached):
            seen.append((model, usage, cached))

    with xcs.execution_options(hooks=(Usage(),)), models.track_usage() as usage:
        replies = [model.complete("a prompt of some length", sample=i) for i in range(3)]
    assert seen == [("simulated", r.usage, False) for r in replies]
    assert usage.calls == model.stats()["calls"] == 3
    assert (
        usage.prompt_tokens == model.stats()["prompt_tokens"] == 3 * replies[0].usage.prompt_tokens
    )
    clone = pickle.loads(pickle.dumps(model))
    assert clone.stats()["calls"] == 0  # a copy counts its own calls
    model.reset_counters()
    assert model.stats()["calls"] == 0


@pytest.mark.parametrize("mode", ["auto", "trace", "structural", "dynamic"])
def test_track_usage_inside_a_jitted_body_counts_the_calls_made_in_its_block(fresh, mode):
    simulated = SimulatedModel(latency=0.01)
    http = OpenAICompatibleModel(fresh.url, "m")
    ask = models.LLMOperator(http, "Q: {q}")

    def body(question):
        before = simulated.complete(question).text  # outside the block: not counted
        with models.track_usage() as usage:
            texts = [simulated.complete(question, sample=i).text for i in range(3)]
            texts.append(ask(question))
        return before, texts, usage.calls, usage.prompt_tokens, usage.completion_tokens

    plain = body("why?")
    assert plain[2] == 4
    jitted = xcs.jit(body, mode=mode)
    assert jitted("why?") == plain
    assert jitted("why?") == plain


@pytest.mark.parametrize("mode", ["auto", "dynamic"])
def test_calls_inside_track_usage_in_a_jitted_body_overlap(mode):
    model = SimulatedModel(latency=0.1)

    def body(question):
        with models.track_usage() as usage:
            texts = [model.complete(question, sample=i).text for i in range(4)]
        return texts, usage.calls

    plain = body("q")
    model.reset_counters()
    assert xcs.jit(body, mode=mode)("q") == plain
    assert model.max_in_flight == 4
