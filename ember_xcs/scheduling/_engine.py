"""The engine loop: one dataflow loop for every run, a plan known up front or a graph
discovered while a jitted body runs.

As in Dask's `local.get_async`, a `Run` keeps a ready heap and a completion queue and
leaves *where* a call runs to an executor. `Run.pump` is the loop: it submits ready nodes
while the executor and `max_workers` allow (critical path first: the heap is keyed by each
node's longest remaining path), takes a completion, and releases the successors whose
last input just arrived. A node is therefore submitted the moment its inputs are ready;
waves are never barriers unless the `"wave"` scheduler asks for them.

**Two ways in, one loop.**

- *A plan* (`run_plan`: explicit graphs, jit replay, transforms' batches) has every node
  from the start; the caller's thread pumps until all of them finished.
- *A dynamic run* (`Run.dynamic`: jit's dynamic strategy) starts empty. The body runs on
  the caller's thread, and each leaf call it makes is `Run.add`ed as a node whose
  dependencies are the earlier nodes its arguments hold (no rank is known, so ready nodes
  go first in, first out). `add` submits it at once if it is ready and absorbs finished
  calls without blocking; when the body needs a value, `Run.wait(i)` pumps, blocking,
  until node `i` finished; when the body returns, `Run.finish` pumps until every node
  did. Successors are therefore released whenever the body calls or waits, which is
  whenever it is not running its own Python. A lock makes `add` and `wait` safe from
  threads the body starts itself; plan runs take no lock.

**A lone call runs on the thread that would wait for it.** Handing a call to a worker
thread and waking the waiting thread when it returns costs two thread wake-ups: about
0.02 ms back to back, 0.15-0.2 ms after a slow call (measured on a 2-CPU machine), more
than the rest of a dynamic call's dispatch (about 0.03 ms), and paid on every call of a
width-1 chain (a router, a retry loop, an agent), where nothing overlaps. So when `pump`
is about to block and the call it would submit is the only one that can be in flight
(nothing running, nothing else ready), it runs that call on its own thread through the
executor's `run_here` (the thread executor's: in the context a worker would get).
Nothing is lost: the thread would only have waited. In a dynamic run a call the body
makes while nothing is in flight is therefore not started at once: it stays ready until
the body makes a second call that can start (then both go to workers, so a fan-out
overlaps as before), needs a value or returns (then it runs on the body's thread, as in
plain Python). The price is overlap between such a call and the body's own work until
then; `_starter` bounds it: a call still waiting after `GRACE` (2 ms) goes to a worker,
so a body busy with slow work loses about that much (plus up to the 5 ms GIL switch
interval, which a worker given the call at once also waited), and a body blocked on
something the call does without using its value never hangs. Not under a deadline
(`timeout_seconds`, `node_timeout_seconds`: a call on the loop's thread cannot be
interrupted), not for `async def` calls (the event loop runs them), and not with an
executor without `run_here` (Dask): there every call is submitted as before.

A jitted body that ran its first calls itself (a serial run, `_jit/_serial`) and then
makes a call that can overlap becomes a dynamic run at that point: `Run.adopt` takes
the calls made so far in as finished nodes, and the run goes on as any dynamic run.
`Run.here` counts the calls run on the loop's own thread, so jit can tell a run where
nothing overlapped.

**Failure.** In a plan without `return_partial_results`, the first failure stops new
submissions, the calls in flight are allowed to finish (a Python thread cannot be
killed; waiting means no call outlives the run), and the error is raised. With it, the
failed node's dependents are skipped and everything else still runs. A dynamic run
follows the plain body instead: calls made after the failed one are held back (the
plain function would not have made them), `wait` on a failed (or skipped) node raises
its error where the body needs the value (calls the body makes after that run as usual:
it handled the error), `wait` on a held call starts it, and `finish` raises the first
failure, in call order, that the body never saw, as the plain function would have raised
it at the call.

Any failure reaches the caller as an `XCSError` naming the node: executors deliver
`NodeExecutionError`s, and anything else they deliver (a cancelled Dask future) is
wrapped. Only `BaseException`s that are not `Exception`s (`KeyboardInterrupt`) pass
through as they are, and they stop the run even with `return_partial_results`.

**Timeouts.** The loop waits on the completion queue no longer than the graph deadline or
the oldest running node's deadline; a completion taken after the graph deadline counts as
not finished. Each submitted call gets `stop_at`, the earlier of the two deadlines, so its
retries stop there too. The inline executor cannot be interrupted, so there a slow node
is failed when it returns late, and nothing else starts once the deadline has passed
(`"auto"` therefore picks threads when a deadline is set). If the run is already failing
when the deadline passes, the failure is raised rather than the timeout. Nodes still
running at a deadline cannot be stopped: their results are dropped when they arrive.

**Per-call options.** A dynamic run's options are read once, as it starts: the
scheduler and executor, `max_workers` (the run's capacity), the graph deadline, what it
returns. A call the body made inside an `execution_options(...)` or `track_usage()`
block comes with a `CallScope` (`add(node, scope)`): it runs as a `ScopedCall`, with the
scope's retries, hooks and meters, and the scope's `node_timeout_seconds` is its node
timeout (a scope with one makes the run timed from then on, so no call of it runs on the
loop's thread).
"""

