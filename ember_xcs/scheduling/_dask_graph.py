"""The `"dask"` scheduler's fast path: a whole plan handed to Dask as one graph of tasks.

Submitting each call as its inputs become ready (`DaskExecutor` under the engine loop)
costs a client round trip per node: the loop waits for Dask to report a node done before
it submits the next. Here every node becomes a task whose arguments are the keys of the
nodes it depends on, the whole graph goes to the scheduler in one `Client.get`, and Dask's
own scheduler runs the dataflow, moving outputs between workers without the client. Our
semantics sit on top:

- **Retries** happen inside the task (`NodeCall`: backoff, `retry_on`, the deadline bound
  and the failure hooks, exactly as under the engine); Dask's own `retries` would re-run a
  task at once, without those.
- **Failure.** A node that fails raises `_NodeFailed`, so Dask marks its dependents erred
  and never runs them: they are the skipped nodes. Without `return_partial_results` the
  first failure stops the run: in-process, tasks that have not started yet return without
  calling anything and the run waits for the calls in flight (as the engine does);
  on a cluster, the failing task sends an event on the run's stop topic and the client
  cancels the remaining tasks at once (a call already running on a worker finishes there
  and its output is dropped). Dask's `wait` cannot return at the first exception, which
  is why the failure is announced this way.
- **Timeouts.** A node timeout is enforced in the task (the call runs on a thread of the
  worker process's shared pool and the task gives up on it at the deadline); the graph deadline by
  the client, which then stops or cancels what is left, as on failure.
- **Hooks.** In-process, the worker runs the engine's own `NodeCall`, so hooks fire live
  on the worker thread. On a cluster each event is sent live through Dask's event topics
  (`Worker.log_event` / `Client.subscribe_topic`) and delivered here as it arrives; the
  run returns once every node's last event has arrived.
- **Where a run's state lives.** In-process (`inproc://` scheduler), a task carries only
  the run's token and its node's index; the operator, the inputs and the options are read
  from this process's table of runs, so nothing is pickled and operators need not be
  picklable. On a cluster, each node's operator and binding are pickled once per plan
  (cached), and one that cannot be pickled is an `ExecutionError` naming the node.

`max_workers` has no Dask counterpart (a cap per graph, critical path first), so a run
that sets it goes through the engine loop and `DaskExecutor` instead.
"""

from __future__ import annotations

import dataclasses
import pickle
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from queue import Empty, SimpleQueue
from typing import Any

import cloudpickle

from .._errors import ExecutionError, ExecutionTimeoutError, XCSError
from .._options import ExecutionOptions, hook_calls, node_hook_calls
from ._dask import EventRelay, TopicHooks, call_outcome, dask_client, picklable_error
from ._engine import as_xcs_error, node_timeout_error, trace_path
from ._node_call import NodeCall
from ._plan import ExecutionPlan, PlanNode
from ._pool import shared_pool
from ._result import ExecutionResult, ExecutionStats

__all__ = ["run_on_dask"]

_PENDING = object()


class _NodeFailed(Exception):
    """Raised by a task whose node failed (or did not start: the run had stopped), so
    Dask errs its dependents; carries the node's index and, from a cluster, its error."""

    def __init__(self, index: int, error: bytes | None = None):
        super().__init__(index)
        self.index, self.error = index, error

    def __reduce__(self) -> tuple[Any, ...]:
        return _NodeFailed, (self.index, self.error)

    def __str__(self) -> str:  # what Dask's worker log shows: no inputs, no payload
        return f"ember_xcs node {self.index} failed"


# --- in-process runs: tasks read their run from this table --------------------------------


@dataclasses.dataclass(eq=False)
class _LocalRun:
    plan: ExecutionPlan
    inputs: Mapping[str, Any]
    options: ExecutionOptions
    node_hooks: tuple[tuple[Any, ...], ...]
    deadline: float | None
    stopped: bool = False
    errors: dict[int, XCSError] = dataclasses.field(default_factory=dict)
    started: set[int] = dataclasses.field(default_factory=set)
    running: int = 0
    peak: int = 0
    idle: threading.Condition = dataclasses.field(default_factory=threading.Condition)


_local_runs: dict[str, _LocalRun] = {}


