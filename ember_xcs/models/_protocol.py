"""The `Model` protocol and the response type every backend returns.

A model turns one prompt into one `ModelResponse`, synchronously (`complete`) or on an
event loop (`acomplete`). `sample` is the index of a sample within an ensemble: backends
that can (the simulated model, an HTTP model with a `seed`) use it so that identical
prompts in an ensemble still give distinct answers; others ignore it.

Anything with a `name` and these two methods is a model; no base class is needed, which
keeps test doubles and adapters to other SDKs a few lines long.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

__all__ = ["Model", "ModelResponse", "Usage"]


@dataclasses.dataclass(frozen=True)
class Usage:
    """Token counts reported by the backend (estimated by the simulated model)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclasses.dataclass(frozen=True)
class ModelResponse:
    """One completion.

    **Attributes:**

    - `text`: the generated text.
    - `model`: the name of the model that answered (as the backend reports it).
    - `usage`: a `Usage` with prompt and completion token counts.
    - `latency_seconds`: wall time of the call, retries and waits for a slot included.
    """

    text: str
    model: str
    usage: Usage = dataclasses.field(default_factory=Usage)
    latency_seconds: float = 0.0

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
