"""The single seam through which tracing observes operator calls.

`Operator.__call__` asks this module for the current call handler. Outside a trace there
is none and the operator's `forward` runs directly, so an un-jitted call costs one
ContextVar read. `jit` tracing and `autograph` install a handler for the duration of a
trace; because it lives in a ContextVar, a trace in one thread never sees calls made by
another.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def intercept_calls(handler: CallHandler | None) -> Iterator[None]:
    """Route every `Operator.__call__` in this context through `handler`.

    `None` switches interception off, which the engine uses so that operators it runs
    concretely are never recorded by a trace that happens to be active in the caller.
    """
    token = _handler.set(handler)
    try:
        yield
    finally:
        _handler.reset(token)
