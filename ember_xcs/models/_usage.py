"""Token usage and call counts: per model (`model.stats()`), per block of code
(`track_usage()`), and as hook events.

**Hooks.** Two optional events, called on any `ExecutionHooks` object in the current
`execution_options(hooks=...)` that defines them (an object without them is skipped):

- `on_model_usage(*, model, usage, cached)` after every model call, with its `Usage`;
- `on_stream_delta(*, model, delta)` for every piece of text a streamed call receives, as
  it arrives (on the event-loop thread the request runs on, ember_xcs's or the one
  awaiting `astream`: keep it quick and thread-safe).

**`track_usage()`** sums the calls made inside its block, on any thread or task the
block's calls run on (the engine copies the caller's context into its workers), so it
gives the tokens of one jitted call or one graph run. Each jitted function sums its own
calls the same way, into `get_jit_stats` (the meter itself is `ember_xcs.scheduling`'s,
so `jit` reads it without importing `models`).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from .._options import current_options
from ..scheduling import UsageTotals, meter_call, meter_event, usage_meter
from ._protocol import Usage

__all__ = ["ModelStats", "UsageTotals", "notify", "record_call", "record_event", "track_usage"]


class ModelStats:
    """A model's running totals, safe to update from threads and the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = UsageTotals()

    def add(self, usage: Usage, cached: bool) -> None:
        with self._lock:
            self._totals.add(usage, cached)

    def count(self, field: str) -> None:
        with self._lock:
            setattr(self._totals, field, getattr(self._totals, field) + 1)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            totals = dataclasses.asdict(self._totals)
        totals["total_tokens"] = totals["prompt_tokens"] + totals["completion_tokens"]
        return totals

    def reset(self) -> None:
        with self._lock:
            self._totals = UsageTotals()


def track_usage() -> usage_meter:
    """Sum the model calls made inside the block (nested blocks each count them).

    Every call of a jitted function sums its calls the same way, into its
    `get_jit_stats` (`model_calls`, `prompt_tokens`, `completion_tokens`). Inside a
    jitted body the calls in the block still overlap, and the block's end waits for
    them, so the totals read after it are complete.

    !!! example
        ```python
        with models.track_usage() as usage:
            answer = pipeline("question")
        print(usage.calls, usage.prompt_tokens, usage.completion_tokens)
        ```
    """
    return usage_meter()


def record_call(stats: ModelStats, model: str, usage: Usage, cached: bool) -> None:
    """Count one call in the model's stats, every open meter and the hooks."""
    stats.add(usage, cached)
    meter_call(usage, cached)
    notify("on_model_usage", model=model, usage=usage, cached=cached)


def record_event(stats: ModelStats, field: str) -> None:
    """Count a `retries` or `cache_misses` event in the model's stats and open meters."""
    stats.count(field)
    meter_event(field)


def notify(event: str, **payload: Any) -> None:
    """Call `event` on every current hook that defines it."""
    for hook in current_options().hooks:
        method = getattr(hook, event, None)
        if method is not None:
            method(**payload)
