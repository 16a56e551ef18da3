"""aiohttp connection pools, one per event loop: a request runs on the loop that awaits it.

**Why aiohttp.** Measured on this project's 2-core machine against one loopback server
(issue 12, and `ember-xcs bench --sections http`): aiohttp by hand costs about 0.2 CPU-ms
per request at 100 in flight on a quiet machine (0.6 ms at load 9), where
`httpx.AsyncClient` costs 0.7 ms alone and 3.5 ms at 100 in flight (7 ms at load 9), and
the official `openai` client (httpx underneath) about 2.5 ms. A batch of LLM calls against
a local vLLM server is bound by exactly this cost, so the transport was chosen by it.

**Which loop.** Synchronous callers (`complete`, `stream`) and the engine (model calls
under `jit`, `LLMOperator` nodes) use ember_xcs's shared background loop
(`ember_xcs.scheduling`): the caller's thread waits on a future, no thread is started
per request. `acomplete` / `astream` awaited on a user's own loop (`asyncio.run`, a web
server) run the request on *that* loop, with that loop's own `ClientSession`
(`loop_session`). They used to hop to the shared loop and back; those two cross-thread
hand-overs per request held `acomplete` + `asyncio.gather` at 0.76 x the throughput of
aiohttp by hand (1,018 vs 1,339 req/s at 100 in flight, 0.91 vs 0.58 CPU-ms per request).
On the caller's loop, measured side by side with the old path
(`benchmarks/ab_acomplete.py`), the CPU it adds over aiohttp by hand fell from about 0.31
to 0.06-0.12 ms per request, and throughput went to 0.8-1.0 x of aiohttp by hand on the
loaded 2-core machine (0.90 x in the bench; `benchmarks/RESULTS.md`, HTTP). The price: a
pool lives as long as its loop, so a fresh `asyncio.run` per request opens new
connections each time, as a hand-written aiohttp client would.

**Sessions live and die with their loop.** `ClientSession`s are kept per loop, and each
is tied to its loop by an async generator the loop tracks: `asyncio.run`,
`asyncio.Runner` and `loop.shutdown_asyncgens()` (what every well-behaved loop owner
calls before `close()`) finish it, which closes the session and forgets it, so no
"Unclosed client session" warning is left behind and a finished loop is freed. Sessions
of loops still open at interpreter exit (the shared loop, a loop never closed) are closed
then. A loop closed *without* `shutdown_asyncgens()` keeps its entry until exit: its
sockets could no longer be closed cleanly anyway.

The sessions have no connection cap of their own (`limit=0`): the model's `CallLimits` is
the one place that caps concurrency, and it serves every loop and thread at once (a
thread lock, each waiter woken on its own loop), so a model used from several loops still
has one cap.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import urllib.request
from collections.abc import AsyncGenerator, Coroutine
from typing import Any, TypeVar

import aiohttp

from ..scheduling import background_loop, run_coroutine  # noqa: F401 - run_coroutine: re-exported for the models

__all__ = ["loop_session", "proxy_for", "run_coroutine", "submit"]

T = TypeVar("T")

# loop -> (its session, the generator that closes it at the loop's shutdown). Each loop
# reads and writes only its own entry, from its own thread; single dict operations are
# atomic, so no lock is needed. Not a weak mapping: the session refers to its loop, so a
# weak key would never die; the entry is removed when the loop shuts down instead.
_sessions: dict[asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, AsyncGenerator]] = {}


async def loop_session() -> aiohttp.ClientSession:
    """The running loop's session, opened on first use and closed at the loop's shutdown."""
    loop = asyncio.get_running_loop()
    found = _sessions.get(loop)
    if found is not None and not found[0].closed:
        return found[0]
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30.0, ttl_dns_cache=300)
    # trust_env=False: with it, aiohttp reads ~/.netrc on a worker thread per request
    # (0.1 ms each); proxies from the environment are looked up once per model instead
    session = aiohttp.ClientSession(connector=connector, trust_env=False)
    keeper = _close_at_shutdown(loop, session)
    _sessions[loop] = (session, keeper)
    await keeper.__anext__()  # runs to its `yield` at once; from now on the loop tracks it
    return session


async def _close_at_shutdown(
    loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession
) -> AsyncGenerator[None, None]:
    """Suspended for the loop's life; `shutdown_asyncgens()` resumes it into `finally`."""
    try:
        yield
    finally:
        if _sessions.get(loop, (None,))[0] is session:
            del _sessions[loop]
        await session.close()


def proxy_for(scheme: str, host: str) -> str | None:
    """The proxy `$HTTP_PROXY`/`$HTTPS_PROXY` name for this host, unless `$NO_PROXY` exempts it."""
    if urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(scheme)


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Start `coro` on the shared loop; the future completes with its outcome."""
    return asyncio.run_coroutine_threadsafe(coro, background_loop())


async def _finish(keeper: AsyncGenerator) -> None:
    await keeper.aclose()


@atexit.register
def _close_sessions() -> None:
    """Close the sessions of loops still open at exit, each on its own loop."""
    for loop, (_, keeper) in list(_sessions.items()):
        try:
            if loop.is_closed():
                continue
            if loop.is_running():  # on another thread, e.g. the shared loop
                asyncio.run_coroutine_threadsafe(_finish(keeper), loop).result(timeout=2.0)
            else:
                loop.run_until_complete(_finish(keeper))
        except Exception:  # noqa: BLE001 - a loop may be stuck or going away at exit
            pass
