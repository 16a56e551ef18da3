"""`NodeCall`: one bound operator call, with retries, backoff and hooks.

The engine binds a node's arguments on its own thread (so a bad field mapping fails that
node at once) and hands executors a `NodeCall`. Executors only ever call it, synchronously
(`node_call()`) or on an event loop (`await node_call.acall()`), so the retry and hook
logic exists once, whatever runs it: a thread, the caller, asyncio or a Dask worker.

**Recording.** When a run records its attempts (a `Timeline` in its hooks: see
`_options.node_hook_calls`, "A log instead of calls"), the node call appends each
attempt's fields to the recorder's list itself, with the clock readings it takes
anyway and the thread's name: the run's, named once, when its executor runs every call
on the caller's thread (the sequential scheduler), else from a dict keyed by thread id.
One `list.extend` of six fields per attempt instead of a hook call. Recording then costs
a node two clock reads, that append and, on threads, the name's lookup (see
`benchmarks/RESULTS.md`, "Observability overhead").

The lookup is about a quarter of a record on threads: 2,690 machine instructions a node
against 1,970 with the run's name given once (callgrind, the grid run sequentially with
every record taking the threads' path). Three ways around it were measured and not kept.
Recording the thread's id and naming it when read saves half of that (2,330), but an id
names a thread only while the thread lives: every thread would have to register before
its first record and have its records named before it ends, and a thread that some other
code started (a custom executor's) could be named after a thread that had its id
earlier; in wall time the saving was within noise (parallel scheduler, 6 alternating
runs each: +0.61 µs a node with ids, +0.57 with names). Per-thread lists instead of one
shared list were no faster: finding this thread's list costs what finding its name
does. Keying the names by `threading.get_native_id()`, whose small consecutive values
spread over the dict where `get_ident()`'s share their low bits (thread stacks lie 8 MiB
apart), was slower by 0.3 µs a node: it is a system call here (230 ns against 39).

**A call's own scope.** A jitted body may enter an `execution_options(...)` or
`models.track_usage()` block after its run started; the workers run in the context of
the run's start, which has neither. A call made inside such a block carries a
`CallScope` (the options and usage meters in force where it was made), and the engine
makes it a `ScopedCall`: the scope's options are the call's (its retries, backoff,
`retry_on`, node hooks and node timeout; current while the operator runs, so a model's
`on_model_usage` hook or a run the operator starts sees them) and its meters are open
around it. The run's own fields (scheduler, `max_workers`, the graph deadline, what a
run returns) stay the run's. Context variables of the user's own that the body set after
the run started (a request id, a tracing span, a LangChain-style config) travel the same
way: the scope holds their values where the call was made (`user_context_vars`), set
around the call, so the operator reads what it would have read called plainly there.

**Counting.** A progress bar only needs to know that a node finished: it asks for a
tick (`node_hook_calls`, "A tick instead of a call"), a C callable such as
`itertools.count().__next__`, which the node call calls once per node that finished for
good, with no argument and no clock read.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Sequence
from contextvars import Context, ContextVar
from types import CoroutineType
from typing import Any

from .._errors import ExecutionError, NodeExecutionError, summarize_inputs
from .._options import (
    ExecutionOptions,
    node_hook_calls,
    options_are_current,
    reset_current_options,
    set_current_options,
)
from ..operators import Operator
from ._async_loop import run_coroutine
from ._usage import UsageTotals, meters_set

__all__ = ["CallScope", "NodeCall", "ScopedCall", "thread_name"]

_NEVER = float("inf")
_clock = time.perf_counter
_ident = threading.get_ident
# Thread id -> name, for records. A dict is read faster than a thread-local's attribute
# (about 400 fewer instructions a node, counted with callgrind); an entry goes when its
# thread ends, before its id can be given to a new thread.
_thread_names: dict[int, str] = {}
_thread_ends = threading.local()


class _Forget:
    """Held by a thread's locals: dropped as the thread ends, it drops the thread's name."""

    __slots__ = ("ident",)

    def __init__(self, ident: int):
        self.ident = ident

    def __del__(self, _drop: Any = _thread_names.pop) -> None:
        _drop(self.ident, None)


def thread_name() -> str:
    """The name of the calling thread, as records give it (looked up on its first use)."""
    try:
        return _thread_names[_ident()]
    except KeyError:
        ident = _ident()
        _thread_names[ident] = name = threading.current_thread().name
        _thread_ends.forget = _Forget(ident)
        return name


class NodeCall:
    """Call `operator(*args, **kwargs)` as node `node_id`, retrying per the options.

    `stop_at` (a `time.perf_counter()` instant, set by the engine when a node or graph
    deadline applies) bounds the retries: no attempt starts, and no backoff sleeps, past
    it, so a node that timed out is not called again in the background.

    An `ExecutionError` that already names a node (a nested run inside this operator: a
    Python `vmap`, an `execute_graph`) passes through unchanged and is not retried: the
    nested run retried its own node and named it, so retrying here would multiply the
    attempts and wrapping it would hide the node that failed.

    An operator whose `__xcs_retried__` is False is never retried: it runs code that makes
    node calls of its own, each retried where it is made (jit's opaque composites), so
    a retry of the whole would call again the ones that had succeeded.
    """

    __slots__ = (
        "args", "hooks", "is_async", "kwargs", "name", "node_id", "operator", "options",
        "stop_at",
    )  # fmt: skip

    def __init__(
        self,
        node_id: str,
        name: str,
        operator: Operator,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        options: ExecutionOptions,
        is_async: bool,
        node_hooks: tuple[Any, ...] | None = None,
    ):
        self.node_id = node_id
        self.name = name
        self.operator = operator
        self.args = args
        self.kwargs = kwargs
        self.options = options
        # `(starts, ends, failures, timed, log, ticks)` (`node_hook_calls`), kept whole:
        # one store here, one unpacking per call, whatever the run listens to
        self.hooks = node_hooks or node_hook_calls(options)
        self.is_async = is_async  # `stop_at` is set only when a deadline applies

    def __call__(self) -> Any:
        if self.is_async:  # executors without an event loop still get async nodes right
            return run_coroutine(self.acall())
        # The run's options are current while the operator runs, whichever thread or
        # process runs it, so a nested jit call or `current_options()` sees them. The
        # engine already made them current for its own thread and the threads it copies
        # its context into; only other executors' threads (Dask) need them set here.
        if options_are_current(self.options):
            return self._call_with_retries()
        token = set_current_options(self.options)
        try:
            return self._call_with_retries()
        finally:
            reset_current_options(token)

    def _call_with_retries(self) -> Any:
        attempt = 0
        starts, ends, _, timed, log, ticks = self.hooks
        while True:
            # hooks are called inline and positionally: every node with hooks pays this
            for hook in starts:
                hook(self.node_id, self.name, attempt)
            start = _clock() if timed else 0.0
            try:
                out = self.operator(*self.args, **self.kwargs)
                if type(out) is CoroutineType:  # a sync-looking operator returned a coroutine
                    out = run_coroutine(out)
            except Exception as exc:  # noqa: BLE001 - every operator error becomes a node error
                delay = self._failed(exc, attempt, start)
                time.sleep(delay)
                attempt += 1
                continue
            if log is not None:  # a Timeline's record, appended here: no call per attempt
                end = _clock()
                extend, thread = log
                if thread is None:  # not known for the whole run: this thread's
                    try:  # thread_name(), inlined: a call would cost as much as the rest
                        thread = _thread_names[_ident()]
                    except KeyError:
                        thread = thread_name()
                extend((self.node_id, self.name, start, end, thread, attempt))
                if ends or ticks:
                    self._ended(attempt, start, end)
            elif ends:
                end = _clock()
                for hook in ends:
                    hook(self.node_id, self.name, attempt, start, end)
                for tick in ticks:
                    tick()
            elif ticks:  # a counter's: no clock, no Python call
                for tick in ticks:
                    tick()
            return out

    async def acall(self) -> Any:
        """Await an `async def` operator, retrying with `asyncio.sleep` between attempts."""
        set_current_options(self.options)  # a task's context is its own: no reset needed
        starts, _, _, _, log, _ = self.hooks
        attempt = 0
        while True:
            for hook in starts:
                hook(self.node_id, self.name, attempt)
            start = time.perf_counter()
            try:
                out = self.operator(*self.args, **self.kwargs)
                if inspect.isawaitable(out):
                    out = await out
            except Exception as exc:  # noqa: BLE001
                delay = self._failed(exc, attempt, start)
                await asyncio.sleep(delay)
                attempt += 1
                continue
            end = time.perf_counter()
            if log is not None:
                log[0]((self.node_id, self.name, start, end, thread_name(), attempt))
            self._ended(attempt, start, end)
            return out

    def _ended(self, attempt: int, start: float, end: float) -> None:
        _, ends, _, _, _, ticks = self.hooks
        for hook in ends:
            hook(self.node_id, self.name, attempt, start, end)
        for tick in ticks:
            tick()

    def _failed(self, exc: Exception, attempt: int, start: float) -> float:
        """Notify hooks; return the backoff before the next attempt, or raise."""
        options = self.options
        _, _, failures, _, log, ticks = self.hooks
        nested = isinstance(exc, ExecutionError) and exc.node_id is not None
        delay = options.retry_backoff * (2**attempt)
        retryable = (
            not nested
            and attempt < options.retries
            and isinstance(exc, options.retry_on)
            and getattr(self.operator, "__xcs_retried__", True)
        )
        will_retry = retryable and time.perf_counter() + delay < getattr(self, "stop_at", _NEVER)
        if failures or log is not None:
            end = time.perf_counter()
            if log is not None:
                outcome = (attempt, type(exc).__name__, will_retry)  # a failure's `attempt`
                # this thread's name, not the run's: an async node fails on the loop's
                log[0]((self.node_id, self.name, start, end, thread_name(), outcome))
            for hook in failures:
                hook(self.node_id, self.name, attempt, start, end, exc, will_retry)
        if will_retry:
            return delay
        for tick in ticks:  # the node finished for good
            tick()
        if nested:
            raise exc
        error = self.error(exc, attempts=attempt + 1)
        if retryable:  # and yet not retried
            error.add_note("retries stopped: the next attempt would start after the deadline")
        raise error from exc

    def error(self, exc: BaseException, attempts: int = 1) -> NodeExecutionError:
        """The node-naming error for `exc` (chain it with `from exc`)."""
        summary = summarize_inputs(self.args, self.kwargs)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return NodeExecutionError.wrapping(
            exc,
            f"node {self.node_id!r} ({self.name}) failed{tries}: "
            f"{type(exc).__name__}: {exc}\n  inputs: {summary}",
            node_id=self.node_id,
            operator_name=self.name,
            inputs_summary=summary,
        )


class CallScope:
    """The options and usage meters in force where a jitted body made a call, when they
    are not those of its run (the body entered an `execution_options` or `track_usage()`
    block): see "A call's own scope" above. Made once per block the body enters, shared
    by the calls made in it; `hooks` are its options' node hooks, looked up once."""

    __slots__ = ("hooks", "meters", "options", "timeout", "variables")

    def __init__(
        self,
        options: ExecutionOptions,
        meters: tuple[UsageTotals, ...],
        variables: tuple[tuple[ContextVar[Any], Any], ...] = (),
    ):
        self.options = options
        self.meters = meters
        self.variables = variables  # the user's context variables set since the run began
        self.timeout = options.node_timeout_seconds
        self.hooks = node_hook_calls(options)

    def call(self, node_id: str, name: str, operator: Operator, args: Sequence[Any],
             kwargs: dict[str, Any], is_async: bool) -> ScopedCall:  # fmt: skip
        """The node call that runs `operator` under this scope."""
        call = ScopedCall(node_id, name, operator, args, kwargs, self.options, is_async, self.hooks)
        call.meters = self.meters
        call.variables = self.variables
        return call


class ScopedCall(NodeCall):
    """A `NodeCall` under a `CallScope`: its options are the scope's, and the scope's usage
    meters and context variables are in force while it runs, whichever thread or task
    runs it (and restored after: a call run on the body's thread leaves its context as
    it was)."""

    __slots__ = ("meters", "variables")

    def __call__(self) -> Any:
        tokens = [var.set(value) for var, value in self.variables]
        try:
            with meters_set(self.meters):
                return NodeCall.__call__(self)
        finally:
            for (var, _), token in zip(reversed(self.variables), reversed(tokens), strict=True):
                var.reset(token)

    async def acall(self) -> Any:
        for var, value in self.variables:  # the task's own context
            var.set(value)
        with meters_set(self.meters):
            return await NodeCall.acall(self)


_MISSING = object()


def user_context_vars(context: Context, since: Context) -> tuple[tuple[ContextVar[Any], Any], ...]:
    """The context variables, not ember_xcs's own, whose values in `context` are not those
    in `since` (a body's context where it makes a call, and where its run began)."""
    return tuple(
        (var, value)
        for var, value in context.items()
        if since.get(var, _MISSING) is not value and not var.name.startswith("ember_xcs")
    )