from __future__ import annotations

import dataclasses
import heapq
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from queue import Empty, SimpleQueue
from typing import Any

from .._errors import ExecutionError, ExecutionTimeoutError, NodeExecutionError, XCSError
from .._options import ExecutionOptions, hook_calls, node_hook_calls
from ._async_loop import blocking_loop_error, on_background_loop
from ._node_call import CallScope, NodeCall, thread_name
from ._plan import ExecutionPlan, PlanNode
from ._pool import shared_pool
from ._result import ExecutionResult, ExecutionStats
from ._starter import watch

__all__ = [
    "DEFAULT_MAX_WORKERS",
    "as_xcs_error",
    "count_live",
    "EngineStatus",
    "Run",
    "engine_status",
    "forget_live",
    "node_timeout_error",
    "run_plan",
    "trace_path",
]

DEFAULT_MAX_WORKERS = 512  # I/O-bound calls: wide is cheap; this only bounds runaway graphs
_PENDING = object()
_SKIPPED = -(1 << 40)
_EMPTY = ExecutionPlan([])
_PATH_IN_MESSAGE = 6  # a node's ancestors listed in its error message, at most


class _GraphTimeout(Exception):
    pass


class Run:
    """The state of one execution of the loop; see the module docstring."""

    # slots: a jitted call builds a Run each time, and 30 stores into a growing
    # instance dict cost more than the rest of its setup
    __slots__ = (
        "__weakref__", "_ref", "barrier", "capacity", "count", "deadline", "done",
        "dynamic", "errors", "executor", "expired", "failed_at", "failures", "finished",
        "first_error", "held", "here", "inputs", "key", "lock", "node_hooks", "node_timeout",
        "nodes", "options", "partial", "peak", "plan", "ready", "remaining", "results",
        "run_here", "running", "scheduler", "scopes", "seen", "skipped", "start", "successors",
        "timed",
    )  # fmt: skip

    def __init__(
        self,
        options: ExecutionOptions,
        executor: Any,
        *,
        scheduler: str,
        plan: ExecutionPlan = _EMPTY,
        inputs: Mapping[str, Any] | None = None,
        barrier: bool = False,
        dynamic: bool = False,
    ):
        self.options = options
        self.executor = executor
        self.scheduler = scheduler
        self.plan = plan
        self.inputs = inputs if inputs is not None else {}
        self.nodes: list[PlanNode] = list(plan.nodes)
        n = len(self.nodes)
        self.barrier = barrier
        if n:
            self.successors: list[Sequence[int]] = list(plan.successors)
            self.remaining = list(plan.indegree)
            big = n + 2
            self.key = (
                [w * big - r for w, r in zip(plan.wave, plan.rank, strict=True)]
                if barrier
                else [-r for r in plan.rank]
            )
            self.ready = [(self.key[i], i) for i in plan.roots]
            heapq.heapify(self.ready)
        else:  # a dynamic run: its nodes come with `add`
            self.successors, self.remaining, self.key, self.ready = [], [], [], []
        self.results: list[Any] = [_PENDING] * n
        self.errors: dict[int, XCSError] = {}  # failed and skipped nodes
        self.capacity = min(
            options.max_workers or DEFAULT_MAX_WORKERS,
            getattr(executor, "capacity", None) or DEFAULT_MAX_WORKERS,
        )
        self.done: SimpleQueue[tuple[int, bool, Any]] = SimpleQueue()
        self.running: dict[int, float] = {}  # index -> submit time, oldest first
        self.start = time.perf_counter()
        timeout = options.timeout_seconds
        self.deadline = self.start + timeout if timeout else None
        self.node_timeout = options.node_timeout_seconds
        self.dynamic = dynamic
        self.partial = options.return_partial_results or dynamic
        self.failures: dict[str, XCSError] = {}
        self.skipped: list[str] = []
        self.first_error: BaseException | None = None
        self.expired: ExecutionTimeoutError | None = None
        self.finished = self.peak = self.count = 0
        self.here = 0  # calls run on the loop's own thread ("A lone call")
        self.lock = threading.RLock() if dynamic else None
        # a plan on an executor that runs every call on the caller's thread runs its
        # nodes on this one: a Timeline's records take its name once per run, not per node
        one_thread = not dynamic and getattr(executor, "on_caller_thread", False)
        self.node_hooks = node_hook_calls(options, thread=thread_name() if one_thread else None)
        self.seen: set[int] = set()  # ids of errors a dynamic body was handed
        self.failed_at: int | None = None  # dynamic: the earliest call that failed
        self.held: set[int] = set()  # dynamic: calls made after it, not started
        # dynamic: index -> the `CallScope` of a call the body made inside an options or
        # usage block ("Per-call options"); None while there is none
        self.scopes: dict[int, CallScope] | None = None
        # runs a call on the loop's own thread ("A lone call"); not under a deadline: a
        # call running there cannot be interrupted
        self.timed = timed = self.deadline is not None or self.node_timeout is not None
        self.run_here = None if timed else getattr(executor, "run_here", None)
        self._ref = count_live(self)
        reserve = getattr(executor, "reserve", None)
        if reserve is not None and n > 1:
            reserve(min(plan.thread_width, self.capacity))

    # --- the loop ------------------------------------------------------------------------

    def pump(self, until: int | None = None, block: bool = True) -> None:
        """Run the loop until node `until` finished (`None`: every node), or, with
        `block=False`, until nothing more can happen without waiting."""
        nodes, successors, key, results = self.nodes, self.successors, self.key, self.results
        remaining, ready, running, done = self.remaining, self.ready, self.running, self.done
        options, inputs, executor = self.options, self.inputs, self.executor
        capacity, barrier, partial = self.capacity, self.barrier, self.partial
        wave = self.plan.wave
        submit = executor.submit
        submit_async = getattr(executor, "submit_async", None)
        deadline, node_timeout, timed = self.deadline, self.node_timeout, self.timed
        scopes = self.scopes  # calls made in an options block of the body: their own
        run_here = self.run_here if block else None  # see "A lone call" above
        finished, peak, count = self.finished, self.peak, self.count
        first_error, failed_at = self.first_error, self.failed_at
        node_hooks, n = self.node_hooks, len(nodes)  # nodes are added only between pumps
        try:
            while True:
                while ready and first_error is None and len(running) < capacity:
                    if barrier and running and wave[ready[0][1]] != wave[next(iter(running))]:
                        break
                    i = heapq.heappop(ready)[1]
                    if failed_at is not None and i > failed_at and i != until:
                        self.held.add(i)  # the plain body would have stopped at the failure
                        continue
                    node = nodes[i]
                    try:
                        args, kwargs = node.bind(results, inputs)
                    except Exception as exc:  # noqa: BLE001 - a bad mapping or projection
                        done.put((i, False, exc))  # fails this node before it runs
                        running[i] = 0.0
                        continue
                    if scopes is None or i not in scopes:
                        call = NodeCall(
                            node.node_id, node.name, node.operator, args, kwargs, options,
                            node.is_async, node_hooks,
                        )  # fmt: skip
                    else:
                        call = scopes[i].call(
                            node.node_id, node.name, node.operator, args, kwargs, node.is_async
                        )
                    if timed:
                        now = time.perf_counter()
                        running[i] = now
                        limit = node_timeout if scopes is None else _limit(i, scopes, node_timeout)
                        call.stop_at = _stop_at(now, deadline, limit)
                    else:
                        running[i] = 0.0
                    count += 1
                    if node.is_async and submit_async is not None:
                        submit_async(i, call, done)
                    elif run_here is not None and not ready and len(running) == 1:
                        self.here += 1
                        if self.lock is None:
                            run_here(i, call, done)  # the only call: this thread would wait
                            continue
                        # A dynamic run: the call runs without the run's lock, as in
                        # `_run_alone`, so a thread the body handed its context to can add
                        # a call meanwhile (the two may need each other). The loop's state
                        # is saved first and read back after: that thread may pump.
                        self.finished, self.peak, self.count = finished, peak, count
                        self.first_error = first_error
                        self.lock.release()
                        try:
                            run_here(i, call, done)
                        finally:
                            self.lock.acquire()
                        finished, peak, count = self.finished, self.peak, self.count
                        first_error, failed_at = self.first_error, self.failed_at
                        n, scopes, timed = len(nodes), self.scopes, self.timed
                    else:
                        submit(i, call, done)
                if len(running) > peak:
                    peak = len(running)
                if until is None:
                    if finished >= n:
                        return
                elif results[until] is not _PENDING or until in self.errors:
                    return
                if not running:
                    return
                if not block:
                    try:
                        i, ok, value = done.get_nowait()
                    except Empty:
                        return
                elif timed:
                    i, ok, value = _next(done, running, deadline, node_timeout, nodes, scopes)
                else:
                    i, ok, value = done.get()
                if deadline is not None and i in running and time.perf_counter() > deadline:
                    raise _GraphTimeout  # it came back late: the inline executor's only check
                if i not in running:  # a late answer from a node that already timed out
                    continue
                started = running.pop(i)
                finished += 1
                limit = node_timeout if scopes is None else _limit(i, scopes, node_timeout)
                if ok and limit and time.perf_counter() - started > limit:
                    ok, value = False, node_timeout_error(nodes[i], limit)
                if ok:
                    results[i] = value
                    for s in successors[i]:
                        remaining[s] -= 1
                        if remaining[s] == 0:
                            heapq.heappush(ready, (key[s], s))
                elif not isinstance(value, Exception):  # KeyboardInterrupt and friends
                    first_error = first_error or value
                elif partial:
                    error = self._trace_path(as_xcs_error(value, nodes[i]), i)
                    self.failures[nodes[i].node_id] = error
                    self.errors[i] = error
                    finished += self._skip_dependents(i, error)
                    if self.dynamic and (failed_at is None or i < failed_at):
                        self.failed_at = failed_at = i
                elif first_error is None:
                    first_error = self._trace_path(as_xcs_error(value, nodes[i]), i)
        except _GraphTimeout:
            if first_error is None:
                self._expire()  # raises, or records the timeout as partial results
                finished = self.finished
        finally:
            self.finished, self.peak, self.count = finished, peak, count
            self.first_error = first_error

    def _expire(self) -> None:
        """The graph deadline passed: raise the timeout, or record it (partial results)."""
        error = _graph_timeout_error(self)
        if not self.partial or self.dynamic:
            self.expired = error
            raise error from None
        for i in self.running:
            self.failures[self.nodes[i].node_id] = error
        accounted = set(self.failures) | set(self.skipped)  # failed, or skipped by one
        self.skipped.extend(
            node.node_id
            for node, r in zip(self.nodes, self.results, strict=True)
            if r is _PENDING and node.node_id not in accounted
        )
        self.finished = len(self.nodes)
        self.running.clear()

    def _trace_path(self, error: XCSError, failed: int) -> XCSError:
        return trace_path(error, self.nodes, failed)

    def _skip_dependents(self, failed: int, error: XCSError) -> int:
        """Mark every transitive dependent of `failed` skipped; return how many were new."""
        remaining, successors = self.remaining, self.successors
        stack, seen = list(successors[failed]), set()
        while stack:
            s = stack.pop()
            if remaining[s] < 0:  # already skipped (a parent finishing since only lowered it)
                continue
            seen.add(s)
            remaining[s] = _SKIPPED  # can never become ready
            self.errors[s] = error
            stack.extend(successors[s])
        self.skipped.extend(self.nodes[s].node_id for s in sorted(seen))
        return len(seen)

    # --- a dynamic run: nodes added while the body runs ------------------------------------

    @classmethod
    def dynamic_run(cls, options: ExecutionOptions, executor: Any, scheduler: str) -> Run:
        """An empty run that a jitted body adds its leaf calls to."""
        return cls(options, executor, scheduler=scheduler, dynamic=True)

    def adopt(self, nodes: Sequence[PlanNode], results: Sequence[Any],
              errors: Mapping[int, XCSError], seen: set[int], ran: int,
              running: Sequence[int] = ()) -> None:  # fmt: skip
        """Take in calls a jitted body already made and ran itself (`_jit/_serial`), as
        finished nodes: `results[i]` is node `i`'s output, or its error is `errors[i]`
        (`seen`: ids of the errors the body was handed; `ran`: how many of the calls ran,
        the others depended on a failed one). Calls added later depend on them as on any
        finished node; one failed and not seen holds later calls back. `running`: calls
        still running on the thread that made them, which puts `(i, ok, value)` on
        `done` when it returns, as an executor would."""
        for i, node in enumerate(nodes):
            self.nodes.append(node)
            self.successors.append([])
            self.key.append(i)
            self.remaining.append(0)
            if i in running:
                self.results.append(_PENDING)
                self.running[i] = 0.0
                continue
            error = errors.get(i)
            self.results.append(_PENDING if error is not None else results[i])
            if error is None:
                continue
            self.errors[i] = error
            if id(error) not in seen and self.failed_at is None:
                self.failed_at = i
        self.seen |= seen
        self.finished = len(nodes) - len(running)
        self.count = self.here = ran
        self.peak = max(min(ran, 1), len(running))

    def add(self, node: PlanNode, scope: CallScope | None = None) -> int:
        """Add `node` (its `deps` are earlier nodes of this run); start it if it is ready.
        `scope`: the options and meters it runs under, when not the run's (the body made
        it inside an `execution_options` or `track_usage()` block).

        A node that depends on a failed one never runs: it fails with that error.
        """
        with self.lock:  # type: ignore[union-attr]
            if self.expired is not None:
                raise self.expired
            i = len(self.nodes)
            if scope is not None:
                self._scoped(i, scope)
            self.nodes.append(node)
            self.successors.append([])
            self.results.append(_PENDING)
            self.key.append(i)  # no rank is known: first in, first out
            waiting, failed = 0, None
            for d in node.deps:
                if d in self.errors:
                    failed = self.errors[d]
                    break
                if self.results[d] is _PENDING:
                    self.successors[d].append(i)  # type: ignore[attr-defined]
                    waiting += 1
            if failed is not None:
                self.remaining.append(_SKIPPED)
                self.errors[i] = failed
                self.skipped.append(node.node_id)
                self.finished += 1
            else:
                self.remaining.append(waiting)
                if waiting == 0:
                    heapq.heappush(self.ready, (i, i))
            if self._alone():  # it waits for the body: see "A lone call" above
                if self.ready[0][1] == i:
                    watch(self, i)
            elif waiting or self.failed_at is not None or len(self.running) >= self.capacity:
                self.pump(block=False)  # absorb finished calls: they may release this one
            elif not self.ready or self.ready[0][1] != i or not self._start_now():
                self.pump(block=False)
        return i

    def _scoped(self, i: int, scope: CallScope) -> None:
        """Node `i` runs under `scope`; a node timeout of its own makes the run timed from
        now on (its calls go to workers: one on the loop's thread cannot be interrupted)."""
        if self.scopes is None:
            self.scopes = {}
        self.scopes[i] = scope
        if scope.timeout is not None and not self.timed:
            self.timed, self.run_here = True, None

    def _alone(self) -> bool:
        """Nothing in flight and one call ready, which the loop can run on its own thread:
        it waits for the body (see "A lone call" above)."""
        return (
            not self.running
            and len(self.ready) == 1
            and self.run_here is not None
            and self.failed_at is None
            and not self.nodes[self.ready[0][1]].is_async
        )

    def start_alone(self, i: int) -> bool:
        """The starter's look at lone call `i` after its grace: hand it to the executor if
        it is still waiting for the body. False when the body holds the loop right now."""
        if i in self.running or self.results[i] is not _PENDING or i in self.errors:
            return True  # started, finished or skipped: nothing to do
        if not self.lock.acquire(blocking=False):  # type: ignore[union-attr]
            return False
        try:
            if i not in self.running and self.ready and self.ready[0][1] == i:
                self.pump(block=False)
        finally:
            self.lock.release()  # type: ignore[union-attr]
        return True

    def _call_of(self, i: int, node: PlanNode, args: Any, kwargs: Any) -> NodeCall:
        """The call that runs `node` in this run (`pump` builds it inline: its loop is the
        plan runs' per-node path, where a method call per node shows)."""
        scopes = self.scopes
        if scopes is not None and (scope := scopes.get(i)) is not None:
            return scope.call(node.node_id, node.name, node.operator, args, kwargs, node.is_async)
        return NodeCall(
            node.node_id, node.name, node.operator, args, kwargs, self.options, node.is_async,
            self.node_hooks,
        )  # fmt: skip

    def _start_now(self) -> bool:
        """Submit the ready call just added, without a turn of the loop (the common case
        of a dynamic call: inputs known, a worker free, nothing failed); False when it
        must go through `pump` (a deadline to watch, or a binding error)."""
        if self.timed:
            return False
        i = heapq.heappop(self.ready)[1]
        node = self.nodes[i]
        args, kwargs = node.bind(self.results, self.inputs)
        call = self._call_of(i, node, args, kwargs)
        self.running[i] = 0.0
        self.count += 1
        if len(self.running) > self.peak:
            self.peak = len(self.running)
        submit_async = getattr(self.executor, "submit_async", None)
        if node.is_async and submit_async is not None:
            submit_async(i, call, self.done)
        else:
            self.executor.submit(i, call, self.done)
        return True

    def wait(self, i: int) -> Any:
        """Node `i`'s output, pumping the loop until it is there; its error if it failed."""
        if self.results[i] is _PENDING:
            with self.lock:  # type: ignore[union-attr]
                if self.expired is not None:
                    raise self.expired
                if i in self.held:  # the body went on past a failure and needs this call
                    self.held.discard(i)
                    heapq.heappush(self.ready, (self.key[i], i))
                if not self._run_alone(i):
                    self.pump(until=i)
                if self.first_error is not None:
                    raise self.first_error
        value = self.results[i]
        if value is _PENDING:
            error = self.errors[i]
            self.seen.add(id(error))
            self.failed_at = None  # the body handles it from here: its next calls run
            raise error
        return value

    def _run_alone(self, i: int) -> bool:
        """`pump(until=i)` for the commonest wait of a width-1 body, in a few steps: `i` is
        the only call that can run (nothing in flight, nothing else ready, nothing
        depending on it yet) and runs here ("A lone call"). True when it succeeded; False
        when `pump` must do it, or finish it (a failure, taken from the queue by `pump`)."""
        ready = self.ready
        if (
            self.run_here is None
            or self.running
            or len(ready) != 1
            or ready[0][1] != i
            or self.successors[i]
            or self.first_error is not None
            or self.failed_at is not None
            or self.nodes[i].is_async
        ):
            return False
        node = self.nodes[i]
        try:
            args, kwargs = node.bind(self.results, self.inputs)
        except XCSError:
            return False  # `pump` fails the node with it
        ready.pop()
        call = self._call_of(i, node, args, kwargs)  # not async: checked above
        self.count += 1
        self.here += 1
        self.peak = self.peak or 1
        self.running[i] = 0.0
        done, lock, added = self.done, self.lock, len(self.nodes)
        # The call runs without the run's lock: a thread the body handed its context to
        # may make a call meanwhile (it goes to a worker: this one is in flight), and the
        # two may need each other (a barrier, a queue) as they would in plain Python.
        lock.release()  # type: ignore[union-attr]
        try:
            self.run_here(i, call, done)
        finally:
            lock.acquire()  # type: ignore[union-attr]
        if len(self.nodes) != added or len(self.running) != 1 or i not in self.running:
            return False  # others ran meanwhile: `pump` takes the outcome in (or did)
        outcome = done.get()  # the only item: nothing else was started
        if not outcome[1]:
            done.put(outcome)  # the only item: `pump` takes it in as any failure
            return False
        del self.running[i]
        self.finished += 1
        self.results[i] = outcome[2]
        return True

    def is_done(self, i: int) -> bool:
        return self.results[i] is not _PENDING

    def finish(self) -> BaseException | None:
        """Pump until every node finished; the first failure the body never saw, if any."""
        with self.lock:  # type: ignore[union-attr]
            if self.expired is None:
                if len(self.ready) == 1:  # the body's last call, made alone and never used
                    self._run_alone(self.ready[0][1])
                self.pump()
            if self.first_error is not None:
                return self.first_error
            if self.expired is not None:
                return None if id(self.expired) in self.seen else self.expired
            for i in sorted(self.errors):
                if id(self.errors[i]) not in self.seen:
                    return self.errors[i]
            return None

    def close(self) -> None:
        """The run has returned or raised: `engine_status` stops counting it (calls left
        running past a deadline still show as busy workers)."""
        forget_live(self._ref)

    def stats(self) -> ExecutionStats:
        return ExecutionStats(
            self.scheduler, time.perf_counter() - self.start, self.count, self.peak
        )


