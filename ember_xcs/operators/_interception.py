"""The single seam through which tracing observes operator calls.

`Operator.__call__` asks this module for the current call handler. Outside a trace there
is none and the operator's `forward` runs directly, so an un-jitted call costs one
ContextVar read. `jit` tracing and `autograph` install a handler for the duration of a
trace; because it lives in a ContextVar, a trace in one thread never sees calls made by
another.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

# `handler(operator, args, kwargs)`; a caller that knows a name for the call (a graph's
# node id) passes it as a fourth argument, `node_id`.
CallHandler = Callable[..., Any]

_handler: ContextVar[CallHandler | None] = ContextVar("ember_xcs_call_handler", default=None)


# The handler installed by the innermost active trace, or `None`. The ContextVar's own
# bound `get` rather than a wrapper function: it runs on every operator call and every
# transformed call, where one Python frame is ~0.1 us of a ~4 us jitted dispatch.
current_call_handler: Callable[[], CallHandler | None] = _handler.get


class intercept_calls:  # noqa: N801 - used as a function: `with intercept_calls(h):`
    """Route every `Operator.__call__` in this context through `handler`.

    `None` switches interception off, which the engine uses so that operators it runs
    concretely are never recorded by a trace that happens to be active in the caller.
    (A class, not a `contextlib.contextmanager`: a jitted call enters three of these,
    and a generator-based manager costs ~2.5 µs each against ~0.5.)
    """

    __slots__ = ("_handler", "_token")

    def __init__(self, handler: CallHandler | None):
        self._handler = handler

    def __enter__(self) -> None:
        self._token = _handler.set(self._handler)

    def __exit__(self, *exc_info: Any) -> None:
        _handler.reset(self._token)
