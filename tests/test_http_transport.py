"""One shared event loop for every request; under `jit`, model calls are async leaves
awaited on it (one node each, overlapped), not blocking calls holding a thread each."""

from __future__ import annotations

import asyncio
import contextvars
import pickle
import threading

import pytest

import ember_xcs as xcs
from ember_xcs import models
from ember_xcs.models import LLMOperator, OpenAICompatibleModel, UniformEnsemble

pytest_plugins = ("loopback",)  # the `server` and `fresh` fixtures

LOOP_THREAD = "ember-xcs-async"


class WhereCallsEnd(xcs.ExecutionHooks):
    """Notes the thread each model call finished on (`on_model_usage` runs there)."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def on_model_usage(self, *, model, usage, cached):
        self.threads.append(threading.current_thread().name)


def test_sync_and_async_callers_all_run_requests_on_the_shared_loop(fresh):
    model = OpenAICompatibleModel(fresh.url, "m")
    where = WhereCallsEnd()

    async def on_a_users_loop() -> None:
        await asyncio.gather(model.acomplete("a"), model.acomplete("b"))

    with xcs.execution_options(hooks=(where,)):
        model.complete("sync")
        context = contextvars.copy_context()  # a new thread starts without our options
        worker = threading.Thread(target=context.run, args=(model.complete, "from a thread"))
        worker.start()
        worker.join()
        asyncio.run(on_a_users_loop())
    assert where.threads == [LOOP_THREAD] * 4


def test_direct_complete_calls_in_a_jitted_body_are_overlapped_leaf_calls(fresh):
    fresh.latency = 0.3  # long enough that six overlapping calls are seen together
    model = OpenAICompatibleModel(fresh.url, "m", seed=1)

    def self_consistency(prompt):
        return [model.complete(prompt, sample=i) for i in range(6)]

    jitted = xcs.jit(self_consistency)
    answers = jitted("2 + 2?")
    assert fresh.max_concurrent == 6 and fresh.requests == 6
    assert [a.text for a in answers] == [a.text for a in self_consistency("2 + 2?")]
    assert len({a.text for a in answers}) == 6


def test_llm_operators_over_the_http_model_run_as_async_nodes_on_the_loop(fresh):
    fresh.latency = 0.2
    model = OpenAICompatibleModel(fresh.url, "m", seed=5)
    ensemble = UniformEnsemble(12, model, "Q: {q}")
    timeline = xcs.Timeline()
    with xcs.execution_options(hooks=(timeline,)):
        jitted = xcs.jit(ensemble)("why?")
    assert jitted == ensemble("why?")
    assert fresh.max_concurrent == 12
    assert len(timeline.records) == 12
    assert {r.thread for r in timeline.records} == {LOOP_THREAD}  # no worker thread held


def test_llm_operator_over_the_http_model_in_an_explicit_graph(fresh):
    model = OpenAICompatibleModel(fresh.url, "m", seed=2)
    graph = xcs.Graph()
    for i in range(3):
        graph.add_node(LLMOperator(model, "Q: {q}", sample=i), node_id=f"u{i}")
    result = xcs.execute_graph(graph, {"q": "hi"})
    assert [result[f"u{i}"] for i in range(3)] == [
        LLMOperator(model, "Q: {q}", sample=i)("hi") for i in range(3)
    ]


def test_blocking_complete_on_the_loop_thread_says_to_await_acomplete(fresh):
    model = OpenAICompatibleModel(fresh.url, "m")

    async def inside_the_loop() -> None:
        model.complete("q")

    class Blocking(xcs.Operator):
        async def forward(self, q):
            await inside_the_loop()

    with pytest.raises(xcs.XCSError) as info:
        xcs.jit(models.UniformEnsemble.from_units([Blocking()]))("q")
    assert "await model.acomplete" in str(info.value)


def test_a_pickled_model_answers_the_same_and_shares_the_cap_in_its_process(fresh):
    model = OpenAICompatibleModel(fresh.url, "m", api_key="sk-pickled", max_concurrency=3)
    clone = pickle.loads(pickle.dumps(model))
    assert clone.complete("q").text == model.complete("q").text
    assert clone.limits is model.limits and "sk-pickled" not in repr(vars(clone))
