"""The engine loop: one dataflow loop that every scheduler shares.

As in Dask's `local.get_async`, the loop keeps a ready heap and a completion queue and
leaves *where* a call runs to an executor. Each turn it submits ready nodes while the
executor and `max_workers` allow (critical path first: the heap is keyed by each node's
longest remaining path), then takes one completion and releases the successors whose last
input just arrived. A node is therefore submitted the moment its inputs are ready; waves
are never barriers unless the `"wave"` scheduler asks for them.

Failure: without `return_partial_results`, the first failure stops new submissions, the
calls already in flight are allowed to finish (a Python thread cannot be killed; waiting
means no call outlives the run), and the error is raised. With it, the failed node's
dependents are skipped and everything else still runs.

Any failure reaches the caller as an `XCSError` naming the node: executors deliver
`NodeExecutionError`s, and anything else they deliver (a cancelled Dask future) is wrapped.
Only `BaseException`s that are not `Exception`s (`KeyboardInterrupt`) pass through as they
are, and they stop the run even with `return_partial_results`.

Timeouts: the loop waits on the completion queue no longer than the graph deadline or the
oldest running node's deadline; a completion taken after the graph deadline counts as not
finished. The inline executor cannot be interrupted, so there a slow node is failed when
it returns late, and nothing else starts once the deadline has passed. If the run is
already failing when the deadline passes, the failure is raised rather than the timeout.
Nodes still running at a deadline cannot be stopped (Python threads cannot be killed):
their results are dropped when they arrive.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Mapping
from queue import Empty, SimpleQueue
from typing import Any

from .._errors import ExecutionTimeoutError, NodeExecutionError, XCSError
from .._options import ExecutionOptions
from ._async_loop import blocking_loop_error, on_background_loop
from ._node_call import NodeCall
from ._plan import ExecutionPlan
from ._result import ExecutionResult, ExecutionStats

__all__ = ["DEFAULT_MAX_WORKERS", "node_timeout_error", "run_plan"]

DEFAULT_MAX_WORKERS = 512  # I/O-bound calls: wide is cheap; this only bounds runaway graphs
_PENDING = object()
_SKIPPED = -(1 << 40)


class _GraphTimeout(Exception):
    pass


class _Run:
    """State of one execution: outputs so far, and how to bind a node's call."""

    def __init__(self, plan: ExecutionPlan, inputs: Mapping[str, Any], options: ExecutionOptions):
        self.plan = plan
        self.inputs = inputs
        self.options = options
        self.results: list[Any] = [_PENDING] * len(plan)

    def prepare(self, index: int) -> NodeCall:
        node = self.plan.nodes[index]
        args, kwargs = node.bind(self.results, self.inputs)
        return NodeCall(
            node.node_id, node.name, node.operator, args, kwargs, self.options, node.is_async
        )


def run_plan(
    plan: ExecutionPlan,
    inputs: Mapping[str, Any],
    options: ExecutionOptions,
    executor: Any,
    *,
    scheduler_name: str,
    barrier: bool = False,
) -> ExecutionResult:
    """Run every node of `plan` on `executor`; see the module docstring."""
    if plan.has_async and on_background_loop():
        # this loop would block the thread the async nodes need to run on
        raise blocking_loop_error()
    run = _Run(plan, inputs, options)
    hooks = options.hooks
    start = time.perf_counter()
    for hook in hooks:
        hook.on_graph_start(num_nodes=len(plan), scheduler=scheduler_name)
    failed = True
    try:
        failures, skipped, peak, count = _loop(run, executor, options, barrier, start)
        failed = bool(failures)
    finally:
        seconds = time.perf_counter() - start
        for hook in hooks:
            hook.on_graph_end(num_nodes=len(plan), seconds=seconds, failed=failed)
    stats = ExecutionStats(scheduler_name, seconds, count, peak)
    return ExecutionResult(
        _outputs(run, options, bool(failures or skipped)),
        plan=plan,
        stats=stats,
        failures=failures,
        skipped=skipped,
    )


def _outputs(run: _Run, options: ExecutionOptions, partial: bool) -> dict[str, Any]:
    nodes, results = run.plan.nodes, run.results
    if partial or options.include_intermediates:
        return {nodes[i].node_id: r for i, r in enumerate(results) if r is not _PENDING}
    return {nodes[i].node_id: results[i] for i in run.plan.sinks}