# --- introspection ------------------------------------------------------------------------

# weak references to the runs not closed yet (a `WeakSet` costs a few µs more per run)
_live: set[weakref.ref[Any]] = set()


def count_live(run: Any) -> weakref.ref[Any]:
    """Count `run` in `engine_status` until `_live.discard(ref)` (`forget_live`) or until
    it is collected. `run` has `running`, `ready` and `held` (sized) and `peak`, as a
    `Run` has; a jit serial run, which makes its calls without one, has them too."""
    ref = weakref.ref(run, _live.discard)
    _live.add(ref)
    return ref


def forget_live(ref: weakref.ref[Any]) -> None:
    _live.discard(ref)


@dataclasses.dataclass(frozen=True)
class EngineStatus:
    """A read-only snapshot of the engine, for dashboards and debugging.

    **Attributes:**

    - `runs`: runs with calls queued or in flight (graphs, jitted calls, batches).
    - `queued`: calls whose inputs are ready but that wait for a worker (`max_workers`),
      were held back after a failure, or wait for the jitted body that made them alone
      (they run on its thread when it needs them).
    - `running`: calls in flight now, wherever they run (a jitted call in a serial run
      makes its calls on its own thread, without an engine run: they count too).
    - `peak`: the most calls one of those runs has had in flight at once so far.
    - `workers`, `busy_workers`: threads of the shared worker pool, and those running a
      call now (`async def` calls run on the event loop and need none).
    """

    runs: int
    queued: int
    running: int
    peak: int
    workers: int
    busy_workers: int


