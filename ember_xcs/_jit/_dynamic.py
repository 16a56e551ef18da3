"""The dynamic strategy: run the body every call, dispatch leaf calls asynchronously.

The function runs as written, with concrete inputs. Each leaf operator call is handed to
an executor as soon as its arguments are ready and returns a `LazyResult` at once, so the
body races ahead and independent calls overlap. A `LazyResult` stands for the value:
every operation Python performs on it (`str`, f-strings, `if`, `len`, `==`, `+`,
indexing, attribute access, calling, `isinstance`) waits for the call to finish and then
acts on the real value. Passing one to another operator does not wait: the second call is
dispatched when the first one finishes. Composites run inline, so their leaves are
dispatched too. Data-dependent control flow is therefore always exact: a branch sees the
value the call produced in this run.

Limits (shared with every tracing jit): `x is None` and `type(x) is str` see the proxy,
not the value, and C functions that demand a built-in type (`str.join`, `json.loads`,
`re`) reject it with a `TypeError`. Resolve first (`str(x)`) or move that code into an
`@op`, which always receives concrete values.

Every dispatched call runs exactly once. Before the jitted call returns or raises, all of
them have finished, and the first failure the body was never handed is raised as the
node-naming `XCSError`. A failure the body was handed (an inline call raising where it was
made, a rewritten body resolving a result: `_rewrite`) is the body's: its `except` may
catch it, as the plain function's would.

Numeric leaves (`numeric=True`, not stochastic, no `preserve_stochasticity`) run through
`_numeric.NumericLeaves`: a `jax.jit` cached per operator and call shape, so their Python
bodies run once per new shape, as in a plan.

`ExecutionOptions`, one consumer each, as in the engine:

| option | in a dynamic run |
|---|---|
| `scheduler` | `"sequential"` (and custom non-engine schedulers) run each call inline when it is made (no overlap, exact); `"parallel"`, `"auto"` and `"wave"` use the shared worker pool (`async def` operators the shared event loop) with dataflow dispatch — there are no waves to wait for, the graph is discovered as the body runs; `"dask"` the Dask client; `"noop"` raises `OptionsError` (there is no plan to return) |
| `max_workers` | caps calls in flight; further ready calls queue |
| `timeout_seconds` | bounds the whole call; `ExecutionTimeoutError` names the calls still running |
| `node_timeout_seconds` | bounds each call from its start; the engine's `ExecutionTimeoutError` naming node and operator. Detected whenever the body or the final drain waits, and when a call returns late; inline calls are failed when they return late, as with the engine's inline executor |
| `retries`, `retry_backoff`, `retry_on`, node hooks | `NodeCall`, shared with the engine |
| graph hooks | `on_graph_start` once per call (`num_nodes=0`: the graph is not known before the body runs), `on_graph_end` with the number of calls dispatched |
| `return_partial_results`, `include_intermediates` | a function has one return value: the first failure is raised, and the value is the function's |
| `dask_client` | the Dask executor's |
"""

from __future__ import annotations

import copy
import dataclasses
import operator as _op
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .._errors import ExecutionTimeoutError, OptionsError, XCSError
from .._options import ExecutionOptions
from ..operators import Operator, intercept_calls, is_async_operator
from ..scheduling import (
    DEFAULT_MAX_WORKERS,
    EngineScheduler,
    ExecutionPlan,
    ExecutionStats,
    NodeCall,
    node_timeout_error,
    resolve_scheduler,
)
from ._async import refuse_coroutine
from ._numeric import NumericLeaves, compilable
from ._tracer import traces_into

__all__ = ["LazyResult", "run_dynamic"]

_PENDING, _OK, _FAILED = 0, 1, 2


