"""The OpenAI chat-completions wire format: request bodies, replies and SSE chunks.

Pure functions over dicts and bytes, so the HTTP model, the response cache and the test
server agree on one reading of the protocol:

- a reply's `choices[i].message` has `content` (a string, or `null` when the model only
  called tools) and optionally `tool_calls`; `n` choices give `n` texts;
- a streamed reply is Server-Sent Events: `data: {chunk}` lines, each chunk's
  `choices[0].delta` carrying a piece of `content` or of a tool call, a last chunk with
  `usage` when `stream_options.include_usage` was asked for, then `data: [DONE]`;
- `usage` is read leniently: a field that is not a whole number counts as 0 rather than
  losing the completion it came with.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._protocol import ModelResponse, ToolCall, Usage

__all__ = ["StreamState", "messages_for", "parse_chunk", "parse_completion", "parse_usage"]

Messages = list[dict[str, Any]]


def messages_for(prompt: str | Sequence[Mapping[str, Any]], system: str | None) -> Messages:
    """The `messages` of a request: a prompt string becomes one user message; a list of
    messages is sent as given (copied). `system` goes first unless one is already there."""
    if isinstance(prompt, str):
        messages = [{"role": "user", "content": prompt}]
    elif isinstance(prompt, Sequence) and all(isinstance(m, Mapping) for m in prompt) and prompt:
        messages = [dict(m) for m in prompt]
    else:
        raise TypeError(
            f"a prompt must be a str or a non-empty list of message dicts, "
            f"got {type(prompt).__name__}"
        )
    if system is not None and messages[0].get("role") != "system":
        messages.insert(0, {"role": "system", "content": system})
    return messages


def parse_completion(payload: Any, fallback_model: str, latency: float) -> ModelResponse:
    """A `ModelResponse` from a decoded 2xx body; raises `ValueError`/`KeyError`/`TypeError`
    when it is not a chat completion."""
    choices = payload["choices"]
    if not isinstance(choices, list) or not choices:
        raise ValueError("the reply has no choices")
    texts, first = [], choices[0]
    for choice in choices:
        content = choice["message"].get("content")
        if content is not None and not isinstance(content, str):
            raise TypeError(f"message content is {type(content).__name__}, not str or null")
        texts.append(content or "")
    return ModelResponse(
        text=texts[0],
        model=str(payload.get("model") or fallback_model),
        usage=parse_usage(payload.get("usage")),
        latency_seconds=latency,
        tool_calls=tuple(_tool_call(c) for c in first["message"].get("tool_calls") or ()),
        finish_reason=first.get("finish_reason"),
        texts=tuple(texts),
    )


def _tool_call(raw: Mapping[str, Any]) -> ToolCall:
    function = raw["function"]
    return ToolCall(
        str(raw.get("id") or ""), str(function["name"]), function.get("arguments") or "{}"
    )


def parse_usage(raw: Any) -> Usage:
    """Token counts; anything that is not a whole number >= 0 counts as 0."""
    if not isinstance(raw, Mapping):
        return Usage()
    return Usage(_count(raw.get("prompt_tokens")), _count(raw.get("completion_tokens")))


def _count(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value.is_integer():
        return max(int(value), 0)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


@dataclasses.dataclass
class StreamState:
    """What a stream has delivered so far; `response()` once it ended."""

    model: str
    pieces: list[str] = dataclasses.field(default_factory=list)
    tools: dict[int, dict[str, str]] = dataclasses.field(default_factory=dict)
    usage: Usage = dataclasses.field(default_factory=Usage)
    finish_reason: str | None = None
    done: bool = False

    def response(self, latency: float) -> ModelResponse:
        calls = tuple(
            ToolCall(t["id"], t["name"], t["arguments"] or "{}")
            for _, t in sorted(self.tools.items())
        )
        text = "".join(self.pieces)
        return ModelResponse(text, self.model, self.usage, latency, calls, self.finish_reason)


def parse_chunk(line: bytes, state: StreamState) -> str | None:
    """Read one SSE line into `state`; return the text delta it carried, if any."""
    line = line.strip()
    if not line.startswith(b"data:"):
        return None  # blank separators, `event:` and `:` comment lines
    data = line[5:].strip()
    if data == b"[DONE]":
        state.done = True
        return None
    chunk = json.loads(data)
    if "error" in chunk and not chunk.get("choices"):
        raise _StreamError(chunk["error"])
    state.model = str(chunk.get("model") or state.model)
    if chunk.get("usage"):
        state.usage = parse_usage(chunk["usage"])
    if not chunk.get("choices"):
        return None
    choice = chunk["choices"][0]
    state.finish_reason = choice.get("finish_reason") or state.finish_reason
    delta = choice.get("delta") or {}
    for call in delta.get("tool_calls") or ():
        slot = state.tools.setdefault(call.get("index", 0), {"id": "", "name": "", "arguments": ""})
        function = call.get("function") or {}
        slot["id"] = call.get("id") or slot["id"]
        slot["name"] += function.get("name") or ""
        slot["arguments"] += function.get("arguments") or ""
    text = delta.get("content")
    if text:
        state.pieces.append(text)
        return text
    return None


class _StreamError(ValueError):
    """The server sent an error object inside an event stream."""

    def __init__(self, error: Any):
        message = error.get("message") if isinstance(error, Mapping) else error
        super().__init__(str(message))