def engine_status() -> EngineStatus:
    """What the engine is doing right now; see `EngineStatus`. Reading it changes nothing.

    !!! example
        ```python
        status = xcs.engine_status()
        print(status.running, status.queued, status.workers)
        ```
    """
    runs = [run for ref in list(_live) if (run := ref()) is not None]
    active = [run for run in runs if run.running or run.ready or run.held]
    pool = shared_pool()
    return EngineStatus(
        runs=len(active),
        queued=sum(len(run.ready) + len(run.held) for run in active),
        running=sum(len(run.running) for run in active),
        peak=max((max(run.peak, len(run.running)) for run in active), default=0),
        workers=pool.size(),
        busy_workers=pool.busy(),
    )


def _stop_at(now: float, deadline: float | None, node_timeout: float | None) -> float:
    stop = deadline if deadline is not None else float("inf")
    if node_timeout:
        stop = min(stop, now + node_timeout)
    return stop


# --- running a plan -------------------------------------------------------------------------


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
    run = Run(
        options, executor, scheduler=scheduler_name, plan=plan, inputs=inputs, barrier=barrier
    )
    for hook in hook_calls(options, "on_graph_start"):
        hook(num_nodes=len(plan), scheduler=scheduler_name)
    failed = True
    try:
        run.pump()
        if run.first_error is not None:
            raise run.first_error
        failed = bool(run.failures)
    finally:
        run.close()
        seconds = time.perf_counter() - run.start
        for hook in hook_calls(options, "on_graph_end"):
            hook(num_nodes=len(plan), seconds=seconds, failed=failed)
    stats = ExecutionStats(scheduler_name, seconds, run.count, run.peak)
    return ExecutionResult(
        _outputs(run, options, bool(run.failures or run.skipped)),
        plan=plan,
        stats=stats,
        failures=run.failures,
        skipped=run.skipped,
        by_index=run.results,
    )


