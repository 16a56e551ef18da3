"""A shared, growing pool of daemon worker threads for I/O-bound operator calls.

Why not `ThreadPoolExecutor`: its `submit` allocates a `Future` and takes two locks per
task, and its size is fixed when it is created. The engine needs neither futures (results
go straight onto the run's completion queue) nor a fixed size (a run of 111 independent
LLM calls wants 111 threads, a chain wants one). This pool hands out plain callables over a
C-implemented `SimpleQueue`, starts a thread only when every live thread is busy, and lets
a thread exit after 30 s idle, so a burst of width does not pin threads forever.

It is shared by every run in the process: creating threads per run would cost ~50 µs
each on every jitted call.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any

__all__ = ["WorkerPool", "shared_pool"]

_IDLE_SECONDS = 30.0


class WorkerPool:
    """Threads that run submitted zero-argument callables; grows on demand.

    A task that raises has its traceback printed and its `then` skipped; the thread
    carries on. The engine's tasks never raise (they return the outcome instead).
    """

    def __init__(self, name: str = "ember-xcs-worker", idle_seconds: float = _IDLE_SECONDS):
        self._name = name
        self._idle_seconds = idle_seconds
        self._tasks: SimpleQueue[tuple[Callable[[], Any], Any]] = SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0  # threads waiting for work
        self._queued = 0  # tasks submitted but not yet taken
        self._ids = 0

    def submit(self, task: Callable[[], Any], then: Callable[[Any], None] | None = None) -> None:
        """Queue `task`; start a thread if none is free to take it.

        `then(result)` runs on the worker after it has counted itself idle again, so
        whoever `then` wakes (the engine, through its completion queue) already sees the
        thread as free: `busy()` is exact when a run returns, and the next submit reuses
        this thread instead of starting another.
        """
        with self._lock:
            self._queued += 1
            spawn = self._queued > self._idle
            if spawn:
                self._threads += 1
                self._idle += 1
                self._ids += 1
                ident = self._ids
        self._tasks.put((task, then))
        if spawn:
            threading.Thread(target=self._work, name=f"{self._name}-{ident}", daemon=True).start()

    def reserve(self, count: int) -> None:
        """Start threads until `count` are free to take work at once.

        Starting threads on demand, one per submission, lets the first calls of a wide
        run finish before the last ones start on a busy machine (a thread start costs
        ~75 µs). The engine reserves a plan's width before submitting, so the first
        100-wide run reaches 100 in flight. Idle threads still retire after 30 s.
        """
        with self._lock:
            missing = count - (self._idle - self._queued)
            first = self._ids + 1
            if missing > 0:
                self._threads += missing
                self._idle += missing
                self._ids += missing
        for ident in range(first, first + max(missing, 0)):
            threading.Thread(target=self._work, name=f"{self._name}-{ident}", daemon=True).start()

    def busy(self) -> int:
        """Threads running a task right now."""
        with self._lock:
            return self._threads - self._idle

    def size(self) -> int:
        """Live threads, busy or idle."""
        with self._lock:
            return self._threads

    def _work(self) -> None:
        lock, tasks = self._lock, self._tasks
        while True:
            try:
                item = tasks.get(timeout=self._idle_seconds)
            except Empty:
                with lock:
                    if self._queued == 0:  # nothing is coming for us: retire
                        self._threads -= 1
                        self._idle -= 1
                        return
                continue
            with lock:
                self._queued -= 1
                self._idle -= 1
            task, then = item
            try:
                result = task()
            except BaseException:  # noqa: BLE001 - report it; the thread keeps serving
                traceback.print_exc()
                then = None
            with lock:
                self._idle += 1
            if then is not None:
                then(result)


_shared: WorkerPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> WorkerPool:
    """The process-wide pool the thread executor uses."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = WorkerPool()
    return _shared
