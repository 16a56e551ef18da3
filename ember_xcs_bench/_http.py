"""HTTP rows: real LLM endpoints, ember_xcs's HTTP model against the clients users write.

Every contender talks to the same loopback `OpenAITestServer`, run in a child process
(`python -m ember_xcs_bench._http`) so its request handling does not compete with the
client for this process's GIL: the rows measure the client. Each row records the client
CPU time per run (`time.process_time`, this process only) next to the wall time.

**The depth-2 ensemble** (111 calls, server latency L, critical path 3 L), answers checked
against the same structure on a zero-latency server:

- ember `jit` over sync operators (`def forward` calling `model.complete`) and over
  `async def` operators (`await model.acomplete`);
- `asyncio.gather` + aiohttp by hand (the bar), + `openai.AsyncOpenAI`, + `httpx.AsyncClient`;
- a `ThreadPoolExecutor` dataflow + sync `openai.OpenAI`.

**Throughput**: 2,000 requests, 100 in flight, against a 0 ms server: aiohttp by hand,
ember's `acomplete` under `asyncio.gather`, ember's `complete` from 100 threads, 2,000
`model.complete` leaf calls in one jitted function, and the openai/httpx async clients.
The contenders take turns, round by round in a rotated order, so a change in the machine's
load during the section falls on all of them alike.

**A cache hit**: `complete` on a cached prompt, in microseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ember_xcs.operators import Operator

from . import _variants as v
from ._baselines import asyncio_gather, threadpool
from ._case import Case, Runner, Unavailable, build_case
from ._rows import Row
from ._scenarios import ensemble_depth2
from ._suite import Contender, run_contenders

__all__ = ["NOTES", "AsyncModelCall", "ModelCall", "http_section"]

NOTES: list[str] = []
MODEL = "bench"
THROUGHPUT_REQUESTS, THROUGHPUT_CONCURRENCY = 2_000, 100


class ModelCall(Operator):
    """A leaf LLM call through a `Model` (`def forward`): the label and inputs become the
    prompt."""

    def __init__(self, label: str, model: Any, latency: float):
        self.label = label
        self.model = model
        self.latency = latency  # the model's latency, declared for the critical path

    @property
    def name(self) -> str:
        return self.label

    def forward(self, prompt: Any, *context: Any) -> str:
        return self.model.complete(_prompt(self.label, prompt, context)).text


class AsyncModelCall(ModelCall):
    """The same call as an `async def` operator."""

    async def forward(self, prompt: Any, *context: Any) -> str:  # type: ignore[override]
        return (await self.model.acomplete(_prompt(self.label, prompt, context))).text


class ClientCall(ModelCall):
    """A leaf calling a hand-written client (`complete`/`acomplete` return the text)."""

    def forward(self, prompt: Any, *context: Any) -> str:
        return self.model.complete(_prompt(self.label, prompt, context))

    async def aforward(self, prompt: Any, *context: Any) -> str:
        return await self.model.acomplete(_prompt(self.label, prompt, context))


def _prompt(label: str, prompt: Any, context: tuple[Any, ...]) -> str:
    return "\n".join([f"[{label}] {prompt}", *map(str, context)])


def _body(prompt: str) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}


# --- hand-written clients ---------------------------------------------------------------------


class _Aiohttp:
    """aiohttp by hand: one session on the caller's loop, no connection cap."""

    def __init__(self, base_url: str):
        import aiohttp

        self._aiohttp, self.url, self._session = aiohttp, f"{base_url}/chat/completions", None

    async def acomplete(self, prompt: str) -> str:
        if self._session is None:
            connector = self._aiohttp.TCPConnector(limit=0)
            self._session = self._aiohttp.ClientSession(connector=connector)
        async with self._session.post(self.url, json=_body(prompt)) as reply:
            return (await reply.json())["choices"][0]["message"]["content"]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _HttpxAsync:
    def __init__(self, base_url: str):
        import httpx

        self._httpx, self.url, self._client = httpx, f"{base_url}/chat/completions", None

    async def acomplete(self, prompt: str) -> str:
        if self._client is None:
            limits = self._httpx.Limits(max_connections=None, max_keepalive_connections=200)
            self._client = self._httpx.AsyncClient(limits=limits, timeout=60.0)
        reply = await self._client.post(self.url, json=_body(prompt))
        return reply.json()["choices"][0]["message"]["content"]

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class _OpenAIAsync:
    def __init__(self, base_url: str):
        import openai

        self._openai, self.base_url, self._client = openai, base_url, None

    async def acomplete(self, prompt: str) -> str:
        if self._client is None:
            self._client = self._openai.AsyncOpenAI(
                base_url=self.base_url, api_key="bench", max_retries=0
            )
        reply = await self._client.chat.completions.create(**_body(prompt))
        return reply.choices[0].message.content

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class _OpenAISync:
    def __init__(self, base_url: str):
        import openai

        self._client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)

    def complete(self, prompt: str) -> str:
        reply = self._client.chat.completions.create(**_body(prompt))
        return reply.choices[0].message.content

    def close(self) -> None:
        self._client.close()


