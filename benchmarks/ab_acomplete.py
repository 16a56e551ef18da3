"""`acomplete` + `asyncio.gather` throughput: on the caller's loop, through the shared loop,
and aiohttp by hand, interleaved in one run.

    python benchmarks/ab_acomplete.py [--rounds 5] [--requests 2000]

One loopback `OpenAITestServer` answering at once runs in a child process (as in the
`http` bench section, so the server's CPU is not the client's). Each round runs every
contender once, in a rotated order, with `--requests` requests and 100 in flight:

- `aiohttp by hand`: one `ClientSession` on the caller's loop (the bar);
- `acomplete, caller's loop`: `await model.acomplete(...)` under `asyncio.gather`;
- `acomplete via shared loop`: the same call handed to ember_xcs's shared loop and its
  result handed back (`run_coroutine_threadsafe` + `wrap_future`), which is what
  `acomplete` did before it ran on the caller's loop.

Those three start a new event loop per run (`asyncio.run`), so the first two open their
100 connections anew each run, while the shared loop's pool stays warm. Two more rows
keep one loop for every run (an `asyncio.Runner`, as a long-lived server would), so
their pools stay warm too: `aiohttp by hand, one loop` and `acomplete, one loop`.

Prints, per contender, the median over rounds of req/s and of client CPU-ms per request
(`time.process_time`, this process only), and the ratio to aiohttp by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from ember_xcs.models import OpenAICompatibleModel
from ember_xcs.scheduling import background_loop
from ember_xcs_bench._http import MODEL, THROUGHPUT_CONCURRENCY, _Aiohttp, _capped_gather, _servers


def _gather_with(model: OpenAICompatibleModel, hop: bool) -> Callable[[list[str]], Any]:
    """A coroutine function: `acomplete` for every prompt under `asyncio.gather`."""

    async def one(prompt: str) -> Any:
        if not hop:
            return await model.acomplete(prompt)
        future = asyncio.run_coroutine_threadsafe(model.acomplete(prompt), background_loop())
        return await asyncio.wrap_future(future)

    async def main(prompts: list[str]) -> list[str]:
        return [r.text for r in await asyncio.gather(*(one(p) for p in prompts))]

    return main


def _by_hand_on(client: _Aiohttp) -> Callable[[list[str]], Any]:
    """A coroutine function: aiohttp by hand, one client (and session) kept across runs."""
    slots = None

    async def main(prompts: list[str]) -> list[str]:
        nonlocal slots
        slots = slots or asyncio.Semaphore(THROUGHPUT_CONCURRENCY)

        async def one(prompt: str) -> str:
            async with slots:
                return await client.acomplete(prompt)

        return list(await asyncio.gather(*(one(p) for p in prompts)))

    return main


def _fresh(make: Callable[[list[str]], Any]) -> Callable[[list[str]], Any]:
    """Run `make(prompts)` on a new event loop each time (`asyncio.run`)."""
    return lambda prompts: asyncio.run(make(prompts))


def _on_one_loop(
    runner: asyncio.Runner, make: Callable[[list[str]], Any]
) -> Callable[[list[str]], Any]:
    """`make(prompts)` is a coroutine; run it on `runner`'s loop, the same loop every time."""
    return lambda prompts: runner.run(make(prompts))


def _measure(run: Callable[[list[str]], Any], prompts: list[str]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    texts = run(prompts)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert len(texts) == len(prompts) and all(t.startswith("answer-") for t in texts)
    return len(prompts) / wall, cpu / len(prompts) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2_000)
    args = parser.parse_args()
    prompts = [f"request {i}" for i in range(args.requests)]
    with _servers(0.0) as (urls, _), asyncio.Runner() as runner:
        model = OpenAICompatibleModel(urls["fast"], MODEL, max_concurrency=THROUGHPUT_CONCURRENCY)
        kept = _Aiohttp(urls["fast"])
        contenders: dict[str, Callable[[list[str]], Any]] = {
            "aiohttp by hand": _capped_gather(_Aiohttp, urls["fast"]),
            "acomplete, caller's loop": _fresh(_gather_with(model, hop=False)),
            "acomplete via shared loop": _fresh(_gather_with(model, hop=True)),
            "aiohttp by hand, one loop": _on_one_loop(runner, _by_hand_on(kept)),
            "acomplete, one loop": _on_one_loop(runner, _gather_with(model, hop=False)),
        }
        names = list(contenders)
        for name in names:  # warm up: connections, imports, the shared loop
            _measure(contenders[name], prompts[:200])
        seen: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
        for round_ in range(args.rounds):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                seen[name].append(_measure(contenders[name], prompts))
        runner.run(kept.aclose())
    bar = statistics.median(r for r, _ in seen["aiohttp by hand"])
    print(f"{args.requests} requests, {THROUGHPUT_CONCURRENCY} in flight, {args.rounds} rounds")
    for name in names:
        rate = statistics.median(r for r, _ in seen[name])
        cpu = statistics.median(c for _, c in seen[name])
        print(f"  {name:<28} {rate:7.0f} req/s  {cpu:6.3f} CPU-ms/req  {rate / bar:5.2f} x")


if __name__ == "__main__":
    main()
