"""One background event loop for `async def` operators.

Async operators are awaited on this loop, so a thousand concurrent async LLM calls cost
one thread, not a thousand. The loop starts on first use in a daemon thread.
"""

from __future__ import annotations

import asyncio
import threading

__all__ = ["background_loop"]

_loop: asyncio.AbstractEventLoop | None = None
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


def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()
