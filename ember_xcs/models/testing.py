"""`OpenAITestServer`: a small OpenAI-compatible server for tests and benchmarks.

It serves `POST /v1/chat/completions` and `GET /v1/models` on 127.0.0.1 at an ephemeral
port, from a
`ThreadingHTTPServer` (one thread per connection, HTTP/1.1 keep-alive, standard library
only), so the HTTP model is tested against a real socket with no network access. It
measures what only the server can see: how many requests were in progress at once
(`max_concurrent`), how many arrived, and what they carried.

It speaks the protocol in full, as the official `openai` client reads it (a test checks):
`stream: true` gets Server-Sent Events (`chat.completion.chunk`s, a usage chunk when
`stream_options.include_usage` is set, then `data: [DONE]`); `n` gets `n` distinct
choices; a request offering `tools` (and not answering one) gets a tool call with
`content: null`; `response_format` of type `json_object`/`json_schema` gets a JSON
object; errors are OpenAI error objects (`message`, `type`, `param`, `code`).

Faults are queued with `inject(...)` and consumed one per request in arrival order:
`Fault.rate_limited(retry_after)`, `Fault.server_error()`, `Fault.slow(seconds)`,
`Fault.malformed()`, `Fault.trickle(interval)` (a reply sent one byte per `interval`),
`Fault.bad_usage()` (a completion whose `usage` counts are not numbers). With `api_key` set, a request without the matching bearer token gets
a 401 whose message quotes the token it received, as real providers do, so tests can check
that clients scrub keys from errors.

!!! example
    ```python
    with OpenAITestServer(latency=0.05) as server:
        server.inject(Fault.rate_limited(retry_after=0.1), Fault.server_error())
        model = OpenAICompatibleModel(server.base_url, "test-model")
        model.complete("hello")          # 429, then 500, then success
        assert server.requests == 3
    ```
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Fault", "OpenAITestServer", "ServerProcess"]

Responder = Callable[[str, dict[str, Any]], str]


@dataclasses.dataclass(frozen=True)
class Fault:
    """What the server does to one request instead of answering it normally."""

    status: int = 200
    retry_after: float | None = None
    delay: float = 0.0
    bad_json: bool = False
    byte_interval: float = 0.0
    garbage_usage: bool = False

    @classmethod
    def rate_limited(cls, retry_after: float | None = 0.05) -> Fault:
        """HTTP 429, with a `Retry-After` header (seconds) unless `retry_after` is None."""
        return cls(status=429, retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        """A 5xx with an OpenAI-style error body."""
        return cls(status=status)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally, but only after `seconds` more (to trigger client timeouts)."""
        return cls(delay=seconds)

    @classmethod
    def malformed(cls) -> Fault:
        """HTTP 200 with a body that is not JSON."""
        return cls(bad_json=True)

    @classmethod
    def trickle(cls, interval: float) -> Fault:
        """A normal answer, sent one byte every `interval` seconds."""
        return cls(byte_interval=interval)

    @classmethod
    def bad_usage(cls) -> Fault:
        """A normal answer whose `usage` token counts are strings that are not numbers."""
        return cls(garbage_usage=True)


class OpenAITestServer:
    """A local chat completions server with latency and fault injection.

    **Arguments:**

    - `latency`: seconds every request waits before it is answered.
    - `api_key`: when set, requests must carry it as a bearer token.
    - `respond`: `(prompt, request_body) -> text`; the default is a token derived from the
      prompt, the request's `seed` and, for `n > 1`, the choice index (which the body
      carries as `"choice"`), so answers are deterministic.

    **Attributes** (measured server-side): `requests`, `concurrent`, `max_concurrent`,
    `bodies` (the decoded request bodies), `unauthorized` (requests refused with 401).
    """

    def __init__(
        self, *, latency: float = 0.0, api_key: str | None = None, respond: Responder | None = None
    ):
        self.latency = latency
        self.api_key = api_key
        self.respond = respond or _default_respond
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> OpenAITestServer:
        """Bind 127.0.0.1 on a free port and serve in a background thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="openai-test-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and join every server thread."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes requests sleeping through latency or a slow fault
        server.shutdown()
        server.close_connections()
        server.server_close()  # joins the per-connection threads
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the test server is not running; call start() or use `with`")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/v1`, the form `OPENAI_BASE_URL` takes."""
        return f"{self.url}/v1"

    # --- faults and measurements -------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each upcoming request consumes the next one."""
        with self._lock:
            self._faults.extend(faults)

    def reset(self) -> None:
        """Forget measurements and queued faults."""
        with self._lock:
            self._faults.clear()
            self.requests = 0
            self.concurrent = 0
            self.max_concurrent = 0
            self.unauthorized = 0
            self.bodies: list[dict[str, Any]] = []

    def stats(self) -> dict[str, int]:
        """The measurements as a dict (also served at `GET /stats`)."""
        with self._lock:
            return {
                "requests": self.requests,
                "concurrent": self.concurrent,
                "max_concurrent": self.max_concurrent,
                "unauthorized": self.unauthorized,
            }

    def _enter(self, body: dict[str, Any]) -> Fault | None:
        with self._lock:
            self.requests += 1
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
            self.bodies.append(body)
            return self._faults.popleft() if self._faults else None

    def _leave(self) -> None:
        with self._lock:
            self.concurrent -= 1

    def _wait(self, seconds: float) -> bool:
        """Sleep `seconds` unless the server stops first; False when it is stopping."""
        if seconds > 0:
            return not self._stopping.wait(seconds)
        return not self._stopping.is_set()


