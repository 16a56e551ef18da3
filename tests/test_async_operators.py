"""`async def` operators: awaited on one shared event loop, never a thread per call."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import pytest

import ember_xcs as xcs
from ember_xcs._options import current_options
from ember_xcs.operators import is_async_operator
from ember_xcs.scheduling import shared_pool


def test_fifty_async_operators_are_in_flight_together_without_fifty_threads() -> None:
    gate = asyncio.Barrier(50)  # passes only once all fifty calls are waiting at once
    threads = set()

    async def call(i: int) -> int:
        threads.add(threading.get_ident())
        await asyncio.wait_for(gate.wait(), timeout=30)
        return i

    g = xcs.Graph()
    for i in range(50):
        g.add_node(xcs.op(call, name="call"), node_id=f"c{i}")
    pool_before = shared_pool().size()
    threads_before = sum(t.name.startswith("ember-xcs") for t in threading.enumerate())
    result = xcs.execute_graph(g, {f"c{i}": {"i": i} for i in range(50)})
    assert sorted(result.values()) == list(range(50))
    assert result.stats.max_in_flight == 50
    assert len(threads) == 1  # every call ran on the event loop's thread
    assert shared_pool().size() < pool_before + 50
    threads_after = sum(t.name.startswith("ember-xcs") for t in threading.enumerate())
    assert threads_after <= threads_before + 1  # at most the event loop's own thread


def test_async_operators_respect_max_workers() -> None:
    state = {"now": 0, "peak": 0}

    async def call() -> None:
        state["now"] += 1  # single loop thread: no lock needed
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.001)
        state["now"] -= 1

    g = xcs.Graph()
    for i in range(20):
        g.add_node(xcs.op(call), node_id=f"c{i}")
    xcs.execute_graph(g, options=xcs.ExecutionOptions(scheduler="parallel", max_workers=3))
    assert state["peak"] == 3


@pytest.mark.parametrize("scheduler", ["sequential", "parallel", "wave"])
def test_async_and_sync_operators_mix_in_one_graph(scheduler: str) -> None:
    async def fetch(url: str) -> str:
        await asyncio.sleep(0)
        return f"<{url}>"

    def parse(page: str) -> int:
        return len(page)

    async def judge(a: int, b: int) -> str:
        return "a" if a >= b else "b"

    g = xcs.Graph()
    g.add_node(xcs.op(fetch), node_id="fetch_a")
    g.add_node(xcs.op(fetch), node_id="fetch_b")
    g.add_node(parse, node_id="parse_a")
    g.add_node(parse, node_id="parse_b")
    g.add_node(xcs.op(judge), node_id="judge")
    g.connect("fetch_a", "parse_a").connect("fetch_b", "parse_b")
    g.connect("parse_a", "judge.a").connect("parse_b", "judge.b")
    inputs = {"fetch_a": {"url": "long.example"}, "fetch_b": {"url": "x"}}
    result = xcs.execute_graph(g, inputs, options=xcs.ExecutionOptions(scheduler=scheduler))
    assert result == {"judge": "a"}


def test_async_operator_subclass() -> None:
    class Embed(xcs.Operator):
        def __init__(self, scale: int):
            self.scale = scale

        async def forward(self, text: str) -> int:
            await asyncio.sleep(0)
            return len(text) * self.scale

    op = Embed(3)
    assert is_async_operator(op)
    g = xcs.Graph()
    g.add_node(op, node_id="embed")
    assert xcs.execute_graph(g, {"text": "abcd"}) == {"embed": 12}


def test_a_sync_operator_that_returns_a_coroutine_is_awaited() -> None:
    class Wrapper(xcs.Operator):
        async def _inner(self, x: int) -> int:
            await asyncio.sleep(0)
            return x + 1

        def forward(self, x: int) -> Any:
            return self._inner(x)  # looks sync, returns a coroutine

    assert not is_async_operator(Wrapper())
    g = xcs.Graph()
    g.add_node(Wrapper(), node_id="w")
    for scheduler in ("sequential", "parallel"):
        options = xcs.ExecutionOptions(scheduler=scheduler)
        assert xcs.execute_graph(g, {"x": 1}, options=options) == {"w": 2}


def test_callable_objects_with_async_call_are_async_operators() -> None:
    class Client:
        async def __call__(self, prompt: str) -> str:
            return prompt.upper()

    op = xcs.op(Client(), name="client")
    assert is_async_operator(op)
    g = xcs.Graph()
    g.add_node(op, node_id="client")
    assert xcs.execute_graph(g, {"prompt": "hi"}) == {"client": "HI"}


def test_async_failures_name_the_node_and_chain_the_cause() -> None:
    async def broken(prompt: str) -> str:
        await asyncio.sleep(0)
        raise ConnectionError("rate limited")

    g = xcs.Graph()
    g.add_node(xcs.op(broken), node_id="llm")
    g.add_node(lambda: "other", node_id="other")
    with pytest.raises(xcs.NodeExecutionError) as info:
        xcs.execute_graph(g, {"prompt": "hello"})
    assert info.value.node_id == "llm" and info.value.operator_name == "broken"
    assert info.value.inputs_summary == "(prompt='hello')"
    assert isinstance(info.value.__cause__, ConnectionError)


@pytest.mark.parametrize("scheduler", ["sequential", "parallel"])
def test_async_retries_count_attempts(scheduler: str) -> None:
    attempts: list[int] = []

    async def flaky() -> int:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("blip")
        return len(attempts)

    g = xcs.Graph()
    g.add_node(xcs.op(flaky), node_id="flaky")
    options = xcs.ExecutionOptions(scheduler=scheduler, retries=2, retry_backoff=0)
    assert xcs.execute_graph(g, options=options) == {"flaky": 3}
    assert len(attempts) == 3


def test_async_retries_back_off_with_asyncio_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    from ember_xcs.scheduling import _node_call

    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(_node_call.asyncio, "sleep", fake_sleep)
    attempts: list[int] = []

    async def broken() -> None:
        attempts.append(1)
        raise ConnectionError("down")

    g = xcs.Graph()
    g.add_node(xcs.op(broken), node_id="broken")
    options = xcs.ExecutionOptions(scheduler="parallel", retries=2, retry_backoff=0.5)
    with pytest.raises(xcs.NodeExecutionError, match="after 3 attempts"):
        xcs.execute_graph(g, options=options)
    assert slept == [0.5, 1.0] and len(attempts) == 3


def test_async_operators_see_run_options_and_context_variables() -> None:
    tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="none")

    async def read() -> tuple[int | None, str]:
        return current_options().max_workers, tenant.get()

    g = xcs.Graph()
    g.add_node(xcs.op(read), node_id="read")
    token = tenant.set("acme")
    try:
        for scheduler in ("sequential", "parallel"):
            options = xcs.ExecutionOptions(scheduler=scheduler, max_workers=6)
            assert xcs.execute_graph(g, options=options) == {"read": (6, "acme")}
    finally:
        tenant.reset(token)


def test_async_node_timeout() -> None:
    async def slow() -> None:
        await asyncio.sleep(0.5)

    g = xcs.Graph()
    g.add_node(xcs.op(slow), node_id="slow")
    options = xcs.ExecutionOptions(scheduler="parallel", node_timeout_seconds=0.05)
    with pytest.raises(xcs.ExecutionTimeoutError, match="'slow'"):
        xcs.execute_graph(g, options=options)


def test_hooks_see_async_nodes() -> None:
    timeline = xcs.Timeline()

    async def call(i: int) -> int:
        await asyncio.sleep(0)
        return i

    g = xcs.Graph()
    for i in range(5):
        g.add_node(xcs.op(call), node_id=f"c{i}")
    inputs = {f"c{i}": {"i": i} for i in range(5)}
    xcs.execute_graph(g, inputs, options=xcs.ExecutionOptions(hooks=(timeline,)))
    assert sorted(r.node_id for r in timeline.records) == [f"c{i}" for i in range(5)]
    assert {r.thread for r in timeline.records} == {"ember-xcs-async"}


def test_graphs_run_from_inside_a_running_event_loop() -> None:
    async def fetch() -> str:
        return "page"

    g = xcs.Graph()
    g.add_node(xcs.op(fetch), node_id="fetch")

    async def main() -> Any:
        return xcs.execute_graph(g)  # a blocking call made by user code under asyncio.run

    assert asyncio.run(main()) == {"fetch": "page"}


@pytest.mark.parametrize("scheduler", ["sequential", "parallel"])
def test_an_async_operator_blocking_on_a_nested_async_graph_fails_clearly(scheduler: str) -> None:
    async def leaf() -> int:
        return 1

    inner = xcs.Graph()
    inner.add_node(xcs.op(leaf), node_id="leaf")

    async def outer() -> Any:
        # blocking call on the loop's own thread: the nested async node could never run
        return xcs.execute_graph(inner, options=xcs.ExecutionOptions(scheduler=scheduler))

    g = xcs.Graph()
    g.add_node(xcs.op(outer), node_id="outer")
    with pytest.raises(xcs.NodeExecutionError) as info:
        xcs.execute_graph(g, options=xcs.ExecutionOptions(timeout_seconds=30))
    cause = info.value.__cause__
    assert isinstance(cause, xcs.ExecutionError)
    assert "asyncio.to_thread" in str(cause)


def test_nested_async_graph_through_to_thread_works() -> None:
    async def leaf() -> int:
        return 1

    inner = xcs.Graph()
    inner.add_node(xcs.op(leaf), node_id="leaf")

    async def outer() -> Any:
        result = await asyncio.to_thread(xcs.execute_graph, inner)
        return result["leaf"] + 1

    g = xcs.Graph()
    g.add_node(xcs.op(outer), node_id="outer")
    assert xcs.execute_graph(g) == {"outer": 2}
