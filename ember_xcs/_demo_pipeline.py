"""The mixed demo: JAX retrieval on an 8-device mesh feeding parallel LLM calls and a judge.

One question flows through numeric and Python work alike:

```
featurize (py) -> embed (JAX) -> score N docs (JAX, sharded over 8 devices) -> top-k (JAX)
  -> retrieve (py) -> k LLM answers, one per document (parallel) -> judge (LLM)
  -> agreement (py) -> confidence (JAX: softmax of retrieval scores . agreement)
```

The numeric steps are `jax.jit`-compiled (`score` through `mesh_sharded`, which places the
document matrix with `NamedSharding` row-wise over a simulated 8-device CPU mesh); the LLM
steps are `LLMOperator`s and a `JudgeSynthesis` over a `SimulatedModel`, so no key or
network is needed. The pipeline is an explicit `Graph`; it runs once to warm up (JAX
compiles once per shape), then sequentially and in parallel, and the table compares the
wall times with the critical path (the longest chain of measured node times, the best any
schedule can do).
"""

from __future__ import annotations

import re
import time
import zlib
from collections import Counter
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._options import ExecutionOptions
from .graph import Graph
from .models import JudgeSynthesis, LLMOperator, SimulatedModel
from .operators import op
from .scheduling import Timeline, execute_graph
from .transforms import DeviceMesh, PartitionSpec, mesh_sharded

__all__ = ["build_pipeline", "run_mixed_demo"]

NUM_DEVICES = 8
TOP_K = 8
VOCAB = 512
DIM = 128
QUESTION = "Why does compiled JAX code run fast?"
TOPICS = (
    "XLA fuses elementwise operations into single kernels",
    "tracing turns Python functions into a static graph",
    "sharding splits arrays across devices with NamedSharding",
    "dispatch overhead dominates for tiny arrays",
    "compiled executables are cached by shape and dtype",
)
ANSWERS = (
    "XLA fuses operations into a few compiled kernels",
    "the traced graph is compiled once and cached by shape",
    "XLA fuses operations into a few compiled kernels",
)
ANSWER_TEMPLATE = "Document: {document}\nQuestion: {question}\nAnswer in one sentence."


def ensure_devices(count: int = NUM_DEVICES) -> int:
    """Ask JAX for `count` simulated CPU devices if it has not started; return what it has."""
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except (RuntimeError, ValueError):
        pass  # the backend is already running (or XLA_FLAGS decided): use what it has
    return min(count, jax.device_count())


# --- numeric steps ---------------------------------------------------------------------


def _projection() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((VOCAB, DIM)) / np.sqrt(VOCAB)).astype(np.float32)


