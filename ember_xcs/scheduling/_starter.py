"""The safety net under a dynamic run's lone calls: start them if the body does not.

A dynamic run leaves a call the body makes while nothing is in flight unstarted, so that
the body runs it on its own thread when it needs the value (`_engine`, "A lone call
waits for the body"). A body may instead go on with slow work of its own, or block on
something that call does through a channel the engine cannot see (a queue, an event, a
file the call writes) without ever using its value. For both, one daemon thread for the
process hands each such call to the run's executor once it has waited `GRACE` seconds:
the body then loses at most that much overlap, and never waits forever.

The thread starts on first use and ends after 30 s with nothing to watch. What it costs:
each lone call wakes it (one notify: about 0.04 ms on a machine where a system call is
slow, next to the 0.15-0.2 ms a thread hop costs there), and a call the body has
started or finished by its grace costs one look at two dicts.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from typing import Any

__all__ = ["GRACE", "watch"]

# Long enough for a body to reach the use of a value it just asked for (tens of µs, a few
# hundred on a loaded machine), short next to a model call; the body blocking on a lock
# or a socket lets this thread run at once, pure Python for up to the 5 ms GIL interval.
GRACE = 0.002
_IDLE_SECONDS = 30.0

_due: deque[tuple[float, Any, int]] = deque()  # (when, run, index), in watch order
_cond = threading.Condition(threading.Lock())
_alive = False


def watch(run: Any, index: int) -> None:
    """Call `run.start_alone(index)` from the starter thread `GRACE` seconds from now."""
    global _alive
    with _cond:
        _due.append((time.perf_counter() + GRACE, run, index))
        if _alive:
            _cond.notify()  # a no-op unless the thread waits for work
            return
        _alive = True
    threading.Thread(target=_loop, name="ember-xcs-starter", daemon=True).start()


def _loop() -> None:
    global _alive
    while True:
        with _cond:
            if not _due and not _cond.wait_for(lambda: _due, timeout=_IDLE_SECONDS):
                _alive = False  # under the lock: a `watch` from now on starts a new thread
                return
            entry = _due.popleft()
        try:
            _look(*entry)
        except Exception:  # noqa: BLE001 - report it and go on: later runs need the thread
            traceback.print_exc()
        del entry  # a run is not kept alive while this thread waits for work


def _look(when: float, run: Any, index: int) -> None:
    delay = when - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    if not run.start_alone(index):  # the body is inside the loop right now: look again
        with _cond:
            _due.append((time.perf_counter() + GRACE, run, index))
