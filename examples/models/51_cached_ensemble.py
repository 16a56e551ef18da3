"""An ensemble over an HTTP model with the response cache on: samples stay distinct.

Starts the loopback test server, builds a 5-sample `UniformEnsemble` over an
`OpenAICompatibleModel(..., cache=...)` (an SQLite file in a temporary folder), and runs
it twice under `xcs.jit`. The first run asks the server five times; the second is
answered from the cache, with the same five distinct answers (the key holds the sample
index, so an ensemble never collapses into one cached answer). Then a new model object
on the same file (as after a restart) is answered from disk, and `ember-xcs cache`
would show the file's size.

Features: `cache=`, `ResponseCache`, `model.stats()` hit/miss counts, jit ensembles.

    python examples/models/51_cached_ensemble.py
"""

# expect: ^first run: 5 distinct answers, 5 requests to the server$
# expect: ^second run: same answers True, still 5 requests, 5 cache hits$
# expect: ^after a restart: same answers True, 0 new requests$
# expect: ^cache file: 5 entries$

from __future__ import annotations

import tempfile

import ember_xcs as xcs
from ember_xcs import models
from ember_xcs.models.testing import OpenAITestServer


def main() -> None:
    with OpenAITestServer(latency=0.05) as server, tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/responses.sqlite"
        model = models.OpenAICompatibleModel(server.url, "demo-model", seed=3, cache=path)
        ensemble = xcs.jit(models.UniformEnsemble(5, model, "Q: {question}"))

        first = ensemble("Name a prime number")
        print(
            f"first run: {len(set(first))} distinct answers, {server.requests} requests to the server"
        )
        second = ensemble("Name a prime number")
        hits = model.stats()["cache_hits"]
        print(
            f"second run: same answers {second == first}, still {server.requests} requests, "
            f"{hits} cache hits"
        )

        server.reset()
        restarted = models.OpenAICompatibleModel(
            server.url, "demo-model", seed=3, cache=models.ResponseCache(path)
        )
        again = models.UniformEnsemble(5, restarted, "Q: {question}")("Name a prime number")
        print(f"after a restart: same answers {again == first}, {server.requests} new requests")
        print(f"cache file: {len(models.ResponseCache(path))} entries")


if __name__ == "__main__":
    main()
