"""Streaming replies from an OpenAI-compatible server, plainly and inside `xcs.jit`.

Starts the loopback test server from `ember_xcs.models.testing` and streams one reply
piece by piece with `model.stream(...)` (Server-Sent Events). Then a jitted function
streams three replies at once: each `model.stream(...)` is one leaf call, the three
overlap, and a hook with `on_stream_delta` sees every piece as it arrives (a progress
display would print them). `models.track_usage()` sums the tokens of the run.

Features: `OpenAICompatibleModel.stream`, the `on_stream_delta` and `on_model_usage`
hook events, `track_usage`, streaming as a jit leaf call.

    python examples/models/50_streaming.py
"""

# expect: ^streamed in \d+ pieces: answer-[0-9a-f]{8}$
# expect: ^jit: 3 streams, \d+ pieces seen by the hook, at most 3 requests at once$
# expect: ^same text as complete\(\): True$
# expect: ^usage: 4 calls, \d+ prompt \+ \d+ completion tokens$

from __future__ import annotations

import threading

import ember_xcs as xcs
from ember_xcs import models
from ember_xcs.models.testing import OpenAITestServer


class Pieces(xcs.ExecutionHooks):
    """Counts streamed pieces; a real progress display would print them."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def on_stream_delta(self, *, model: str, delta: str) -> None:
        with self.lock:
            self.seen.append(delta)


def main() -> None:
    with OpenAITestServer(latency=0.1) as server:
        model = models.OpenAICompatibleModel(server.url, "demo-model", seed=0)
        with models.track_usage() as usage:
            pieces = list(model.stream("Tell me about XLA"))
            print(f"streamed in {len(pieces)} pieces: {''.join(pieces)}")

            @xcs.jit
            def three_stories(topic: str) -> list[list[str]]:
                return [model.stream(f"{topic}, part {i}", sample=i) for i in range(3)]

            hook = Pieces()
            server.reset()
            with xcs.execution_options(hooks=(hook,)):
                stories = three_stories("compilers")
            print(
                f"jit: {len(stories)} streams, {len(hook.seen)} pieces seen by the hook, "
                f"at most {server.max_concurrent} requests at once"
            )
        first = "".join(stories[0])
        print(f"same text as complete(): {first == model.complete('compilers, part 0').text}")
        print(
            f"usage: {usage.calls} calls, {usage.prompt_tokens} prompt + "
            f"{usage.completion_tokens} completion tokens"
        )


if __name__ == "__main__":
    main()
