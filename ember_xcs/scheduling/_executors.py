"""Executors: where a `NodeCall` runs. The engine loop is the same for all of them.

An executor has `capacity` (how many calls it can run at once; `None` for no limit of its
own), `submit(index, call, done)` which must eventually put `(index, ok, value)` on the
`done` queue, optionally `submit_async(index, call, done)` for `async def` operators,
`reserve(width)` (called once per run with the most calls it can have in flight) and
`run_here(index, call, done)` (run a call on the calling thread, as `submit` would run it
elsewhere: the engine uses it for a call it would otherwise only wait for),
`on_caller_thread = True` when `submit` runs every call on the thread that calls it
(then a plan run's records name that thread once per run), and `close()`.
Writing one is the way to plug a new backend into ember_xcs.
"""

from __future__ import annotations

import contextvars
from queue import SimpleQueue
from typing import Any, Protocol

from .._options import ExecutionOptions
from ._async_loop import background_loop, on_background_loop
from ._node_call import NodeCall
from ._pool import shared_pool

__all__ = ["Executor", "InlineExecutor", "ThreadExecutor"]

Done = SimpleQueue  # of (index, ok, value)


class Executor(Protocol):
    capacity: int | None

    def submit(self, index: int, call: NodeCall, done: Done) -> None: ...

    def close(self) -> None: ...


def outcome(index: int, call: NodeCall) -> tuple[int, bool, Any]:
    """Run `call`; return `(index, ok, value or exception)`. Never raises."""
    try:
        return index, True, call()
    except BaseException as exc:  # noqa: BLE001 - the engine decides what to do with it
        return index, False, exc


def deliver(done: Done, index: int, call: NodeCall) -> None:
    """Run `call` and put its outcome on `done`; never raises."""
    done.put(outcome(index, call))


class InlineExecutor:
    """Runs each call on the caller's thread, one at a time: the sequential scheduler."""

    capacity = 1
    on_caller_thread = True  # every call runs on the thread that submits it

    def __init__(self, options: ExecutionOptions | None = None):
        pass

    def submit(self, index: int, call: NodeCall, done: Done) -> None:
        try:  # deliver(), inlined: this is the sequential scheduler's whole per-node cost
            done.put((index, True, call()))
        except BaseException as exc:  # noqa: BLE001 - the engine decides what to do with it
            done.put((index, False, exc))

    def close(self) -> None:
        pass


class ThreadExecutor:
    """Sync calls on the shared worker pool, async calls on the shared event loop.

    The caller's context (including `execution_options`) is captured once and copied
    into every call, so options and other ContextVars reach the workers.
    """

    capacity = None

    def __init__(self, options: ExecutionOptions | None = None):
        self._pool = shared_pool()
        self._context = contextvars.copy_context()

    def submit(self, index: int, call: NodeCall, done: Done) -> None:
        context = self._context.copy()
        self._pool.submit(lambda: context.run(outcome, index, call), done.put)

    def run_here(self, index: int, call: NodeCall, done: Done) -> None:
        """Run `call` on the calling thread, in the context a worker would give it."""
        done.put(self._context.copy().run(outcome, index, call))

    def reserve(self, width: int) -> None:
        """Have `width` threads ready before a run of that width starts submitting."""
        self._pool.reserve(width)

    def submit_async(self, index: int, call: NodeCall, done: Done) -> None:
        loop = background_loop()
        context = self._context.copy()

        def start() -> None:
            task = loop.create_task(call.acall(), context=context)
            task.add_done_callback(lambda t: done.put(_task_outcome(index, t)))

        if on_background_loop():  # a completion callback releasing the next call: schedule it
            start()
        else:
            loop.call_soon_threadsafe(start)

    def close(self) -> None:
        pass


def _task_outcome(index: int, task: Any) -> tuple[int, bool, Any]:
    if task.cancelled():
        import asyncio

        return index, False, asyncio.CancelledError(f"node task {index} was cancelled")
    exc = task.exception()
    return (index, False, exc) if exc is not None else (index, True, task.result())
