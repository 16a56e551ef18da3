"""HTTP rows: the depth-2 ensemble through `OpenAICompatibleModel` vs `SimulatedModel`.

Both run the same 111-call structure (`ensemble_depth2` with `ModelCall` leaves). The
HTTP model talks to a local `OpenAITestServer` whose handler waits L before answering
(server-side latency); the simulated model waits the same L in-process. The difference
between the two rows is what the HTTP client costs (serialising, sockets, parsing).

The servers run in a child process (`python -m ember_xcs_bench._http`), so their
request handling does not compete with the client for this process's GIL: the rows
measure the client, not the server. (The test server's listen backlog is 512, not
`socketserver`'s default of 5, which with 100 connections opening at once drops SYNs
that the kernel retries after 1 s.)

Reference answers come from the same structure against a second server (or simulated
model) with zero latency, so every row is checked. Plain Python is not run here: 111
sequential 50 ms requests would add 30 s for a number the `llm` section already gives.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

from ember_xcs.operators import Operator
from . import _variants as v
from ._baselines import asyncio_gather, threadpool
from ._case import build_case
from ._rows import Row
from ._scenarios import ensemble_depth2
from ._suite import Contender, run_contenders

__all__ = ["NOTES", "ModelCall", "http_section"]

NOTES: list[str] = []


class ModelCall(Operator):
    """A leaf LLM call through a `Model`: the label and inputs become the prompt."""

    def __init__(self, label: str, model: Any, latency: float):
        self.label = label
        self.model = model
        self.latency = latency  # the model's latency, declared for the critical path

    @property
    def name(self) -> str:
        return self.label

    def forward(self, prompt: Any, *context: Any) -> str:
        return self.model.complete(_prompt(self.label, prompt, context)).text

    async def aforward(self, prompt: Any, *context: Any) -> str:
        return (await self.model.acomplete(_prompt(self.label, prompt, context))).text


def _prompt(label: str, prompt: Any, context: tuple[Any, ...]) -> str:
    return "\n".join([f"[{label}] {prompt}", *map(str, context)])


def _contenders() -> list[Contender]:
    return [
        Contender("graph: parallel", "ember", v.graph("parallel")),
        Contender("jit: auto", "ember", v.jit("auto")),
        Contender("threadpool", "baseline", threadpool),
        Contender("asyncio", "baseline", asyncio_gather),
    ]


def http_section(settings: Any, log: Callable[[str], None]) -> list[Row]:
    from ember_xcs.models import OpenAICompatibleModel, SimulatedModel

    rows: list[Row] = []
    latency = max(settings.latencies)
    with _servers(latency) as (urls, seen):
        models = {
            "http": lambda lat: OpenAICompatibleModel(urls["slow" if lat else "fast"], "bench"),
            "simulated": lambda lat: SimulatedModel("bench", latency=lat),
        }
        for label, make_model in models.items():
            log(f"[http] ensemble-depth2 via {label} model, L = {latency * 1000:g} ms")
            made: dict[float, Any] = {}
            case = build_case(f"ensemble-depth2 ({label})", _program(make_model, made), latency)
            try:
                rows += run_contenders("http", case, _contenders(), settings.repeats, log)
            finally:
                for model in made.values():
                    getattr(model, "close", lambda: None)()
    NOTES.append(
        f"HTTP rows: the test server saw {seen.get('requests', '?')} requests, at most "
        f"{seen.get('max_concurrent', '?')} at once (counted server-side)"
    )
    for row in rows:
        row.ratio, row.ratio_name = row.wall_over_cp, "wall/cp"
    return rows


def _program(make_model: Callable[[float], Any], cache: dict[float, Any]) -> Callable:
    """The depth-2 program factory; one model per latency, kept in `cache` for closing."""

    def factory(latency: float) -> Operator:
        model = cache.setdefault(latency, make_model(latency))
        return ensemble_depth2(latency, leaf=lambda label, lat: ModelCall(label, model, lat))

    return factory


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
