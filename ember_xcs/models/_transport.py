"""One aiohttp session on ember_xcs's shared event loop: every HTTP model request runs here.

**Why aiohttp.** Measured on this project's 2-core machine against one loopback server
(issue 12, and `ember-xcs bench --sections http`): aiohttp by hand costs about 0.2 CPU-ms
per request at 100 in flight on a quiet machine (0.6 ms at load 9), where
`httpx.AsyncClient` costs 0.7 ms alone and 3.5 ms at 100 in flight (7 ms at load 9), and
the official `openai` client (httpx underneath) about 2.5 ms. A batch of LLM calls against
a local vLLM server is bound by exactly this cost, so the transport was chosen by it.

**Why one loop.** The engine already awaits `async def` operators on one background loop
(`ember_xcs.scheduling`). Requests from synchronous callers are handed to the same loop
(`run_coroutine`: the caller's thread waits on a future, no thread is started), and
`acomplete` awaited on some other loop hops over too, so there is one connection pool per
process, whoever calls, and no `ClientSession` is ever tied to a loop that closes.

The session has no connection cap of its own (`limit=0`): the model's `CallLimits` is the
one place that caps concurrency. It is closed at interpreter exit.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import urllib.request
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp

from ..scheduling import background_loop, on_background_loop, run_coroutine  # noqa: F401 - run_coroutine: re-exported for the models

__all__ = ["await_on_shared_loop", "proxy_for", "run_coroutine", "shared_session", "submit"]

T = TypeVar("T")

_session: aiohttp.ClientSession | None = None


def shared_session() -> aiohttp.ClientSession:
    """The process's session; call it on the shared loop."""
    global _session
    if _session is None or _session.closed:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30.0, ttl_dns_cache=300)
        # trust_env=False: with it, aiohttp reads ~/.netrc on a worker thread per request
        # (0.1 ms each); proxies from the environment are looked up once per model instead
        _session = aiohttp.ClientSession(connector=connector, trust_env=False)
    return _session


def proxy_for(scheme: str, host: str) -> str | None:
    """The proxy `$HTTP_PROXY`/`$HTTPS_PROXY` name for this host, unless `$NO_PROXY` exempts it."""
    if urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(scheme)


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Start `coro` on the shared loop; the future completes with its outcome."""
    return asyncio.run_coroutine_threadsafe(coro, background_loop())


async def await_on_shared_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Await `coro` on the shared loop from whichever loop is running."""
    if on_background_loop():
        return await coro
    return await asyncio.wrap_future(submit(coro))


@atexit.register
def _close_session() -> None:
    session = _session
    if session is not None and not session.closed and not on_background_loop():
        try:
            submit(session.close()).result(timeout=2.0)
        except Exception:  # noqa: BLE001 - the loop may already be gone at exit
            pass
