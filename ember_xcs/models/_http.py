"""`OpenAICompatibleModel`: a client for any server speaking `/v1/chat/completions`.

**Transport.** aiohttp, with one connection pool per event loop (see `_transport` for
the measurements behind both). `complete` hands the request to ember_xcs's shared loop and
waits on a future, so a synchronous caller costs no thread; `acomplete` and `astream` run
the request on whichever loop awaits them, with no hop between threads. Under `jit`,
`complete` and `stream` become leaf calls awaited on the engine's loop (see
`ember_xcs.operators.method_leaf`).

**The protocol in full** (`_wire`): streaming (`stream()` / `astream()` yield text deltas
from Server-Sent Events), tool calls (a reply with `content: null` is an empty `text` and
its `tool_calls`), `n` choices in one request (`texts`), `response_format` and any other
field passed through, and usage recorded per call (`stats()`, `track_usage()`, hooks).

**One call** holds a slot of the model's `CallLimits` (the cap and rate limit shared by
every model with the same endpoint, model name and limits), sends one request, and releases
the slot before any backoff, so a sleeping retry never blocks another call. `timeout`
bounds the whole request, reading included, so a server trickling bytes cannot keep a
call alive past it.

**Failures.** 429, 5xx, 408, timeouts and refused or reset connections are retried per the
`RetryPolicy` (honouring `Retry-After`); other 4xx and malformed bodies are not. When it
gives up, the error is a `ModelError` subclass naming the model, the endpoint, the status
and the number of attempts. A stream is retried only until its first piece of text.

**Keys.** The API key (and credentials written into `base_url`, which are moved into an
`Authorization` header) live in a `_Secret` whose repr is `'***'`, are unwrapped only to
build a request's headers, and are scrubbed from any server text quoted in an error or a
log message. Surrounding whitespace (the newline `open("key.txt").read()` leaves) is
stripped; a key that still cannot be sent in a header is refused at construction without
being shown.

**Pickling** (for Dask workers in other processes) re-attaches the limits on arrival, so
a cap is shared per process, not across a cluster.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import dataclasses
import json
import logging
import math
import os
import queue
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

import aiohttp
import yarl

from .._errors import ModelError
from ..operators import current_call_handler, method_leaf
from ..scheduling import on_background_loop
from ._cache import ResponseCache, resolve_cache
from ._errors import (
    ClientError,
    MalformedResponseError,
    ModelConfigError,
    ModelConnectionError,
    ModelTimeoutError,
    RateLimitError,
    ServerError,
    _CallError,
)
from ._limits import CallLimits, shared_limits
from ._protocol import ModelResponse
from ._retry import RetryPolicy, parse_retry_after
from ._transport import loop_session, proxy_for, run_coroutine, submit
from ._usage import ModelStats, notify, record_call, record_event
from ._wire import StreamState, messages_for, parse_chunk, parse_completion

__all__ = ["OpenAICompatibleModel"]

logger = logging.getLogger("ember_xcs.models")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_SERVER_TEXT_LIMIT = 200
_END = object()
Prompt = str | Sequence[Mapping[str, Any]]


class _Secret:
    """Holds a string that must never be printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


@dataclasses.dataclass(eq=False)  # exceptions stay hashable
class _Failure(Exception):
    """One failed attempt, before deciding whether to retry it."""

    kind: type[_CallError]
    detail: str
    status: int | None = None
    retry_after: float | None = None
    cause: BaseException | None = None


