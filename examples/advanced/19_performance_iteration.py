"""A performance iteration: from naive Python to a tuned `jit`, measuring each step.

Purpose: a retrieval pipeline (6 slow search calls, a numeric ranking, one summarising
call) made faster one change at a time, with the wall time of each version printed
(median of 5 calls, after one warm-up call that traces and compiles):

1. plain Python: 7 slow calls one after another;
2. `xcs.jit` as written: the ranking needs concrete values (`np.dot`), so the trace
   stops and jit runs the body dynamically; the searches still overlap;
3. ranking moved into a numeric operator and the prompt into a small `@op`: the whole
   function is one plan (strategy `trace`), replayed with a few microseconds per node;
4. nothing left to gain: the floor is the critical path, one search then the summary
   (2 x 20 ms); the script prints it next to version 3.

`explain_jit_selection` shows why version 2 was not a plan. On the 2-core development
machine (loaded) one run printed 166, 46-48 and 45-57 ms: most of the gain comes from
overlapping the searches, which dynamic dispatch already does; the plan removes the
Python body from every call and makes the structure visible (`get_jit_stats`).

Features: `xcs.jit`, `xcs.explain_jit_selection`, `xcs.get_jit_strategy_used`,
`@xcs.op(numeric=True)`, `xcs.get_jit_stats`.

How to run:

    python examples/advanced/19_performance_iteration.py
"""

# expect: ^1 plain python +\d+\.\d ms$
# expect: ^2 jit as written +\d+\.\d ms  strategy dynamic$
# expect: ^3 jit, one plan +\d+\.\d ms  strategy trace$
# expect: ^floor: 2 slow calls on the critical path = 40 ms; plan of 9 nodes, critical path 4 nodes$
# expect: ^why 2 was dynamic: trace stop: .*19_performance_iteration\.py:\d+: Python (converted|passed)
# expect: ^same answers in every version: True$

import statistics
import time

import jax.numpy as jnp
import numpy as np

import ember_xcs as xcs

LATENCY = 0.02
SHARDS = 6
PROBE = np.linspace(-1.0, 1.0, 16)


@xcs.op
def search(question: str, shard: int) -> np.ndarray:
    time.sleep(LATENCY)  # a vector-store query over the network
    seed = sum(map(ord, question)) + shard
    return np.random.default_rng(seed).normal(size=16)


@xcs.op
def summarize(prompt: str) -> str:
    time.sleep(LATENCY)  # an LLM call
    return f"summary of [{prompt}]"


def v1(question):
    hits = [search(question, shard) for shard in range(SHARDS)]
    best = max(range(SHARDS), key=lambda i: float(np.dot(hits[i], PROBE)))
    return summarize(f"shard {best} for {question}")


@xcs.op(numeric=True)
def rank(hits):
    return jnp.argmax(jnp.stack(hits) @ PROBE)


@xcs.op
def make_prompt(best, question: str) -> str:
    return f"shard {int(best)} for {question}"


def v3(question):
    hits = [search(question, shard) for shard in range(SHARDS)]
    return summarize(make_prompt(rank(hits), question))


def median_ms(fn):
    fn("warm-up")  # traces and compiles on the first call
    times = []
    for i in range(5):
        start = time.perf_counter()
        fn(f"question {i}")
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


versions = [
    ("1 plain python", v1),
    ("2 jit as written", xcs.jit(v1)),
    ("3 jit, one plan", xcs.jit(v3)),
]
for label, fn in versions:
    ms = median_ms(fn)
    strategy = (
        f"  strategy {xcs.get_jit_strategy_used(fn)}"
        if label[0] != "1"
        else ""
    )
    print(f"{label:<18} {ms:6.1f} ms{strategy}")

stats = xcs.get_jit_stats(versions[2][1])
print(
    f"floor: 2 slow calls on the critical path = {2 * LATENCY * 1000:.0f} ms;"
    f" plan of {stats.nodes} nodes, critical path {stats.critical_path} nodes"
)
reason = xcs.explain_jit_selection(versions[1][1])
print(
    "why 2 was dynamic:",
    next(line.strip() for line in reason.splitlines() if ".py:" in line),
)
answers = {label: fn("final question") for label, fn in versions}
print("same answers in every version:", len(set(answers.values())) == 1)
