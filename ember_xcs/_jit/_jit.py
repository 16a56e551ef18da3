"""`jit`: trace once per input signature, then replay a parallel plan.

The state machine of one jitted callable fits on a screen (`JittedFunction.__call__`):

1. inside another trace or dynamic run, call the body inline, so the outer one sees its
   operator calls (nested jit flattens into the outer plan);
2. compute the signature key (structure only: `_keys`);
3. look the key up in the LRU cache; on a miss, trace symbolically and choose a strategy
   (`_strategies.select`) — no operator runs while tracing;
4. run the entry with this call's inputs: replay the plan on the scheduler, or run the
   body dynamically, or run it as written.

The first call therefore traces *and then runs the plan with the real inputs*, exactly as
every later call does; nothing computed during tracing is ever returned.

`jit` accepts plain functions, `Operator` instances (returns a `JittedOperator`, still an
operator) and `Operator` subclasses (the class is returned with a jitted `__call__`; each
instance gets its own cache, because plans hold that instance's sub-operators). Methods
of ordinary classes work too: the jitted function binds like a function and keeps one
cache per instance.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar, overload

from .._errors import TraceError
from .._options import current_options, hook_calls
from ..operators import Operator, current_call_handler
from ..scheduling import usage_meter
from ._async import refuse_async_callable
from ._cache import PlanCache
from ._keys import KeyMaker, StructureGuard
from ._modes import JitConfig, JITMode
from ._stats import JitStats, StatsRecorder, combine
from ._strategies import Entry, PlanEntry, Target, select

__all__ = ["JittedFunction", "JittedOperator", "jit", "structural_jit"]

F = TypeVar("F", bound=Callable[..., Any])

_registry: weakref.WeakSet[JittedFunction] = weakref.WeakSet()


class JittedFunction:
    """A jitted callable: a plan cache, stats and the strategy chosen per signature."""

    def __init__(self, target: Target, config: JitConfig, *, key_fn: Callable[..., Any]):
        self._target = target
        self._config = config
        self._keys = KeyMaker(key_fn, config.static_argnums, config.static_argnames)
        self._cache: PlanCache[Entry] = PlanCache(config.cache_size, on_evict=self._evicted)
        self._stats = StatsRecorder(target.name)
        self._last: Entry | None = None
        self._bound: dict[int, tuple[Any, JittedFunction]] = {}
        self._bound_lock = threading.Lock()
        _registry.add(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if current_call_handler() is not None:  # inside a trace or dynamic run: inline
            return self._target.call(*args, **kwargs)
        key, leaves, split_args, split_kwargs = self._keys(args, kwargs)
        build = lambda: self._select(key, leaves, split_args, split_kwargs)  # noqa: E731
        entry = self._cache.get(key)  # the common case: no lock
        hit = entry is not None
        if not hit:
            entry, hit = self._cache.get_or_build(key, build)
        guard = getattr(entry, "guard", None)
        if guard is not None and not guard.holds():  # a traced composite changed: trace again
            self._cache.discard(key, entry)
            entry, hit = self._cache.get_or_build(key, build)
        options = current_options()
        self._report_cache(options, key, hit)
        self._last = entry
        start = time.perf_counter()
        with usage_meter() as usage:  # sums the model calls made anywhere for this call
            try:
                out, run_stats = entry.run(self._target, leaves, args, kwargs, options)
            finally:
                self._stats.call_took(time.perf_counter() - start)
                self._stats.used(usage)
        self._record(entry, time.perf_counter() - start, run_stats)
        return out

    # --- pieces of the state machine ---------------------------------------------------------

    def _select(self, key: Any, leaves: list[Any], args: Any, kwargs: Any) -> Entry:
        def on_trace(seconds: float, detail: str) -> None:
            self._stats.add(traces=1, trace_seconds=seconds)
            for hook in hook_calls(current_options(), "on_compile"):
                hook(target=self._target.name, seconds=seconds, detail=detail)

        options = current_options()
        for hook in hook_calls(options, "on_compile_start"):
            hook(target=self._target.name, key=key)
        start = time.perf_counter()
        entry = select(self._target, self._config, key, leaves, args, kwargs, on_trace)
        self._stats.compiled(entry.strategy.value, time.perf_counter() - start)
        if isinstance(entry, PlanEntry) and self._target.root is not None:
            entry.guard = StructureGuard(self._target.root)
        return entry

    def _evicted(self, key: Any) -> None:
        for hook in hook_calls(current_options(), "on_cache_evict"):
            hook(target=self._target.name, key=key)

    def _report_cache(self, options: Any, key: Any, hit: bool) -> None:
        self._stats.count_call(hit)
        for hook in hook_calls(options, "on_cache_hit" if hit else "on_cache_miss"):
            hook(target=self._target.name, key=key)

    def _record(self, entry: Entry, seconds: float, run_stats: Any) -> None:
        if isinstance(entry, PlanEntry):
            plan = entry.compiled.plan
            self._stats.record_run(
                strategy=entry.strategy.value,
                seconds=seconds,
                nodes=len(plan),
                leaf_calls=entry.compiled.leaf_calls,
                critical_path=plan.critical_path_length,
                in_flight=run_stats.max_in_flight,
            )
        elif entry.strategy is JITMode.DYNAMIC:
            self._stats.record_dynamic(
                in_flight=run_stats.max_in_flight, leaf_calls=run_stats.nodes_run
            )
        else:
            self._stats.add(plain_calls=1)
            self._stats.set(last_strategy=entry.strategy.value)

    # --- binding as a method -----------------------------------------------------------------

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return self._bound_to(instance)

    def _bound_to(self, instance: Any) -> JittedFunction:
        with self._bound_lock:
            found = self._bound.get(id(instance))
            if found is not None and found[0]() is instance:
                return found[1]
            fn = functools.partial(self._target.plain, instance)
            target = Target(self._target.name, fn, fn, fn, None)
            bound = JittedFunction(target, self._config, key_fn=fn)
            self._bound[id(instance)] = (_weak(instance, self._bound, id(instance)), bound)
            return bound

    # --- public helpers ----------------------------------------------------------------------

    def invalidate(self) -> None:
        """Drop every cached plan (and those of bound methods); the next call traces again.

        Call it after changing something a trace read as a constant: a closure variable, a
        global, or a field of an operator the function uses.
        """
        self._cache.clear()
        with self._bound_lock:
            for _, bound in self._bound.values():
                bound.invalidate()

    @property
    def mode(self) -> JITMode:
        return self._config.mode

    def stats(self) -> JitStats:
        own = self._own_stats()
        bound = [b.stats() for _, b in list(self._bound.values())]
        return combine(self._target.name, [own, *bound]) if bound else own

    def _own_stats(self) -> JitStats:
        entries = list(self._cache.values())
        segments = [s for e in entries for s in e.segments()]
        return self._stats.snapshot(
            cache_evictions=self._cache.evictions,
            cache_entries=len(entries),
            signatures=tuple(e.signature for e in entries),
            numeric_segments=len(segments),
            xla_compiles=sum(s.compiles for s in segments),
        )

    def entries(self) -> list[Entry]:
        """The cached entries, least recently used first."""
        return list(self._cache.values())

    @property
    def last_entry(self) -> Entry | None:
        return self._last

    def __repr__(self) -> str:
        return f"jit({self._target.name}, mode={self._config.mode.value!r})"


def _weak(instance: Any, table: dict[int, Any], key: int) -> Callable[[], Any]:
    """A weak reference that removes `table[key]` when `instance` dies (strong if it can't)."""
    try:
        return weakref.ref(instance, lambda _: table.pop(key, None))
    except TypeError:
        return lambda: instance


class JittedOperator(Operator):
    """`jit(operator_instance)`: an operator whose calls go through a jit cache.

    It holds the original operator in `operator`, so it is a composite: used inside
    another jitted function it is traced through like any composite.
    """

    def __init__(self, operator: Operator, config: JitConfig):
        self.operator = operator
        self._jit = _operator_jit(operator, config)

    @property
    def name(self) -> str:
        return self.operator.name

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.operator(*args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        handler = current_call_handler()
        if handler is not None:
            return handler(self, args, kwargs)
        return self._jit(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # behave like the wrapped operator
        if name.startswith("__") or name in ("operator", "_jit"):
            raise AttributeError(name)
        return getattr(self.operator, name)


def _operator_jit(operator: Operator, config: JitConfig) -> JittedFunction:
    call = functools.partial(Operator.__call__, operator)  # through the handler: traced
    target = Target(operator.name, call, operator.forward, operator.forward, operator)
    return JittedFunction(target, config, key_fn=operator.forward)


def _jit_class(cls: type[Operator], config: JitConfig) -> type[Operator]:
    base_call = cls.__call__
    states: dict[int, tuple[Any, JittedFunction]] = {}
    lock = threading.Lock()

    def state_for(instance: Operator) -> JittedFunction:
        with lock:
            found = states.get(id(instance))
            if found is not None and found[0]() is instance:
                return found[1]
            call = functools.partial(base_call, instance)
            target = Target(instance.name, call, instance.forward, instance.forward, instance)
            jitted = JittedFunction(target, config, key_fn=instance.forward)
            states[id(instance)] = (_weak(instance, states, id(instance)), jitted)
            return jitted

    @functools.wraps(base_call)
    def __call__(self: Operator, *args: Any, **kwargs: Any) -> Any:
        if current_call_handler() is not None:
            return base_call(self, *args, **kwargs)
        return state_for(self)(*args, **kwargs)

    cls.__call__ = __call__  # type: ignore[method-assign]
    cls.__xcs_jit__ = (config, states)  # type: ignore[attr-defined]
    return cls


def _jit_function(fn: Callable[..., Any], config: JitConfig) -> JittedFunction:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", type(fn).__name__)
    target = Target(name, fn, fn, fn, None)
    jitted = JittedFunction(target, config, key_fn=fn)
    functools.update_wrapper(jitted, fn, updated=())
    return jitted


def _refuse_generator(fn: Any, name: str) -> None:
    """Raise `TraceError` when `fn`'s body is a generator function.

    Calling a generator function runs none of its body: the body runs as the caller
    iterates, after the jitted call has returned. A trace would record no calls and hand
    back a generator holding placeholders (iterating it raised "a jit placeholder ... was
    used after its trace ended"), and a dynamic run would end before any call was made.
    A leaf operator that yields is fine: it is one call whose value is the generator.
    """
    if isinstance(fn, type):
        return  # an Operator class: its instances may be leaves, which may yield
    if isinstance(fn, Operator):
        if not fn.is_composite:
            return
        body: Any = fn.forward
    else:
        body = fn if inspect.isroutine(fn) or not callable(fn) else type(fn).__call__
    if inspect.isgeneratorfunction(body):
        raise TraceError(
            f"jit({name}): the body of {name} is a generator (it has `yield`), so its "
            "operator calls would happen only as the caller iterates, after the jitted "
            "call has returned. Return a list instead (`return [step(x) for x in items]`), "
            "or jit the function that consumes the generator"
        )


def _apply(fn: Any, config: JitConfig) -> Any:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "name", None) or repr(fn)
    refuse_async_callable(fn, name)
    _refuse_generator(fn, name)
    if isinstance(fn, type) and issubclass(fn, Operator):
        return _jit_class(fn, config)
    if isinstance(fn, Operator):
        return JittedOperator(fn, config)
    if isinstance(fn, JittedFunction):
        return fn
    if not callable(fn):
        raise TypeError(f"jit() needs a function, an Operator or an Operator class, got {fn!r}")
    return _jit_function(fn, config)


@overload
def jit(fn: F, /) -> F: ...


@overload
def jit(
    fn: None = None,
    /,
    *,
    mode: str | JITMode = "auto",
    preserve_stochasticity: bool = False,
    static_argnums: int | tuple[int, ...] = (),
    static_argnames: str | tuple[str, ...] = (),
    cache_size: int = 128,
    strict: bool = False,
    disable_strategies: str | tuple[str, ...] = (),
) -> Callable[[F], F]: ...


def jit(
    fn: Any = None,
    /,
    *,
    mode: str | JITMode = "auto",
    preserve_stochasticity: bool = False,
    static_argnums: int | tuple[int, ...] = (),
    static_argnames: str | tuple[str, ...] = (),
    cache_size: int = 128,
    strict: bool = False,
    disable_strategies: str | tuple[str, ...] = (),
) -> Any:
    """Compile a function or operator into a parallel plan, traced once per input signature.

    Works bare (`@xcs.jit`) and with arguments (`@xcs.jit(mode="trace")`), on functions,
    `Operator` instances and `Operator` subclasses.

    **Arguments:**

    - `mode`: `"auto"` (default), `"trace"`, `"structural"` or `"dynamic"`; see `JITMode`
      and `docs/jit.md`.
    - `preserve_stochasticity`: never compile numeric operators with `jax.jit` (which would
      freeze Python-level randomness at trace time). jit has no value cache: every leaf
      operator, stochastic or not, runs on every call.
    - `static_argnums` / `static_argnames`: arguments whose *values* are part of the
      cache key and are concrete during tracing (`for i in range(n)` then traces).
    - `cache_size`: plans kept per jitted callable (LRU).
    - `strict`: raise `TraceError` with the reason instead of falling back when a trace
      stops.
    **Returns:** the jitted callable: a function with the same signature, a
    `JittedOperator` for an operator instance, or the class itself (with a jitted
    `__call__`) for an `Operator` subclass.

    **Raises:** `OptionsError` for an unknown mode or a bad option value; `TraceError`
    when `fn` is `async def`, or when `strict=True` and a trace stops.

    - `disable_strategies`: strategies never to use, from `"trace"`, `"structural"`,
      `"dynamic"` and `"plain"` (run as written, overlapping nothing); the strongest one left is
      chosen per signature, and `TraceError` says why when none is left for a call
      (`OptionsError` at once when the mode leaves none at all).

    !!! example
        ```python
        @xcs.op
        def draft(question: str, style: str) -> str:
            return f"{style}: {question}"       # stands in for an LLM call

        @xcs.op
        def judge(question: str, drafts: list[str]) -> str:
            return max(drafts, key=len)

        @xcs.jit
        def answer(question: str) -> str:
            drafts = [draft(question, s) for s in ("brief", "formal", "plain")]  # at once
            return judge(question, drafts)

        assert answer("what is XLA?") == "formal: what is XLA?"
        assert xcs.get_jit_stats(answer).leaf_calls == 4
        ```
    """
    config = JitConfig.make(
        mode,
        preserve_stochasticity,
        static_argnums,
        static_argnames,
        cache_size,
        strict,
        disable_strategies,
    )
    if fn is None:
        return functools.partial(_apply, config=config)
    return _apply(fn, config)


def structural_jit(fn: Any = None, /, **options: Any) -> Any:
    """`jit(fn, mode="structural", ...)`: trace into composite operators, never dynamic."""
    return jit(fn, mode=JITMode.STRUCTURAL, **options)


def registered() -> list[JittedFunction]:
    return list(_registry)


def jit_states(obj: Any) -> list[JittedFunction]:
    """The `JittedFunction`s behind a jitted function, operator, class or instance."""
    if isinstance(obj, JittedFunction):
        return [obj]
    if isinstance(obj, JittedOperator):
        return [obj._jit]
    marker = getattr(type(obj) if not isinstance(obj, type) else obj, "__xcs_jit__", None)
    if marker is None:
        return []
    _, states = marker
    alive = [(ref(), state) for ref, state in list(states.values())]
    if isinstance(obj, type):
        return [state for inst, state in alive if inst is not None]
    return [state for inst, state in alive if inst is obj]


def stats_of(obj: Any) -> JitStats | None:
    states = jit_states(obj)
    if not states:
        return None
    if len(states) == 1:
        return states[0].stats()
    return combine(getattr(obj, "__name__", type(obj).__name__), [s.stats() for s in states])
