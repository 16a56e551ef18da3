"""The safety net under a dynamic run's lone calls: start them if the body does not.

A dynamic run leaves a call the body makes while nothing is in flight unstarted, so that
the body runs it on its own thread when it needs the value (`_engine`, "A lone call
waits for the body"). A body may instead go on with slow work of its own, or block on
something that call does through a channel the engine cannot see (a queue, an event, a
file the call writes) without ever using its value. For both, one daemon thread for the
process hands each such call to the run's executor once it has waited `GRACE` seconds:
the body then loses at most that much overlap, and never waits forever.

**Waking it costs more than looking.** Notifying a waiting thread is a system call in
the body's thread, and the woken thread then asks the body for the GIL: about 0.06 ms
per lone call on a 2-CPU machine just after a slow call returns, 5-6 % of what a
width-1 call adds under jit there (measured with `benchmarks/ab_width1.py`). So once it
has seen a call, the thread *lingers*: for `LINGER` seconds after the last one it looks
at the queue every `GRACE` seconds, and a call watched meanwhile is only appended to
the queue (one C call, no wake-up): the next look, within `GRACE`, finds it, and the
thread sleeps until its grace is over, as when notified. A width-1 program calling a model in a loop pays the
notify once, not per call. The thread's looks are short (a deque, two clock reads) and
taken while the body waits for its calls; a body running pure Python for the whole
second pays at most one GIL switch per 5 ms switch interval. After `LINGER` with nothing
watched it waits to be notified, and after 30 s more it ends; a later call starts a new
one. A call the body has started or finished by its grace costs one look at two dicts.
"""

from __future__ import annotations

import atexit
import threading
import time
import traceback
from collections import deque
from typing import Any

__all__ = ["GRACE", "LINGER", "watch"]

# Long enough for a body to reach the use of a value it just asked for (tens of µs, a few
# hundred on a loaded machine), short next to a model call; the body blocking on a lock
# or a socket lets this thread run at once, pure Python for up to the 5 ms GIL interval.
GRACE = 0.002
LINGER = 1.0  # seconds the thread keeps looking every GRACE after the last watched call
_IDLE_SECONDS = 30.0

_due: deque[tuple[float, Any, int]] = deque()  # (when, run, index), in watch order
_cond = threading.Condition(threading.Lock())
_alive = False  # a thread exists (set and cleared under `_cond`)
_waiting = False  # it waits to be notified (set under `_cond`, then `_due` is looked at)
_thread: threading.Thread | None = None
_exiting = False  # the interpreter is shutting down: the thread ends at its next look


def watch(run: Any, index: int) -> None:
    """Call `run.start_alone(index)` from the starter thread `GRACE` seconds from now."""
    global _alive, _thread
    _due.append((time.perf_counter() + GRACE, run, index))
    # `_waiting` first: an ending thread clears `_alive` before `_waiting`
    if not _waiting and _alive:
        return  # it lingers: its next look, within GRACE, finds the call
    with _cond:  # it waits (or is about to: it looks at `_due` under this lock first)
        if _alive:
            _cond.notify()
            return
        _alive = True
    _thread = threading.Thread(target=_loop, name="ember-xcs-starter", daemon=True)
    _thread.start()


def _loop() -> None:
    last = time.perf_counter()  # when a call was last seen
    while not _exiting:
        now = time.perf_counter()
        if _due:
            last = now
            if _due[0][0] <= now:
                _start(*_due.popleft())
                continue
            time.sleep(_due[0][0] - now)
        elif now - last < LINGER:
            time.sleep(GRACE)
        elif not _wait_for_work():
            return
        else:
            last = time.perf_counter()


def _wait_for_work() -> bool:
    """Sleep until a call is watched; False (the thread ends) after `_IDLE_SECONDS`."""
    global _alive, _waiting
    with _cond:
        _waiting = True
        try:
            if _cond.wait_for(lambda: _due or _exiting, timeout=_IDLE_SECONDS) and not _exiting:
                return True
            _alive = False  # under the lock: a `watch` from now on starts a new thread
            return False
        finally:
            _waiting = False


def _start(when: float, run: Any, index: int) -> None:
    try:
        if not run.start_alone(index):  # the body is inside the loop right now: look again
            _due.append((time.perf_counter() + GRACE, run, index))
    except Exception:  # noqa: BLE001 - report it and go on: later runs need the thread
        traceback.print_exc()


@atexit.register
def _stop_at_exit() -> None:
    """End the thread before the interpreter finalizes: a daemon thread that wakes up
    during finalization is ended from inside its sleep, which aborts the process (SIGABRT,
    `FATAL: exception not rethrown`) once JAX's C++ runtime is loaded. Calls still
    waiting for their grace are dropped: no body is left to wait for them."""
    global _exiting
    with _cond:
        _exiting = True
        _cond.notify()
    thread = _thread
    if thread is not None:
        thread.join(timeout=1.0)
