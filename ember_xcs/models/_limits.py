"""`CallLimits`: a concurrency cap, a requests-per-second limit and in-flight counters.

One object serves threads and asyncio tasks alike, so a model shared by sync operators on
the engine's worker threads and by `async def` code on an event loop still has a single
cap. Waiters queue first in, first out; `release()` hands the slot straight to the next
waiter (a `threading.Event` for threads, a future completed through
`loop.call_soon_threadsafe` for tasks), so no waiter polls and none can be overtaken.

The rate limit spaces call starts `1 / requests_per_second` apart (no bursts): each call
reserves the next start time under the lock, then sleeps until it outside the lock. The
reservation is taken while holding a concurrency slot, so a capped, rate-limited model
never sends more than `max_concurrency` requests at once, and never faster than the rate.

Models with the same endpoint, model name and limits share one `CallLimits` through
`shared_limits`, which is how every operator using "the same model" shares its cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from collections import deque
from collections.abc import Hashable, Iterator
from typing import Any

from ._errors import ModelConfigError

__all__ = ["CallLimits", "shared_limits"]


class CallLimits:
    """Caps how many calls run at once and how fast they start; counts what it saw.

    **Attributes** (read them, do not set them):

    - `calls`: calls started since creation or `reset_counters()`.
    - `in_flight`: calls running now.
    - `max_in_flight`: the most calls that ran at once.
    """

    def __init__(
        self, max_concurrency: int | None = None, requests_per_second: float | None = None
    ):
        if max_concurrency is not None and (
            not isinstance(max_concurrency, int) or max_concurrency < 1
        ):
            raise ModelConfigError(
                f"max_concurrency must be an int >= 1 or None, got {max_concurrency!r}"
            )
        if requests_per_second is not None and not requests_per_second > 0:
            raise ModelConfigError(
                f"requests_per_second must be > 0 or None, got {requests_per_second!r}"
            )
        self.max_concurrency = max_concurrency
        self.requests_per_second = requests_per_second
        self._lock = threading.Lock()
        self._active = 0  # slots held, including calls waiting for their rate-limited start
        self._waiters: deque[Any] = deque()
        self._next_start = 0.0
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def __repr__(self) -> str:
        return (
            f"CallLimits(max_concurrency={self.max_concurrency}, "
            f"requests_per_second={self.requests_per_second})"
        )

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for a synchronous call (blocks the thread while waiting)."""
        self._acquire()
        try:
            delay = self._reserve_start()
            if delay > 0:
                time.sleep(delay)
            self._started()
            try:
                yield
            finally:
                self._finished()
        finally:
            self._release()

    def aslot(self) -> _AsyncSlot:
        """Hold one slot for a call on an event loop (`async with`; awaits while waiting)."""
        return _AsyncSlot(self)

    def reset_counters(self) -> None:
        """Zero `calls` and `max_in_flight` (between measurements)."""
        with self._lock:
            self.calls = 0
            self.max_in_flight = self.in_flight

    # --- concurrency -------------------------------------------------------------------

    def _free(self) -> bool:
        cap = self.max_concurrency
        return cap is None or (self._active < cap and not self._waiters)

    def _acquire(self) -> None:
        with self._lock:
            if self._free():
                self._active += 1
                return
            event = threading.Event()
            self._waiters.append(event)
        event.wait()  # _release transferred its slot to us

    async def _aacquire(self) -> None:
        with self._lock:
            if self._free():
                self._active += 1
                return
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            waiter = (loop, future)
            self._waiters.append(waiter)
        try:
            await future
        except asyncio.CancelledError:
            with self._lock:
                if waiter in self._waiters:  # not handed a slot yet: just leave the queue
                    self._waiters.remove(waiter)
            # otherwise _wake sees the cancelled future and releases the slot it was given
            raise

    def _release(self) -> None:
        with self._lock:
            if not self._waiters:
                self._active -= 1
                return
            waiter = self._waiters.popleft()  # the slot passes on: _active is unchanged
        if isinstance(waiter, threading.Event):
            waiter.set()
            return
        loop, future = waiter
        if asyncio._get_running_loop() is loop:  # same loop: no wake-up write to its pipe
            self._wake(future)
        else:
            loop.call_soon_threadsafe(self._wake, future)

    def _wake(self, future: asyncio.Future[None]) -> None:
        if future.done():  # the waiting task was cancelled after being chosen
            self._release()
        else:
            future.set_result(None)

    # --- rate and counters -------------------------------------------------------------

    def _reserve_start(self) -> float:
        """Seconds to wait before starting, reserving the next start slot."""
        if self.requests_per_second is None:
            return 0.0
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + 1.0 / self.requests_per_second
        return start - now

    def _started(self) -> None:
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _finished(self) -> None:
        with self._lock:
            self.in_flight -= 1


class _AsyncSlot:
    """`CallLimits.aslot()`: a plain class, not a generator context (a hot path per call)."""

    __slots__ = ("_limits",)

    def __init__(self, limits: CallLimits):
        self._limits = limits

    async def __aenter__(self) -> None:
        limits = self._limits
        await limits._aacquire()
        try:
            delay = limits._reserve_start()
            if delay > 0:
                await asyncio.sleep(delay)
        except BaseException:  # cancelled while waiting for its start time
            limits._release()
            raise
        limits._started()

    async def __aexit__(self, *exc: object) -> None:
        self._limits._finished()
        self._limits._release()


_shared: weakref.WeakValueDictionary[Hashable, CallLimits] = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


def shared_limits(
    key: Hashable, max_concurrency: int | None, requests_per_second: float | None
) -> CallLimits:
    """The `CallLimits` for `key` and these limits, created on first use.

    Models keep a reference; once every model using it is gone, it is freed.
    """
    full_key = (key, max_concurrency, requests_per_second)
    with _shared_lock:
        limits = _shared.get(full_key)
        if limits is None:
            limits = CallLimits(max_concurrency, requests_per_second)
            _shared[full_key] = limits
        return limits
