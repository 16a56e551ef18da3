"""LLM ensembles with ember_xcs.models: vote, judge, verify, nest — and let jit parallelise.

Uses `SimulatedModel` (50 ms per call, deterministic, no key needed):

1. an 8-unit ensemble with a majority vote, called plainly (one call after another) and
   through `xcs.jit` (all eight at once): same answer, about 8x less wall time;
2. an ensemble + judge pipeline followed by a verifier;
3. an ensemble of ten (ten-unit ensemble + judge) pipelines, judged again: 111 model
   calls whose longest chain is 3 calls, so jit runs it in about three latencies.

    python examples/models/30_llm_ensemble.py
"""

# expect: ^majority vote: Paris \(plain and jit agree: True\)$
# expect: ^vote wall time: plain \d+ ms, jit \d+ ms$
# expect: ^models in flight at once under jit: 8$
# expect: ^judge: 'Paris' -> verdict passed=True$
# expect: ^nested ensemble: 111 model calls, critical path 3 calls, (\d\d|100) in flight at once$
# expect: ^nested wall time: \d+ ms \(critical path 150 ms; one after another: 5550 ms\)$

from __future__ import annotations

import time

import ember_xcs as xcs
from ember_xcs.models import (
    JudgeSynthesis,
    MostCommon,
    Sequential,
    SimulatedModel,
    UniformEnsemble,
    Verifier,
    nested_ensemble,
)

LATENCY = 0.05  # seconds per simulated model call
QUESTION = "What is the capital of France?"


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, (time.perf_counter() - start) * 1000


def judge_reply(prompt: str, sample: int) -> str:
    """A simulated judge that picks the candidate named most often in its prompt."""
    best = max(("Paris", "Lyon", "Nice"), key=prompt.count)
    return f"Most candidates say {best}.\nFinal answer: {best}"


def verifier_reply(prompt: str, sample: int) -> str:
    ok = "Answer: Paris" in prompt
    return f"Verdict: {'PASS' if ok else 'FAIL'}\nExplanation: checked against an atlas"


def majority_vote() -> None:
    model = SimulatedModel(
        latency=LATENCY, responses=["Paris", "Paris", "Lyon", "Nice"]
    )
    vote = Sequential(
        [UniformEnsemble(8, model, "Q: {question}\nA:"), MostCommon()]
    )
    plain, plain_ms = timed(vote, QUESTION)
    model.reset_counters()
    fast, jit_ms = timed(xcs.jit(vote), QUESTION)
    print(f"majority vote: {fast} (plain and jit agree: {plain == fast})")
    print(f"vote wall time: plain {plain_ms:.0f} ms, jit {jit_ms:.0f} ms")
    print(f"models in flight at once under jit: {model.max_in_flight}")


def judge_and_verify() -> None:
    answers = SimulatedModel(
        latency=LATENCY, responses=["Paris", "Lyon", "Paris"]
    )
    judge = SimulatedModel("judge", latency=LATENCY, responses=judge_reply)
    checker = SimulatedModel(
        "checker", latency=LATENCY, responses=verifier_reply
    )
    ensemble = UniformEnsemble(5, answers)
    judged = xcs.jit(Sequential([ensemble, JudgeSynthesis(judge)]))
    verified = xcs.jit(
        Sequential([ensemble, JudgeSynthesis(judge), Verifier(checker)])
    )
    final = judged(QUESTION)
    verdict = verified(question=QUESTION)
    print(f"judge: {final!r} -> verdict passed={verdict.passed}")


def nested() -> None:
    model = SimulatedModel(latency=LATENCY)
    tree = xcs.jit(nested_ensemble(model, width=10, depth=2))
    _, wall_ms = timed(tree, "What limits parallel speedup?")
    stats = xcs.get_jit_stats(tree)
    print(
        f"nested ensemble: {model.calls} model calls, critical path {stats.critical_path} "
        f"calls, {model.max_in_flight} in flight at once"
    )
    critical_ms = stats.critical_path * LATENCY * 1000
    serial_ms = model.calls * LATENCY * 1000
    print(
        f"nested wall time: {wall_ms:.0f} ms (critical path {critical_ms:.0f} ms; "
        f"one after another: {serial_ms:.0f} ms)"
    )


if __name__ == "__main__":
    majority_vote()
    judge_and_verify()
    nested()
