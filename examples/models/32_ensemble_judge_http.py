"""Tutorial 6, an LLM ensemble + judge over an OpenAI-compatible server.

Purpose: the program of tutorial 5 with real model calls. `OpenAICompatibleModel` speaks
`POST /v1/chat/completions`, which OpenAI, vLLM, llama.cpp, Ollama and most gateways
serve. Here the loopback test server from `ember_xcs.models.testing` stands in (a real
HTTP server on 127.0.0.1, 100 ms per request), so no key or network is needed. Five units
answer, a judge picks; under `xcs.jit` the five requests are on the wire at once.

Features: `models.OpenAICompatibleModel` (`max_concurrency`), `models.UniformEnsemble`,
`models.JudgeSynthesis`, `models.Sequential`, `xcs.jit` on an operator,
`OpenAITestServer` counters (`requests`, `max_concurrent`).

How to run (page: docs/tutorials/06-llm-ensemble.md):

    python examples/models/32_ensemble_judge_http.py
"""

# expect: ^plain: 6 requests, at most 1 at once, \d+ ms$
# expect: ^jit: 6 requests, at most 5 at once, \d+ ms$
# expect: ^same answer: True$
# expect: ^leaf calls: 6, critical path: 2$
# expect: ^capped: at most 2 at once$

# --8<-- [start:server]
import time

import ember_xcs as xcs
from ember_xcs import models
from ember_xcs.models.testing import OpenAITestServer

server = OpenAITestServer(latency=0.1).start()  # 127.0.0.1, an ephemeral port
model = models.OpenAICompatibleModel(
    server.url, "test-model", max_concurrency=8
)
# --8<-- [end:server]

# --8<-- [start:pipeline]
pipeline = models.Sequential(
    [
        models.UniformEnsemble(5, model, "Answer briefly: {question}"),
        models.JudgeSynthesis(model),  # sees the five answers and the question
    ]
)
fast = xcs.jit(pipeline)
# --8<-- [end:pipeline]


# --8<-- [start:run]
def measured(fn, question):
    server.reset()  # zero the server's counters
    start = time.perf_counter()
    answer = fn(question=question)
    return answer, server.requests, (time.perf_counter() - start) * 1000


plain_answer, plain_requests, plain_ms = measured(pipeline, "What is XLA?")
print(
    f"plain: {plain_requests} requests, at most {server.max_concurrent} at once, {plain_ms:.0f} ms"
)
jit_answer, jit_requests, jit_ms = measured(fast, "What is XLA?")
print(
    f"jit: {jit_requests} requests, at most {server.max_concurrent} at once, {jit_ms:.0f} ms"
)
print("same answer:", plain_answer == jit_answer)
stats = xcs.get_jit_stats(fast)
print(f"leaf calls: {stats.leaf_calls}, critical path: {stats.critical_path}")
# --8<-- [end:run]

# --8<-- [start:capped]
capped_model = models.OpenAICompatibleModel(
    server.url, "test-model", max_concurrency=2
)
capped = xcs.jit(models.UniformEnsemble(5, capped_model))
server.reset()
capped(question="What is XLA?")
print(f"capped: at most {server.max_concurrent} at once")
# --8<-- [end:capped]

# --8<-- [start:close]
capped_model.close()
model.close()
server.stop()
# --8<-- [end:close]
