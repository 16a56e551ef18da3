"""The plan cache: LRU, size-bounded, thread-safe, one build per key at a time.

Entries are keyed by `_keys` (structure, never payloads). When several threads miss on the
same key at once, one builds (traces) and the others wait for its result instead of
tracing again; different keys build concurrently. Evictions are counted for the stats and
reported to `on_evict` (the jit's `on_cache_evict` hooks).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["PlanCache"]

V = TypeVar("V")


class PlanCache(Generic[V]):
    """`get_or_build(key, build) -> (value, hit)`; see the module docstring."""

    def __init__(self, max_size: int, on_evict: Callable[[Any], None] | None = None):
        if not isinstance(max_size, int) or max_size < 1:
            raise ValueError(f"cache_size must be a positive int, got {max_size!r}")
        self.max_size = max_size
        self.evictions = 0
        self._on_evict = on_evict
        self._entries: OrderedDict[Any, V] = OrderedDict()
        self._building: dict[Any, threading.Event] = {}
        self._lock = threading.Lock()

    def get(self, key: Any) -> V | None:
        """The entry for `key` (now the most recently used), or `None`; no lock: each
        dict operation is atomic, and an entry evicted meanwhile is still a valid one."""
        value = self._entries.get(key)
        if value is not None:
            try:
                self._entries.move_to_end(key)
            except KeyError:  # evicted by another thread since the lookup
                pass
        return value

    def get_or_build(self, key: Any, build: Callable[[], V]) -> tuple[V, bool]:
        while True:
            with self._lock:
                value = self._entries.get(key)
                if value is not None:
                    self._entries.move_to_end(key)
                    return value, True
                event = self._building.get(key)
                if event is None:
                    event = self._building[key] = threading.Event()
                    break
            event.wait()  # another thread is tracing this key; then look again
        try:
            value = build()
            evicted = []
            with self._lock:
                self._entries[key] = value
                while len(self._entries) > self.max_size:
                    evicted.append(self._entries.popitem(last=False)[0])
                    self.evictions += 1
            if self._on_evict is not None:
                for old in evicted:  # outside the lock: a hook may call back into jit
                    self._on_evict(old)
            return value, False
        finally:
            with self._lock:
                del self._building[key]
            event.set()

    def discard(self, key: Any, value: V) -> None:
        """Drop `key` if it still maps to `value` (another thread may have rebuilt it)."""
        with self._lock:
            if self._entries.get(key) is value:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def values(self) -> Iterator[V]:
        with self._lock:
            return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)
