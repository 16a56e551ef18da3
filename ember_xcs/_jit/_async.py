"""`async def` bodies are refused, with what to do instead.

jit returns a value synchronously: it traces a body into a plan, or runs it with dynamic
dispatch, and both need the body's operator calls to happen while it runs. A coroutine
function's body runs only when something awaits it, so jit would see no calls, cache a
plan of nothing and hand back the same coroutine object on every call. Rather than that,
`jit` refuses `async def` functions, methods and operators when it is applied, and a
body that turns out to return a coroutine when it is called.

What works instead: a plain `def` body may call `async def` operators (they are leaves,
awaited on ember_xcs's event loop, concurrently with the other calls), and async code
calls a jitted function with `await asyncio.to_thread(fn, ...)`.
"""

from __future__ import annotations

import inspect
from types import AsyncGeneratorType, CoroutineType
from typing import Any

from .._errors import TraceError
from ..operators import Operator, is_async_operator

__all__ = ["COROUTINE_TYPES", "refuse_async_callable", "refuse_coroutine"]

_ADVICE = (
    "jit runs a body synchronously and returns its value, so it cannot run an `async def` "
    "body. Make it a plain `def`: the `async def` operators it calls still run "
    "concurrently on ember_xcs's event loop; from async code, call the jitted function "
    "with `await asyncio.to_thread(fn, ...)`"
)


def refuse_async_callable(fn: Any, name: str) -> None:
    """Raise `TraceError` when `fn` (a function, method, callable or operator) is async."""
    if isinstance(fn, type) and issubclass(fn, Operator):
        is_async = inspect.iscoroutinefunction(fn.forward)
    elif isinstance(fn, Operator):
        is_async = is_async_operator(fn)
    else:
        call = fn if inspect.isroutine(fn) or not callable(fn) else type(fn).__call__
        is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)
        is_async = is_async or inspect.isasyncgenfunction(fn)
    if is_async:
        raise TraceError(f"jit({name}): {name} is `async def`. {_ADVICE}")


COROUTINE_TYPES = (CoroutineType, AsyncGeneratorType)


def refuse_coroutine(value: Any, name: str) -> None:
    """Raise `TraceError` if a jitted body returned a coroutine (closing it: no warning)."""
    if type(value) not in COROUTINE_TYPES:
        return
    if type(value) is CoroutineType:
        value.close()  # it will never be awaited
    raise TraceError(f"jit({name}): the body returned a coroutine. {_ADVICE}")
