"""Usage meters: model calls and tokens summed over a block of code, wherever its calls run.

A meter is a `UsageTotals` pushed onto a ContextVar for the length of a block
(`usage_meter()`); a model call adds its usage to every meter open where it runs
(`meter_call`). The engine copies the caller's context into its worker threads and
tasks, so a call made on any of them reaches the meters of the block that started it.

Two kinds of block open one: `models.track_usage()` (a user's block) and every call of a
jitted function (so `get_jit_stats` sums the tokens of the function's calls). The meter
lives here, below both `_jit` and `models`, so that neither imports the other: models
report to it, jit reads it. Usage is duck-typed (anything with `prompt_tokens` and
`completion_tokens`), for the same reason.
"""

from __future__ import annotations

import contextvars
import dataclasses
import threading
from typing import Any

__all__ = ["UsageTotals", "meter_call", "meter_event", "meters_open", "meters_set", "usage_meter"]


@dataclasses.dataclass
class UsageTotals:
    """Model calls and tokens summed over a model's life, a `track_usage()` block or a
    jitted function's calls.

    **Attributes:** `calls` (requests made; cache hits are not calls), `prompt_tokens`,
    `completion_tokens`, `total_tokens`, `cache_hits`, `cache_misses`, `retries`.
    """

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    retries: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, usage: Any, cached: bool) -> None:
        """Count one call with this `Usage` (a cache hit counts as a hit, not tokens)."""
        if cached:
            self.cache_hits += 1
            return
        self.calls += 1
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens


_meters: contextvars.ContextVar[tuple[UsageTotals, ...]] = contextvars.ContextVar(
    "ember_xcs_usage_meters", default=()
)
_lock = threading.Lock()  # meters are shared by every thread the block's calls run on


class usage_meter:  # noqa: N801 - used as a function: `with usage_meter() as totals:`
    """Open a meter for the block: calls made inside it add to the `UsageTotals` it yields.

    A class rather than a `contextlib.contextmanager`: every jitted call opens one, and
    the generator-based form costs several µs of that call's fixed overhead."""

    __slots__ = ("_token", "totals")

    def __enter__(self) -> UsageTotals:
        totals = self.totals = UsageTotals()
        self._token = _meters.set((*_meters.get(), totals))
        return totals

    def __exit__(self, *exc_info: Any) -> None:
        _meters.reset(self._token)


def meters_open() -> tuple[UsageTotals, ...]:
    """The meters open here, outermost first (a new tuple whenever a block opens or closes
    one, so `is` tells whether two places see the same meters)."""
    return _meters.get()


class meters_set:  # noqa: N801 - used as a function: `with meters_set(meters):`
    """Make exactly `meters` the open ones for the block: a call that a jitted body made
    inside a `track_usage()` block counts in it, whichever worker or task runs it later (a
    worker's context is the caller's at the start of the run, before the block opened)."""

    __slots__ = ("_meters", "_token")

    def __init__(self, meters: tuple[UsageTotals, ...]):
        self._meters = meters

    def __enter__(self) -> None:
        self._token = _meters.set(self._meters)

    def __exit__(self, *exc_info: Any) -> None:
        _meters.reset(self._token)


def meter_call(usage: Any, cached: bool) -> None:
    """Add one model call to every meter open here."""
    meters = _meters.get()
    if meters:
        with _lock:
            for totals in meters:
                totals.add(usage, cached)


def meter_event(field: str) -> None:
    """Count a `retries` or `cache_misses` event in every meter open here."""
    meters = _meters.get()
    if meters:
        with _lock:
            for totals in meters:
                setattr(totals, field, getattr(totals, field) + 1)
