"""`ResponseCache`: model replies on disk, keyed on exactly what was asked.

**The key** is a SHA-256 of the endpoint, the model name, the messages, every request
field (temperature, `n`, `seed`, tools, `response_format`...) and the *sample index*. The
sample index is what keeps an ensemble an ensemble: five units asking one prompt are five
keys, so a cached run returns the same five distinct answers, never one answer five
times.

**The store** is one SQLite file (standard library `sqlite3`) in WAL mode with a busy
timeout, so threads of one process and several processes can read and write it at once,
and it survives restarts. Default location: `$EMBER_XCS_CACHE_DIR/responses.sqlite`, else
`~/.cache/ember_xcs/responses.sqlite`. Every hit returns a new `ModelResponse` (of
immutable fields), so nothing a caller does to one answer reaches the next.

**Speed.** A hit costs a key (one C-encoded JSON dump and a SHA-256) and a lookup. The
most recent 4,096 entries this process read or wrote are also kept in memory, which
halves a hit's cost (a SQLite read is ~10-20 µs here); entries never change once written,
so the only staleness is an entry another process cleared, served until this one restarts
or clears.

It is off unless asked for: `OpenAICompatibleModel(..., cache=True)` (or a path, or a
`ResponseCache`). `ember-xcs cache` shows its size; `ember-xcs cache clear` empties it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ._errors import ModelConfigError
from ._protocol import ModelResponse, ToolCall, Usage

__all__ = ["ResponseCache", "default_cache_path", "resolve_cache"]

_MEMO_SIZE = 4096
_KEY_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
_SCHEMA = "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


def default_cache_path() -> Path:
    """`$EMBER_XCS_CACHE_DIR/responses.sqlite`, else `~/.cache/ember_xcs/responses.sqlite`."""
    folder = os.environ.get("EMBER_XCS_CACHE_DIR") or Path.home() / ".cache" / "ember_xcs"
    return Path(folder) / "responses.sqlite"


class ResponseCache:
    """A persistent map from requests to `ModelResponse`s, shared by threads and processes.

    **Attributes:** `path`, and `hits` / `misses` counted by this object.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # one connection, used under the lock from any thread; SQLite's own file locks
        # (with a 30 s busy timeout) order writers from other processes
        self._db = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._memo: OrderedDict[str, ModelResponse] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (ResponseCache, (self.path,))  # a pickled model reopens the same file

    @staticmethod
    def key(request: dict[str, Any], sample: int) -> str:
        """The key of one request; `request` holds the endpoint, model, messages, params."""
        return hashlib.sha256(_KEY_ENCODER.encode([request, sample]).encode()).hexdigest()

    def get(self, key: str) -> ModelResponse | None:
        """The stored response (a new object), or None; counts a hit or a miss."""
        with self._lock:
            found = self._memo.get(key)
            if found is None:
                row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,))
                value = row.fetchone()
                if value is None:
                    self.misses += 1
                    return None
                found = self._remember(key, _decode(value[0]))
            else:
                self._memo.move_to_end(key)
            self.hits += 1
        return _copy(found)

    def put(self, key: str, response: ModelResponse) -> None:
        stored = dataclasses.replace(response, cached=True)
        value = json.dumps(dataclasses.asdict(stored), separators=(",", ":"))
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)", (key, value)
            )
            self._remember(key, stored)

    def _remember(self, key: str, response: ModelResponse) -> ModelResponse:
        self._memo[key] = response
        if len(self._memo) > _MEMO_SIZE:
            self._memo.popitem(last=False)
        return response

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def size_bytes(self) -> int:
        """Bytes on disk, the WAL file included."""
        files = [self.path, self.path.with_name(self.path.name + "-wal")]
        return sum(f.stat().st_size for f in files if f.exists())

    def clear(self) -> int:
        """Delete every entry; return how many there were."""
        with self._lock:
            self._memo.clear()
            count = self._db.execute("DELETE FROM responses").rowcount
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with self._lock:
            self._db.execute("VACUUM")
        return count

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _copy(response: ModelResponse) -> ModelResponse:
    """A new object with the same (immutable) fields; `dataclasses.replace` costs 10x more."""
    copy = object.__new__(ModelResponse)
    copy.__dict__.update(response.__dict__)
    return copy


def _decode(value: str) -> ModelResponse:
    fields = json.loads(value)
    fields["usage"] = Usage(**fields["usage"])
    fields["tool_calls"] = tuple(ToolCall(**call) for call in fields["tool_calls"])
    fields["texts"] = tuple(fields["texts"])
    return ModelResponse(**fields)


_opened: dict[Path, ResponseCache] = {}
_opened_lock = threading.Lock()


def resolve_cache(cache: Any) -> ResponseCache | None:
    """`None`/`False` → no cache; `True` → the default file; a path → that file; a
    `ResponseCache` → itself. One `ResponseCache` per file per process."""
    if cache is None or cache is False:
        return None
    if isinstance(cache, ResponseCache):
        return cache
    if cache is True:
        path = default_cache_path()
    elif isinstance(cache, str | os.PathLike):
        path = Path(cache)
    else:
        raise ModelConfigError(
            f"cache must be True, a file path or a ResponseCache, got {type(cache).__name__}"
        )
    with _opened_lock:
        key = path.expanduser().resolve()
        if key not in _opened:
            _opened[key] = ResponseCache(key)
        return _opened[key]
