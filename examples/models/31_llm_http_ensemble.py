"""A nested ensemble through a real HTTP model, beside the same pipeline simulated.

Starts the OpenAI-compatible test server from `ember_xcs.models.testing` on 127.0.0.1
(50 ms per request, in a child process so its CPU time is not charged to the client),
points an `OpenAICompatibleModel` at it, and runs the 10-unit ensemble + judge nested two
deep (111 calls, critical path 3) under `xcs.jit`. The same pipeline over a
`SimulatedModel` with the same 50 ms shows what the HTTP client itself costs. Then it
caps the model at 16 concurrent requests and checks what the server saw.

    python examples/models/31_llm_http_ensemble.py
"""

# expect: ^pipeline: 111 calls per question, critical path 3 calls = 150 ms$
# expect: ^simulated +\d+ ms median over 3 questions, \d+\.\dx the critical path$
# expect: ^http +\d+ ms median over 3 questions, \d+\.\dx the critical path$
# expect: ^same answers over HTTP as called plainly: True$
# expect: ^server saw at most 16 requests at once with max_concurrency=16 \(111 requests\)$

from __future__ import annotations

import statistics
import time

import ember_xcs as xcs
from ember_xcs.models import (
    OpenAICompatibleModel,
    SimulatedModel,
    nested_ensemble,
)
from ember_xcs.models.testing import ServerProcess

LATENCY = 0.05
QUESTIONS = [f"question {i}" for i in range(3)]  # 111 requests each


def median_ms(pipeline) -> float:
    pipeline("warm-up")  # the first call traces and opens connections
    walls = []
    for question in QUESTIONS:
        start = time.perf_counter()
        pipeline(question)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls) * 1000


def main() -> None:
    critical_ms = 3 * LATENCY * 1000
    print(
        f"pipeline: 111 calls per question, critical path 3 calls = {critical_ms:.0f} ms"
    )
    simulated = median_ms(
        xcs.jit(nested_ensemble(SimulatedModel(latency=LATENCY)))
    )
    print(
        f"simulated {simulated:6.0f} ms median over 3 questions, {simulated / critical_ms:.1f}x the critical path"
    )
    with ServerProcess(latency=LATENCY) as server:
        with OpenAICompatibleModel(server.url, "test-model", seed=0) as model:
            tree = nested_ensemble(model)
            http = median_ms(xcs.jit(tree))
            print(
                f"http      {http:6.0f} ms median over 3 questions, {http / critical_ms:.1f}x the critical path"
            )
            small = nested_ensemble(
                model, width=3, depth=2
            )  # plain calls are one at a time
            same = xcs.jit(small)("question 0") == small("question 0")
            print(f"same answers over HTTP as called plainly: {same}")
        server.reset()
        with OpenAICompatibleModel(
            server.url, "capped", max_concurrency=16
        ) as capped:
            xcs.jit(nested_ensemble(capped))("question 0")
        stats = server.stats()
        print(
            f"server saw at most {stats['max_concurrent']} requests at once with "
            f"max_concurrency=16 ({stats['requests']} requests)"
        )


if __name__ == "__main__":
    main()
