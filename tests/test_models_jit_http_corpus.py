"""Corpus programs over the HTTP model: the same answers plainly and under every jit mode,
the same number of requests seen by the loopback server, and overlap measured there.

Each program is written the way docs/models.md shows the HTTP model used: direct
`model.complete(...)`, a model passed as an argument, `LLMOperator` with `parse` and
`stream=True`, `model.stream(...)`, `n=` choices, tool calls, a message list, the response
cache, retries after a 429, a client error caught by the body, and `track_usage()` around
the jitted call. (An `async def` body is refused by jit, as documented.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import ember_xcs as xcs
from ember_xcs import models
from ember_xcs.models.testing import Fault, OpenAITestServer

pytest_plugins = ("loopback",)  # the `server` and `fresh` fixtures

MODES = ("auto", "trace", "structural", "dynamic")


def _short(reason: str) -> list:
    """`MODES`, where the overlapping ones are known to fall short of the width."""
    mark = pytest.mark.xfail(strict=True, reason=reason)
    return [pytest.param(m, marks=mark) if m != "structural" else m for m in MODES]


LATENCY = 0.2  # seconds per request: calls that can overlap are all on the wire together


def _check(
    server: OpenAITestServer,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    mode: str,
    *,
    width: int,
    traces: bool = False,
) -> Any:
    """Plain result and request count, then the jitted ones (twice); returns the result."""
    server.reset()
    plain = fn(*args)
    requests = server.requests
    jitted = xcs.jit(fn, mode=mode)
    for _ in range(2):
        server.reset()
        server.latency = LATENCY
        try:
            assert jitted(*args) == plain
        finally:
            server.latency = 0.0
        assert server.requests == requests
        if mode != "structural" or traces:
            assert server.max_concurrent >= width
    return plain


@pytest.fixture
def llm(fresh):
    return models.OpenAICompatibleModel(fresh.url, "corpus", seed=0)


@pytest.mark.parametrize("mode", MODES)
def test_direct_complete_samples(fresh, llm, mode):
    def fn(question):
        return [llm.complete(question, sample=i, temperature=0.5).text for i in range(4)]

    assert len(set(_check(fresh, fn, ("q",), mode, width=4, traces=True))) == 4


@pytest.mark.parametrize("mode", MODES)
def test_model_passed_as_an_argument(fresh, llm, mode):
    other = models.OpenAICompatibleModel(fresh.url, "other", seed=5)

    def fn(model, question):
        return [model.complete(f"{question} {i}").text for i in range(3)]

    first = _check(fresh, fn, (llm, "q"), mode, width=3)
    assert _check(fresh, fn, (other, "q"), mode, width=3) != first


@pytest.mark.parametrize("mode", MODES)
def test_llm_operator_with_parse_and_a_stream(fresh, llm, mode):
    ask = models.LLMOperator(llm, "Q: {question}", parse=str.upper)
    streamed = models.LLMOperator(llm, "S: {question}", stream=True)

    def fn(question):
        return [ask(question), streamed(question), ask(question=question + "!")]

    _check(fresh, fn, ("why?",), mode, width=3)  # `question + "!"` stops a trace


@pytest.mark.parametrize(
    "mode", _short("`''.join(...)` of each stream waits before the next call is made")
)
def test_stream_pieces(fresh, llm, mode):
    def fn(topic):
        return ["".join(llm.stream(f"{topic} {i}", sample=i)) for i in range(3)]

    _check(fresh, fn, ("compilers",), mode, width=3)


@pytest.mark.parametrize(
    "mode", _short("`.tool_calls[0]` of a pending reply waits before the next call is made")
)
def test_n_choices_tool_calls_and_messages(fresh, llm, mode):
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {}}}]

    def fn(city):
        three = llm.complete(f"colour of {city}", n=3)
        call = llm.complete(f"Weather in {city}?", tools=tools).tool_calls[0]
        chat = [{"role": "system", "content": "terse"}, {"role": "user", "content": city}]
        reply = llm.complete(chat)
        return three.texts, call.name, call.parsed_arguments(), reply.text, reply.finish_reason

    _check(fresh, fn, ("Paris",), mode, width=3)


@pytest.mark.parametrize("mode", MODES)
def test_ensemble_judge_pipeline_and_usage_around_the_call(fresh, llm, mode):
    pipeline = models.Sequential(
        [models.UniformEnsemble(4, llm, "Answer: {question}"), models.JudgeSynthesis(llm)]
    )

    def fn(question):
        return pipeline(question=question)

    with models.track_usage() as plain_usage:
        fn("why?")
    _check(fresh, fn, ("why?",), mode, width=4, traces=True)
    with models.track_usage() as jit_usage:
        xcs.jit(fn, mode=mode)("why?")
    assert (jit_usage.calls, jit_usage.total_tokens) == (
        plain_usage.calls,
        plain_usage.total_tokens,
    )


@pytest.mark.parametrize("mode", MODES)
def test_response_cache_under_jit(fresh, mode, tmp_path):
    cached = models.OpenAICompatibleModel(
        fresh.url, "cached", seed=1, cache=models.ResponseCache(tmp_path / "r.sqlite")
    )

    def fn(question):
        return [cached.complete(question, sample=i).text for i in range(3)]

    plain = fn("prime?")
    fresh.reset()
    jitted = xcs.jit(fn, mode=mode)
    assert jitted("prime?") == plain and fresh.requests == 0
    assert jitted("even?") == fn("even?") and fresh.requests == 3


@pytest.mark.parametrize("mode", MODES)
def test_retry_after_a_429_makes_the_same_requests(fresh, mode):
    model = models.OpenAICompatibleModel(
        fresh.url, "retrying", seed=2, retry=models.RetryPolicy(backoff_seconds=0.01)
    )

    def fn(question):
        return model.complete(question).text

    fresh.inject(Fault.rate_limited(0.01))
    plain = fn("q")
    assert fresh.requests == 2
    fresh.reset()
    fresh.inject(Fault.rate_limited(0.01))
    assert xcs.jit(fn, mode=mode)("q") == plain
    assert fresh.requests == 2


@pytest.mark.parametrize("mode", MODES)
def test_client_error_caught_by_the_body(mode):
    with OpenAITestServer(api_key="sk-right") as server:
        wrong = models.OpenAICompatibleModel(server.url, "m", api_key="sk-wrong")
        right = models.OpenAICompatibleModel(server.url, "m", api_key="sk-right", seed=0)

        def fn(question):
            try:
                return wrong.complete(question).text
            except models.ClientError as error:
                return f"refused {error.status}: " + right.complete(question).text

        plain = fn("q")
        assert plain.startswith("refused 401")
        requests = server.requests  # the refused request is not counted by the server
        server.reset()
        assert xcs.jit(fn, mode=mode)("q") == plain
        assert server.requests == requests


@pytest.mark.parametrize("mode", MODES)
def test_client_error_escapes_as_the_plain_type(mode):
    with OpenAITestServer(api_key="sk-right") as server:
        wrong = models.OpenAICompatibleModel(server.url, "m", api_key="sk-wrong")

        def fn(question):
            return [wrong.complete(f"{question} {i}").text for i in range(2)]

        with pytest.raises(models.ClientError):
            fn("q")
        with pytest.raises(models.ClientError):
            xcs.jit(fn, mode=mode)("q")


@pytest.mark.parametrize("mode", MODES)
def test_http_and_simulated_models_in_one_body(fresh, llm, mode):
    local = models.SimulatedModel("local", latency=0.01)
    other = models.OpenAICompatibleModel(fresh.url, "second", seed=9)

    def fn(question):
        drafts = [llm.complete(question, sample=i).text for i in range(2)]
        drafts.append(other.complete(question).text)
        notes = [local.complete(d).text for d in drafts]
        return drafts, notes

    _check(fresh, fn, ("q",), mode, width=3, traces=True)
