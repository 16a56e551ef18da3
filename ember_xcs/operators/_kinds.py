"""What kind of operator this is: the one place jit, transforms and the engine ask.

| kind | meaning | decided by |
|---|---|---|
| `is_async` | calling it returns a coroutine: the engine awaits it on the event loop | `async def forward`, or an `op` over an `async def` function |
| `composite` | jit traces into its `forward` (nested ensembles flatten) | fields holding operators, unless the class says `composite = False`; never numeric or async |
| `numeric` | pure array code: jit compiles its calls with `jax.jit` | `numeric = True` on the class or instance (`@op(numeric=True)`) |
| `stochastic` | results must never be cached, reused or frozen by `jax.jit` | `stochastic = True` |
| `compiled` | a leaf call that jit runs under `jax.jit` | numeric, not stochastic, not async |

Internal wrappers that hold operators as data (a numeric segment's members, a compiled
leaf's operator) set `composite = False` on their class, so they are never traced into
by accident. Callers that ask about the same operator many times in one run or build
keep a `KindMemo`: the answer is computed once per operator object there.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import weakref
from typing import Any

from ._base import Operator

__all__ = ["KindMemo", "OperatorKind", "engine_form", "is_async_operator", "operator_kind"]


@dataclasses.dataclass(frozen=True, slots=True)
class OperatorKind:
    """See the module docstring."""

    composite: bool
    numeric: bool
    is_async: bool
    stochastic: bool

    @property
    def compiled(self) -> bool:
        return self.numeric and not self.stochastic and not self.is_async


def is_async_operator(operator: Operator) -> bool:
    """True when calling the operator returns a coroutine: its `forward` is an `async def`,
    or it wraps (`__wrapped__`, as `op` sets) an `async def` function or callable."""
    if _is_coroutine_function(type(operator).forward):
        return True
    wrapped = vars(operator).get("__wrapped__")
    if wrapped is None:
        return False
    if type(wrapped) is types.FunctionType:
        return _is_coroutine_function(wrapped)
    if inspect.iscoroutinefunction(wrapped):
        return True
    return callable(wrapped) and inspect.iscoroutinefunction(type(wrapped).__call__)


# `inspect.iscoroutinefunction` unwraps partials and methods on every call (a few µs);
# jit asks about the same functions on every call it dispatches, so plain functions'
# answers are kept (a function's code flags never change; the key dies with it).
_coroutine_functions: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _is_coroutine_function(fn: Any) -> bool:
    if type(fn) is not types.FunctionType:
        return inspect.iscoroutinefunction(fn)
    try:
        return _coroutine_functions[fn]
    except KeyError:
        answer = _coroutine_functions[fn] = inspect.iscoroutinefunction(fn)
        return answer


def engine_form(operator: Operator) -> Operator:
    """What the engine runs for a node of `operator`: the async leaf the operator offers
    (`async_leaf()`, e.g. an `LLMOperator` over the HTTP model), awaited on the event loop
    instead of holding a worker thread for the whole request, else the operator itself.

    Looked up on the class, so a wrapper that forwards attributes (`jit(operator)`) is run
    as itself.
    """
    offer = getattr(type(operator), "async_leaf", None)
    leaf = offer(operator) if offer is not None else None
    return operator if leaf is None else leaf


def operator_kind(operator: Operator) -> OperatorKind:
    """The kind of `operator`, computed now (see `KindMemo` to compute it once per run)."""
    numeric = bool(getattr(operator, "numeric", False))
    is_async = is_async_operator(operator)
    composite = (
        getattr(type(operator), "composite", None) is not False
        and not numeric
        and not is_async
        and operator.is_composite
    )
    return _kind(composite, numeric, is_async, bool(getattr(operator, "stochastic", False)))


@functools.cache
def _kind(composite: bool, numeric: bool, is_async: bool, stochastic: bool) -> OperatorKind:
    # one frozen instance per combination: building a frozen dataclass costs ~2 µs, and jit
    # asks for each operator's kind on every call
    return OperatorKind(composite, numeric, is_async, stochastic)


class KindMemo:
    """`operator_kind` once per operator object, for one run or one build (operators are
    held by the caller for that long, so an `id` is never reused meanwhile)."""

    __slots__ = ("_kinds",)

    def __init__(self) -> None:
        self._kinds: dict[int, OperatorKind] = {}

    def __call__(self, operator: Any) -> OperatorKind:
        kind = self._kinds.get(id(operator))
        if kind is None:
            kind = self._kinds[id(operator)] = operator_kind(operator)
        return kind
