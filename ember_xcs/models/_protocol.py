"""The `Model` protocol and the response type every backend returns.

A model turns one prompt into one `ModelResponse`, synchronously (`complete`) or on an
event loop (`acomplete`). A model whose `acomplete` never blocks its loop (the HTTP model)
says so with `async_native = True`; `LLMOperator` then runs as an `async def` leaf under
`jit`, awaited on the engine's event loop instead of holding a worker thread. `sample` is the index of a sample within an ensemble: backends
that can (the simulated model, an HTTP model with a `seed`) use it so that identical
prompts in an ensemble still give distinct answers; others ignore it.

Anything with a `name` and these two methods is a model; no base class is needed, which
keeps test doubles and adapters to other SDKs a few lines long.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Protocol, runtime_checkable

__all__ = ["Model", "ModelResponse", "ToolCall", "Usage"]


@dataclasses.dataclass(frozen=True)
class Usage:
    """Token counts reported by the backend (estimated by the simulated model)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclasses.dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for: `name` and its `arguments` as JSON text."""

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> Any:
        """`arguments` decoded from JSON."""
        return json.loads(self.arguments or "{}")


@dataclasses.dataclass(frozen=True)
class ModelResponse:
    """One completion.

    **Attributes:**

    - `text`: the generated text (`""` when the model only called tools).
    - `model`: the name of the model that answered (as the backend reports it).
    - `usage`: a `Usage` with prompt and completion token counts.
    - `latency_seconds`: wall time of the call, retries and waits for a slot included.
    - `tool_calls`: the `ToolCall`s of the first choice, when the request offered `tools`.
    - `finish_reason`: why generation stopped (`"stop"`, `"length"`, `"tool_calls"`...).
    - `texts`: the text of every choice; `n=3` gives three (`text` is `texts[0]`).
    - `cached`: True when the answer came from the response cache.
    """

    text: str
    model: str
    usage: Usage = dataclasses.field(default_factory=Usage)
    latency_seconds: float = 0.0
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    texts: tuple[str, ...] = ()
    cached: bool = False

    def __post_init__(self) -> None:
        if not self.texts:
            object.__setattr__(self, "texts", (self.text,))

    def __str__(self) -> str:
        return self.text


@runtime_checkable
class Model(Protocol):
    """Text in, `ModelResponse` out.

    !!! example
        ```python
        class Echo:
            name = "echo"

            def complete(self, prompt, *, sample=0, **params):
                return ModelResponse(text=prompt, model=self.name)

            async def acomplete(self, prompt, *, sample=0, **params):
                return self.complete(prompt, sample=sample, **params)
        ```
    """

    name: str

    def complete(self, prompt: str, *, sample: int = 0, **params: Any) -> ModelResponse:
        """Answer `prompt`; `params` are backend options such as `temperature`."""
        ...

    async def acomplete(self, prompt: str, *, sample: int = 0, **params: Any) -> ModelResponse:
        """The same as `complete`, awaited on the caller's event loop."""
        ...