def _corpus(num_docs: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    docs = rng.standard_normal((num_docs, DIM)).astype(np.float32)
    return docs / np.linalg.norm(docs, axis=1, keepdims=True)


def _embed(features: jax.Array, projection: jax.Array) -> jax.Array:
    vector = jnp.tanh(features @ projection)
    return vector / (jnp.linalg.norm(vector) + 1e-6)


def _score(docs: jax.Array, query: jax.Array) -> jax.Array:
    return docs @ query  # each device scores its own block of rows


def _top_k(scores: jax.Array) -> dict[str, jax.Array]:
    values, ids = jax.lax.top_k(scores, TOP_K)
    return {"scores": values, "ids": ids}


def _confidence(scores: jax.Array, agreement: jax.Array) -> jax.Array:
    return jnp.sum(jax.nn.softmax(scores * 10.0) * agreement)


# --- Python steps ----------------------------------------------------------------------


def _featurize(question: str) -> np.ndarray:
    counts = np.zeros(VOCAB, np.float32)
    for token in re.findall(r"\w+", question.lower()):
        counts[zlib.crc32(token.encode()) % VOCAB] += 1.0
    return counts


def _retrieve(top: dict[str, Any]) -> dict[str, str]:
    ids = np.asarray(top["ids"]).tolist()
    return {f"doc_{rank}": f"[doc {i}] {TOPICS[i % len(TOPICS)]}." for rank, i in enumerate(ids)}


def _gather(*answers: str) -> list[str]:
    return list(answers)


def _agreement(answers: list[str], final: str) -> np.ndarray:
    return np.array([a.strip() == final.strip() for a in answers], np.float32)


def simulated_judge(prompt: str, sample: int) -> str:
    """A judge that answers with the most common numbered candidate in its prompt."""
    candidates = re.findall(r"^\d+\. (.*)$", prompt, re.MULTILINE)
    best = Counter(candidates).most_common(1)[0][0] if candidates else "no candidates"
    return f"The candidates mostly agree.\nFinal answer: {best}"


# --- the graph -------------------------------------------------------------------------


def build_pipeline(latency: float, num_docs: int, devices: int) -> tuple[Graph, dict[str, Any]]:
    """The demo graph and its inputs; see the module docstring."""
    mesh = DeviceMesh(devices, ("docs",))
    score = mesh_sharded(
        _score,
        mesh,
        in_specs=(PartitionSpec("docs", None), PartitionSpec()),
        out_specs=PartitionSpec("docs"),
    )
    answerer = SimulatedModel("answerer", latency=latency, responses=ANSWERS)
    judge_model = SimulatedModel("judge", latency=latency, responses=simulated_judge)
    g = Graph()
    g.add_node(op(_featurize, name="featurize"), node_id="featurize")
    g.add_node(op(jax.jit(_embed), name="embed", numeric=True), node_id="embed")
    g.add_node(score, node_id="score", name="score")
    g.add_node(op(jax.jit(_top_k), name="top_k", numeric=True), node_id="top_k")
    g.add_node(op(_retrieve, name="retrieve"), node_id="retrieve")
    g.add_node(op(_gather, name="gather"), node_id="gather")
    g.add_node(JudgeSynthesis(judge_model, name="judge"), node_id="judge")
    g.add_node(op(_agreement, name="agreement"), node_id="agreement")
    g.add_node(op(jax.jit(_confidence), name="confidence", numeric=True), node_id="confidence")
    g.connect("featurize", "embed.features").connect("embed", "score.query")
    g.connect("score", "top_k").connect("top_k", "retrieve")
    for rank in range(TOP_K):
        unit = LLMOperator(answerer, ANSWER_TEMPLATE, sample=rank, name="answer")
        node = g.add_node(unit, node_id=f"answer_{rank}")
        g.add_edge("retrieve", node, field_mappings={f"doc_{rank}": "document"})
        g.add_edge(node, "gather")
    g.connect("gather", "judge.responses").connect("gather", "agreement.answers")
    g.connect("judge", "agreement.final")
    g.add_edge("top_k", "confidence", field_mappings={"scores": "scores"})
    g.connect("agreement", "confidence.agreement")
    inputs = {
        "question": QUESTION,
        "projection": jnp.asarray(_projection()),
        "score": {"docs": jnp.asarray(_corpus(num_docs))},  # per-node: score takes *args
    }
    return g, inputs


def _run(graph: Graph, inputs: dict[str, Any], scheduler: str) -> tuple[float, Any, Timeline]:
    timeline = Timeline()
    options = ExecutionOptions(scheduler=scheduler, hooks=(timeline,), include_intermediates=True)
    start = time.perf_counter()
    result = execute_graph(graph, inputs, options=options)
    jax.block_until_ready(result["confidence"])
    return time.perf_counter() - start, result, timeline


def _critical_path_seconds(graph: Graph, timeline: Timeline) -> float:
    durations = {r.node_id: r.end - r.start for r in timeline.records}
    path = graph.critical_path(durations)
    return sum(durations[n] for n in path)


def run_mixed_demo(quick: bool = False) -> int:
    """Run the mixed pipeline sequentially and in parallel and print a table; returns 0."""
    devices = ensure_devices(NUM_DEVICES)
    latency = 0.01 if quick else 0.05
    num_docs = 1024 if quick else 16384
    graph, inputs = build_pipeline(latency, num_docs, devices)
    llm_calls = TOP_K + 1
    print(
        f"mixed pipeline: embed -> score {num_docs} docs on a {devices}-device mesh -> "
        f"top-{TOP_K} -> {TOP_K} LLM answers -> judge -> confidence"
    )
    print(
        f"graph: {len(graph)} nodes ({llm_calls} LLM calls of {latency * 1000:.0f} ms), "
        f"critical path {graph.critical_path_length():.0f} nodes"
    )
    _run(graph, inputs, "parallel")  # warm-up: JAX compiles each numeric step once
    rows = {name: _run(graph, inputs, name) for name in ("sequential", "parallel")}
    base = rows["sequential"][0]
    print(f"{'run':<12}{'wall ms':>10}{'critical path ms':>19}{'in flight':>11}{'speedup':>10}")
    for name, (wall, _, timeline) in rows.items():
        critical = _critical_path_seconds(graph, timeline) * 1000
        print(
            f"{name:<12}{wall * 1000:>10.1f}{critical:>19.1f}"
            f"{timeline.max_concurrency():>11}{base / wall:>9.1f}x"
        )
    answers = {name: r[1]["judge"] for name, r in rows.items()}
    result = rows["parallel"][1]
    print(f"answer: {result['judge']} (confidence {float(result['confidence']):.2f})")
    print(f"same answer sequential and parallel: {len(set(answers.values())) == 1}")
    return 0
