"""Tokens and requests per jitted function, per block of code, and per call as it happens.

Starts the loopback test server, jits a 3-sample ensemble + judge over an
`OpenAICompatibleModel`, and runs it on two questions. Three views of the same usage:
`xcs.get_jit_stats(fn)` sums the requests and tokens of every call of the jitted
function; `models.track_usage()` sums what one block of code asked for (here one call);
an `on_model_usage` hook sees each request as it completes. They agree with the server's
own request counter.

Features: `get_jit_stats` (`model_calls`, `prompt_tokens`, `completion_tokens`,
`total_tokens`), `models.track_usage`, the `on_model_usage` hook event,
`OpenAITestServer.requests`.

How to run (page: docs/models.md, "Usage, stats and hooks"):

    python examples/models/52_usage_per_jitted_call.py
"""

# expect: ^jit stats: 8 model calls, tokens \d+ = \d+ prompt \+ \d+ completion$
# expect: ^one call tracked: 4 requests, \d+ tokens$
# expect: ^hook saw 8 requests; server answered 8$
# expect: ^stats and hooks agree: True$

from __future__ import annotations

import threading

import ember_xcs as xcs
from ember_xcs import models
from ember_xcs.models.testing import OpenAITestServer


class CountUsage(xcs.ExecutionHooks):
    """Counts every request's tokens as it completes (hooks may run on several threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.tokens = 0

    def on_model_usage(self, *, model, usage, cached):
        with self.lock:
            self.requests += 1
            self.tokens += usage.total_tokens


def main() -> None:
    with OpenAITestServer(latency=0.01) as server:
        model = models.OpenAICompatibleModel(server.url, "test-model")
        pipeline = xcs.jit(
            models.Sequential(
                [
                    models.UniformEnsemble(
                        3, model, "Answer briefly: {question}"
                    ),
                    models.JudgeSynthesis(model),
                ]
            )
        )
        hook = CountUsage()
        with xcs.execution_options(hooks=(hook,)):
            pipeline("why is the sky blue?")
            with models.track_usage() as one_call:
                pipeline("why is the sunset red?")

        stats = xcs.get_jit_stats(pipeline)
        print(
            f"jit stats: {stats.model_calls} model calls, tokens {stats.total_tokens} = "
            f"{stats.prompt_tokens} prompt + {stats.completion_tokens} completion"
        )
        print(
            f"one call tracked: {one_call.calls} requests, {one_call.total_tokens} tokens"
        )
        print(
            f"hook saw {hook.requests} requests; server answered {server.requests}"
        )
        print(
            "stats and hooks agree:",
            stats.model_calls == hook.requests == server.requests
            and stats.total_tokens == hook.tokens,
        )


if __name__ == "__main__":
    main()
