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
them have finished, and the first failure is raised as the node-naming `XCSError`.

Where calls run follows `execution_options`: `"sequential"` runs each call inline when it
is made (no overlap, exact), the thread-based schedulers use the shared worker pool
(`async def` operators the shared event loop), `"dask"` the Dask client. `max_workers`
caps calls in flight and `timeout_seconds` bounds the whole call.
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
    NodeCall,
    resolve_scheduler,
)
from ._tracer import traces_into

__all__ = ["LazyResult", "run_dynamic"]

_PENDING, _OK, _FAILED = 0, 1, 2


class LazyResult:
    """The future output of a dispatched call; see the module docstring."""

    __slots__ = ("_call", "_dependents", "_event", "_run", "_state", "_value", "_waiting")

    def __init__(self, run: _DynamicRun, call: NodeCall | None):
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "_call", call)
        object.__setattr__(self, "_state", _PENDING)
        object.__setattr__(self, "_value", None)
        object.__setattr__(self, "_event", threading.Event())
        object.__setattr__(self, "_dependents", [])
        object.__setattr__(self, "_waiting", 0)

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
    if reflected:
        return lambda self, other: fn(other, resolve(self))
    return lambda self, other: fn(resolve(self), other)


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

    def __init__(self, options: ExecutionOptions, executor: Any):
        self.options = options
        self.executor = executor
        self.eager = executor is None or getattr(executor, "capacity", None) == 1
        self.capacity = min(
            options.max_workers or DEFAULT_MAX_WORKERS,
            getattr(executor, "capacity", None) or DEFAULT_MAX_WORKERS,
        )
        self.deadline = (
            time.perf_counter() + options.timeout_seconds if options.timeout_seconds else None
        )
        self.lock = threading.Lock()
        self.calls: list[LazyResult] = []
        self.running: dict[int, LazyResult] = {}
        self.queue: deque[LazyResult] = deque()
        self.ids: dict[str, int] = {}
        self.peak = 0

    # the call handler installed while the body runs
    def __call__(self, operator: Operator, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if traces_into(operator):
            return operator.forward(*args, **kwargs)
        return self.dispatch(operator, args, kwargs)

    def dispatch(self, operator: Operator, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        node_id = self._fresh(operator.name.replace(".", "_"))
        call = NodeCall(
            node_id, operator.name, operator, args, kwargs, self.options,
            is_async_operator(operator),
        )  # fmt: skip
        if self.eager:
            return self._call_inline(call)
        lazy = LazyResult(self, call)
        pending = [x for x in _lazies((args, kwargs)) if x._state == _PENDING]
        with self.lock:
            self.calls.append(lazy)
            pending = [x for x in pending if x._state == _PENDING]
            object.__setattr__(lazy, "_waiting", len(pending))
            for dep in pending:
                dep._dependents.append(lazy)
        if not pending:
            self._ready(lazy)
        return lazy

    def _call_inline(self, call: NodeCall) -> Any:
        call.args, call.kwargs = _resolve_all((call.args, call.kwargs))
        with intercept_calls(None):
            return call()

    def _ready(self, lazy: LazyResult) -> None:
        """All arguments are known: start the call now, or queue it behind `max_workers`."""
        call = lazy._call
        try:
            call.args, call.kwargs = _resolve_all((call.args, call.kwargs))
        except BaseException as exc:  # an argument's call failed: this one never runs
            self.finished(lazy, False, exc, started=False)
            return
        with self.lock:
            if len(self.running) >= self.capacity:
                self.queue.append(lazy)
                return
            self._start(lazy)

    def _start(self, lazy: LazyResult) -> None:  # holds self.lock
        self.running[id(lazy)] = lazy
        self.peak = max(self.peak, len(self.running))
        call = lazy._call
        if call.is_async and hasattr(self.executor, "submit_async"):
            self.executor.submit_async(0, call, lazy)
        else:
            self.executor.submit(0, call, lazy)

    def finished(self, lazy: LazyResult, ok: bool, value: Any, *, started: bool = True) -> None:
        """Record an outcome; start queued calls and dependents whose inputs are now ready."""
        ready = []
        with self.lock:
            object.__setattr__(lazy, "_value", value)
            object.__setattr__(lazy, "_state", _OK if ok else _FAILED)
            if started:
                self.running.pop(id(lazy), None)
            while self.queue and len(self.running) < self.capacity:
                self._start(self.queue.popleft())
            for dep in lazy._dependents:
                object.__setattr__(dep, "_waiting", dep._waiting - 1)
                if dep._waiting == 0:
                    ready.append(dep)
            lazy._dependents.clear()
        lazy._event.set()
        for dep in ready:
            self._ready(dep)

    def wait(self, lazy: LazyResult) -> None:
        """Block until `lazy` finished, within the call's deadline."""
        if self.deadline is None:
            lazy._event.wait()
            return
        if not lazy._event.wait(max(0.0, self.deadline - time.perf_counter())):
            with self.lock:
                running = [x._call.node_id for x in self.running.values()]
            raise ExecutionTimeoutError(
                f"dynamic jit call did not finish within timeout_seconds="
                f"{self.options.timeout_seconds}; still running: {', '.join(running) or 'none'}",
                running=running,
            )

    def drain(self) -> BaseException | None:
        """Wait for every dispatched call; return the first failure, in dispatch order."""
        for lazy in list(self.calls):
            self.wait(lazy)
        for lazy in self.calls:
            if lazy._state == _FAILED:
                return lazy._value
        return None

    def _fresh(self, base: str) -> str:
        with self.lock:
            n = self.ids.get(base, 0)
            self.ids[base] = n + 1
        return base if n == 0 else f"{base}_{n}"


def _lazies(value: Any) -> list[LazyResult]:
    found: list[LazyResult] = []
    _walk(value, found.append)
    return found


def _walk(value: Any, visit: Callable[[LazyResult], None]) -> None:
    kind = type(value)
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


def _executor_for(options: ExecutionOptions) -> Any:
    spec = options.scheduler
    if spec in ("auto", "wave"):
        spec = "parallel"
    scheduler = resolve_scheduler(spec, ExecutionPlan([]))
    if getattr(scheduler, "name", None) == "noop":
        raise OptionsError(
            "scheduler='noop' is a dry run of a plan, but this jitted call runs dynamically "
            "(its trace stopped, see explain_jit_selection); there is no plan to return"
        )
    if isinstance(scheduler, EngineScheduler):
        return scheduler.make_executor(options)
    return None  # a custom scheduler that is not an engine: run each call inline


def run_dynamic(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: ExecutionOptions,
    name: str = "",
) -> Any:
    """Call `fn(*args, **kwargs)` with asynchronous leaf dispatch; see the module docstring."""
    with intercept_calls(None):  # worker contexts must not see this run's handler
        executor = _executor_for(options)
    run = _DynamicRun(options, executor)
    try:
        with intercept_calls(run):
            try:
                out = fn(*args, **kwargs)
            except BaseException as exc:
                run.drain()  # let every dispatched call finish before the error surfaces
                _add_lazy_note(exc)
                raise
        failure = run.drain()
        if failure is not None:
            raise failure
        return _resolve_all(out)
    finally:
        if executor is not None:
            executor.close()


def _add_lazy_note(exc: BaseException) -> None:
    if isinstance(exc, TypeError) and "LazyResult" in str(exc) and not isinstance(exc, XCSError):
        exc.add_note(
            "ember_xcs: a dynamic-jit result (LazyResult) reached code that needs a built-in "
            "value; wrap it in str()/int()/... first, or do this work inside an @op"
        )
