"""Hooks: observe graph and node events without touching the engine.

Subclass `ExecutionHooks` and override what you need, or write any object with some of
its `on_*` methods; pass instances in `ExecutionOptions(hooks=...)`. A hook may implement
any subset of the events: each is looked up once per options object
(`_options.hook_calls`), and the inherited no-op defaults are never called. Node hooks run on the worker thread that runs the node,
so they see real start and end times; they must be thread-safe. The jit layer reports
compiles, cache hits and misses through the same objects.

`Timeline` is the built-in recorder: it keeps one record per node attempt and computes
the concurrency that was actually reached.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

__all__ = ["ExecutionHooks", "NodeRecord", "Timeline"]


class ExecutionHooks:
    """Base class with a no-op method per event."""

    def on_graph_start(self, *, num_nodes: int, scheduler: str) -> None:
        """Before the first node of a run is submitted."""

    def on_graph_end(self, *, num_nodes: int, seconds: float, failed: bool) -> None:
        """After the last node finished, or the run failed."""

    def on_node_start(self, *, node_id: str, name: str, attempt: int) -> None:
        """On the worker, just before the operator is called."""

    def on_node_end(self, *, node_id: str, name: str, seconds: float) -> None:
        """On the worker, after the operator returned."""

    def on_node_failure(
        self, *, node_id: str, name: str, error: BaseException, attempt: int, will_retry: bool
    ) -> None:
        """On the worker, after the operator raised."""

    def on_compile_start(self, *, target: str, key: Any) -> None:
        """Before jit traces a function for a new input signature (`key`: its structure)."""

    def on_compile(self, *, target: str, seconds: float, detail: str = "") -> None:
        """After jit traced a function or XLA compiled a numeric segment."""

    def on_cache_hit(self, *, target: str, key: Any) -> None:
        """A jit call found its plan in the cache."""

    def on_cache_miss(self, *, target: str, key: Any) -> None:
        """A jit call had to trace."""

    def on_cache_evict(self, *, target: str, key: Any) -> None:
        """A jitted function's cache dropped the plan for `key` (it held `cache_size`)."""


for _event in [name for name in vars(ExecutionHooks) if name.startswith("on_")]:
    getattr(ExecutionHooks, _event).__xcs_noop__ = True  # hook_calls skips these
del _event


@dataclasses.dataclass(frozen=True)
class NodeRecord:
    """One attempt of one node: when it ran, where, and whether it succeeded."""

    node_id: str
    name: str
    start: float
    end: float
    thread: str
    ok: bool
    attempt: int


class Timeline(ExecutionHooks):
    """Records every node attempt; `max_concurrency()` is the in-flight peak reached.

    !!! example
        ```python
        timeline = xcs.Timeline()
        with xcs.execution_options(hooks=(timeline,)):
            pipeline("question")
        print(timeline.max_concurrency(), timeline.render())
        ```
    """

    def __init__(self) -> None:
        self.records: list[NodeRecord] = []
        # (node_id, thread) -> (attempt, start): one thread runs one attempt of a node at
        # a time, and async nodes on the shared loop thread have distinct ids within a run.
        self._starts: dict[tuple[str, int], tuple[int, float]] = {}
        self._lock = threading.Lock()

    def on_node_start(self, *, node_id: str, name: str, attempt: int) -> None:
        start = time.perf_counter()
        with self._lock:
            self._starts[(node_id, threading.get_ident())] = (attempt, start)

    def on_node_end(self, *, node_id: str, name: str, seconds: float) -> None:
        self._finish(node_id, name, True)

    def on_node_failure(
        self, *, node_id: str, name: str, error: BaseException, attempt: int, will_retry: bool
    ) -> None:
        self._finish(node_id, name, False)

    def _finish(self, node_id: str, name: str, ok: bool) -> None:
        end = time.perf_counter()
        thread = threading.current_thread().name
        with self._lock:
            attempt, start = self._starts.pop((node_id, threading.get_ident()), (0, end))
            self.records.append(NodeRecord(node_id, name, start, end, thread, ok, attempt))

    def max_concurrency(self) -> int:
        """The largest number of node attempts that overlapped in time."""
        events = sorted([(r.start, 1) for r in self.records] + [(r.end, -1) for r in self.records])
        peak = current = 0
        for _, delta in events:
            current += delta
            peak = max(peak, current)
        return peak

    def span(self) -> float:
        """Seconds from the first start to the last end."""
        if not self.records:
            return 0.0
        return max(r.end for r in self.records) - min(r.start for r in self.records)

    def render(self, width: int = 60) -> str:
        """An ASCII Gantt chart, one row per node attempt."""
        if not self.records:
            return "(no nodes ran)"
        t0 = min(r.start for r in self.records)
        scale = width / max(self.span(), 1e-9)
        label = max(len(r.node_id) for r in self.records)
        rows = []
        for r in sorted(self.records, key=lambda r: r.start):
            left = int((r.start - t0) * scale)
            bar = max(1, int((r.end - r.start) * scale))
            mark = "#" if r.ok else "x"
            rows.append(f"{r.node_id:<{label}} |{' ' * left}{mark * bar}")
        return "\n".join(rows)
