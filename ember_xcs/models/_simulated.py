"""`SimulatedModel`: a deterministic stand-in for an LLM, with latency and failures.

It is what the demo, the examples, the tests and the benchmarks use, so nothing needs an
API key or a network. Every answer is a pure function of `(seed, prompt, sample)`, so
runs are reproducible whatever order threads run in, and ensemble units asking the same
question with different `sample` indices still disagree. Latency and injected failures
are drawn from the same kind of hash (failures also from a per-`(prompt, sample)`
attempt counter, so a retried call can succeed). The counters (`calls`, `in_flight`,
`max_in_flight`, `call_log`) are what tests use to prove each call happened once and
that calls overlapped. Usage (estimated tokens) is recorded like a real model's:
`stats()`, `track_usage()`, `get_jit_stats` and the `on_model_usage` hook.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
import time
from collections.abc import Callable, Sequence
from math import inf
from typing import Any

from ._errors import (
    MalformedResponseError,
    ModelConfigError,
    ModelTimeoutError,
    RateLimitError,
    ServerError,
)
from ._limits import CallLimits
from ._protocol import ModelResponse, Usage
from ._usage import ModelStats, record_call

__all__ = ["SimulatedModel"]

Latency = float | tuple[float, float] | Callable[[random.Random], float]
Responses = Sequence[str] | Callable[[str, int], str] | None

FAILURE_KINDS = ("timeout", "429", "5xx", "malformed")


def _check_latency(latency: Any) -> None:
    """Refuse a latency `time.sleep` would refuse, when the model is built, not per call."""
    if callable(latency):
        return
    bounds = latency if isinstance(latency, tuple) and len(latency) == 2 else (latency,)
    if not all(_is_seconds(b) for b in bounds) or (len(bounds) == 2 and bounds[0] > bounds[1]):
        raise ModelConfigError(
            "latency must be seconds >= 0: a number, a (low, high) range with low <= high, "
            f"or a function of a random.Random, got {latency!r}"
        )


def _is_seconds(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < inf


class SimulatedModel:
    """A deterministic model with configurable latency and failure injection.

    **Arguments:**

    - `name`: the model name reported in responses and errors.
    - `seed`: changes every answer, latency draw and failure draw.
    - `latency`: seconds per call: a number, a `(low, high)` uniform range, or a
      function of a seeded `random.Random`.
    - `responses`: `None` for a distinct token per `(seed, prompt, sample)`, a list of
      strings to pick from (so answers can agree, as `MostCommon` needs), or a function
      `(prompt, sample) -> text`.
    - `failure_rate`: probability that an attempt fails, in `[0, 1]`.
    - `failure_kind`: `"timeout"`, `"429"`, `"5xx"` or `"malformed"`; the matching
      `ModelTimeoutError`, `RateLimitError`, `ServerError` or `MalformedResponseError` is
      raised after the latency has elapsed.
    - `max_concurrency`, `requests_per_second`: limits shared by every operator that
      holds this instance.

    !!! example
        ```python
        model = SimulatedModel(latency=0.05, responses=["Paris", "Lyon", "Paris"])
        model.complete("Capital of France?", sample=2).text
        ```
    """

    def __init__(
        self,
        name: str = "simulated",
        *,
        seed: int = 0,
        latency: Latency = 0.0,
        responses: Responses = None,
        failure_rate: float = 0.0,
        failure_kind: str = "5xx",
        max_concurrency: int | None = None,
        requests_per_second: float | None = None,
    ):
        if failure_kind not in FAILURE_KINDS:
            raise ModelConfigError(
                f"failure_kind must be one of {', '.join(FAILURE_KINDS)}, got {failure_kind!r}"
            )
        if not 0.0 <= failure_rate <= 1.0:
            raise ModelConfigError(f"failure_rate must be in [0, 1], got {failure_rate!r}")
        _check_latency(latency)
        self.name = name
        self.seed = seed
        self.latency = latency
        self.responses = responses
        self.failure_rate = failure_rate
        self.failure_kind = failure_kind
        self.limits = CallLimits(max_concurrency, requests_per_second)
        self.call_log: list[tuple[str, int]] = []
        self._attempts: dict[tuple[str, int], int] = {}
        self._log_lock = threading.Lock()
        self._stats = ModelStats()

    def __repr__(self) -> str:
        return f"SimulatedModel(name={self.name!r}, seed={self.seed}, latency={self.latency!r})"

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without locks; a copy counts its own calls from a snapshot of the log."""
        state = {k: v for k, v in vars(self).items() if k not in ("limits", "_log_lock", "_stats")}
        state["_limits_config"] = (self.limits.max_concurrency, self.limits.requests_per_second)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        cap, rate = state.pop("_limits_config")
        self.__dict__.update(state)
        self.limits = CallLimits(cap, rate)
        self._log_lock = threading.Lock()
        self._stats = ModelStats()

    # --- counters ----------------------------------------------------------------------

    @property
    def calls(self) -> int:
        """Calls made since creation or `reset_counters()`."""
        return self.limits.calls

    @property
    def in_flight(self) -> int:
        return self.limits.in_flight

    @property
    def max_in_flight(self) -> int:
        """The most calls that were running at once."""
        return self.limits.max_in_flight

    def stats(self) -> dict[str, int]:
        """Calls and tokens of this model object so far, as `OpenAICompatibleModel.stats()`
        (the token counts are estimates: about four characters per token)."""
        return self._stats.snapshot()

    def reset_counters(self) -> None:
        """Forget calls, the in-flight peak, the call log, failure attempt counts and `stats()`."""
        self.limits.reset_counters()
        self._stats.reset()
        with self._log_lock:
            self.call_log.clear()
            self._attempts.clear()

    # --- calls -------------------------------------------------------------------------

    def complete(self, prompt: str, *, sample: int = 0, **params: Any) -> ModelResponse:
        """Answer `prompt` after the simulated latency, or raise the injected failure."""
        start = time.perf_counter()
        _check_prompt(prompt)  # before the slot: a refused call is not counted in `calls`
        with self.limits.slot():
            failure = self._begin(prompt, sample)
            time.sleep(self._latency(prompt, sample))
        return self._finish(prompt, sample, failure, start)

    async def acomplete(self, prompt: str, *, sample: int = 0, **params: Any) -> ModelResponse:
        """`complete` for event loops: waits with `asyncio.sleep`."""
        start = time.perf_counter()
        _check_prompt(prompt)
        async with self.limits.aslot():
            failure = self._begin(prompt, sample)
            await asyncio.sleep(self._latency(prompt, sample))
        return self._finish(prompt, sample, failure, start)

    def _begin(self, prompt: str, sample: int) -> Exception | None:
        """Log the call and decide (deterministically) whether this attempt fails."""
        with self._log_lock:
            self.call_log.append((prompt, sample))
            attempt = self._attempts.get((prompt, sample), 0)
            self._attempts[(prompt, sample)] = attempt + 1
        if (
            self.failure_rate
            and _unit(self.seed, "fail", prompt, sample, attempt) < self.failure_rate
        ):
            return self._failure()
        return None

    def _finish(
        self, prompt: str, sample: int, failure: Exception | None, start: float
    ) -> ModelResponse:
        if failure is not None:
            raise failure
        text = self._text(prompt, sample)
        response = ModelResponse(
            text=text,
            model=self.name,
            usage=Usage(_tokens(prompt), _tokens(text)),
            latency_seconds=time.perf_counter() - start,
        )
        record_call(self._stats, self.name, response.usage, cached=False)  # as a real model
        return response

    def _text(self, prompt: str, sample: int) -> str:
        responses = self.responses
        if callable(responses):
            return str(responses(prompt, sample))
        digest = _digest(self.seed, "text", prompt, sample)
        if responses:
            return responses[digest % len(responses)]
        return f"answer-{digest % (1 << 32):08x}"

    def _latency(self, prompt: str, sample: int) -> float:
        latency = self.latency
        if isinstance(latency, int | float):
            return float(latency)
        rng = random.Random(_digest(self.seed, "latency", prompt, sample))
        if isinstance(latency, tuple):
            return rng.uniform(*latency)
        return max(0.0, float(latency(rng)))

    def _failure(self) -> Exception:
        kind, where = self.failure_kind, {"model": self.name, "endpoint": f"simulated:{self.name}"}
        if kind == "timeout":
            return ModelTimeoutError(f"model {self.name!r} (simulated) timed out", **where)
        if kind == "429":
            return RateLimitError(
                f"model {self.name!r} (simulated) answered HTTP 429", status=429, **where
            )
        if kind == "5xx":
            return ServerError(
                f"model {self.name!r} (simulated) answered HTTP 500", status=500, **where
            )
        return MalformedResponseError(
            f"model {self.name!r} (simulated) returned a malformed response", status=200, **where
        )


def _check_prompt(prompt: Any) -> None:
    if not isinstance(prompt, str):
        raise ModelConfigError(f"a prompt must be a str, got {type(prompt).__name__}")


def _digest(*parts: Any) -> int:
    """A stable 64-bit hash (Python's `hash` of a str changes between processes)."""
    data = "\x1f".join(map(str, parts)).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _unit(*parts: Any) -> float:
    """A stable draw in `[0, 1)`."""
    return _digest(*parts) / 2**64


def _tokens(text: str) -> int:
    """A rough token count: about four characters per token, as for English text."""
    return max(1, len(text) // 4)
