"""A sleeping operator that counts how many of its calls are in progress at once, and a
wait for the engine to have no run left (`engine_status`)."""

from __future__ import annotations

import threading
import time
from typing import Any

import ember_xcs as xcs


class InFlight:
    """`op` sleeps `seconds` per call and returns its argument; `peak` is the most calls
    seen in progress together."""

    def __init__(self, seconds: float):
        self.peak = 0
        self._active = 0
        self._lock = threading.Lock()
        self.op = xcs.op(self._call, name="call")
        self._seconds = seconds

    def _call(self, value: Any) -> Any:
        with self._lock:
            self._active += 1
            self.peak = max(self.peak, self._active)
        time.sleep(self._seconds)
        with self._lock:
            self._active -= 1
        return value


def wait_until_engine_idle(limit_s: float = 30.0) -> None:
    """Calls earlier tests left running past their deadlines finish in the background."""
    stop = time.monotonic() + limit_s
    while xcs.engine_status().runs and time.monotonic() < stop:
        time.sleep(0.05)
    assert xcs.engine_status().runs == 0, "runs of earlier tests are still in flight"