_CLIENTS: dict[str, tuple[Callable[[str], Any], Callable[[Case], Runner]]] = {
    "asyncio + aiohttp by hand": (_Aiohttp, asyncio_gather),
    "asyncio + openai.AsyncOpenAI": (_OpenAIAsync, asyncio_gather),
    "asyncio + httpx.AsyncClient": (_HttpxAsync, asyncio_gather),
    "threadpool + openai.OpenAI": (_OpenAISync, threadpool),
}


# --- the section ------------------------------------------------------------------------------


def http_section(settings: Any, log: Callable[[str], None]) -> list[Row]:
    from ember_xcs.models import OpenAICompatibleModel

    NOTES.clear()
    rows: list[Row] = []
    latency = max(settings.latencies)
    with _servers(latency) as (urls, seen):

        def ember(lat: float) -> Any:
            return OpenAICompatibleModel(urls["slow" if lat else "fast"], MODEL)

        log(f"[http] ensemble-depth2 (111 calls), server latency {latency * 1000:g} ms")
        for name, leaf in (("sync operators", ModelCall), ("async def operators", AsyncModelCall)):
            case = build_case(
                "ensemble-depth2 (http)",
                _program(lambda lat, leaf=leaf: leaf, ember),
                latency,
                reference=_program(lambda _: ModelCall, ember),
            )
            jit = Contender(f"ember jit: {name}", "ember", _with_cpu(v.jit("auto")))
            rows += run_contenders("http", case, [jit], settings.repeats, log)
        reference = _program(lambda _: ModelCall, ember)
        for name, (client, baseline) in _CLIENTS.items():
            rows += _client_rows(name, client, baseline, urls, reference, latency, settings, log)
        for row in rows:
            row.ratio, row.ratio_name = row.wall_over_cp, "wall/cp"
        # quick: one request per slot, all in flight at once (the smoke checks answers only)
        requests = THROUGHPUT_CONCURRENCY if settings.quick else THROUGHPUT_REQUESTS
        log(f"[http] throughput: {requests} requests, {THROUGHPUT_CONCURRENCY} in flight, 0 ms")
        rows += _throughput_rows(urls["fast"], requests, settings, log)
        rows.append(_cache_hit_row(urls["fast"], log))
    NOTES.append(
        f"HTTP rows: the {latency * 1000:g} ms server saw {seen.get('requests', '?')} requests, "
        f"at most {seen.get('max_concurrent', '?')} at once (counted server-side)"
    )
    return rows


def _program(leaf_for: Callable[[float], type], make_model: Callable[[float], Any]) -> Callable:
    """The depth-2 program factory; one model per latency, shared by its 111 leaves."""
    models: dict[float, Any] = {}

    def factory(latency: float) -> Operator:
        model = models.setdefault(latency, make_model(latency))
        leaf = leaf_for(latency)
        return ensemble_depth2(latency, leaf=lambda label, lat: leaf(label, model, lat))

    return factory


