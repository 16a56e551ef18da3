"""Hooks: observe graph and node events without touching the engine.

Subclass `ExecutionHooks` and override what you need, or write any object with some of
its `on_*` methods; pass instances in `ExecutionOptions(hooks=...)`. A hook may implement
any subset of the events, and the inherited no-op defaults are never called. The jit
layer reports compiles, cache hits and misses through the same objects.

**Dispatch.** Graph and jit events are looked up once per options object
(`_options.hook_calls`) and called with keyword arguments. Node events are on every
node's path, so `NodeCall` calls them positionally, passing the attempt's
`time.perf_counter()` start and end, through the calls `_options.node_hook_calls` looks
up once per run: a hook's keyword methods get a one-line adapter each, and a hook class
may mark its methods `positional(twin)` to be called through a positional twin instead
(no adapter, no clock reads of its own, no start event when it needs none, and a call
for the runs it wants only). `Timeline` and `ProgressHooks` do; their keyword methods
remain for a subclass that overrides one, for the events a Dask cluster's workers send,
and for anyone calling them. Node hooks run on the worker thread that runs the node, so
they see real start and end times; they must be thread-safe.

`Timeline` is the built-in recorder: it keeps one record per node attempt (start, end,
process, thread, attempt, outcome) and one per run, computes the concurrency that was
actually reached, and exports what it saw as Chrome trace-event JSON (Perfetto,
`chrome://tracing`) or as an SVG picture (`_trace_export`, `_timeline_svg`).

Recording is on the hot path of every node, so the engine records an attempt itself:
`Timeline` names a list (`positional(..., log="_log")`), and the node call extends it
with the attempt's fields (what it already had: ids, its clock readings, the attempt,
the thread's name) in one C call, with no Python call and no object kept but the two
clock readings; the `NodeRecord`s are built when someone reads `records`. An attempt
that returned stores six fields; a failed one stores its attempt, error type and
whether it was retried as one tuple in the sixth, so the common case builds and copies
two fields fewer. A run whose executor runs every call on the caller's thread (the
sequential scheduler) names that thread once, as it starts, instead of per attempt.
History, in machine instructions per recorded node on the benchmark's grid (callgrind,
sequential): a positional hook method that appended a tuple per attempt, ~3,600; the
engine's own append of eight fields, ~2,450-2,600; six fields and the run's thread
named once, ~2,000 (see `benchmarks/RESULTS.md`, "Observability overhead"). A second
`Timeline` in the same run, and the keyword methods (the events a Dask cluster's
workers send), append the same fields through the positional twins.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from .._options import positional
from ._node_call import thread_name
from ._timeline_svg import check_graph, critical_nodes, timeline_svg
from ._trace_export import chrome_trace, write_json

__all__ = ["RELAYED", "ExecutionHooks", "NodeRecord", "RunRecord", "Timeline"]

# While a run's hooks are called for a node event that a cluster's worker sent
# (`_dask.EventRelay`): "run" for a node of the run itself, "nested" for a node of a run
# made inside one of them. Relayed events all arrive on one thread, interleaved, so a hook
# cannot tell nesting from the order of starts and ends there; the worker can. "" when
# the event is not relayed.
RELAYED: ContextVar[str] = ContextVar("ember_xcs_relayed_event", default="")


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
    """One attempt of one node: when it ran, where, and how it ended.

    `start` and `end` are `time.perf_counter()` seconds. `process` is the operating-system
    process id and `thread` the thread name (`ember-xcs-worker-3`, `ember-xcs-async`, or
    the caller's thread for the sequential scheduler). `error` is the exception's type
    name for a failed attempt (never its message, which may quote inputs), and `retried`
    says whether another attempt followed.
    """

    node_id: str
    name: str
    start: float
    end: float
    thread: str
    ok: bool
    attempt: int
    process: int = 0
    error: str = ""
    retried: bool = False

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def outcome(self) -> str:
        """`"ok"`, `"retried"` (failed, and another attempt followed) or `"failed"`."""
        return "ok" if self.ok else "retried" if self.retried else "failed"


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One run (an `execute_graph`, a jitted call, a batch): its span and scheduler.

    `num_nodes` is the plan's size, or for a dynamic run the calls it dispatched.
    """

    scheduler: str
    num_nodes: int
    start: float
    end: float
    thread: str
    failed: bool
    process: int = 0


_clock = time.perf_counter
_ident = threading.get_ident
# An attempt's fields in a Timeline's log, as the engine appends them (`NodeCall`):
# node_id, name, start, end, thread, attempt; a failed attempt's `attempt` is the tuple
# (attempt, error type, retried), so a node that returned stores two fields fewer.
_FIELDS = 6


def _records(log: list[Any], pid: int) -> list[NodeRecord]:
    """The `NodeRecord`s of `log`, a run of whole attempts (`_FIELDS` each)."""
    attempts = zip(*[iter(log)] * _FIELDS, strict=True)  # consecutive groups of _FIELDS
    return [
        NodeRecord(node_id, name, start, end, thread, True, attempt, pid)
        if type(attempt) is int
        else NodeRecord(node_id, name, start, end, thread, False, attempt[0], pid, *attempt[1:])
        for node_id, name, start, end, thread, attempt in attempts
    ]


class Timeline(ExecutionHooks):
    """Records every node attempt and every run; exports them for viewers.

    Pass it in `hooks=`; any run records into it: `execute_graph`, a jitted call, a
    `vmap`/`pmap` batch, nested runs alike.

    - `records`: one `NodeRecord` per node attempt, in the order they finished;
      `runs`: one `RunRecord` per run.
    - `max_concurrency()`, `span()`, `render()` (ASCII Gantt chart).
    - `to_chrome_trace(path)`: Chrome trace-event JSON that Perfetto
      (<https://ui.perfetto.dev>) and `chrome://tracing` open.
    - `to_svg(path, graph=...)`: the graph and its timeline as one SVG picture, with the
      critical path by measured durations highlighted.

    !!! example
        ```python
        import tempfile

        @xcs.op
        def ask(question: str) -> str:
            return question.upper()

        pipeline = xcs.jit(lambda q: [ask(q), ask(q + "?")])
        timeline = xcs.Timeline()
        with xcs.execution_options(hooks=(timeline,)):
            pipeline("question")
        print(timeline.max_concurrency(), timeline.render())
        with tempfile.TemporaryDirectory() as folder:
            timeline.to_chrome_trace(f"{folder}/trace.json")  # open in Perfetto
        ```
    """

    def __init__(self) -> None:
        self._log: list[Any] = []  # _FIELDS per attempt, appended by the engine
        self._built: list[NodeRecord] = []  # from the log, when someone reads records
        self._reading = threading.Lock()  # readers only: two must not build the same records
        self.runs: list[RunRecord] = []
        # Per thread, for the keyword methods: node_id -> (attempt, start) of the attempts
        # it is running (one thread runs one attempt of a node at a time; async nodes
        # sharing the loop thread have distinct ids within a run).
        self._local = threading.local()
        self._run_starts: dict[int, list[tuple[float, str]]] = {}  # thread -> open runs
        self._pid = os.getpid()

    # --- events ----------------------------------------------------------------------------

    def on_graph_start(self, *, num_nodes: int, scheduler: str) -> None:
        self._run_starts.setdefault(_ident(), []).append((_clock(), scheduler))

    def on_graph_end(self, *, num_nodes: int, seconds: float, failed: bool) -> None:
        end = _clock()
        opened = self._run_starts.get(_ident())
        start, scheduler = opened.pop() if opened else (end - seconds, "")
        thread = thread_name()
        self.runs.append(RunRecord(scheduler, num_nodes, start, end, thread, failed, self._pid))

    # The engine appends each attempt to `_log` itself (`_options.node_hook_calls`): no
    # call per node. The positional twins serve a second Timeline in the same run.

    @positional(None)
    def on_node_start(self, *, node_id: str, name: str, attempt: int) -> None:
        self._starts()[node_id] = (attempt, _clock())

    @positional("_node_ended", log="_log")
    def on_node_end(self, *, node_id: str, name: str, seconds: float) -> None:
        end = _clock()
        attempt, start = self._starts().pop(node_id, (0, end - seconds))
        self._node_ended(node_id, name, attempt, start, end)

    @positional("_node_failed")
    def on_node_failure(
        self, *, node_id: str, name: str, error: BaseException, attempt: int, will_retry: bool
    ) -> None:
        end = _clock()
        start = self._starts().pop(node_id, (attempt, end))[1]
        self._node_failed(node_id, name, attempt, start, end, error, will_retry)

    def _node_ended(self, node_id: str, name: str, attempt: int, start: float, end: float) -> None:
        self._log.extend((node_id, name, start, end, thread_name(), attempt))

    def _node_failed(
        self,
        node_id: str,
        name: str,
        attempt: int,
        start: float,
        end: float,
        error: BaseException,
        will_retry: bool,
    ) -> None:
        outcome = (attempt, type(error).__name__, will_retry)
        self._log.extend((node_id, name, start, end, thread_name(), outcome))

    def _starts(self) -> dict[str, tuple[int, float]]:
        try:
            return self._local.starts
        except AttributeError:
            self._local.starts = starts = {}
            return starts

    # --- reading ---------------------------------------------------------------------------

    @property
    def records(self) -> list[NodeRecord]:
        """One `NodeRecord` per node attempt, in the order the attempts ended."""
        built = self._built
        with self._reading:
            # appended by workers since the last read: whole attempts (one extend each)
            built.extend(_records(self._log[len(built) * _FIELDS :], self._pid))
            return list(built)

    def clear(self) -> None:
        """Forget everything recorded so far."""
        with self._reading:
            self._log.clear()  # in place: runs hold its `extend`
            self._built.clear()
            self.runs.clear()

    def max_concurrency(self) -> int:
        """The largest number of node attempts that overlapped in time."""
        records = self.records
        events = sorted([(r.start, 1) for r in records] + [(r.end, -1) for r in records])
        peak = current = 0
        for _, delta in events:
            current += delta
            peak = max(peak, current)
        return peak

    def span(self) -> float:
        """Seconds from the first start to the last end."""
        records = self.records
        if not records:
            return 0.0
        return max(r.end for r in records) - min(r.start for r in records)

    def render(self, width: int = 60) -> str:
        """An ASCII Gantt chart, one row per node attempt."""
        records = self.records
        if not records:
            return "(no nodes ran)"
        t0 = min(r.start for r in records)
        scale = width / max(self.span(), 1e-9)
        label = max(len(r.node_id) for r in records)
        rows = []
        for r in sorted(records, key=lambda r: r.start):
            left = int((r.start - t0) * scale)
            bar = max(1, int((r.end - r.start) * scale))
            mark = "#" if r.ok else "x"
            rows.append(f"{r.node_id:<{label}} |{' ' * left}{mark * bar}")
        return "\n".join(rows)

    def critical_path(self, graph: Any) -> list[str]:
        """The chain of `graph` that set the wall time: its heaviest path, each node
        weighted by the seconds its recorded attempts took (0 for a node that did not run).
        """
        check_graph(graph, self.records)
        return critical_nodes(self.records, graph)

    # --- export ----------------------------------------------------------------------------

    def to_chrome_trace(self, path: str | Path | None = None) -> dict[str, Any]:
        """The timeline as a Chrome trace-event JSON object; written to `path` if given.

        Open the file in Perfetto (<https://ui.perfetto.dev>, "Open trace file") or
        `chrome://tracing`. Each node attempt is a complete event (`"ph": "X"`) on the
        track of the thread that ran it, with `node_id`, `operator`, `attempt` and
        `outcome` in `args`; each run is a slice on a "runs" track. Times are
        microseconds from the first event.
        """
        trace = chrome_trace(self.records, self.runs)
        if path is not None:
            write_json(trace, path)
        return trace

    def to_svg(self, path: str | Path | None = None, *, graph: Any = None) -> str:
        """The timeline as an SVG picture; written to `path` if given.

        With `graph` (the `Graph` that ran), the picture shows the graph above the
        timeline, and the critical path by measured durations is highlighted in both.
        """
        svg = timeline_svg(self.records, graph=graph)
        if path is not None:
            Path(path).write_text(svg, encoding="utf-8")
        return svg