def _run_local(token: str, index: int, *deps: Any) -> Any:
    run = _local_runs.get(token)
    if run is None or run.stopped:  # the run failed or timed out before this call began
        raise _NodeFailed(index)
    with run.idle:
        run.running += 1
        run.peak = max(run.peak, run.running)
        run.started.add(index)
    try:
        node = run.plan.nodes[index]
        ok, value = _call_node(node, deps, run.inputs, run.options, run.node_hooks, run.deadline)
    finally:
        with run.idle:
            run.running -= 1
            run.idle.notify_all()
    if ok:
        return value
    run.errors[index] = value
    if not run.options.return_partial_results:
        run.stopped = True  # the first failure ends the run: nothing else starts
    raise _NodeFailed(index)


# --- cluster runs: tasks carry their node, pickled once per plan --------------------------


def _run_shipped(
    payload: bytes, inputs: Any, deadline_wall: float | None, stop_topic: str | None, *deps: Any
) -> Any:
    index, node, options, topic = pickle.loads(payload)
    if topic is not None:
        options = options.replace(hooks=(TopicHooks(topic),))
    hooks = node_hook_calls(options)
    deadline = None
    if deadline_wall is not None:  # wall clocks agree across processes; perf_counter does not
        deadline = time.perf_counter() + (deadline_wall - time.time())
    ok, value = _call_node(node, deps, inputs, options, hooks, deadline)
    if ok:
        return value
    if stop_topic is not None:  # tell the client now, so it cancels the rest of the run
        from distributed import get_worker

        get_worker().log_event(stop_topic, index)
    raise _NodeFailed(index, _pickled_error(value))


def _pickled_error(error: BaseException) -> bytes:
    cause = error.__cause__
    return pickle.dumps((picklable_error(error), picklable_error(cause) if cause else None))


def _unpickled_error(payload: bytes) -> BaseException:
    error, cause = pickle.loads(payload)
    if cause is not None:
        error.__cause__ = cause
    return error


# --- running one node inside a task ---------------------------------------------------------


def _call_node(
    node: PlanNode,
    deps: tuple[Any, ...],
    inputs: Mapping[str, Any],
    options: ExecutionOptions,
    node_hooks: tuple[tuple[Any, ...], ...],
    deadline: float | None,
) -> tuple[bool, Any]:
    """`(True, output)` or `(False, the node-naming error)`; never raises."""
    try:
        args, kwargs = node.bind(dict(zip(dict.fromkeys(node.deps), deps, strict=True)), inputs)
    except XCSError as exc:  # a bad field mapping fails this node before it runs
        return False, exc
    call = NodeCall(
        node.node_id, node.name, node.operator, args, kwargs, options, node.is_async, node_hooks
    )
    limit = options.node_timeout_seconds
    if deadline is not None or limit:
        call.stop_at = min(
            deadline if deadline is not None else float("inf"),
            time.perf_counter() + limit if limit else float("inf"),
        )
    try:
        if not limit:
            return True, call()
        return True, _within(call, limit)
    except FutureTimeout:
        return False, node_timeout_error(node, limit)
    except Exception as exc:  # noqa: BLE001 - NodeCall already named the node
        return False, as_xcs_error(exc, node)


def _within(call: NodeCall, seconds: float) -> Any:
    """Run `call` on a thread of the shared worker pool and give up on it after `seconds`
    (it cannot be stopped: it finishes in the background and its output is dropped)."""
    box: SimpleQueue[tuple[bool, Any]] = SimpleQueue()
    shared_pool().submit(lambda: call_outcome(call), box.put)
    try:
        ok, value = box.get(timeout=seconds)
    except Empty:
        raise FutureTimeout from None
    if ok:
        return value
    raise value


# --- the client side ----------------------------------------------------------------------

# plan -> (the options they were pickled with, its nodes pickled), for cluster runs
_payloads: weakref.WeakKeyDictionary[ExecutionPlan, tuple[ExecutionOptions, list[bytes]]] = (
    weakref.WeakKeyDictionary()
)


def run_on_dask(
    plan: ExecutionPlan, inputs: Mapping[str, Any], options: ExecutionOptions
) -> ExecutionResult:
    """Run `plan` as one Dask graph; see the module docstring."""
    client, owned = dask_client(options)
    try:
        return _GraphRun(client, plan, inputs, options).run()
    finally:
        if owned:
            client.close()