class LazyResult:
    """The future output of a dispatched call; see the module docstring."""

    __slots__ = (
        "_call", "_dependents", "_event", "_run", "_started", "_state", "_value", "_waiting",
    )  # fmt: skip

    def __init__(self, run: _DynamicRun, call: NodeCall | None):
        _set = object.__setattr__  # __setattr__ is the value's; these are the proxy's own
        _set(self, "_run", run)
        _set(self, "_call", call)
        _set(self, "_state", _PENDING)
        _set(self, "_value", None)
        _set(self, "_event", None)  # made by the first waiter: most calls are never waited on
        _set(self, "_dependents", [])
        _set(self, "_waiting", 0)
        _set(self, "_started", 0.0)

    def put(self, outcome: tuple[int, bool, Any]) -> None:
        """Executor callback: `(index, ok, value)`."""
        _, ok, value = outcome
        self._run.finished(self, ok, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(resolve(self), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(resolve(self), name, value)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105 - isinstance() sees the value's class
        return type(resolve(self))

    def __repr__(self) -> str:
        return repr(resolve(self))

    def __format__(self, spec: str) -> str:
        return format(resolve(self), spec)


def resolve(value: Any) -> Any:
    """The concrete value: waits for a `LazyResult`, raising its call's error if it failed."""
    if type(value) is not LazyResult:
        return value
    lazy = value
    state = object.__getattribute__(lazy, "_state")
    if state == _PENDING:
        object.__getattribute__(lazy, "_run").wait(lazy)
        state = object.__getattribute__(lazy, "_state")
    if state == _FAILED:
        raise object.__getattribute__(lazy, "_value")
    return object.__getattribute__(lazy, "_value")


def _forward(name: str) -> Callable[..., Any]:
    def method(self: LazyResult, *args: Any) -> Any:
        return getattr(resolve(self), name)(*args)

    method.__name__ = name
    return method


def _binary(fn: Callable[[Any, Any], Any], reflected: bool) -> Callable[..., Any]:
    # both sides: `lazy + lazy` must not hand a proxy to the value's own operator
    if reflected:
        return lambda self, other: fn(resolve(other), resolve(self))
    return lambda self, other: fn(resolve(self), resolve(other))


for _name in (
    "__str__ __bytes__ __bool__ __len__ __iter__ __reversed__ __contains__ __hash__ "
    "__getitem__ __setitem__ __delitem__ __call__ __enter__ __exit__ __int__ __float__ "
    "__complex__ __index__ __round__ __neg__ __pos__ __abs__ __invert__ __array__ __fspath__"
).split():
    setattr(LazyResult, _name, _forward(_name))
for _name in "eq ne lt le gt ge".split():
    setattr(LazyResult, f"__{_name}__", _binary(getattr(_op, _name), False))
for _name, _fn in {
    "add": _op.add, "sub": _op.sub, "mul": _op.mul, "matmul": _op.matmul,
    "truediv": _op.truediv, "floordiv": _op.floordiv, "mod": _op.mod, "pow": _op.pow,
    "lshift": _op.lshift, "rshift": _op.rshift, "and": _op.and_, "xor": _op.xor,
    "or": _op.or_, "divmod": divmod,
}.items():  # fmt: skip
    setattr(LazyResult, f"__{_name}__", _binary(_fn, False))
    setattr(LazyResult, f"__r{_name}__", _binary(_fn, True))
del _name


# --- one dynamic call --------------------------------------------------------------------


class _DynamicRun:
    """Dispatch state of one call of a dynamically run function."""

    def __init__(self, options: ExecutionOptions, executor: Any, numeric: NumericLeaves | None):
        self.options = options
        self.executor = executor
        self.numeric = numeric
        self.eager = executor is None or getattr(executor, "capacity", None) == 1
        self.capacity = min(
            options.max_workers or DEFAULT_MAX_WORKERS,
            getattr(executor, "capacity", None) or DEFAULT_MAX_WORKERS,
        )
        self.start = time.perf_counter()
        timeout = options.timeout_seconds
        self.deadline = self.start + timeout if timeout else None
        self.node_timeout = options.node_timeout_seconds
        self.lock = threading.Lock()
        self.calls: list[LazyResult] = []
        self.running: dict[int, LazyResult] = {}  # oldest first
        self.queue: deque[LazyResult] = deque()
        self.ids: dict[str, int] = {}
        self.kinds: dict[int, tuple[bool, bool, bool, str]] = {}  # see _kind
        self.dispatched = 0
        self.peak = 0
        self.closed = False
        # ids of failures the body was handed (inline calls; rewritten bodies: `_rewrite`)
        # (its own to raise or catch) and where it waited for a pending result
        self.handled: set[int] = set()
        self.forced: list[tuple[str, str, int]] = []

    # the call handler installed while the body runs
    def __call__(self, operator: Operator, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        into, is_async, numeric, name = self._kind(operator)
        if into:
            return operator.forward(*args, **kwargs)
        target = operator
        if numeric:
            target = self.numeric.leaf(operator, len(args), tuple(kwargs))  # type: ignore[union-attr]
        call = NodeCall(name, operator.name, target, args, kwargs, self.options, is_async)
        if self.eager:
            with self.lock:
                call.node_id = self._fresh(name)
            return self._call_inline(call)
        return self._dispatch(call)

    def _kind(self, operator: Operator) -> tuple[bool, bool, bool, str]:
        """Per run, per operator: traced into? `async def`? compiled with `jax.jit`? Node
        id base."""
        kind = self.kinds.get(id(operator))
        if kind is None:  # the body holds `operator` for the run: its id stays its own
            into = traces_into(operator)
            is_async = not into and is_async_operator(operator)
            numeric = (
                not into
                and self.numeric is not None
                and compilable(operator, False, lambda _: is_async)
            )
            name = operator.name.replace(".", "_")
            kind = self.kinds[id(operator)] = (into, is_async, numeric, name)
        return kind

    def _dispatch(self, call: NodeCall) -> LazyResult:
        lazy = LazyResult(self, call)
        lazies = _lazies((call.args, call.kwargs))
        with self.lock:
            call.node_id = self._fresh(call.node_id)
            self.calls.append(lazy)
            self.dispatched += 1
            pending = [x for x in lazies if x._state == _PENDING]
            if pending:
                object.__setattr__(lazy, "_waiting", len(pending))
                for dep in pending:
                    dep._dependents.append(lazy)
        if not pending:
            self._ready(lazy, resolve=bool(lazies))
        return lazy

    def _call_inline(self, call: NodeCall) -> Any:
        """Run `call` now, on this thread (eager mode); late calls fail as in the engine."""
        self.dispatched += 1
        try:
            self._check_deadline([call])  # nothing starts once the deadline has passed
            call.args, call.kwargs = _resolve_all((call.args, call.kwargs))
            start = time.perf_counter() if self.node_timeout else 0.0
            with intercept_calls(None):
                out = call()
            if self.node_timeout and time.perf_counter() - start > self.node_timeout:
                raise node_timeout_error(call, self.node_timeout)
            self._check_deadline([call])  # it came back late: an inline call's only check
            return out
        except BaseException as exc:
            self.handled.add(id(exc))  # raised where the body made the call: its to catch
            raise

    def _ready(self, lazy: LazyResult, *, resolve: bool = True) -> None:
        """All arguments are known: start the call now, or queue it behind `max_workers`."""
        call = lazy._call
        if resolve:  # swap the finished LazyResults in the arguments for their values
            try:
                call.args, call.kwargs = _resolve_all((call.args, call.kwargs))
            except BaseException as exc:  # an argument's call failed: this one never runs
                self.finished(lazy, False, exc, started=False)
                return
        with self.lock:
            if self.closed:
                return
            if len(self.running) >= self.capacity:
                self.queue.append(lazy)
                return
            self._start(lazy)

    def _start(self, lazy: LazyResult) -> None:  # holds self.lock
        self.running[id(lazy)] = lazy
        if len(self.running) > self.peak:
            self.peak = len(self.running)
        if self.node_timeout:  # only timeouts read the clock
            object.__setattr__(lazy, "_started", time.perf_counter())
        call = lazy._call
        if call.is_async and hasattr(self.executor, "submit_async"):
            self.executor.submit_async(0, call, lazy)
        else:
            self.executor.submit(0, call, lazy)

    def finished(self, lazy: LazyResult, ok: bool, value: Any, *, started: bool = True) -> None:
        """Record an outcome; start queued calls and dependents whose inputs are now ready.

        A call that already timed out ignores its late outcome."""
        ready = []
        with self.lock:
            if lazy._state != _PENDING:
                return
            if ok and started and self.node_timeout:
                if time.perf_counter() - lazy._started > self.node_timeout:
                    ok, value = False, node_timeout_error(lazy._call, self.node_timeout)
            object.__setattr__(lazy, "_value", value)
            object.__setattr__(lazy, "_state", _OK if ok else _FAILED)
            if started:
                self.running.pop(id(lazy), None)
            while self.queue and len(self.running) < self.capacity and not self.closed:
                self._start(self.queue.popleft())
            for dep in lazy._dependents:
                object.__setattr__(dep, "_waiting", dep._waiting - 1)
                if dep._waiting == 0:
                    ready.append(dep)
            lazy._dependents.clear()
            event = lazy._event
        if event is not None:
            event.set()
        for dep in ready:
            self._ready(dep)

    # --- waiting, within the deadlines ------------------------------------------------------

    def wait(self, lazy: LazyResult) -> None:
        """Block until `lazy` finished; fail calls past `node_timeout_seconds` meanwhile."""
        with self.lock:
            if lazy._state != _PENDING:
                return
            event = lazy._event
            if event is None:
                event = threading.Event()
                object.__setattr__(lazy, "_event", event)
        while not event.is_set():
            limit = self._limit()
            if limit is None:
                event.wait()
                return
            if not event.wait(max(0.0, limit - time.perf_counter())):
                self._expire()

    def _limit(self) -> float | None:
        """The next moment something times out: the call's deadline or the oldest call's."""
        limit = self.deadline
        if self.node_timeout:
            with self.lock:
                oldest = next(iter(self.running.values()), None)
            if oldest is not None:
                node_limit = oldest._started + self.node_timeout
                limit = node_limit if limit is None else min(limit, node_limit)
        return limit

    def _expire(self) -> None:
        """Raise the call's timeout if it passed; fail every call past its node timeout."""
        now = time.perf_counter()
        with self.lock:
            running = list(self.running.values())
        if self.deadline is not None and now >= self.deadline:
            raise self._timeout_error([x._call for x in running])
        if not self.node_timeout:  # woke a hair before the deadline: wait again
            return
        for lazy in running:
            if now - lazy._started < self.node_timeout:
                break  # oldest first: the rest started later
            self.finished(lazy, False, node_timeout_error(lazy._call, self.node_timeout))

    def _check_deadline(self, calls: list[NodeCall]) -> None:
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise self._timeout_error(calls)

    def _timeout_error(self, running: list[NodeCall]) -> ExecutionTimeoutError:
        names = [f"{call.node_id} ({call.name})" for call in running]
        return ExecutionTimeoutError(
            f"dynamic jit call did not finish within timeout_seconds="
            f"{self.options.timeout_seconds}; still running: {', '.join(names) or 'none'}",
            running=[call.node_id for call in running],
        )

    def drain(self) -> BaseException | None:
        """Wait for every dispatched call; return the first failure, in dispatch order."""
        for lazy in list(self.calls):
            self.wait(lazy)
        for lazy in self.calls:
            if lazy._state == _FAILED and id(lazy._value) not in self.handled:
                return lazy._value
        return None

    def close(self) -> None:
        """The run is over: calls still queued never start."""
        with self.lock:
            self.closed = True
            self.queue.clear()

    def _fresh(self, base: str) -> str:  # holds self.lock
        n = self.ids.get(base, 0)
        self.ids[base] = n + 1
        return base if n == 0 else f"{base}_{n}"


def _lazies(value: Any) -> list[LazyResult]:
    found: list[LazyResult] = []
    _walk(value, found.append)
    return found


_ATOMS = frozenset({str, int, float, bool, bytes, complex, type(None)})


def _walk(value: Any, visit: Callable[[LazyResult], None]) -> None:
    kind = type(value)
    if kind in _ATOMS:  # most arguments: prompts and numbers
        return
    if kind is LazyResult:
        visit(value)
    elif kind in (list, tuple, set, frozenset) or (isinstance(value, tuple)):
        for v in value:
            _walk(v, visit)
    elif isinstance(value, dict):
        for v in value.values():
            _walk(v, visit)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _walk(getattr(value, f.name), visit)


def _resolve_all(value: Any) -> Any:
    """`value` with every `LazyResult` in its containers replaced by the concrete value."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is LazyResult:
        return resolve(value)
    if kind is list:
        return [_resolve_all(v) for v in value]
    if kind is tuple:
        return tuple(_resolve_all(v) for v in value)
    if kind is dict:
        return {k: _resolve_all(v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(kind, "_fields"):
        return kind(*(_resolve_all(v) for v in value))
    if isinstance(value, dict) or kind in (set, frozenset):
        if not _lazies(value):
            return value
        if kind in (set, frozenset):
            return kind(_resolve_all(v) for v in value)
        out = copy.copy(value)
        for k, v in value.items():
            out[k] = _resolve_all(v)
        return out
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if not _lazies(value):
            return value
        out = copy.copy(value)
        for f in dataclasses.fields(value):
            object.__setattr__(out, f.name, _resolve_all(getattr(value, f.name)))
        return out
    return value


# --- entry point -------------------------------------------------------------------------


def _executor_for(options: ExecutionOptions) -> tuple[Any, str]:
    """The executor dispatched calls go to (`None`: inline) and the scheduler's name."""
    spec = options.scheduler
    if spec in ("auto", "wave"):  # no waves to wait for: the graph unfolds as the body runs
        spec = "parallel"
    scheduler = resolve_scheduler(spec, ExecutionPlan([]))
    name = getattr(scheduler, "name", None) or type(scheduler).__name__
    if name == "noop":
        raise OptionsError(
            "scheduler='noop' is a dry run of a plan, but this jitted call runs dynamically "
            "(mode='dynamic', or its trace stopped: see explain_jit_selection), so there is "
            "no plan to return; use mode='trace' to get one, or another scheduler"
        )
    if isinstance(scheduler, EngineScheduler):
        return scheduler.make_executor(options), name
    return None, name  # a custom scheduler that is not an engine: run each call inline


def run_dynamic(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: ExecutionOptions,
    *,
    numeric: NumericLeaves | None,
    graph_hooks: bool = True,
) -> tuple[Any, ExecutionStats]:
    """Call `fn(*args, **kwargs)` with asynchronous leaf dispatch; see the module docstring.

    `numeric`: where compiled numeric leaves are cached (`None`: run them as written, for
    `preserve_stochasticity`). `graph_hooks=False` inside a plan node, whose run already
    reported the graph.
    """
    with intercept_calls(None):  # worker contexts must not see this run's handler
        executor, scheduler = _executor_for(options)
    run = _DynamicRun(options, executor, numeric)
    hooks = options.hooks if graph_hooks else ()
    for hook in hooks:
        hook.on_graph_start(num_nodes=0, scheduler=scheduler)
    failed = True
    try:
        out = _run_body(run, fn, args, kwargs)
        failed = False
        warn_if_serial(fn, run)
    finally:
        run.close()
        if executor is not None:
            executor.close()
        seconds = time.perf_counter() - run.start
        for hook in hooks:
            hook.on_graph_end(num_nodes=run.dispatched, seconds=seconds, failed=failed)
    return out, ExecutionStats(scheduler, seconds, run.dispatched, run.peak)


def _run_body(run: _DynamicRun, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    with intercept_calls(run):
        try:
            out = entry(fn)(*args, **kwargs)  # the rewritten body where there is one
        except BaseException as exc:
            run.drain()  # let every dispatched call finish before the error surfaces
            _add_lazy_note(exc)
            raise
    failure = run.drain()
    refuse_coroutine(out, getattr(fn, "__qualname__", "the function"))
    if failure is not None:
        raise failure
    return _resolve_all(out)


def _add_lazy_note(exc: BaseException) -> None:
    if isinstance(exc, TypeError) and "LazyResult" in str(exc) and not isinstance(exc, XCSError):
        exc.add_note(
            "ember_xcs: a dynamic-jit result (LazyResult) reached code that needs a built-in "
            "value; wrap it in str()/int()/... first, or do this work inside an @op"
        )


# the rewrite builds on LazyResult and resolve above, so it is imported once they exist
from ._rewrite import entry, warn_if_serial  # noqa: E402
