"""The mixed demo: JAX retrieval on an 8-device mesh feeding parallel LLM calls and a judge.

One question flows through numeric and Python work alike:

```
featurize (py) -> embed (JAX) -> score N docs (JAX, sharded over 8 devices) -> top-k (JAX)
  -> retrieve (py) -> k LLM answers, one per document (parallel) -> judge (LLM)
  -> agreement (py) -> confidence (JAX: softmax of retrieval scores . agreement)
```

`MixedPipeline.__call__` is ordinary Python calling operators. Under `xcs.jit` it is traced
once into a plan: the consecutive numeric steps (`embed`, the sharded `score` — a
`mesh_sharded` `jax.shard_map` over a simulated 8-device CPU mesh, rows of the document
matrix split across devices — and `top_k`) become one compiled XLA segment, and the eight
`LLMOperator` answers run side by side before the `JudgeSynthesis` over them. The models
are `SimulatedModel`s, so no key or network is needed.

The table compares plain Python, the jit plan on the sequential scheduler, and the jit
plan in parallel (each the median of three runs after a warm-up), against the critical
path: the longest chain of measured node times in the parallel run, the best any schedule
can do.
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

from ._demo import write_timeline
from ._jit import get_jit_stats, jit
from ._options import execution_options
from .models import JudgeSynthesis, LLMOperator, SimulatedModel
from .operators import op
from .scheduling import Timeline
from .transforms import DeviceMesh, PartitionSpec, mesh_sharded

__all__ = ["MixedPipeline", "run_mixed_demo"]

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


def _agreement(answers: list[str], final: str) -> np.ndarray:
    return np.array([a.strip() == final.strip() for a in answers], np.float32)


def simulated_judge(prompt: str, sample: int) -> str:
    """A judge that answers with the most common numbered candidate in its prompt."""
    candidates = re.findall(r"^\d+\. (.*)$", prompt, re.MULTILINE)
    best = Counter(candidates).most_common(1)[0][0] if candidates else "no candidates"
    return f"The candidates mostly agree.\nFinal answer: {best}"


# --- the pipeline ----------------------------------------------------------------------


class MixedPipeline:
    """The demo's operators and a plain-Python `__call__`; `xcs.jit(pipeline)` parallelises it."""

    def __init__(self, latency: float, devices: int):
        mesh = DeviceMesh(devices, ("docs",))
        self.featurize = op(_featurize, name="featurize")
        self.embed = op(_embed, name="embed", numeric=True)
        self.score = mesh_sharded(
            _score,
            mesh,
            in_specs=(PartitionSpec("docs", None), PartitionSpec()),
            out_specs=PartitionSpec("docs"),
        )
        self.top_k = op(_top_k, name="top_k", numeric=True)
        self.retrieve = op(_retrieve, name="retrieve")
        answerer = SimulatedModel("answerer", latency=latency, responses=ANSWERS)
        self.answers = [
            LLMOperator(answerer, ANSWER_TEMPLATE, sample=rank, name="answer")
            for rank in range(TOP_K)
        ]
        judge_model = SimulatedModel("judge", latency=latency, responses=simulated_judge)
        self.judge = JudgeSynthesis(judge_model, name="judge")
        self.agreement = op(_agreement, name="agreement")
        self.confidence = op(_confidence, name="confidence", numeric=True)

    def __call__(self, question: str, projection: jax.Array, docs: jax.Array) -> dict[str, Any]:
        query = self.embed(self.featurize(question), projection)
        top = self.top_k(self.score(docs, query))
        documents = self.retrieve(top)
        drafts = [
            unit(document=documents[f"doc_{rank}"], question=question)
            for rank, unit in enumerate(self.answers)
        ]
        final = self.judge(drafts, question)
        agree = self.agreement(drafts, final)
        return {"answer": final, "confidence": self.confidence(top["scores"], agree)}


def _timed(fn: Any, args: tuple[Any, ...], **options: Any) -> tuple[float, Any, Timeline]:
    timeline = Timeline()
    with execution_options(hooks=(timeline,), **options):
        start = time.perf_counter()
        out = fn(*args)
        jax.block_until_ready(out["confidence"])
    return time.perf_counter() - start, out, timeline


def _median(repeats: int, fn: Any, args: tuple[Any, ...], **options: Any) -> Any:
    """The run with the median wall time: this machine may be busy with other work."""
    runs = sorted((_timed(fn, args, **options) for _ in range(repeats)), key=lambda r: r[0])
    return runs[len(runs) // 2]


def _critical_path_seconds(timeline: Timeline) -> float:
    """Every node is on the one chain except the answers, which run side by side."""
    chain = [r.end - r.start for r in timeline.records if r.name != "answer"]
    answers = [r.end - r.start for r in timeline.records if r.name == "answer"]
    return sum(chain) + max(answers, default=0.0)


def run_mixed_demo(quick: bool = False, timeline_path: str | None = None) -> int:
    """Run the mixed pipeline plainly and under `xcs.jit`, print a table; returns 0."""
    devices = ensure_devices(NUM_DEVICES)
    latency = 0.01 if quick else 0.05
    num_docs = 1024 if quick else 16384
    pipeline = MixedPipeline(latency, devices)
    jitted = jit(pipeline)
    args = (QUESTION, jnp.asarray(_projection()), jnp.asarray(_corpus(num_docs)))
    print(
        f"mixed pipeline: embed -> score {num_docs} docs on a {devices}-device mesh -> "
        f"top-{TOP_K} -> {TOP_K} LLM answers ({latency * 1000:.0f} ms each) -> judge -> confidence"
    )
    _timed(pipeline, args)  # warm-up: JAX compiles the eager operations once
    _timed(jitted, args)  # warm-up: traces once, XLA compiles each numeric segment once
    stats = get_jit_stats(jitted)
    print(
        f"jit plan: {stats.leaf_calls} operator calls -> {stats.nodes} nodes "
        f"({stats.numeric_segments} compiled numeric segment(s)), critical path "
        f"{stats.critical_path} nodes"
    )
    repeats = 1 if quick else 3
    runs = {
        "plain Python": _median(repeats, pipeline, args),
        "jit, sequential": _median(repeats, jitted, args, scheduler="sequential"),
        "jit, parallel": _median(repeats, jitted, args),
    }
    critical = _critical_path_seconds(runs["jit, parallel"][2])
    base = runs["plain Python"][0]
    print(f"{'run':<17}{'wall ms':>9}{'critical path ms':>18}{'in flight':>11}{'speedup':>9}")
    for name, (wall, _, timeline) in runs.items():
        in_flight = timeline.max_concurrency() if timeline.records else 1
        print(
            f"{name:<17}{wall * 1000:>9.1f}{critical * 1000:>18.1f}{in_flight:>11}"
            f"{base / wall:>8.1f}x"
        )
    out = runs["jit, parallel"][1]
    same = len({r[1]["answer"] for r in runs.values()}) == 1
    print(f"answer: {out['answer']} (confidence {float(out['confidence']):.2f})")
    print(f"same answer in every run: {same}")
    write_timeline(runs["jit, parallel"][2], timeline_path)
    return 0