def _loop(
    run: _Run, executor: Any, options: ExecutionOptions, barrier: bool, start: float
) -> tuple[dict[str, XCSError], list[str], int, int]:
    plan = run.plan
    nodes, successors, rank, wave = plan.nodes, plan.successors, plan.rank, plan.wave
    n = len(nodes)
    remaining = list(plan.indegree)
    big = n + 2
    key = [w * big - r for w, r in zip(wave, rank, strict=True)] if barrier else [-r for r in rank]
    ready = [(key[i], i) for i in plan.roots]
    heapq.heapify(ready)
    capacity = min(
        options.max_workers or DEFAULT_MAX_WORKERS, executor.capacity or DEFAULT_MAX_WORKERS
    )
    submit = executor.submit
    submit_async = getattr(executor, "submit_async", None)
    reserve = getattr(executor, "reserve", None)
    if reserve is not None and n > 1:
        reserve(min(plan.thread_width, capacity))
    done: SimpleQueue[tuple[int, bool, Any]] = SimpleQueue()
    running: dict[int, float] = {}  # index -> submit time, oldest first
    deadline = start + options.timeout_seconds if options.timeout_seconds else None
    node_timeout = options.node_timeout_seconds
    timed = deadline is not None or node_timeout is not None
    partial = options.return_partial_results
    failures: dict[str, XCSError] = {}
    skipped: list[str] = []
    first_error: BaseException | None = None
    finished = peak = count = 0
    results = run.results

    while finished < n:
        while ready and first_error is None and len(running) < capacity:
            if barrier and running and wave[ready[0][1]] != wave[next(iter(running))]:
                break
            i = heapq.heappop(ready)[1]
            try:
                call = run.prepare(i)
            except XCSError as exc:  # a bad mapping fails this node before it runs
                done.put((i, False, exc))
                running[i] = 0.0
                continue
            running[i] = time.perf_counter() if node_timeout else 0.0  # only timeouts read it
            count += 1
            if call.is_async and submit_async is not None:
                submit_async(i, call, done)
            else:
                submit(i, call, done)
        if len(running) > peak:
            peak = len(running)
        if not running:
            break
        try:
            if timed:
                i, ok, value = _next(done, running, deadline, node_timeout, nodes)
                if i in running and deadline is not None and time.perf_counter() > deadline:
                    raise _GraphTimeout  # it came back late: the inline executor's only check
            else:
                i, ok, value = done.get()
        except _GraphTimeout:
            if first_error is not None:  # already failing: the cause beats the deadline
                break
            error = _graph_timeout_error(options, running, nodes, n - finished)
            if not partial:
                raise error from None
            _record_timeout(failures, skipped, running, nodes, results, error)
            return failures, skipped, peak, count
        if i not in running:  # a late answer from a node that already timed out
            continue
        started = running.pop(i)
        finished += 1
        if ok and node_timeout and time.perf_counter() - started > node_timeout:
            ok, value = False, node_timeout_error(nodes[i], node_timeout)
        if ok:
            results[i] = value
            for s in successors[i]:
                remaining[s] -= 1
                if remaining[s] == 0:
                    heapq.heappush(ready, (key[s], s))
        elif not isinstance(value, Exception):  # KeyboardInterrupt and friends: stop now
            first_error = first_error or value
        elif partial:
            failures[nodes[i].node_id] = _as_xcs_error(value, nodes[i])
            finished += _skip_dependents(i, successors, nodes, skipped, remaining)
        elif first_error is None:
            first_error = _as_xcs_error(value, nodes[i])
    if first_error is not None:
        raise first_error
    return failures, skipped, peak, count


def _next(
    done: SimpleQueue,
    running: dict[int, float],
    deadline: float | None,
    node_timeout: float | None,
    nodes: Any,
) -> tuple[int, bool, Any]:
    now = time.perf_counter()
    if deadline is not None and now >= deadline and done.empty():
        raise _GraphTimeout
    oldest, oldest_start = next(iter(running.items()))
    limit = deadline if deadline is not None else float("inf")
    node_limit = oldest_start + node_timeout if node_timeout else float("inf")
    try:
        return done.get(timeout=max(0.0, min(limit, node_limit) - now))
    except Empty:
        if node_limit <= limit:
            return oldest, False, node_timeout_error(nodes[oldest], node_timeout)
        raise _GraphTimeout from None


def node_timeout_error(node: Any, seconds: float | None) -> ExecutionTimeoutError:
    return ExecutionTimeoutError(
        f"node {node.node_id!r} ({node.name}) did not finish within node_timeout_seconds="
        f"{seconds}; raise the limit or make the call faster",
        running=[node.node_id],
        node_id=node.node_id,
        operator_name=node.name,
    )


def _graph_timeout_error(
    options: ExecutionOptions, running: dict[int, float], nodes: Any, unfinished: int
) -> ExecutionTimeoutError:
    names = [f"{nodes[i].node_id} ({nodes[i].name})" for i in running]
    waiting = unfinished - len(running)
    return ExecutionTimeoutError(
        f"execution did not finish within timeout_seconds={options.timeout_seconds}; "
        f"still running: {', '.join(names) or 'none'}; {waiting} node(s) not started",
        running=[nodes[i].node_id for i in running],
    )


def _record_timeout(
    failures: dict[str, XCSError],
    skipped: list[str],
    running: dict[int, float],
    nodes: Any,
    results: list[Any],
    error: ExecutionTimeoutError,
) -> None:
    for i in running:
        failures[nodes[i].node_id] = error
    done_or_failed = set(failures)
    skipped.extend(
        node.node_id
        for node, r in zip(nodes, results, strict=True)
        if r is _PENDING and node.node_id not in done_or_failed
    )


def _as_xcs_error(value: BaseException, node: Any) -> XCSError:
    """Executors deliver `NodeExecutionError`s; anything else (a cancelled Dask future,
    an executor's own failure) is wrapped so the caller still learns which node it was."""
    if isinstance(value, XCSError):
        return value
    wrapped = ExecutionTimeoutError if isinstance(value, TimeoutError) else NodeExecutionError
    error = wrapped(
        f"node {node.node_id!r} ({node.name}) failed: {type(value).__name__}: {value}",
        node_id=node.node_id,
        operator_name=node.name,
    )
    error.__cause__ = value
    return error


def _skip_dependents(
    failed: int, successors: Any, nodes: Any, skipped: list[str], remaining: list[int]
) -> int:
    """Mark every transitive dependent of `failed` skipped; return how many were new."""
    stack, seen = list(successors[failed]), set()
    while stack:
        s = stack.pop()
        if remaining[s] < 0:  # already skipped (a parent finishing since only lowered it)
            continue
        seen.add(s)
        remaining[s] = _SKIPPED  # can never become ready
        stack.extend(successors[s])
    skipped.extend(nodes[s].node_id for s in sorted(seen))
    return len(seen)