def _client_rows(name, client, baseline, urls, reference, latency, settings, log) -> list[Row]:  # noqa: ANN001
    try:
        made = {lat: client(urls["slow" if lat else "fast"]) for lat in (latency, 0.0)}
    except ImportError as exc:
        note = f"{exc.name} is not installed (pip install 'ember_xcs[bench]')"
        return [Row("http", "ensemble-depth2 (http)", name, "baseline", note=note)]
    case = build_case("ensemble-depth2 (http)", _client_program(made), latency, reference=reference)
    return run_contenders(
        "http", case, [Contender(name, "baseline", _with_cpu(baseline))], settings.repeats, log
    )


def _client_program(clients: dict[float, Any]) -> Callable[[float], Operator]:
    def factory(latency: float) -> Operator:
        client = clients[latency]
        return ensemble_depth2(latency, leaf=lambda label, lat: ClientCall(label, client, lat))

    return factory


def _with_cpu(make: Callable[[Case], Runner]) -> Callable[[Case], Runner]:
    """`make`, with this process's CPU time per run recorded as `cpu_ms`."""

    def wrapped(case: Case) -> Runner:
        runner, spent = make(case), []

        def call(x: Any) -> list[Any]:
            start = time.process_time()
            try:
                return runner.call(x)
            finally:
                spent.append(time.process_time() - start)

        def info() -> dict[str, Any]:
            cpu = {"cpu_ms": round(statistics.median(spent) * 1e3, 1)} if spent else {}
            return {**runner.info(), **cpu}

        return Runner(call, runner.close, info)

    return wrapped


# --- throughput and cache hits ----------------------------------------------------------------


def _throughput_rows(
    url: str, requests: int, settings: Any, log: Callable[[str], None]
) -> list[Row]:
    """Every contender once per round, in a rotated order, so all see the same machine
    load; the first round warms up (connections, imports) and is not counted."""
    prompts = [f"request {i}" for i in range(requests)]
    contenders = list(_throughput_contenders(url))
    seen: dict[str, list[tuple[float, float, bool]]] = {name: [] for name, _, _ in contenders}
    notes: dict[str, tuple[bool, str]] = {}  # contenders that could not run: (ok, why)
    rounds = 1 + max(1, min(settings.repeats, 3))
    for round_ in range(rounds):
        shift = round_ % len(contenders)
        for name, _, run in contenders[shift:] + contenders[:shift]:
            if name not in notes:
                try:
                    seen[name].append(_timed(run, prompts))
                except Unavailable as exc:
                    notes[name] = (True, str(exc))
                except Exception as exc:  # noqa: BLE001 - a failing contender is a reported row
                    first = str(exc).splitlines()[0][:120] if str(exc) else ""
                    notes[name] = (False, f"{type(exc).__name__}: {first}")
                    log(f"  {name:<44} failed: {notes[name][1]}")
    rows = []
    for name, kind, _ in contenders:
        if name in notes:
            ok, note = notes[name]
            rows.append(Row("http", _THROUGHPUT, name, kind, ok=ok, note=note))
            continue
        rows.append(_throughput_row(name, kind, seen[name][1:], requests, log))
    best = next((r for r in rows if r.variant == "asyncio + aiohttp by hand" and r.measured), None)
    for row in rows:
        if best is not None and row.measured:
            row.ratio, row.ratio_name = best.median_s / row.median_s, "throughput vs aiohttp"
    return rows


