"""Retry timing for model backends: exponential backoff with jitter, and `Retry-After`.

Backoff doubles from `backoff_seconds` up to `max_backoff_seconds`; the actual wait is
drawn from the upper half of that value ("equal jitter"), so simultaneous failures spread
out but no retry comes back immediately. When the server says how long to wait
(`Retry-After` in seconds or as an HTTP date, or OpenAI's `retry-after-ms`), the wait is
at least that, plus up to 10 % jitter so a burst of 429s does not return as a burst.
"""

from __future__ import annotations

import dataclasses
import email.utils
import random
import time
from collections.abc import Mapping

from ._errors import ModelConfigError

__all__ = ["RetryPolicy", "parse_retry_after"]


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How a model retries 429s, 5xx responses, timeouts and refused connections.

    **Arguments:**

    - `max_retries`: attempts after the first; `0` disables retries.
    - `backoff_seconds`: the first backoff; doubled for each further retry.
    - `max_backoff_seconds`: the backoff never exceeds this.
    - `max_retry_after_seconds`: a server asking for a longer wait than this is not
      retried; the error says what it asked for.
    """

    max_retries: int = 3
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 8.0
    max_retry_after_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ModelConfigError(f"max_retries must be an int >= 0, got {self.max_retries!r}")
        for field in ("backoff_seconds", "max_backoff_seconds", "max_retry_after_seconds"):
            if getattr(self, field) < 0:
                raise ModelConfigError(f"{field} must be >= 0, got {getattr(self, field)!r}")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt + 1` (`attempt` counts from 0)."""
        if retry_after is not None:
            return retry_after + random.uniform(0.0, 0.1 * retry_after)
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2**attempt)
        return ceiling / 2 + random.uniform(0.0, ceiling / 2)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, or `None` when it did not say (or said nonsense)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
