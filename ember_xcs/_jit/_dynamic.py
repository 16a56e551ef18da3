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

Where the body's source is available it runs rewritten (`_rewrite`): every place the
code uses a value resolves it first, so a `LazyResult` only ever meets user code as a
real value (`re`, `json`, `str.join`, `float()`, `jnp` included). Without source (a
lambda typed into a REPL, a builtin) the body runs as written and the proxy stands in;
then `x is None` and `type(x) is str` see the proxy, and C functions that demand a
built-in type reject it with a `TypeError`.

**On the engine.** A dynamic call is one engine `Run` (`scheduling/_engine.py`) that
starts empty: each leaf call is `Run.add`ed as a node whose dependencies are the calls
its arguments hold (`LazyResult`s anywhere in lists, tuples, dicts, dataclasses), so
capacity, release-on-last-input, deadlines, node timeouts, retries and hooks are the
engine's own. Resolving a `LazyResult` is `Run.wait(index)`, which pumps the loop until
that node finished; when the body returns, `Run.finish` pumps until every node did.

**A call made alone runs on the body's thread.** Handing a call to a worker thread and
being woken when it returns costs more than the rest of its dispatch (0.15-0.2 ms after
a slow call on a 2-CPU machine, against about 0.03 ms). So a call the body makes while
no other call is in flight is not started at once (the engine's "A lone call" rule): if
the body's next step needs its value (a router's `if label == "math"`, a retry loop's
`json.loads`), the call runs right there, on the body's thread, as in plain Python; if
the body first makes another call that can start, both go to workers and overlap as
before. A width-1 program therefore pays the dispatch but no thread hop. What it costs:
such a call no longer overlaps the body's own work until that point. A starter thread
hands a call still waiting after 2 ms to a worker, so a body that computes for 50 ms
after a lone call loses about 6 ms of overlap (the grace, plus up to the 5 ms GIL switch
interval before the starter runs; measured: 56 ms, as before, since a worker given the
call at once also waited for the GIL), and a body that blocks on what the call does
without using its value (an event, a queue) is released. Under a deadline every call
goes to a worker, as before: a call on the body's thread could not be interrupted.

**A signature that never overlaps stops dispatching** (`_serial`): after a few runs in
which every call ran on the body's thread, its runs make each call at once, as plain
Python does, and hand the rest of a run to the engine the moment a call could overlap.

Every dispatched call runs exactly once. Before the jitted call returns or raises, all of
them have finished. A failed call raises its node-naming `XCSError` where the body needs
its value; a failure the body never needed is raised when the call ends, as the plain
function would have raised it at the call. A call under a JAX transformation (`jax.jit`,
`jax.grad` or `jax.vmap` of the jitted function) stays on the caller's thread, because
JAX's trace state is per thread.

**Code run as written** (`as_written=True`: jit's structural fallback, an opaque
composite run as written) takes the same path with the body not rewritten and each
call waited for where it is made (`_AsWrittenDispatcher`): the body sees values, never
a `LazyResult`, and nothing overlaps, but each leaf call is still a node of the run,
with its retries, deadlines, hooks and node-naming error.

Numeric leaves (`numeric=True`, not stochastic, no `preserve_stochasticity`) run through
`_numeric.NumericLeaves`: a `jax.jit` cached per operator and call shape, so their Python
bodies run once per new shape, as in a plan.

`ExecutionOptions`, one consumer each, as in the engine:

