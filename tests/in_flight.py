"""A sleeping operator that counts how many of its calls are in progress at once."""

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
