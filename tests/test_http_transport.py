"""Where requests run: sync callers and `jit` on the one shared event loop (model calls are
async leaves awaited on it, overlapped, not blocking calls holding a thread each), `acomplete`
on the loop that awaits it, with a connection pool per loop closed when the loop ends."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import pickle
import socket
import subprocess
import sys
import textwrap
import threading
import weakref

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


def test_sync_callers_use_the_shared_loop_and_async_callers_their_own(fresh):
    model = OpenAICompatibleModel(fresh.url, "m")
    where = WhereCallsEnd()

    async def on_a_users_loop() -> None:
        await asyncio.gather(model.acomplete("a"), model.acomplete("b"))

    def in_a_thread(target, name: str) -> None:
        context = contextvars.copy_context()  # a new thread starts without our options
        worker = threading.Thread(target=context.run, args=(target,), name=name)
        worker.start()
        worker.join()

    with xcs.execution_options(hooks=(where,)):
        model.complete("sync")
        in_a_thread(lambda: model.complete("from a thread"), "sync-worker")
        asyncio.run(on_a_users_loop())
        in_a_thread(lambda: asyncio.run(model.acomplete("c")), "loop-worker")
    assert where.threads == [LOOP_THREAD, LOOP_THREAD, "MainThread", "MainThread", "loop-worker"]


def test_a_finished_loop_closes_its_connections_and_is_freed(fresh):
    model = OpenAICompatibleModel(fresh.url, "m")
    loops: list[weakref.ref] = []

    async def main() -> list[str]:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        replies = await asyncio.gather(*(model.acomplete(f"q{i}") for i in range(4)))
        return [r.text for r in replies]

    for _ in range(3):
        assert len(set(asyncio.run(main()))) == 4
    gc.collect()  # an unclosed session would warn here (an error under this suite)
    assert [ref() for ref in loops] == [None, None, None]


def test_sessions_of_loops_left_open_are_closed_at_exit_without_warnings(server):
    script = textwrap.dedent(
        """
        import asyncio, atexit, sys

        loop = asyncio.new_event_loop()  # open until exit: its session is closed then
        atexit.register(loop.close)  # runs after ember_xcs's exit hook (last in, first out)
        from ember_xcs.models import OpenAICompatibleModel

        model = OpenAICompatibleModel(sys.argv[1], "m")
        model.complete("on the shared loop")
        asyncio.run(model.acomplete("on a loop that ends"))
        print(loop.run_until_complete(model.acomplete("on a loop left open")).text)
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script, server.url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("answer-")
    assert "Unclosed" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr


def test_one_cap_holds_across_loops_threads_and_sync_callers(fresh):
    fresh.latency = 0.05
    model = OpenAICompatibleModel(fresh.url, "m", max_concurrency=2)

    async def four() -> None:
        await asyncio.gather(*(model.acomplete(f"q{i}") for i in range(4)))

    workers = [
        threading.Thread(target=asyncio.run, args=(four(),)),
        threading.Thread(target=asyncio.run, args=(four(),)),
        threading.Thread(target=lambda: [model.complete(f"s{i}") for i in range(2)]),
    ]
    for worker in workers:
        worker.start()
    asyncio.run(four())
    for worker in workers:
        worker.join()
    assert fresh.requests == 14
    assert fresh.max_concurrent == 2 and model.limits.max_in_flight == 2


def test_acomplete_on_a_users_loop_fails_with_a_model_error_naming_model_and_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    model = OpenAICompatibleModel(
        url, "offline", api_key="sk-never-shown", retry=models.RetryPolicy(max_retries=0)
    )
    with pytest.raises(models.ModelConnectionError) as info:
        asyncio.run(model.acomplete("q"))
    message = str(info.value)
    assert "'offline'" in message and url in message and "sk-never-shown" not in message


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


def test_llm_operators_over_the_http_model_in_an_explicit_graph_are_awaited_on_the_loop(fresh):
    fresh.latency = 0.2
    model = OpenAICompatibleModel(fresh.url, "m", seed=2)
    graph = xcs.Graph()
    for i in range(8):
        graph.add_node(LLMOperator(model, "Q: {q}", sample=i), node_id=f"u{i}")
    timeline = xcs.Timeline()
    with xcs.execution_options(hooks=(timeline,)):
        result = xcs.execute_graph(graph, {"q": "hi"})
    assert fresh.max_concurrent == 8
    assert {r.thread for r in timeline.records} == {LOOP_THREAD}  # no worker thread held
    fresh.latency = 0.0
    assert [result[f"u{i}"] for i in range(8)] == [
        LLMOperator(model, "Q: {q}", sample=i)("hi") for i in range(8)
    ]


def test_vmap_of_an_llm_operator_over_the_http_model_awaits_each_item_on_the_loop(fresh):
    ask = LLMOperator(OpenAICompatibleModel(fresh.url, "m"), "Capital of {country}?")
    timeline = xcs.Timeline()
    with xcs.execution_options(hooks=(timeline,)):
        answers = xcs.vmap(ask)(["France", "Peru", "Japan"])
    assert answers == [ask(c) for c in ("France", "Peru", "Japan")]
    assert len(timeline.records) == 3 and {r.thread for r in timeline.records} == {LOOP_THREAD}


def test_a_subclass_replacing_forward_alone_still_runs_its_forward_in_a_graph(fresh):
    class Shouting(LLMOperator):
        def forward(self, q):
            return super().forward(q).upper()

    shout = Shouting(OpenAICompatibleModel(fresh.url, "m"), "Q: {q}")
    graph = xcs.Graph()
    graph.add_node(shout, node_id="shout")
    assert xcs.execute_graph(graph, {"q": "hi"})["shout"] == shout("hi") == shout("hi").upper()
    assert xcs.jit(lambda q: shout(q))("hi") == shout("hi")


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