def _outputs(run: Run, options: ExecutionOptions, partial: bool) -> dict[str, Any]:
    nodes, results = run.nodes, run.results
    if partial or options.include_intermediates:
        return {nodes[i].node_id: r for i, r in enumerate(results) if r is not _PENDING}
    return {nodes[i].node_id: results[i] for i in run.plan.sinks}


def _limit(i: int, scopes: dict[int, Any], node_timeout: float | None) -> float | None:
    """Node `i`'s node timeout: its scope's, if the body made it in an options block."""
    scope = scopes.get(i)
    return node_timeout if scope is None else scope.timeout


def _next(
    done: SimpleQueue,
    running: dict[int, float],
    deadline: float | None,
    node_timeout: float | None,
    nodes: Any,
    scopes: dict[int, Any] | None = None,
) -> tuple[int, bool, Any]:
    now = time.perf_counter()
    if deadline is not None and now >= deadline and done.empty():
        raise _GraphTimeout
    limit = deadline if deadline is not None else float("inf")
    if scopes is None:  # one node timeout for all: the oldest call's comes first
        first, first_start = next(iter(running.items()))
        timeout = node_timeout
        node_limit = first_start + timeout if timeout else float("inf")
    else:  # calls with timeouts of their own: the earliest limit of any call running
        node_limit, first, timeout = float("inf"), -1, None
        for i, started in running.items():
            t = _limit(i, scopes, node_timeout)
            if t and started + t < node_limit:
                node_limit, first, timeout = started + t, i, t
    until = min(limit, node_limit)
    if until == float("inf"):  # none of the calls running has a limit of its own
        return done.get()
    try:
        return done.get(timeout=max(0.0, until - now))
    except Empty:
        if node_limit <= limit:
            return first, False, node_timeout_error(nodes[first], timeout)
        raise _GraphTimeout from None