class _Server(ThreadingHTTPServer):
    """Keeps track of connections so `stop()` can cut idle keep-alive ones."""

    daemon_threads = False  # server_close() joins them: no thread outlives the server
    request_queue_size = 512  # listen backlog: the default 5 drops SYNs when 100 calls connect
    block_on_close = True

    def __init__(self, address: tuple[str, int], handler: type, owner: OpenAITestServer):
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out close their end mid-answer; that is expected here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers and client pools expect
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # stay quiet: tests read stderr

    def do_GET(self) -> None:  # noqa: N802 - `/v1/models`; `/stats`, `/reset` for ServerProcess
        owner, path = self.server.owner, self.path.rstrip("/")
        if path == "/v1/models":
            self._send(200, _models_list())
            return
        if path == "/reset":
            owner.reset()
        elif path != "/stats":
            self._send(404, _error_body(f"no route {self.path}", "not_found"))
            return
        self._send(200, json.dumps(owner.stats()).encode())

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        owner = self.server.owner
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, _error_body(f"no route {self.path}", "not_found"))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, _error_body("request body is not JSON", "invalid_request_error"))
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            message = "'messages' is a required property"
            self._send(400, _error_body(message, "invalid_request_error", "messages"))
            return
        if not self._authorized(owner):
            return
        fault = owner._enter(body)
        try:
            answering = owner._wait(owner.latency + (fault.delay if fault else 0.0))
        finally:
            # a request counts as in progress until the server starts answering: a client
            # that frees its slot on reading the answer can then never be seen twice
            owner._leave()
        if answering:
            self._answer(owner, body, fault)
        else:  # stopping: drop the connection unanswered, as a dying server would
            self.close_connection = True

    def _authorized(self, owner: OpenAITestServer) -> bool:
        if owner.api_key is None:
            return True
        received = self.headers.get("Authorization", "")
        if received == f"Bearer {owner.api_key}":
            return True
        with owner._lock:
            owner.unauthorized += 1
        token = received.removeprefix("Bearer ")
        message = f"Incorrect API key provided: {token}"  # echoed, as providers do
        self._send(401, _error_body(message, "invalid_api_key"))
        return False

    def _answer(self, owner: OpenAITestServer, body: dict[str, Any], fault: Fault | None) -> None:
        if fault is not None and fault.bad_json:
            self._send(200, b'{"choices": [ this is not json')
        elif fault is not None and fault.status != 200:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            kind = "rate_limit_exceeded" if fault.status == 429 else "server_error"
            self._send(fault.status, _error_body(f"injected HTTP {fault.status}", kind), headers)
        elif body.get("stream"):
            self._send_events(_chunks(owner, body))
        else:
            payload = _completion(owner, body, bad_usage=fault is not None and fault.garbage_usage)
            self._send(200, payload, trickle=fault.byte_interval if fault else 0.0)

    def _send(
        self,
        status: int,
        payload: bytes,
        headers: dict[str, str] | None = None,
        trickle: float = 0.0,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not trickle:
            self.wfile.write(payload)
            return
        for i in range(len(payload)):  # one byte at a time, until the client gives up
            if not self.server.owner._wait(trickle):
                return
            self.wfile.write(payload[i : i + 1])
            self.wfile.flush()

    def _send_events(self, chunks: list[dict[str, Any]]) -> None:
        """Server-Sent Events over chunked transfer encoding (so keep-alive still works)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        events = [f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks]
        for event in [*events, b"data: [DONE]\n\n", b""]:
            self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            self.wfile.flush()


def _prompt_of(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{}]
    return str(messages[-1].get("content", ""))


def _default_respond(prompt: str, body: dict[str, Any]) -> str:
    choice = body.get("choice", 0)
    data = f"{body.get('seed')}\x1f{prompt}" + (f"\x1f{choice}" if choice else "")
    return f"answer-{hashlib.blake2b(data.encode(), digest_size=4).hexdigest()}"


def _choices(owner: OpenAITestServer, body: dict[str, Any]) -> list[dict[str, Any]]:
    """One `message` per requested choice: text, JSON text, or a tool call."""
    prompt, n = _prompt_of(body), body.get("n") or 1
    messages = body.get("messages") or [{}]
    tools = body.get("tools") or []
    if tools and body.get("tool_choice") != "none" and messages[-1].get("role") != "tool":
        name = tools[0].get("function", {}).get("name", "tool")
        call = {
            "id": f"call_{owner.requests}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps({"prompt": prompt})},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        return [{"index": i, "message": message, "finish_reason": "tool_calls"} for i in range(n)]
    json_mode = (body.get("response_format") or {}).get("type") in ("json_object", "json_schema")
    choices = []
    for i in range(n):
        text = owner.respond(prompt, {**body, "choice": i})
        content = json.dumps({"answer": text}) if json_mode else text
        message = {"role": "assistant", "content": content}
        choices.append({"index": i, "message": message, "finish_reason": "stop"})
    return choices


def _usage_of(body: dict[str, Any], choices: list[dict[str, Any]]) -> dict[str, int]:
    prompt = _prompt_of(body)
    texts = [c["message"]["content"] or json.dumps(c["message"]["tool_calls"]) for c in choices]
    prompt_tokens = max(1, len(prompt) // 4)
    completion_tokens = sum(max(1, len(t) // 4) for t in texts)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _header(owner: OpenAITestServer, body: dict[str, Any], kind: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-test-{owner.requests}",
        "object": kind,
        "created": int(time.time()),
        "model": body.get("model", "test-model"),
    }


def _completion(owner: OpenAITestServer, body: dict[str, Any], bad_usage: bool = False) -> bytes:
    choices = _choices(owner, body)
    usage: dict[str, Any] = _usage_of(body, choices)
    if bad_usage:
        usage = {"prompt_tokens": "many", "completion_tokens": [1], "total_tokens": None}
    reply = {**_header(owner, body, "chat.completion"), "choices": choices, "usage": usage}
    return json.dumps(reply).encode()


def _chunks(owner: OpenAITestServer, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The `chat.completion.chunk`s of a streamed answer: per choice, its deltas and a
    finish chunk; then usage, if the request asked for it."""
    header, chunks = _header(owner, body, "chat.completion.chunk"), []
    choices = _choices(owner, body)
    for choice in choices:
        index = choice["index"]
        for delta in _deltas(choice["message"]):
            delta_choice = {"index": index, "delta": delta, "finish_reason": None}
            chunks.append({**header, "choices": [delta_choice]})
        finish = {"index": index, "delta": {}, "finish_reason": choice["finish_reason"]}
        chunks.append({**header, "choices": [finish]})
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append({**header, "choices": [], "usage": _usage_of(body, choices)})
    return chunks


def _deltas(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A message as stream deltas: the role, then the content (or one tool call) in pieces."""
    calls = message.get("tool_calls")
    if not calls:
        pieces = _pieces(message["content"])
        return [{"role": "assistant", "content": ""}, *({"content": p} for p in pieces)]
    call, function = calls[0], calls[0]["function"]
    opening = {"index": 0, "id": call["id"], "type": "function"}
    opening["function"] = {"name": function["name"], "arguments": ""}
    rest = [
        {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}
        for part in _pieces(function["arguments"])
    ]
    return [{"role": "assistant", "content": None}, {"tool_calls": [opening]}, *rest]


def _pieces(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _models_list() -> bytes:
    model = {"id": "test-model", "object": "model", "created": 0, "owned_by": "ember_xcs"}
    return json.dumps({"object": "list", "data": [model]}).encode()


def _error_body(message: str, kind: str, param: str | None = None) -> bytes:
    error = {"message": message, "type": kind, "param": param, "code": kind}
    return json.dumps({"error": error}).encode()


class ServerProcess:
    """An `OpenAITestServer` in a child process, so its CPU time is not the client's.

    In one process the server's and the client's Python threads share one GIL, which
    inflates the client's apparent overhead; benchmarks use this instead. `stats()` and
    `reset()` read and zero the server's measurements over HTTP (`GET /stats`,
    `GET /reset`). Faults cannot be injected across the process boundary.

    !!! example
        ```python
        with ServerProcess(latency=0.05) as server:
            model = OpenAICompatibleModel(server.url, "test-model")
            ...
            print(server.stats()["max_concurrent"])
        ```
    """

    def __init__(self, *, latency: float = 0.0):
        self.latency = latency
        self._process: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> ServerProcess:
        command = [sys.executable, "-m", "ember_xcs.models.testing", "--latency", str(self.latency)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        line = self._process.stdout.readline() if self._process.stdout else ""
        if not line.startswith("serving "):
            self.__exit__()
            raise RuntimeError(f"the test server process did not start (it printed {line!r})")
        self.url = line.split()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin:
            process.stdin.close()  # the child serves until its stdin closes
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def stats(self) -> dict[str, int]:
        """`requests`, `concurrent`, `max_concurrent`, `unauthorized`, from the server."""
        return self._get("stats")

    def reset(self) -> dict[str, int]:
        """Zero the server's measurements (and drop queued faults)."""
        return self._get("reset")

    def _get(self, route: str) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/{route}", timeout=5.0) as reply:
            return json.loads(reply.read())


def main(argv: list[str] | None = None) -> int:
    """`python -m ember_xcs.models.testing --latency 0.05`: serve until stdin closes."""
    parser = argparse.ArgumentParser(description="a local OpenAI-compatible test server")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    args = parser.parse_args(argv)
    with OpenAITestServer(latency=args.latency) as server:
        print(f"serving {server.url}", flush=True)
        sys.stdin.read()  # returns when the parent closes our stdin (or exits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