class _GraphRun:
    def __init__(
        self, client: Any, plan: ExecutionPlan, inputs: Mapping[str, Any], options: ExecutionOptions
    ):
        self.client, self.plan, self.inputs, self.options = client, plan, inputs, options
        self.token = f"ember-xcs-{uuid.uuid4().hex}"
        self.in_process = str(client.scheduler.address).startswith("inproc://")
        self.start = time.perf_counter()
        timeout = options.timeout_seconds
        self.deadline = self.start + timeout if timeout else None
        n = len(plan.nodes)
        self.results: list[Any] = [_PENDING] * n  # fetched outputs (`by_index`)
        self.finished: set[int] = set()
        self.failures: dict[str, XCSError] = {}
        self.failed: set[int] = set()
        self.skipped: set[int] = set()
        self.local: _LocalRun | None = None
        self.events = EventRelay(options) if options.hooks and not self.in_process else None
        self.futures: list[Any] | None = None
        self.failure_seen: int | None = None  # a cluster task that failed (`_on_failure`)
        self.stop_topic: str | None = None
        self.stopping = threading.Lock()

    def run(self) -> ExecutionResult:
        plan, options = self.plan, self.options
        for hook in hook_calls(options, "on_graph_start"):
            hook(num_nodes=len(plan), scheduler="dask")
        failed = True
        futures: list[Any] = []
        try:
            try:
                futures = self._submit() if plan.nodes else []
                error = self._collect(futures)
                if error is not None:
                    raise error
            finally:
                self._stop(futures)
            failed = bool(self.failures)
            result = self._result(futures)
        finally:
            seconds = time.perf_counter() - self.start
            for hook in hook_calls(options, "on_graph_end"):
                hook(num_nodes=len(plan), seconds=seconds, failed=failed)
        return result

    # submitting ------------------------------------------------------------------------

    def _submit(self) -> list[Any]:
        plan, token = self.plan, self.token
        # Keys start with the operator's name: Dask groups tasks by that prefix and learns
        # each group's duration (a prefix per node id would leave every task "unknown")
        run = token.removeprefix("ember-xcs-")
        keys = [f"{node.name}-{run}-{i}" for i, node in enumerate(plan.nodes)]
        graph: dict[str, Any] = {}
        if self.in_process:
            self.local = _LocalRun(
                plan, self.inputs, self.options, node_hook_calls(self.options), self.deadline
            )
            _local_runs[token] = self.local
            for i, node in enumerate(plan.nodes):
                deps = [keys[d] for d in dict.fromkeys(node.deps)]
                graph[keys[i]] = (_run_local, token, i, *deps)
        else:
            inputs_key = f"inputs-{token}"
            graph[inputs_key] = (pickle.loads, _pickled_inputs(self.inputs))
            wall = time.time() + (self.deadline - self.start) if self.deadline else None
            topic = self.events.subscribe(self.client, token) if self.events else None
            payloads = self._payloads(topic)
            stop = None
            if not self.options.return_partial_results:
                stop = self.stop_topic = f"{token}-stop"
                self.client.subscribe_topic(stop, self._on_failure)
            for i, node in enumerate(plan.nodes):
                deps = [keys[d] for d in dict.fromkeys(node.deps)]
                graph[keys[i]] = (_run_shipped, payloads[i], inputs_key, wall, stop, *deps)
        futures = self.client.get(graph, keys, sync=False)
        with self.stopping:
            self.futures = futures
            if self.failure_seen is not None:
                self._cancel_rest()
        return futures

    def _on_failure(self, event: Any) -> None:
        """A cluster task failed (a run without partial results): cancel the rest now, not
        when Dask's wait for the whole graph returns. Runs on the client's event loop,
        where the client's blocking calls cannot be made."""
        with self.stopping:
            self.failure_seen = event[1]  # the failed node's index: its own error must arrive
            if self.futures is not None:
                threading.Thread(target=self._cancel_rest, daemon=True).start()

    def _cancel_rest(self) -> None:
        failed = self.futures[self.failure_seen] if self.futures else None
        pending = [f for f in self.futures or () if not f.done() and f is not failed]
        if pending:
            self.client.cancel(pending)

    def _payloads(self, topic: str | None) -> list[bytes]:
        """Each node pickled with the options its worker needs (cached per plan)."""
        shipped = self.options.replace(dask_client=None, hooks=(), progress=False)
        cached = _payloads.get(self.plan)
        if topic is None and cached is not None and cached[0] == shipped:
            return cached[1]
        out = []
        for i, node in enumerate(self.plan.nodes):
            try:
                out.append(cloudpickle.dumps((i, node, shipped, topic)))
            except Exception as exc:  # noqa: BLE001 - an operator the cluster cannot receive
                raise _unpicklable(node, exc) from exc
        if topic is None:
            _payloads[self.plan] = (shipped, out)
        return out

    # waiting -------------------------------------------------------------------------------

    def _collect(self, futures: list[Any]) -> BaseException | None:
        """Wait until every task is done; the error to raise, if the run must raise one.
        One wait on Dask's side for the whole graph, no callback per future (Dask's
        `wait` cannot return at the first exception: in-process, a failing task stops
        the run itself, so the tasks left return at once)."""
        from distributed import wait

        partial = self.options.return_partial_results
        # What to fetch: the sinks, unless every output is asked for (partial results,
        # `include_intermediates`, jit's replay). Even in-process, fetching an output
        # is a request to the worker per key.
        every = partial or self.options.include_intermediates
        wanted = list(range(len(futures))) if every else list(self.plan.sinks)
        timed_out = False
        if self.deadline is None:  # one round trip: wait for the outputs and fetch them
            values = self.client.gather([futures[i] for i in wanted], errors="skip")
            status = [f.status for f in futures]  # the rest finished before the sinks did
        else:
            try:
                with self.client.as_current():
                    wait(futures, timeout=self._time_left())
            except TimeoutError:
                timed_out = True
            status = [f.status for f in futures]  # later arrivals are past the deadline
            values = self.client.gather([futures[i] for i in wanted if status[i] == "finished"])
        fetched = iter(values)
        for i in wanted:
            if status[i] == "finished":
                self.results[i] = next(fetched)
        called = 0  # nodes whose call ran to its end (each sent its hooks a last event)
        first: BaseException | None = None
        for i, future in enumerate(futures):
            if status[i] == "finished":
                self.finished.add(i)
                called += 1
            elif status[i] == "error":
                error = self._error_of(i, future)
                if error is None:  # skipped: something it depends on failed
                    self.skipped.add(i)
                    continue
                if not isinstance(error, Exception):
                    return error
                if isinstance(error, ExecutionError) and not isinstance(
                    error, ExecutionTimeoutError
                ):
                    called += 1  # not a binding error or a node timeout: the call failed
                error = trace_path(error, self.plan.nodes, i)
                self.failures[self.plan.nodes[i].node_id] = error
                self.failed.add(i)
                first = first or error
        if self.failure_seen is not None and self.failure_seen in self.failed:
            first = self.failures[self.plan.nodes[self.failure_seen].node_id]  # what stopped it
        if first is None and not timed_out:  # cancelled, but not by this run: say so
            for i, future in enumerate(futures):
                if future.status == "cancelled":
                    first = as_xcs_error(self._exception(future), self.plan.nodes[i])
                    self.failures[self.plan.nodes[i].node_id] = first
                    self.failed.add(i)
        if first is not None and not partial:
            return first
        if timed_out:
            return self._expire()
        if self.events is not None:
            self.events.wait_for(called)
        return None

    def _time_left(self) -> float | None:
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.perf_counter())

    def _error_of(self, i: int, future: Any) -> BaseException | None:
        """Node `i`'s own error, or `None` when it was skipped for a failed dependency."""
        exc = self._exception(future)
        node = self.plan.nodes[i]
        if isinstance(exc, _NodeFailed):
            if exc.index != i:
                return None
            if exc.error is not None:
                return _unpickled_error(exc.error)
            local = self.local
            if local is not None and i in local.errors:
                return local.errors[i]
            return None  # it did not start: the run had already stopped
        if self.failure_seen is not None and i != self.failure_seen:
            # cancelled by this run once a node failed: Dask errs such a task's dependents
            # with no exception of their own (seen under load), which must not be reported
            # in place of the failure that stopped the run
            return None
        return as_xcs_error(exc, node)

    @staticmethod
    def _exception(future: Any) -> BaseException:
        try:
            return future.exception()
        except BaseException as err:  # noqa: BLE001 - a cancelled future raises here
            return err

    def _expire(self) -> BaseException | None:
        """The graph deadline passed: the timeout to raise, or recorded as partial results."""
        running = self._running()
        nodes = self.plan.nodes
        names = [f"{nodes[i].node_id} ({nodes[i].name})" for i in running]
        finished = len(self.finished) + len(self.failed)
        waiting = len(nodes) - finished - len(self.skipped) - len(running)
        error = ExecutionTimeoutError(
            f"execution did not finish within timeout_seconds={self.options.timeout_seconds}; "
            f"still running: {', '.join(names) or 'none'}; {waiting} node(s) not started",
            running=[nodes[i].node_id for i in running],
        )
        if not self.options.return_partial_results:
            return error
        for i in running:
            self.failures[nodes[i].node_id] = error
            self.failed.add(i)
        for i in range(len(nodes)):
            if i not in self.finished and i not in self.failed:
                self.skipped.add(i)
        return None

    def _running(self) -> list[int]:
        """Nodes in flight: started and not done (in-process, where starts are seen), or
        else every unfinished node whose inputs were all ready."""
        done = self.finished | self.failed | self.skipped
        if self.local is not None:
            return sorted(self.local.started - done)
        return [
            i
            for i, node in enumerate(self.plan.nodes)
            if i not in done and all(d in self.finished for d in node.deps)
        ]

    def _stop(self, futures: list[Any]) -> None:
        """The run is over: nothing else may start; in-process, wait for calls in flight
        unless the deadline passed (they cannot be stopped)."""
        local = self.local
        if local is not None:
            local.stopped = True
            if self.deadline is None or time.perf_counter() < self.deadline:
                with local.idle:
                    local.idle.wait_for(lambda: local.running == 0)
        unfinished = [f for f in futures if not f.done()]
        if unfinished:
            self.client.cancel(unfinished)
        if self.events is not None:
            self.events.close(self.client)
        if self.stop_topic is not None:
            self.client.unsubscribe_topic(self.stop_topic)
        _local_runs.pop(self.token, None)

    # the result ------------------------------------------------------------------------------

    def _result(self, futures: list[Any]) -> ExecutionResult:
        """Outputs as the engine returns them; `by_index` holds the outputs fetched in
        `_collect` (every finished node's when every output was asked for)."""
        plan, options = self.plan, self.options
        partial = bool(self.failures or self.skipped)
        wanted = (
            sorted(self.finished) if partial or options.include_intermediates else list(plan.sinks)
        )
        outputs = {plan.nodes[i].node_id: self.results[i] for i in wanted}
        count = len(self.local.started) if self.local else len(futures) - len(self.skipped)
        peak = self.local.peak if self.local else 0
        stats = ExecutionStats("dask", time.perf_counter() - self.start, count, peak)
        return ExecutionResult(
            outputs,
            plan=plan,
            stats=stats,
            failures=self.failures,
            skipped=[plan.nodes[i].node_id for i in sorted(self.skipped)],
            by_index=self.results,
        )


def _pickled_inputs(inputs: Mapping[str, Any]) -> bytes:
    try:
        return cloudpickle.dumps(dict(inputs))
    except Exception as exc:  # noqa: BLE001
        raise ExecutionError(
            f"the graph's inputs cannot be sent to the Dask cluster: {type(exc).__name__}: "
            f"{exc}; pass plain data, or run on an in-process distributed.Client(processes=False)"
        ) from exc


def _unpicklable(node: PlanNode, exc: Exception) -> ExecutionError:
    return ExecutionError(
        f"node {node.node_id!r} ({node.name}) cannot be sent to the Dask cluster: "
        f"{type(exc).__name__}: {exc}; make its operator and its inputs picklable "
        f"(module-level functions and plain data), or run on an in-process "
        f"distributed.Client(processes=False)",
        node_id=node.node_id,
        operator_name=node.name,
    )
