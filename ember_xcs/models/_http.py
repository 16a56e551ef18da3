"""`OpenAICompatibleModel`: a client for any server speaking `/v1/chat/completions`.

**Why httpx.** It is already a core dependency, it has a sync and an async client with the
same API (the engine runs sync operators on threads and `async def` ones on an event loop),
separate connect/read/write/pool timeouts, and connection pooling. The official `openai`
SDK would add a dependency tree (pydantic and more) for one endpoint, and it brings its own
retry loop, which would have to be switched off so that retries, the shared concurrency cap
and the rate limit compose in one place, here.

**One call** holds a slot of the model's `CallLimits` (the cap and rate limit shared by
every model with the same endpoint, model name and limits), sends one request, and releases
the slot before any backoff, so a sleeping retry never blocks another call.

**Failures.** 429, 5xx, 408, timeouts and refused or reset connections are retried per the
`RetryPolicy` (honouring `Retry-After`); other 4xx and malformed bodies are not. When it
gives up, the error is a `ModelError` subclass naming the model, the endpoint, the status
and the number of attempts, chained to the underlying httpx exception.

**Pickling** (for Dask workers in other processes) drops the connection pools and
re-attaches the limits on arrival, so a cap is shared per process, not across a cluster.

**Keys.** The API key lives in a `_Secret` whose repr is `'***'`, is only unwrapped to build
the `Authorization` header (which httpx itself masks in reprs), and is scrubbed from any
server text quoted in an error or log message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

import httpx

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
from ._protocol import ModelResponse, Usage
from ._retry import RetryPolicy, parse_retry_after

__all__ = ["OpenAICompatibleModel"]

logger = logging.getLogger("ember_xcs.models")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_SERVER_TEXT_LIMIT = 200


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
    - `timeout`: read/write timeout in seconds; `connect_timeout`: for connecting.
    - `retry`: a `RetryPolicy` (default: 3 retries, 0.5 s backoff doubling to 8 s).
    - `max_concurrency`, `requests_per_second`: limits shared by every operator using a
      model with the same endpoint, model name and limits.
    - `seed`: when set, each request sends `seed + sample`, so ensemble units differ
      reproducibly on servers that honour seeds.
    - `system_prompt`: sent before the user message when given.
    - `params`: default request fields such as `{"temperature": 0.7}`; per-call
      `params` override them.

    !!! example
        ```python
        model = OpenAICompatibleModel("http://127.0.0.1:8000", "llama-3", max_concurrency=8)
        with model:
            print(model.complete("Say hi").text)
        ```
    """

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
    ):
        if not model:
            raise ModelConfigError("OpenAICompatibleModel needs a model name, e.g. 'gpt-4o-mini'")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.name = model
        self.base_url = base_url.rstrip("/")
        self.endpoint = _endpoint(self.base_url)
        self._display_endpoint = _without_userinfo(self.endpoint)
        self._api_key = _Secret(key) if key else None
        self.timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self.retry = retry if retry is not None else RetryPolicy()
        self.seed = seed
        self.system_prompt = system_prompt
        self.params = dict(params or {})
        self.limits: CallLimits = shared_limits(
            ("openai", self.endpoint, model), max_concurrency, requests_per_second
        )
        self.retries = 0  # retries made by this instance, for tests and monitoring
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._async_clients: weakref.WeakKeyDictionary[Any, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return (
            f"OpenAICompatibleModel(base_url={_without_userinfo(self.base_url)!r}, "
            f"model={self.name!r}, api_key={key}, max_concurrency={self.limits.max_concurrency}, "
            f"requests_per_second={self.limits.requests_per_second})"
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without connection pools or locks (Dask ships operators to workers)."""
        state = {k: v for k, v in vars(self).items() if k not in _UNPICKLED}
        state["_limits_config"] = (self.limits.max_concurrency, self.limits.requests_per_second)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        cap, rate = state.pop("_limits_config")
        self.__dict__.update(state)
        self.limits = shared_limits(("openai", self.endpoint, self.name), cap, rate)
        self._lock = threading.Lock()
        self._client = None
        self._async_clients = weakref.WeakKeyDictionary()

    # --- the protocol ------------------------------------------------------------------

    def complete(self, prompt: str, *, sample: int = 0, **params: Any) -> ModelResponse:
        """POST one chat completion, retrying per `self.retry`; see the module docstring."""
        body, start, attempt = self._body(prompt, sample, params), time.perf_counter(), 0
        while True:
            try:
                with self.limits.slot():
                    response = self._post(body)
                return self._parse(response, start)
            except _Failure as failure:
                time.sleep(self._next_delay(failure, attempt))
                attempt += 1

    async def acomplete(self, prompt: str, *, sample: int = 0, **params: Any) -> ModelResponse:
        """`complete` on the running event loop, with one `httpx.AsyncClient` per loop."""
        body, start, attempt = self._body(prompt, sample, params), time.perf_counter(), 0
        while True:
            try:
                async with self.limits.aslot():
                    response = await self._apost(body)
                return self._parse(response, start)
            except _Failure as failure:
                await asyncio.sleep(self._next_delay(failure, attempt))
                attempt += 1

    # --- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the sync connection pool. Async pools close with `aclose()` on their loop."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the running loop's async connection pool (and the sync one)."""
        client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
        self.close()

    def __enter__(self) -> OpenAICompatibleModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> OpenAICompatibleModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- requests ----------------------------------------------------------------------

    def _body(self, prompt: str, sample: int, params: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(prompt, str):
            raise ModelConfigError(f"a prompt must be a str, got {type(prompt).__name__}")
        messages = [{"role": "user", "content": prompt}]
        if self.system_prompt is not None:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        body = {"model": self.name, "messages": messages, **self.params, **params}
        if self.seed is not None and "seed" not in params:
            body["seed"] = self.seed + sample
        return body

    def _headers(self) -> dict[str, str]:
        if self._api_key is None:
            return {}
        return {"Authorization": f"Bearer {self._api_key.reveal()}"}

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout, limits=_POOL_LIMITS)
            return self._client

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = httpx.AsyncClient(timeout=self.timeout, limits=_POOL_LIMITS)
            self._async_clients[loop] = client
        return client

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        try:
            return self._sync_client().post(self.endpoint, json=body, headers=self._headers())
        except httpx.HTTPError as exc:
            raise _transport_failure(exc) from None

    async def _apost(self, body: dict[str, Any]) -> httpx.Response:
        try:
            return await self._async_client().post(
                self.endpoint, json=body, headers=self._headers()
            )
        except httpx.HTTPError as exc:
            raise _transport_failure(exc) from None

    # --- responses ---------------------------------------------------------------------

    def _parse(self, response: httpx.Response, start: float) -> ModelResponse:
        """A `ModelResponse` from a 2xx, or a `_Failure` describing what went wrong."""
        status = response.status_code
        if status >= 300:
            raise self._status_failure(response)
        try:
            payload = response.json()
            text = payload["choices"][0]["message"]["content"]
            if not isinstance(text, str):
                raise TypeError(f"message content is {type(text).__name__}, not str")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            snippet = self._quote(response.text)
            raise _Failure(
                MalformedResponseError,
                f"malformed response ({type(exc).__name__}: {exc}); body began {snippet}",
                status,
                cause=exc,
            ) from None
        return ModelResponse(
            text=text,
            model=str(payload.get("model") or self.name),
            usage=_usage(payload.get("usage")),
            latency_seconds=time.perf_counter() - start,
        )

    def _status_failure(self, response: httpx.Response) -> _Failure:
        status = response.status_code
        detail = f"HTTP {status} {response.reason_phrase}".rstrip()
        message = _server_message(response)
        if message:
            detail += f" (server said: {self._quote(message)})"
        retry_after = parse_retry_after(response.headers)
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
        """Server text made safe to show: the key scrubbed out, the length capped."""
        if self._api_key is not None:
            text = text.replace(self._api_key.reveal(), "***")
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
        with self._lock:
            self.retries += 1
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
        error = failure.kind(
            f"model {self.name!r} at {self._display_endpoint}: {failure.detail}{tries}{note}{hint}",
            model=self.name,
            endpoint=self._display_endpoint,
            status=failure.status,
            attempts=attempts,
            retry_after=failure.retry_after,
        )
        error.__cause__ = failure.cause  # the httpx or JSON error, never the request
        error.__suppress_context__ = True
        return error


_UNPICKLED = frozenset({"limits", "_lock", "_client", "_async_clients"})
_POOL_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=64)

_HINTS: dict[type[_CallError], str] = {
    ModelTimeoutError: "; raise timeout= or check the server's load",
    ModelConnectionError: "; check that the server is running and base_url is right",
    RateLimitError: "; lower max_concurrency/requests_per_second or raise max_retries",
    ClientError: "; check the model name, the request parameters and the API key",
}


def _endpoint(base_url: str) -> str:
    if base_url.endswith("/v1"):
        return f"{base_url}/chat/completions"
    return f"{base_url}/v1/chat/completions"


def _without_userinfo(url: str) -> str:
    try:
        return str(httpx.URL(url).copy_with(userinfo=b""))
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid url>"


def _transport_failure(exc: httpx.HTTPError) -> _Failure:
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return _Failure(ModelTimeoutError, f"timed out ({name})", cause=exc)
    if isinstance(exc, httpx.TransportError):
        return _Failure(
            ModelConnectionError,
            f"could not connect or lost the connection ({name}: {exc})",
            cause=exc,
        )
    return _Failure(ClientError, f"request failed ({name}: {exc})", cause=exc)


def _server_message(response: httpx.Response) -> str:
    """The `error.message` of an OpenAI-style error body, else the raw text."""
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return json.dumps(payload)


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))
