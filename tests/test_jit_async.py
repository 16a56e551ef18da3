"""`async def` bodies are refused with what to do; plain bodies may call async operators."""

from __future__ import annotations

import asyncio

import pytest
from jit_user_code import pipeline as p

import ember_xcs as xcs

MODES = ["auto", "trace", "structural", "dynamic"]


@xcs.op
async def draft(prompt: str) -> str:
    await asyncio.sleep(0)
    return f"draft({prompt})"


class AsyncEcho(xcs.Operator):
    async def forward(self, prompt: str) -> str:
        return f"async({prompt})"


class AsyncCallable:
    async def __call__(self, prompt: str) -> str:
        return prompt


async def async_body(q: str) -> str:
    return p.llm(await draft(q))


class Agent:
    async def run(self, q: str) -> str:
        return await draft(q)


@pytest.mark.parametrize(
    "target",
    [async_body, Agent.run, draft, AsyncEcho(), AsyncEcho, AsyncCallable()],
    ids=["function", "method", "async-op", "operator", "operator-class", "callable"],
)
def test_jit_refuses_an_async_def_body_when_applied(target):
    with pytest.raises(xcs.TraceError, match=r"is `async def`.*plain `def`.*asyncio\.to_thread"):
        xcs.jit(target)


@pytest.mark.parametrize("mode", MODES)
def test_a_body_returning_a_coroutine_is_refused_when_called(mode):
    jitted = xcs.jit(lambda q: async_body(q), mode=mode)
    with pytest.raises(xcs.TraceError, match="returned a coroutine"):
        jitted("q")


@pytest.mark.parametrize("mode", MODES)
def test_a_plain_body_may_call_async_operators(mode):
    def body(q):
        return p.judge([draft(q), AsyncEcho()(q), p.llm(q)], question=q)

    jitted = xcs.jit(body, mode=mode)
    for q in ("a", "b"):
        assert jitted(q) == f"judge[{q}](draft({q})|async({q})|llm({q}))"


def test_async_code_calls_a_jitted_function_in_a_thread():
    jitted = xcs.jit(lambda q: p.llm(draft(q)))

    async def main() -> list[str]:
        return await asyncio.gather(*(asyncio.to_thread(jitted, f"q{i}") for i in range(3)))

    assert asyncio.run(main()) == [f"llm(draft(q{i}))" for i in range(3)]
