"""Jit statistics: measured counters and timings, never estimates.

Each jitted function owns a `StatsRecorder`; `get_jit_stats` returns a frozen `JitStats`
snapshot. Times are `time.perf_counter()` wall seconds around the real work: tracing and
plan building (`trace_seconds`), and running plans (`replay_seconds`). Node counts,
critical path and in-flight peak come from the plans and runs themselves.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from typing import Any

__all__ = ["JitStats", "StatsRecorder"]

_RECENT = 1024  # call times kept for the percentiles


@dataclasses.dataclass(frozen=True)
class JitStats:
    """A snapshot of one jitted function's counters.

    **Attributes:**

    - `calls`: calls made outside another trace.
    - `cache_hits`, `cache_misses`, `cache_evictions`, `cache_entries`: the plan cache.
    - `traces`, `trace_seconds`: symbolic traces run (one per miss) and their total time.
    - `plan_calls`, `replay_seconds`: calls that ran a cached plan, and their total time.
    - `dynamic_calls`, `plain_calls`: calls that ran dynamically, or as written.
    - `leaf_calls`: leaf calls the most recent plan or dynamic run made (more than a
      plan's nodes when numeric segments merged several).
    - `nodes`, `critical_path`: of the most recent plan run.
    - `max_in_flight`: calls in flight at once in the most recent plan or dynamic run
      (measured by the engine, or by dynamic dispatch); `peak_in_flight`: the largest over
      all runs.
    - `numeric_segments`, `xla_compiles`: numeric segments held by the cached entries
      (plan segments, and the compiled leaves of dynamic runs), and how many times JAX
      traced them (once per new shape).
    - `last_strategy`: `"trace"`, `"structural"` or `"dynamic"`.
    - `compile_seconds`: seconds spent choosing a strategy (tracing, building the plan),
      per strategy chosen: `{"trace": 0.004}`.
    - `call_seconds_p50`, `call_seconds_p95`: wall time of the recent calls (the last
      1,024), in every mode, from the call to its return.
    - `signatures`: the input signatures cached now, as structure (types, shapes, static
      values), never the values of the inputs.
    - `model_calls`, `prompt_tokens`, `completion_tokens`, `total_tokens`: model requests
      made during the calls (response-cache hits are not requests) and the tokens they
      used, summed over every call, as `models.track_usage()` would count them around
      each call; a call made from a worker thread or the engine's loop counts too.
    """

    name: str
    calls: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    cache_evictions: int = 0
    cache_entries: int = 0
    traces: int = 0
    trace_seconds: float = 0.0
    plan_calls: int = 0
    replay_seconds: float = 0.0
    dynamic_calls: int = 0
    plain_calls: int = 0
    nodes: int = 0
    leaf_calls: int = 0
    critical_path: int = 0
    max_in_flight: int = 0
    peak_in_flight: int = 0
    numeric_segments: int = 0
    xla_compiles: int = 0
    last_strategy: str | None = None
    compile_seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    call_seconds_p50: float = 0.0
    call_seconds_p95: float = 0.0
    signatures: tuple[str, ...] = ()
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SUMMED = (
    "calls cache_hits cache_misses cache_evictions cache_entries traces trace_seconds "
    "plan_calls replay_seconds dynamic_calls plain_calls numeric_segments xla_compiles "
    "model_calls prompt_tokens completion_tokens total_tokens"
).split()


def combine(name: str, parts: list[JitStats]) -> JitStats:
    """Totals over several recorders (e.g. every instance of a jitted class)."""
    if not parts:
        return JitStats(name)
    totals = {f: sum(getattr(p, f) for p in parts) for f in _SUMMED}
    compile_seconds: dict[str, float] = {}
    for part in parts:
        for strategy, seconds in part.compile_seconds.items():
            compile_seconds[strategy] = compile_seconds.get(strategy, 0.0) + seconds
    last = parts[-1]
    return JitStats(
        name,
        **totals,
        nodes=last.nodes,
        leaf_calls=last.leaf_calls,
        critical_path=last.critical_path,
        max_in_flight=last.max_in_flight,
        peak_in_flight=max(p.peak_in_flight for p in parts),
        last_strategy=last.last_strategy,
        compile_seconds=compile_seconds,
        call_seconds_p50=max(p.call_seconds_p50 for p in parts),
        call_seconds_p95=max(p.call_seconds_p95 for p in parts),
        signatures=tuple(sig for p in parts for sig in p.signatures),
    )


class StatsRecorder:
    """Thread-safe mutable counters behind a `JitStats` snapshot."""

    def __init__(self, name: str):
        self._lock = threading.Lock()
        self._values: dict[str, Any] = dataclasses.asdict(JitStats(name))
        self._call_seconds: collections.deque[float] = collections.deque(maxlen=_RECENT)

    def call_took(self, seconds: float) -> None:
        self._call_seconds.append(seconds)  # deque.append is atomic: no lock on the hot path

    def count_call(self, hit: bool) -> None:
        """One call, a cache hit or miss (`add`'s keywords cost ~1 µs a call)."""
        with self._lock:
            v = self._values
            v["calls"] += 1
            v["cache_hits" if hit else "cache_misses"] += 1

    def compiled(self, strategy: str, seconds: float) -> None:
        with self._lock:
            per = self._values["compile_seconds"]
            per[strategy] = per.get(strategy, 0.0) + seconds

    def add(self, **deltas: float) -> None:
        with self._lock:
            for k, v in deltas.items():
                self._values[k] += v

    def record_run(
        self, *, strategy: str, seconds: float, nodes: int, leaf_calls: int,
        critical_path: int, in_flight: int,
    ) -> None:  # fmt: skip
        with self._lock:
            v = self._values
            v["plan_calls"] += 1
            v["replay_seconds"] += seconds
            v["nodes"], v["leaf_calls"], v["critical_path"] = nodes, leaf_calls, critical_path
            v["max_in_flight"] = in_flight
            v["peak_in_flight"] = max(v["peak_in_flight"], in_flight)
            v["last_strategy"] = strategy

    def record_dynamic(self, *, in_flight: int, leaf_calls: int) -> None:
        with self._lock:
            v = self._values
            v["dynamic_calls"] += 1
            v["leaf_calls"] = leaf_calls
            v["max_in_flight"] = in_flight
            v["peak_in_flight"] = max(v["peak_in_flight"], in_flight)
            v["last_strategy"] = "dynamic"

    def used(self, usage: Any) -> None:
        """Add one call's model usage (a `UsageTotals`)."""
        if usage.calls:  # most jitted functions call no model: skip the lock
            self.add(
                model_calls=usage.calls,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                total_tokens=usage.total_tokens,
            )

    def set(self, **values: Any) -> None:
        with self._lock:
            self._values.update(values)

    def snapshot(self, **extra: Any) -> JitStats:
        recent = sorted(self._call_seconds)
        with self._lock:
            values = {**self._values, "compile_seconds": dict(self._values["compile_seconds"])}
        if recent:
            values["call_seconds_p50"] = _quantile(recent, 0.50)
            values["call_seconds_p95"] = _quantile(recent, 0.95)
        return JitStats(**{**values, **extra})


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
