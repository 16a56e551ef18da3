"""Timing one contender on one case: warm-up, then `repeats` timed runs, answers checked.

Every run gets a fresh input (`case.inputs(k)`), so a contender that replays a value
captured earlier fails the answer check instead of looking fast. Expected answers come
from the zero-latency reference program and are computed outside the timed region.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
import traceback
from collections.abc import Callable
from typing import Any

from ._case import Case, Runner, Unavailable, same

__all__ = ["Measurement", "measure"]


@dataclasses.dataclass
class Measurement:
    """Wall times of the timed runs, whether every answer matched, and why not."""

    times: list[float]
    ok: bool = True
    error: str = ""
    skipped: str = ""  # non-empty: the contender could not run here (the reason)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def low(self) -> float:
        return min(self.times) if self.times else float("nan")

    @property
    def high(self) -> float:
        return max(self.times) if self.times else float("nan")


def measure(
    make: Callable[[Case], Runner], case: Case, *, warmup: int, repeats: int
) -> Measurement:
    """Build the contender's runner for `case`, warm it up, then time `repeats` runs."""
    try:
        runner = make(case)
    except Unavailable as exc:
        return Measurement([], ok=True, skipped=str(exc))  # unavailable is not an error
    try:
        result = _timed_runs(runner, case, warmup, repeats)
        result.info = runner.info()
        return result
    finally:
        runner.close()


def _timed_runs(runner: Runner, case: Case, warmup: int, repeats: int) -> Measurement:
    result = Measurement([])
    for k in range(warmup + repeats):
        x = case.inputs(k)
        want = case.expected(x)
        try:
            start = time.perf_counter()
            got = runner.call(x)
            seconds = time.perf_counter() - start
        except Exception as exc:  # noqa: BLE001 - a failing contender is a reported row
            result.ok = False
            result.error = _describe(exc)
            return result
        if not same(got, want):
            result.ok = False
            result.error = f"wrong answer on run {k}: got {_short(got)}, want {_short(want)}"
        if k >= warmup:
            result.times.append(seconds)
    return result


def _describe(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] or [None]
    where = f" at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno}" if last[0] else ""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}{where}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