| option | in a dynamic run |
|---|---|
| `scheduler` | `"sequential"` (and custom non-engine schedulers) run each call inline when it is made (no overlap, exact); `"parallel"`, `"auto"` and `"wave"` use the shared worker pool (`async def` operators the shared event loop) with dataflow dispatch — there are no waves to wait for, the graph is discovered as the body runs — except for a call made alone, which runs on the body's thread when the body needs it (above); `"dask"` the Dask client; `"noop"` raises `OptionsError` (there is no plan to return) |
| `max_workers` | caps calls in flight; further ready calls queue |
| `timeout_seconds` | bounds the whole call; `ExecutionTimeoutError` names the calls still running |
| `node_timeout_seconds` | bounds each call from its start; the engine's `ExecutionTimeoutError` naming node and operator. Detected whenever the body or the final drain waits, and when a call returns late; inline calls are failed when they return late, as with the engine's inline executor |
| `retries`, `retry_backoff`, `retry_on`, node hooks | `NodeCall`, shared with the engine |
| any of them set in the body | a call made inside an `execution_options(...)` or `track_usage()` block carries a `CallScope` (`_Dispatcher.scope_here`): its retries, hooks, node timeout and meters are the block's wherever a worker runs it; the run's own fields (scheduler, `max_workers`, deadline, result) stay the run's |
| graph hooks | `on_graph_start` once per call (`num_nodes=0`: the graph is not known before the body runs), `on_graph_end` with the number of calls dispatched |
| `return_partial_results`, `include_intermediates` | a function has one return value: the first failure is raised, and the value is the function's |
| `dask_client` | the Dask executor's |
"""

from __future__ import annotations

import functools
import operator as _op
from collections.abc import Callable
from contextvars import Context, copy_context
from types import CellType, FunctionType
from typing import Any

import jax

from .._errors import NodeExecutionError, OptionsError, XCSError
from .._options import ExecutionOptions, current_options, hook_calls
from ..operators import KindMemo, Operator, intercept_calls
from ..scheduling import (
    CallScope,
    EngineScheduler,
    ExecutionPlan,
    ExecutionStats,
    InlineExecutor,
    NodeCall,
    PlanNode,
    Run,
    deliver,
    meters_open,
    resolve_scheduler,
    user_context_vars,
)
from ._async import COROUTINE_TYPES, refuse_coroutine
from ._containers import ATOMS, open_container, resolve_attributes
from ._numeric import NumericLeaves

__all__ = ["Escaping", "LazyResult", "project", "resolve", "run_dynamic"]


class LazyResult:
    """The future output of a dispatched call; see the module docstring."""

    __slots__ = ("_attrs", "_index", "_run")

    def __init__(self, run: Run, index: int, attrs: tuple[str, ...] = ()):
        _set = object.__setattr__  # __setattr__ is the value's; these are the proxy's own
        _set(self, "_run", run)
        _set(self, "_index", index)
        _set(self, "_attrs", attrs)  # a projection: `output.text` of a pending call

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
    """The concrete value: waits for a `LazyResult`, raising its call's error if it failed.

    A leaf's failure reaches the body as the leaf raised it (`NodeExecutionError.as_raised`:
    the original's type, `str`, `args` and attributes, and still a `NodeExecutionError`),
    so `except ValueError as e:` reads what the plain call would have raised; errors of
    the run itself (a timeout) are raised as they are.
    """
    if type(value) is not LazyResult:
        return value
    get = object.__getattribute__
    try:
        out = get(value, "_run").wait(get(value, "_index"))
    except NodeExecutionError as error:
        raised = error.as_raised()
        if raised is error:
            raise
    else:
        for name in get(value, "_attrs"):
            out = getattr(out, name)
        return out
    raise raised


class Escaping(BaseException):  # noqa: N818 - not an error of its own: a carrier
    """A leaf call's failure on its way out of a `try` statement that began after the
    call was made (`_rewrite._escape`).

    Plain Python raises a failed call's error at the call. A dynamic run raises it where
    the body first needs the value, which can be inside a `try` the plain function never
    reached (`pages = [fetch(u) for u in urls]`, then `try: page.lower() except
    TimeoutError:` in a loop). Carried in this wrapper, which no `except` written for
    errors matches, it passes every handler of a `try` that began after the call, and
    is unwrapped by the first one that began before it (whose handlers plain Python
    would have tried) or where the body ends (`_run_body`).
    """

    def __init__(self, error: BaseException, index: int):
        super().__init__(error, index)
        self.error, self.index = error, index

    def unwrapped(self) -> BaseException:
        """The failure as the body was handed it, its cause kept."""
        error = self.error
        error.__suppress_context__ = True
        return error


def project(value: Any, name: str) -> Any:
    """`value.name`, or, while `value` is a pending call's result, a `LazyResult` for it:
    reading a field of a result (`model.complete(p).text`) does not wait for the call."""
    if type(value) is not LazyResult:
        return getattr(value, name)
    get = object.__getattribute__
    run, index = get(value, "_run"), get(value, "_index")
    if run.is_done(index):
        return getattr(resolve(value), name)
    return LazyResult(run, index, (*get(value, "_attrs"), name))


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


# --- the call handler --------------------------------------------------------------------


class _Dispatcher:
    """The call handler while a dynamic body runs: each leaf call becomes a node of `run`.

    Composites run inline (their leaves are dispatched too); numeric leaves are swapped
    for their compiled stand-ins; every other leaf call is added to the engine run with
    the earlier nodes its arguments hold as dependencies, and a `LazyResult` for it is
    returned at once.
    """

    def __init__(self, run: Run, numeric: NumericLeaves | None):
        self.run = run
        self.numeric = numeric
        self.kind = KindMemo()  # the body holds each operator for the run: ids stay its own
        self.ids: dict[str, int] = {}
        # where the body waited for a pending result: (node id, file:line, calls made by
        # then), the evidence for `_rewrite.warn_if_serial`
        self.forced: list[tuple[str, tuple[str, int], int]] = []
        # containers and objects the body stored pending results into, which may outlive
        # the call: settled when it returns (`_stores`)
        self.stores: list[Any] | None = None
        # the options, usage meters and context variables in force where the run started,
        # which its workers see; a call made where others are in force carries them
        # (`scope_here`). `context` is the body's as it starts, set there (`_run_body`).
        self.context: Context | None = None
        self.options = run.options  # what the run started with: `current_options()`
        self.meters = meters_open()
        self.scope: CallScope | None = None  # the last one made, while the body stays in it

    def __call__(
        self,
        operator: Operator,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        node_id: str | None = None,
    ) -> Any:
        kind = self.kind(operator)
        if kind.composite:
            return operator.forward(*args, **kwargs)
        target = operator
        if kind.compiled and self.numeric is not None:
            target = self.numeric.leaf(operator, len(args), tuple(kwargs))
        lazies = _lazies(args)
        if kwargs:
            _collect(kwargs, lazies)
        if lazies:
            deps = tuple(dict.fromkeys(object.__getattribute__(x, "_index") for x in lazies))
            bind = _bind_lazies(args, kwargs)
        else:  # the common call: its inputs are known, it depends on nothing
            deps, bind = (), _bind_constant(args, kwargs)
        name = operator.name
        scope = None
        if copy_context() != self.context:  # the body entered a block, or set a variable
            scope = self.scope_here()
        run = self.run
        with run.lock:  # type: ignore[union-attr]
            node_id = self._fresh(node_id or name.replace(".", "_"))
            node = PlanNode(node_id, name, target, deps, bind, kind.is_async)
            return LazyResult(run, run.add(node, scope))

    def scope_here(self) -> CallScope | None:
        """The scope a call made here runs under: None where the options, meters and the
        user's context variables in force are the run's; else those of the
        `execution_options(...)` or `track_usage()` block the body is in, with the
        variables it set (one per block and values: the calls made in it share it).
        Callers skip it while the body's context is the one it started with."""
        options, meters = current_options(), meters_open()
        variables = user_context_vars(copy_context(), self.context)
        if options is self.options and meters is self.meters and not variables:
            return None
        scope = self.scope
        if (
            scope is None
            or scope.options is not options
            or scope.meters is not meters
            or not _same_values(scope.variables, variables)
        ):
            scope = self.scope = CallScope(options, meters, variables)
        return scope

    def _fresh(self, base: str) -> str:
        n = self.ids.get(base, 0)
        self.ids[base] = n + 1
        return base if n == 0 else f"{base}_{n}"