def _throughput_row(
    name: str,
    kind: str,
    runs: list[tuple[float, float, bool]],
    requests: int,
    log: Callable[[str], None],
) -> Row:
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    ok = all(r[2] for r in runs)
    row = Row(
        "http",
        _THROUGHPUT,
        name,
        kind,
        median_s=wall,
        min_s=min(r[0] for r in runs),
        max_s=max(r[0] for r in runs),
        runs=len(runs),
        nodes=requests,
        ok=ok,
        note="" if ok else "wrong or missing answers",
    )
    row.extra = {
        "req_per_s": round(requests / wall),
        "cpu_ms_per_request": round(cpu / requests * 1e3, 3),
    }
    log(f"  {name:<44} {requests / wall:8.0f} req/s  {cpu / requests * 1e3:6.3f} CPU-ms/request")
    return row


_THROUGHPUT = f"throughput, {THROUGHPUT_CONCURRENCY} in flight"


def _timed(run: Callable[[list[str]], list[str]], prompts: list[str]) -> tuple[float, float, bool]:
    wall, cpu = time.perf_counter(), time.process_time()
    texts = run(prompts)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    ok = len(texts) == len(prompts) and all(
        isinstance(t, str) and t.startswith("answer-") for t in texts
    )
    return wall, cpu, ok


def _throughput_contenders(url: str) -> Iterator[tuple[str, str, Callable[[list[str]], list[str]]]]:
    import ember_xcs as xcs
    from ember_xcs.models import OpenAICompatibleModel

    model = OpenAICompatibleModel(url, MODEL, max_concurrency=THROUGHPUT_CONCURRENCY)

    async def gather(prompts: list[str]) -> list[str]:
        replies = await asyncio.gather(*(model.acomplete(p) for p in prompts))
        return [r.text for r in replies]

    def threads(prompts: list[str]) -> list[str]:
        with ThreadPoolExecutor(THROUGHPUT_CONCURRENCY) as pool:
            return [r.text for r in pool.map(model.complete, prompts)]

    @xcs.jit
    def batch(prompts: list[str]) -> list[Any]:
        return [model.complete(p) for p in prompts]

    def jitted(prompts: list[str]) -> list[str]:
        with xcs.execution_options(max_workers=THROUGHPUT_CONCURRENCY):
            return [r.text for r in batch(prompts)]

    for name, client in (
        ("asyncio + aiohttp by hand", _Aiohttp),
        ("asyncio + openai.AsyncOpenAI", _OpenAIAsync),
        ("asyncio + httpx.AsyncClient", _HttpxAsync),
    ):
        yield name, "baseline", _capped_gather(client, url)
    yield "ember acomplete, asyncio.gather", "ember", lambda p: asyncio.run(gather(p))
    yield f"ember complete, {THROUGHPUT_CONCURRENCY} threads", "ember", threads
    yield "ember jit: model.complete per request", "ember", jitted


def _capped_gather(client_type: Callable[[str], Any], url: str) -> Callable[[list[str]], list[str]]:
    def run(prompts: list[str]) -> list[str]:
        try:
            client = client_type(url)
        except ImportError as exc:
            raise Unavailable(
                f"{exc.name} is not installed (pip install 'ember_xcs[bench]')"
            ) from None

        async def main() -> list[str]:
            slots = asyncio.Semaphore(THROUGHPUT_CONCURRENCY)

            async def one(prompt: str) -> str:
                async with slots:
                    return await client.acomplete(prompt)

            try:
                return list(await asyncio.gather(*(one(p) for p in prompts)))
            finally:
                await client.aclose()

        return asyncio.run(main())

    return run


