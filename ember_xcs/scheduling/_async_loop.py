"""One background event loop for `async def` operators.

Async operators are awaited on this loop, so a thousand concurrent async LLM calls cost
one thread, not a thousand. The loop starts on first use in a daemon thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any

from .._errors import ExecutionError

__all__ = ["background_loop", "on_background_loop", "run_coroutine"]

_loop: asyncio.AbstractEventLoop | None = None
_loop_thread: int | None = None
_lock = threading.Lock()


def background_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started on first call."""
    global _loop
    if _loop is None:
        with _lock:
            if _loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(
                    target=_run, args=(loop, ready), name="ember-xcs-async", daemon=True
                )
                thread.start()
                ready.wait()
                _loop = loop
    return _loop


def on_background_loop() -> bool:
    """True on the loop's own thread, where blocking on the loop would deadlock it."""
    return _loop_thread is not None and threading.get_ident() == _loop_thread


def blocking_loop_error() -> ExecutionError:
    """The error for blocking the shared loop from its own thread (it would deadlock)."""
    return ExecutionError(
        "an async operator ran a graph synchronously from inside the event loop, which "
        "would block the loop its own async nodes need; run it in a thread with "
        "`await asyncio.to_thread(...)` or make that operator a plain def"
    )


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run `coro` on the shared loop in a copy of this thread's context; block until done."""
    if on_background_loop():
        coro.close()
        raise blocking_loop_error()
    loop = background_loop()
    context = contextvars.copy_context()
    outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def start() -> None:
        task = loop.create_task(coro, context=context)
        task.add_done_callback(lambda t: _copy_outcome(t, outcome))

    loop.call_soon_threadsafe(start)
    return outcome.result()


def _copy_outcome(task: asyncio.Task[Any], outcome: concurrent.futures.Future[Any]) -> None:
    if task.cancelled():
        outcome.set_exception(asyncio.CancelledError("the operator's task was cancelled"))
    elif task.exception() is not None:
        outcome.set_exception(task.exception())  # type: ignore[arg-type]
    else:
        outcome.set_result(task.result())


def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    global _loop_thread
    _loop_thread = threading.get_ident()
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()