def trace_path(error: XCSError, nodes: Sequence[PlanNode], failed: int) -> XCSError:
    """Give node `failed`'s error the ids of the nodes that led to it (its ancestors that
    ran, in the order they were added), once; short paths also go into the message."""
    if not isinstance(error, ExecutionError) or error.path is not None:
        return error
    if error.node_id != nodes[failed].node_id:
        return error  # a nested run's error: it names, and traced, its own node
    seen, stack = set(), list(nodes[failed].deps)
    while stack:
        d = stack.pop()
        if d not in seen:
            seen.add(d)
            stack.extend(nodes[d].deps)
    error.path = [nodes[d].node_id for d in sorted(seen)]
    if error.path and len(error.path) <= _PATH_IN_MESSAGE and error.args:
        error.args = (f"{error.args[0]}\n  after: {' -> '.join(error.path)}", *error.args[1:])
    return error


def node_timeout_error(node: Any, seconds: float | None) -> ExecutionTimeoutError:
    return ExecutionTimeoutError(
        f"node {node.node_id!r} ({node.name}) did not finish within node_timeout_seconds="
        f"{seconds}; raise the limit or make the call faster",
        running=[node.node_id],
        node_id=node.node_id,
        operator_name=node.name,
    )


def _graph_timeout_error(run: Run) -> ExecutionTimeoutError:
    nodes = run.nodes
    names = [f"{nodes[i].node_id} ({nodes[i].name})" for i in run.running]
    what = "jitted call" if run.dynamic else "execution"
    waiting = len(nodes) - run.finished - len(run.running)
    return ExecutionTimeoutError(
        f"{what} did not finish within timeout_seconds={run.options.timeout_seconds}; "
        f"still running: {', '.join(names) or 'none'}; {waiting} node(s) not started",
        running=[nodes[i].node_id for i in run.running],
    )


def as_xcs_error(value: BaseException, node: Any) -> XCSError:
    """Executors deliver `NodeExecutionError`s; anything else (a cancelled Dask future,
    an executor's own failure) is wrapped so the caller still learns which node it was."""
    if isinstance(value, XCSError):
        return value
    message = f"node {node.node_id!r} ({node.name}) failed: {type(value).__name__}: {value}"
    if isinstance(value, TimeoutError):
        error: XCSError = ExecutionTimeoutError(
            message, node_id=node.node_id, operator_name=node.name
        )
    else:  # also of the original's type, as a node's own failure is (`wrapping`)
        error = NodeExecutionError.wrapping(
            value, message, node_id=node.node_id, operator_name=node.name
        )
    error.__cause__ = value
    return error