def _cache_hit_row(url: str, log: Callable[[str], None], hits: int = 10_000) -> Row:
    from ember_xcs.models import OpenAICompatibleModel, ResponseCache

    with tempfile.TemporaryDirectory() as folder:
        cache = ResponseCache(f"{folder}/responses.sqlite")
        model = OpenAICompatibleModel(url, MODEL, cache=cache)
        model.complete("cached prompt")
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(hits // 5):
                model.complete("cached prompt")
            samples.append((time.perf_counter() - start) / (hits // 5))
        ok = model.stats()["cache_hits"] == hits
        cache.close()
    median = statistics.median(samples)
    log(f"  cache hit: {median * 1e6:.1f} us")
    row = Row(
        "http",
        "cache hit",
        "model.complete, cached",
        "ember",
        median_s=median,
        min_s=min(samples),
        max_s=max(samples),
        runs=len(samples),
        nodes=1,
        ok=ok,
    )
    row.ratio, row.ratio_name = median * 1e6, "us per hit"
    return row


# --- goals -----------------------------------------------------------------------------------

Goal = tuple[str, str, str, float | None, float, bool]  # name, target, figure, value, limit, ok


def http_goals(rows: list[Row]) -> list[Goal]:
    """Issue 12's goals, from this section's rows."""
    found = {(r.scenario, r.variant): r for r in rows if r.section == "http" and r.measured}
    goals: list[Goal] = []
    by_hand = found.get(("ensemble-depth2 (http)", "asyncio + aiohttp by hand"))
    for kind in ("sync operators", "async def operators"):
        row = found.get(("ensemble-depth2 (http)", f"ember jit: {kind}"))
        if row is None:
            continue
        name = f"ensemble-depth2 over HTTP, {kind}"
        goals.append(
            (name, "≤ 1.25 × CP", f"{row.wall_over_cp:.3f} × CP", row.wall_over_cp, 1.25, row.ok)
        )
        if by_hand is not None:
            ratio = row.median_s / by_hand.median_s
            goals.append((name, "≤ 1.10 × aiohttp by hand", f"{ratio:.3f} ×", ratio, 1.10, row.ok))
    base = found.get((_THROUGHPUT, "asyncio + aiohttp by hand"))
    for variant in (
        "ember acomplete, asyncio.gather",
        "ember jit: model.complete per request",
        f"ember complete, {THROUGHPUT_CONCURRENCY} threads",
    ):
        row = found.get((_THROUGHPUT, variant))
        if row is None or base is None:
            continue
        share = base.median_s / row.median_s
        goals.append(
            (
                f"throughput: {variant}",
                "≥ 0.8 × aiohttp by hand",
                f"{share:.2f} × ({row.extra['req_per_s']} vs {base.extra['req_per_s']} req/s)",
                0.8 / share,
                1.0,
                row.ok,
            )
        )
        cpu = row.extra["cpu_ms_per_request"]
        goals.append(
            (
                f"throughput: {variant}",
                "≤ 0.3 CPU-ms per request",
                f"{cpu:.3f} ms",
                cpu,
                0.3,
                row.ok,
            )
        )
    hit = found.get(("cache hit", "model.complete, cached"))
    if hit is not None:
        us = hit.median_s * 1e6
        goals.append(("response cache hit", "≤ 50 µs", f"{us:.1f} µs", us, 50.0, hit.ok))
    return goals


# --- the servers ------------------------------------------------------------------------------


@contextlib.contextmanager
def _servers(latency: float) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
    """Base URLs of a server with `latency` and one without; stats filled in on exit."""
    argv = [sys.executable, "-m", "ember_xcs_bench._http", str(latency)]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    seen: dict[str, Any] = {}
    try:
        yield json.loads(proc.stdout.readline()), seen
    finally:
        out, _ = proc.communicate(input="", timeout=60)  # EOF on stdin stops the child
        seen.update(json.loads(out.strip().splitlines()[-1]) if out.strip() else {})


def _serve(latency: float) -> None:
    """Child process: serve until stdin closes, then print the slow server's counters."""
    from ember_xcs.models import testing

    slow = testing.OpenAITestServer(latency=latency).start()
    fast = testing.OpenAITestServer(latency=0.0).start()
    print(json.dumps({"slow": slow.base_url, "fast": fast.base_url}), flush=True)
    sys.stdin.read()
    seen = {"requests": slow.requests, "max_concurrent": slow.max_concurrent}
    slow.stop()
    fast.stop()
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    _serve(float(sys.argv[1]))