class _AsWrittenDispatcher(_Dispatcher):
    """The call handler of a body run as written (`run_dynamic(..., as_written=True)`):
    each leaf call is a node of the run, as in a dynamic run, and the body waits for it
    at once, so it gets the value (or the call's error) where it made the call, never a
    `LazyResult`: code that was not rewritten must not meet one."""

    def __call__(
        self,
        operator: Operator,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        node_id: str | None = None,
    ) -> Any:
        return resolve(super().__call__(operator, args, kwargs, node_id))


def _same_values(a: tuple[tuple[Any, Any], ...], b: tuple[tuple[Any, Any], ...]) -> bool:
    return len(a) == len(b) and all(x is y and u is v for (x, u), (y, v) in zip(a, b, strict=True))


def _bind_constant(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return lambda results, inputs: (args, kwargs)


def _bind_lazies(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # runs when every dependency finished: each LazyResult resolves without waiting
    return lambda results, inputs: (_resolve_all(args), _resolve_all(kwargs) if kwargs else kwargs)


def _lazies(value: Any) -> list[LazyResult]:
    """The `LazyResult`s in `value`, in any container jit looks inside."""
    found: list[LazyResult] = []
    _collect(value, found)
    return found


def _collect(value: Any, found: list[LazyResult]) -> None:
    kind = type(value)
    if kind is LazyResult:
        found.append(value)
        return
    if kind in ATOMS:  # the common argument: no call to open it
        return
    opened = (value, None) if kind is list or kind is tuple else open_container(value)
    if opened is not None:
        for item in opened[0]:
            if type(item) not in ATOMS:  # a list of numbers: no call per number
                _collect(item, found)


def _resolve_all(value: Any) -> Any:
    """`value` with every `LazyResult` in its containers replaced by the concrete value;
    containers without one are returned as they are."""
    kind = type(value)
    if kind is LazyResult:
        return resolve(value)
    if kind in ATOMS:
        return value
    opened = open_container(value)
    if opened is None:
        return value
    items, rebuild = opened
    new = [_resolve_all(item) for item in items]
    if all(a is b for a, b in zip(new, items, strict=True)):
        return value
    return rebuild(new)


def _resolve_output(value: Any, depth: int = 3) -> Any:
    """The body's return value with no `LazyResult` left in it: containers are rebuilt,
    plain objects (`depth` levels of them) have their attributes resolved in place."""
    kind = type(value)
    if kind in ATOMS:
        return value
    if kind is LazyResult:
        return resolve(value)
    opened = open_container(value)
    if opened is None:
        if kind is FunctionType and value.__closure__:  # `return lambda: answer`
            for cell in value.__closure__:
                _resolve_cell(cell, depth)
        elif depth > 0:
            resolve_attributes(value, lambda item: _resolve_output(item, depth - 1))
        return value
    items, rebuild = opened
    new = [_resolve_output(item, depth) for item in items]
    if all(a is b for a, b in zip(new, items, strict=True)):
        return value
    return rebuild(new)


def _resolve_cell(cell: CellType, depth: int) -> None:
    """A closure cell of a function the body returned, its `LazyResult`s resolved."""
    try:
        item = cell.cell_contents
    except ValueError:  # not assigned yet
        return
    if type(item) not in ATOMS and type(item) is not FunctionType:  # a recursive helper
        new = _resolve_output(item, depth - 1)
        if new is not item:
            cell.cell_contents = new


# --- entry point -------------------------------------------------------------------------


_NO_PLAN = ExecutionPlan([])  # a dynamic run's graph is discovered as the body runs


def _executor_for(options: ExecutionOptions) -> tuple[Any, str]:
    """The executor dispatched calls go to and the scheduler's name."""
    spec = options.scheduler
    if spec in ("auto", "wave"):  # no waves to wait for: the graph unfolds as the body runs
        spec = "parallel"
    scheduler = resolve_scheduler(spec, _NO_PLAN, options)
    name = getattr(scheduler, "name", None) or type(scheduler).__name__
    if name == "noop":
        raise OptionsError(
            "scheduler='noop' is a dry run of a plan, but this jitted call runs dynamically "
            "(mode='dynamic', or its trace stopped: see explain_jit_selection), so there is "
            "no plan to return; use mode='trace' to get one, or another scheduler"
        )
    executor = scheduler.make_executor(options) if isinstance(scheduler, EngineScheduler) else None
    if executor is None or isinstance(executor, InlineExecutor):  # custom non-engine: inline
        return _BodyThreadExecutor(options), name
    return executor, name


class _BodyThreadExecutor(InlineExecutor):
    """Runs each call inline on the body's thread, where the run's call handler is
    installed: the operator must run concretely, not be dispatched again."""

    def submit(self, index: int, call: NodeCall, done: Any) -> None:
        with intercept_calls(None):
            deliver(done, index, call)


def run_dynamic(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: ExecutionOptions,
    *,
    numeric: NumericLeaves | None,
    graph_hooks: bool = True,
    serialness: Serialness | None = None,
    as_written: bool = False,
) -> tuple[Any, ExecutionStats]:
    """Call `fn(*args, **kwargs)` with asynchronous leaf dispatch; see the module docstring.

    `numeric`: where compiled numeric leaves are cached (`None`: run them as written, for
    `preserve_stochasticity`). `graph_hooks=False` inside a plan node, whose run already
    reported the graph. `serialness`: the signature's, which learns from this run and
    may make it a serial run (`_serial`). `as_written=True`: `fn` runs as written, not
    rewritten, and each leaf call returns its value (`_AsWrittenDispatcher`): its calls
    overlap nothing, but each is still a node of the run, with the run's retries,
    deadlines, hooks and node-naming errors (jit's structural fallback, an opaque
    composite run as written).
    """
    if _holds_tracer((args, kwargs)):  # called under jax.jit/grad/vmap: JAX's trace state
        options = options.replace(scheduler="sequential")  # is per thread; stay on this one
        serialness = None
    run: Any
    if serialness is not None and not as_written and serialness.admits(options):
        run = SerialRun(options)
        dispatcher: _Dispatcher = SerialDispatcher(run, numeric)
        executor, scheduler = None, run.scheduler
    else:
        with intercept_calls(None):  # worker contexts must not see this run's handler
            executor, scheduler = _executor_for(options)
        run = Run.dynamic_run(options, executor, scheduler)
        dispatcher = (_AsWrittenDispatcher if as_written else _Dispatcher)(run, numeric)
    hooks = options.hooks if graph_hooks else ()
    for hook in hook_calls(options, "on_graph_start") if hooks else ():
        hook(num_nodes=0, scheduler=scheduler)
    failed = True
    try:
        out = _run_body(run, dispatcher, fn, args, kwargs, as_written)
        failed = False
        if type(dispatcher.run) is Run and not as_written:
            warn_if_serial(fn, dispatcher)
    finally:
        run.close()
        if executor is not None:
            executor.close()
        stats = run.stats()
        for hook in hook_calls(options, "on_graph_end") if hooks else ():
            hook(num_nodes=stats.nodes_run, seconds=stats.wall_seconds, failed=failed)
        if serialness is not None:
            serialness.saw(run)
    return out, stats


def _name_of(fn: Any) -> str:
    """The jitted body's name for messages: a jitted operator's runs `Operator.__call__(op)`
    through a `functools.partial`, which has no name of its own."""
    if isinstance(fn, functools.partial) and fn.args and isinstance(fn.args[0], Operator):
        return type(fn.args[0]).__name__
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _run_body(
    run: Run, dispatcher: _Dispatcher, fn: Callable[..., Any], args: Any, kwargs: Any,
    as_written: bool,
) -> Any:  # fmt: skip
    with intercept_calls(dispatcher):
        dispatcher.context = copy_context()  # the context its calls see, unless the body
        try:  # changes it (`scope_here`)
            # the rewritten body where there is one
            out = (fn if as_written else entry(fn))(*args, **kwargs)
        except Escaping as carried:  # a failure no handler of the body could catch
            run.finish()
            error = carried.unwrapped()
            _add_lazy_note(error)
            raise error from error.__cause__
        except BaseException as exc:
            run.finish()  # let every dispatched call finish before the error surfaces
            _add_lazy_note(exc)
            raise
    failure = run.finish()
    if type(out) in COROUTINE_TYPES:  # the name only where it is needed: a cheap check
        refuse_coroutine(out, _name_of(fn))
    if failure is not None:
        raise failure
    return out if as_written else _resolve_output(out)  # as written: no LazyResult in it


def _holds_tracer(value: tuple[tuple[Any, ...], dict[str, Any]]) -> bool:
    args, kwargs = value
    if all(type(a) in ATOMS for a in args) and all(type(v) in ATOMS for v in kwargs.values()):
        return False  # the common call: strings and numbers, nothing to flatten
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(value))


def _add_lazy_note(exc: BaseException) -> None:
    if isinstance(exc, TypeError) and "LazyResult" in str(exc) and not isinstance(exc, XCSError):
        exc.add_note(
            "ember_xcs: a dynamic-jit result (LazyResult) reached code that needs a built-in "
            "value; wrap it in str()/int()/... first, or do this work inside an @op"
        )


# the rewrite and serial runs build on LazyResult and resolve above, so they are imported
# once those exist
from ._rewrite import entry, warn_if_serial  # noqa: E402
from ._serial import SerialDispatcher, Serialness, SerialRun  # noqa: E402