class OpenAICompatibleModel:
    """A model served over the OpenAI chat completions protocol.

    **Arguments:**

    - `base_url`: the server, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000`.
      Requests go to `{base_url}/chat/completions` when it ends in `/v1`, else to
      `{base_url}/v1/chat/completions`. Default: `$OPENAI_BASE_URL`, else OpenAI.
    - `model`: the model name sent in each request.
    - `api_key`: sent as a bearer token. Default: `$OPENAI_API_KEY`; none for local servers.
    - `timeout`: seconds for the whole request, reading the reply included;
      `connect_timeout`: for opening a connection.
    - `retry`: a `RetryPolicy` (default: 3 retries, 0.5 s backoff doubling to 8 s).
    - `max_concurrency`, `requests_per_second`: limits shared by every operator using a
      model with the same endpoint, model name and limits.
    - `seed`: when set, each request sends `seed + sample`, so ensemble units differ
      reproducibly on servers that honour seeds.
    - `system_prompt`: sent before the user message when given.
    - `params`: default request fields such as `{"temperature": 0.7}`; per-call
      `params` override them (`n`, `tools`, `response_format`... pass straight through).
    - `cache`: `True` to keep replies in the on-disk response cache (a path or a
      `ResponseCache` for another file); off by default.

    !!! example
        ```python
        model = OpenAICompatibleModel("http://127.0.0.1:8000", "llama-3", max_concurrency=8)
        print(model.complete("Say hi").text)
        ```
    """

    async_native = True  # acomplete never blocks its loop: LLMOperator awaits it under jit

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        max_concurrency: int | None = None,
        requests_per_second: float | None = None,
        seed: int | None = None,
        system_prompt: str | None = None,
        params: Mapping[str, Any] | None = None,
        cache: bool | str | os.PathLike[str] | ResponseCache | None = None,
    ):
        if not model or not isinstance(model, str):
            raise ModelConfigError("OpenAICompatibleModel needs a model name, e.g. 'gpt-4o-mini'")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        url, basic = _parse_base_url(base_url)
        key = _clean_key(api_key if api_key is not None else os.environ.get("OPENAI_API_KEY"))
        if key and basic:
            raise ModelConfigError(
                f"base_url {_without_userinfo(base_url)!r} carries credentials and an api_key "
                "is set too; pass the key only as api_key="
            )
        self.name = model
        self.base_url = str(url).rstrip("/")
        self.endpoint = _endpoint(self.base_url)
        self._url = yarl.URL(self.endpoint)
        self._proxy = proxy_for(url.scheme, url.host or "")
        self._display_endpoint = self.endpoint
        self._api_key = _Secret(key) if key else None
        self._auth = _Secret(f"Bearer {key}" if key else f"Basic {basic}") if key or basic else None
        self.timeout = _seconds("timeout", timeout)
        self.connect_timeout = _seconds("connect_timeout", connect_timeout)
        self._client_timeout = aiohttp.ClientTimeout(
            total=self.timeout, sock_connect=self.connect_timeout
        )
        self.retry = retry if retry is not None else RetryPolicy()
        self.seed = seed
        self.system_prompt = system_prompt
        self.params = dict(params or {})
        self.cache = resolve_cache(cache)
        self.limits: CallLimits = shared_limits(
            ("openai", self.endpoint, model), max_concurrency, requests_per_second
        )
        self._stats = ModelStats()
        self._init_pending()

    def _init_pending(self) -> None:
        # cache keys whose request is on the wire: a second call with the same key waits
        # for it and is answered from the cache, as it would be after it (a jitted body
        # makes both at once, where plain Python made one after the other)
        self._pending: dict[str, concurrent.futures.Future[None]] = {}
        self._pending_lock = threading.Lock()

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return (
            f"OpenAICompatibleModel(base_url={self.base_url!r}, "
            f"model={self.name!r}, api_key={key}, max_concurrency={self.limits.max_concurrency}, "
            f"requests_per_second={self.limits.requests_per_second})"
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without limits or counters (Dask ships operators to workers)."""
        dropped = ("limits", "_stats", "_pending", "_pending_lock")
        state = {k: v for k, v in vars(self).items() if k not in dropped}
        state["_limits_config"] = (self.limits.max_concurrency, self.limits.requests_per_second)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        cap, rate = state.pop("_limits_config")
        self.__dict__.update(state)
        self.limits = shared_limits(("openai", self.endpoint, self.name), cap, rate)
        self._stats = ModelStats()
        self._init_pending()

    # --- the protocol ------------------------------------------------------------------

    def complete(self, prompt: Prompt, *, sample: int = 0, **params: Any) -> ModelResponse:
        """One chat completion, retried per `self.retry`; see the module docstring.

        `prompt` is a string (one user message) or a list of message dicts (for tool
        results and multi-turn chats). Inside a jitted function this is a leaf call.
        """
        handler = current_call_handler()
        if handler is not None:
            leaf = method_leaf(self, "acomplete", self.name, True)
            return handler(leaf, (prompt,), {"sample": sample, **params})
        body, key = self._request(prompt, sample, params)
        hit = self._cached(key, count_miss=False)  # `_call` counts it
        if hit is not None:
            return hit
        self._refuse_blocking_the_loop("complete", "await model.acomplete(...)")
        return run_coroutine(self._call(body, key))  # this thread waits; the loop works

    async def acomplete(self, prompt: Prompt, *, sample: int = 0, **params: Any) -> ModelResponse:
        """`complete`, awaited; the request runs on the awaiting loop (see `_transport`)."""
        body, key = self._request(prompt, sample, params)
        hit = self._cached(key, count_miss=False)  # `_call` counts it
        if hit is not None:
            return hit
        return await self._call(body, key)

    def stream(self, prompt: Prompt, *, sample: int = 0, **params: Any) -> Any:
        """Yield the reply's text as it arrives (Server-Sent Events).

        Hooks with `on_stream_delta` receive every piece too. Inside a jitted function it
        is one leaf call that returns the list of pieces once the reply is complete.
        """
        handler = current_call_handler()
        if handler is not None:
            leaf = method_leaf(self, "astream_pieces", self.name, True)
            return handler(leaf, (prompt,), {"sample": sample, **params})
        self._refuse_blocking_the_loop("stream", "async for piece in model.astream(...)")
        return self._stream_sync(*self._request(prompt, sample, params, stream=True))

    async def astream(
        self, prompt: Prompt, *, sample: int = 0, **params: Any
    ) -> AsyncIterator[str]:
        """`stream`, as an async iterator; the request runs on the awaiting loop."""
        body, key = self._request(prompt, sample, params, stream=True)
        pieces: asyncio.Queue[Any] = asyncio.Queue()
        call = asyncio.ensure_future(self._stream_call(body, key, pieces.put_nowait))
        call.add_done_callback(lambda _: pieces.put_nowait(_END))
        try:
            while (piece := await pieces.get()) is not _END:
                yield piece
            await call  # raises the call's error, if any
        finally:
            call.cancel()  # closed early: stop reading

    async def astream_pieces(self, prompt: Prompt, *, sample: int = 0, **params: Any) -> list[str]:
        """The streamed pieces as one list (what `stream()` gives inside `jit`)."""
        return [piece async for piece in self.astream(prompt, sample=sample, **params)]

    def stats(self) -> dict[str, int]:
        """Calls, `prompt_tokens`, `completion_tokens`, `total_tokens`, `cache_hits`,
        `cache_misses` and `retries` of this model object so far."""
        return self._stats.snapshot()

    @property
    def retries(self) -> int:
        """Retries made by this model object."""
        return self._stats.snapshot()["retries"]

    # --- lifecycle (connections belong to the process-wide pool) -------------------------

    def close(self) -> None:
        """Nothing to release: connections live in the shared, process-wide pool."""

    async def aclose(self) -> None:
        """As `close`."""

    def __enter__(self) -> OpenAICompatibleModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> OpenAICompatibleModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- requests ----------------------------------------------------------------------

    def _request(
        self, prompt: Prompt, sample: int, params: Mapping[str, Any], stream: bool = False
    ) -> tuple[dict[str, Any], str | None]:
        """The request body and its cache key (None without a cache)."""
        try:
            messages = messages_for(prompt, self.system_prompt)
        except TypeError as exc:
            raise ModelConfigError(f"model {self.name!r}: {exc}") from None
        body = {"model": self.name, "messages": messages, **self.params, **params}
        if self.seed is not None and "seed" not in params:
            body["seed"] = self.seed + sample
        key = None
        if self.cache is not None:
            key = ResponseCache.key({"endpoint": self.endpoint, **body}, sample)
        if stream:
            body["stream"] = True
            body.setdefault("stream_options", {"include_usage": True})
        return body, key

    def _cached(self, key: str | None, count_miss: bool = True) -> ModelResponse | None:
        if key is None:
            return None
        hit = self.cache.get(key)  # type: ignore[union-attr]
        if hit is None:
            if count_miss:
                record_event(self._stats, "cache_misses")
            return None
        record_call(self._stats, self.name, hit.usage, cached=True)
        return hit

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._auth is not None:
            headers["Authorization"] = self._auth.reveal()
        return headers

    def _refuse_blocking_the_loop(self, method: str, instead: str) -> None:
        if on_background_loop():
            raise ModelError(
                f"model {self.name!r}: {method}() was called on ember_xcs's event-loop thread, "
                f"where waiting for the reply would stall every other call; use `{instead}`"
            )

    async def _call(self, body: dict[str, Any], key: str | None) -> ModelResponse:
        """One completion with retries, cached and counted; with a cache, one request per
        key at a time: a call whose key is already on the wire waits for that request and
        takes its cached reply (or, if it failed, makes its own)."""
        if key is None:
            return await self._fetch(body, None)
        while True:
            with self._pending_lock:
                ahead = self._pending.get(key)
                if ahead is None:
                    mine = self._pending[key] = concurrent.futures.Future()
            if ahead is None:
                break
            await asyncio.wrap_future(ahead)
            hit = self._cached(key, count_miss=False)
            if hit is not None:
                return hit
        record_event(self._stats, "cache_misses")
        try:
            return await self._fetch(body, key)
        finally:
            with self._pending_lock:
                del self._pending[key]
            mine.set_result(None)

    async def _fetch(self, body: dict[str, Any], key: str | None) -> ModelResponse:
        """One completion with retries, on the running loop; cached and counted."""
        start, attempt, data = time.perf_counter(), 0, json.dumps(body).encode()
        while True:
            try:
                async with self.limits.aslot():
                    status, reason, headers, raw = await self._post(data)
                response = self._parse(status, reason, headers, raw, start)
                break
            except _Failure as failure:
                await asyncio.sleep(self._next_delay(failure, attempt))
                attempt += 1
        self._finish(key, response)
        return response

    async def _post(self, data: bytes) -> tuple[int, str, Any, bytes]:
        try:
            async with await self._send(data) as reply:
                return reply.status, reply.reason or "", reply.headers, await reply.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_failure(exc) from None

    async def _send(self, data: bytes) -> Any:
        """The request, as aiohttp's `async with` context, on the running loop's session."""
        return (await loop_session()).post(
            self._url,
            data=data,
            headers=self._headers(),
            timeout=self._client_timeout,
            proxy=self._proxy,
        )

    def _finish(self, key: str | None, response: ModelResponse) -> None:
        if key is not None:
            self.cache.put(key, response)  # type: ignore[union-attr]
        record_call(self._stats, self.name, response.usage, cached=False)

    # --- streaming ---------------------------------------------------------------------

    def _stream_sync(self, body: dict[str, Any], key: str | None) -> Iterator[str]:
        pieces: queue.SimpleQueue[Any] = queue.SimpleQueue()
        future = submit(self._stream_call(body, key, pieces.put))
        future.add_done_callback(lambda _: pieces.put(_END))
        try:
            while (piece := pieces.get()) is not _END:
                yield piece
            future.result()  # raises the call's error, if any
        finally:
            future.cancel()  # closed early: stop reading

    async def _stream_call(
        self, body: dict[str, Any], key: str | None, emit: Callable[[str], None]
    ) -> ModelResponse:
        """Stream one completion, calling `emit` per piece; retried until the first piece."""
        hit = self._cached(key)
        if hit is not None:
            emit(hit.text)
            notify("on_stream_delta", model=self.name, delta=hit.text)
            return hit
        start, attempt, data = time.perf_counter(), 0, json.dumps(body).encode()
        while True:
            state = StreamState(self.name)
            try:
                async with self.limits.aslot():
                    await self._read_stream(data, state, emit)
                response = state.response(time.perf_counter() - start)
                break
            except _Failure as failure:
                if state.pieces:  # text already reached the caller: a retry would repeat it
                    raise self._error(failure, attempt + 1) from None
                await asyncio.sleep(self._next_delay(failure, attempt))
                attempt += 1
        self._finish(key, response)
        return response

    async def _read_stream(
        self, data: bytes, state: StreamState, emit: Callable[[str], None]
    ) -> None:
        try:
            async with await self._send(data) as reply:
                if reply.status >= 300:
                    raw = await reply.read()
                    raise self._status_failure(reply.status, reply.reason or "", reply.headers, raw)
                async for line in reply.content:
                    piece = parse_chunk(line, state)
                    if piece:
                        emit(piece)
                        notify("on_stream_delta", model=self.name, delta=piece)
                    if state.done:
                        return
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_failure(exc) from None
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise _Failure(
                MalformedResponseError,
                f"malformed event stream ({type(exc).__name__}: {self._quote(str(exc))})",
                cause=exc,
            ) from None

    # --- responses ---------------------------------------------------------------------

    def _parse(
        self, status: int, reason: str, headers: Any, raw: bytes, start: float
    ) -> ModelResponse:
        """A `ModelResponse` from a 2xx, or a `_Failure` describing what went wrong."""
        if status >= 300:
            raise self._status_failure(status, reason, headers, raw)
        try:
            return parse_completion(json.loads(raw), self.name, time.perf_counter() - start)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            snippet = self._quote(raw.decode("utf-8", "replace"))
            raise _Failure(
                MalformedResponseError,
                f"malformed response ({type(exc).__name__}: {exc}); body began {snippet}",
                status,
                cause=exc,
            ) from None

    def _status_failure(self, status: int, reason: str, headers: Any, raw: bytes) -> _Failure:
        detail = f"HTTP {status} {reason}".rstrip()
        message = _server_message(raw)
        if message:
            detail += f" (server said: {self._quote(message)})"
        retry_after = parse_retry_after(headers)
        if status == 429:
            kind: type[_CallError] = RateLimitError
        elif status >= 500:
            kind = ServerError
        elif status == 408:
            kind = ModelTimeoutError
        else:
            kind = ClientError
        return _Failure(kind, detail, status, retry_after)

    def _quote(self, text: str) -> str:
        """Server text made safe to show: secrets scrubbed out, the length capped."""
        if self._auth is not None:  # the key or Basic token alone, and the whole header
            text = text.replace(self._auth.reveal().split(" ", 1)[1], "***")
        if len(text) > _SERVER_TEXT_LIMIT:
            text = text[: _SERVER_TEXT_LIMIT - 3] + "..."
        return repr(text)

    # --- retries -----------------------------------------------------------------------

    def _next_delay(self, failure: _Failure, attempt: int) -> float:
        """Seconds to wait before retrying `failure`, or raise the final error."""
        policy = self.retry
        if not failure.kind.retryable or attempt >= policy.max_retries:
            raise self._error(failure, attempt + 1)
        if failure.retry_after is not None and failure.retry_after > policy.max_retry_after_seconds:
            raise self._error(
                failure,
                attempt + 1,
                f"; the server asked to wait {failure.retry_after:.1f} s, more than "
                f"max_retry_after_seconds={policy.max_retry_after_seconds}",
            )
        delay = policy.delay(attempt, failure.retry_after)
        record_event(self._stats, "retries")
        logger.info(
            "model %r at %s: %s; retry %d/%d in %.3f s",
            self.name,
            self._display_endpoint,
            failure.detail,
            attempt + 1,
            policy.max_retries,
            delay,
        )
        return delay

    def _error(self, failure: _Failure, attempts: int, note: str = "") -> _CallError:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        hint = _HINTS.get(failure.kind, "")
        if failure.status == 404:
            hint = (
                f"; the server has no such route or model: check base_url={self.base_url!r} "
                "(requests go to base_url + '/chat/completions' when it ends in /v1, else to "
                "base_url + '/v1/chat/completions') and the model name"
            )
        error = failure.kind(
            f"model {self.name!r} at {self._display_endpoint}: {failure.detail}{tries}{note}{hint}",
            model=self.name,
            endpoint=self._display_endpoint,
            status=failure.status,
            attempts=attempts,
            retry_after=failure.retry_after,
        )
        error.__cause__ = failure.cause  # the transport or JSON error, never the request
        error.__suppress_context__ = True
        return error


_HINTS: dict[type[_CallError], str] = {
    ModelTimeoutError: "; raise timeout= or check the server's load",
    ModelConnectionError: "; check that the server is running and base_url is right",
    RateLimitError: "; lower max_concurrency/requests_per_second or raise max_retries",
    ClientError: "; check the model name, the request parameters and the API key",
}


# --- settings ------------------------------------------------------------------------


def _parse_base_url(base_url: Any) -> tuple[yarl.URL, str | None]:
    """The URL without credentials, and those credentials as a Basic-auth token (or None)."""
    if not isinstance(base_url, str):
        raise ModelConfigError(f"base_url must be a str, got {type(base_url).__name__}")
    shown = _without_userinfo(base_url)
    try:
        url = yarl.URL(base_url.strip())
    except (ValueError, TypeError) as exc:
        raise ModelConfigError(
            f"base_url {shown!r} is not a valid URL ({exc}); write it like "
            "'http://127.0.0.1:8000/v1'"
        ) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ModelConfigError(
            f"base_url {shown!r} must be an http:// or https:// URL with a host, e.g. "
            "'http://127.0.0.1:8000/v1'"
        )
    basic = None
    if url.user is not None or url.password is not None:
        pair = f"{url.user or ''}:{url.password or ''}".encode()
        basic = base64.b64encode(pair).decode()
        url = url.with_user(None)
    return url, basic


def _without_userinfo(url: str) -> str:
    """`url` with any `user:password@` replaced by `***@` (works on malformed URLs too)."""
    return re.sub(r"(//)[^/@]*@", r"\1***@", url)


def _clean_key(key: Any) -> str | None:
    """The key without surrounding whitespace; refused (never shown) if it cannot be sent."""
    if key is None:
        return None
    if not isinstance(key, str):
        raise ModelConfigError(f"api_key must be a str, got {type(key).__name__}")
    key = key.strip()
    for position, char in enumerate(key):
        if not (" " < char < "\x7f"):
            raise ModelConfigError(
                f"api_key has a character at position {position} that an HTTP header cannot "
                f"carry (non-ASCII, whitespace or a control character); check the key's "
                f"source (the key itself is not shown)"
            )
    return key or None


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelConfigError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    if value <= 0:
        raise ModelConfigError(f"{name} must be > 0 seconds, got {value!r}")
    return float(value)


def _endpoint(base_url: str) -> str:
    if base_url.endswith("/v1"):
        return f"{base_url}/chat/completions"
    return f"{base_url}/v1/chat/completions"


def _transport_failure(exc: BaseException) -> _Failure:
    name = type(exc).__name__
    if isinstance(exc, asyncio.TimeoutError):
        return _Failure(ModelTimeoutError, f"timed out ({name})", cause=exc)
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return _Failure(
            ModelConnectionError,
            f"could not connect or lost the connection ({name}: {exc})",
            cause=exc,
        )
    return _Failure(ClientError, f"request failed ({name}: {exc})", cause=exc)


def _server_message(raw: bytes) -> str:
    """The `error.message` of an OpenAI-style error body, else the raw text."""
    text = raw.decode("utf-8", "replace")
    try:
        payload = json.loads(text)
    except ValueError:
        return text.strip()
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return json.dumps(payload)
