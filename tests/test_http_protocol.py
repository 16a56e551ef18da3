"""The OpenAI chat-completions protocol in full, against the real loopback server:
streaming, tool calls with `content: null`, `n` choices, `response_format`, usage, and the
official `openai` client reading every kind of reply the test server sends."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

import ember_xcs as xcs
from ember_xcs import models
from ember_xcs.models import LLMOperator, OpenAICompatibleModel, RetryPolicy, ToolCall
from ember_xcs.models.testing import Fault

pytest_plugins = ("loopback",)  # the `server` and `fresh` fixtures

TOOLS = [
    {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    }
]


@pytest.fixture
def model(server):
    server.reset()
    return OpenAICompatibleModel(server.url, "test-model", retry=RetryPolicy(max_retries=0))


class DeltaHooks(xcs.ExecutionHooks):
    """Collects the optional model events: streamed pieces and per-call usage."""

    def __init__(self) -> None:
        self.deltas: list[str] = []
        self.usages: list[tuple[str, models.Usage, bool]] = []
        self._lock = threading.Lock()

    def on_stream_delta(self, *, model, delta):
        with self._lock:
            self.deltas.append(delta)

    def on_model_usage(self, *, model, usage, cached):
        with self._lock:
            self.usages.append((model, usage, cached))


# --- streaming -----------------------------------------------------------------------------


def test_stream_yields_the_same_text_as_complete_in_several_pieces(model, server):
    pieces = list(model.stream("tell me a long story"))
    assert len(pieces) > 1
    assert "".join(pieces) == model.complete("tell me a long story").text
    assert server.bodies[0]["stream"] is True
    assert server.bodies[0]["stream_options"] == {"include_usage": True}


def test_stream_records_usage_from_the_final_chunk(model):
    list(model.stream("count my tokens"))
    stats = model.stats()
    assert stats["calls"] == 1 and stats["prompt_tokens"] >= 1 and stats["completion_tokens"] >= 1


def test_astream_yields_pieces_on_the_callers_loop(model):
    async def main() -> list[str]:
        return [piece async for piece in model.astream("stream asynchronously")]

    pieces = asyncio.run(main())
    assert len(pieces) > 1 and "".join(pieces) == model.complete("stream asynchronously").text


def test_stream_hooks_receive_every_piece_as_it_arrives(model):
    hooks = DeltaHooks()
    with xcs.execution_options(hooks=(hooks,)):
        pieces = list(model.stream("watch me stream"))
    assert hooks.deltas == pieces


def test_stream_inside_jit_is_one_leaf_call_and_hooks_see_the_pieces(model, server):
    hooks = DeltaHooks()

    @xcs.jit
    def both(question):
        return [model.stream(question), model.stream(question + "?")]

    with xcs.execution_options(hooks=(hooks,)):
        first, second = both("stream under jit")
    assert server.requests == 2
    assert "".join(first) == model.complete("stream under jit").text
    assert sorted(hooks.deltas) == sorted([*first, *second])


def test_llm_operator_with_stream_returns_the_text_and_hooks_get_pieces(model):
    hooks = DeltaHooks()
    ask = LLMOperator(model, "Q: {q}", stream=True)
    with xcs.execution_options(hooks=(hooks,)):
        plain = ask("streamed question")
        jitted = xcs.jit(models.UniformEnsemble.from_units([ask]))("streamed question")
    assert plain == jitted[0] == model.complete("Q: streamed question").text
    assert "".join(hooks.deltas) == plain * 2


def test_stream_failure_before_any_text_is_a_model_error(model, server):
    server.inject(Fault.server_error())
    with pytest.raises(models.ServerError, match="test-model"):
        list(model.stream("fails"))


# --- tool calls, n, response_format ---------------------------------------------------------


def test_tool_call_reply_with_null_content_gives_empty_text_and_tool_calls(model, server):
    reply = model.complete("What is the weather?", tools=TOOLS)
    assert reply.text == "" and reply.finish_reason == "tool_calls"
    (call,) = reply.tool_calls
    assert isinstance(call, ToolCall) and call.name == "lookup"
    assert call.parsed_arguments() == {"prompt": "What is the weather?"}
    assert server.bodies[0]["tools"] == TOOLS


def test_tool_result_messages_are_sent_as_given(model, server):
    call = model.complete("weather?", tools=TOOLS).tool_calls[0]
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    reply = model.complete(messages, tools=TOOLS)
    assert reply.text.startswith("answer-") and reply.tool_calls == ()
    assert server.bodies[1]["messages"] == messages


def test_streamed_tool_call_arrives_whole_in_the_stats_and_yields_no_text(model):
    assert list(model.stream("weather?", tools=TOOLS)) == []


def test_n_choices_come_back_in_one_request_as_distinct_texts(model, server):
    reply = model.complete("three ideas", n=3)
    assert server.requests == 1 and server.bodies[0]["n"] == 3
    assert len(reply.texts) == 3 and len(set(reply.texts)) == 3
    assert reply.text == reply.texts[0]


def test_response_format_is_passed_through_and_json_mode_replies_parse(model, server):
    reply = model.complete("as json", response_format={"type": "json_object"})
    assert server.bodies[0]["response_format"] == {"type": "json_object"}
    assert set(json.loads(reply.text)) == {"answer"}


# --- usage ---------------------------------------------------------------------------------


def test_usage_is_recorded_per_call_summed_in_stats_and_sent_to_hooks(model):
    hooks = DeltaHooks()
    with xcs.execution_options(hooks=(hooks,)):
        replies = [model.complete(f"question {i}") for i in range(3)]
    stats = model.stats()
    assert stats["calls"] == 3
    assert stats["prompt_tokens"] == sum(r.usage.prompt_tokens for r in replies)
    assert stats["completion_tokens"] == sum(r.usage.completion_tokens for r in replies)
    assert [u for _, u, _ in hooks.usages] == [r.usage for r in replies]


def test_track_usage_sums_the_calls_of_one_jitted_run(model):
    ensemble = xcs.jit(models.UniformEnsemble(4, model))
    ensemble("warm up")
    with models.track_usage() as usage:
        ensemble("a question")
    assert usage.calls == 4 and usage.prompt_tokens >= 4 and usage.completion_tokens >= 4


# --- the test server and the official client ------------------------------------------------


def test_official_openai_client_accepts_every_reply_of_the_test_server(server):
    import openai  # a dev dependency

    with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client:
        assert [m.id for m in client.models.list()] == ["test-model"]
        plain = client.chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}], n=2
        )
        assert len(plain.choices) == 2 and plain.usage.total_tokens > 0
        tools = client.chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}], tools=TOOLS
        )
        assert tools.choices[0].message.content is None
        assert tools.choices[0].message.tool_calls[0].function.name == "lookup"
        stream = client.chat.completions.create(
            model="test-model",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == plain.choices[0].message.content and chunks[-1].usage.total_tokens > 0
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="test-model", messages=None)  # type: ignore[arg-type]
        assert info.value.body["param"] == "messages"
