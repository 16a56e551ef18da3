"""jit on a nested LLM ensemble: trace once, replay a parallel plan, explain the choice.

A 10-unit ensemble + judge, nested two deep, is 111 leaf calls with a critical path of 3.
Each simulated call sleeps 10 ms. `xcs.jit` traces the operator tree once (no call runs
while tracing), then every call replays the plan on the parallel scheduler with the new
question: the wall time approaches 3 calls, not 111.

A second function builds a prompt with an f-string from an operator's output. Its trace
stops there (Python needed the value), so jit runs it dynamically, still overlapping the
independent calls, and `explain_jit_selection` says where and why.

    python examples/advanced/11_jit_ensemble.py
"""

# expect: ^plain: 111 calls in \d+ ms$
# expect: ^jit: same answers on 3 new questions: True$
# expect: ^jit: 111 leaf calls, critical path 3, \d+ in flight at once, \d+ ms per call$
# expect: ^cache: 1 trace, 3 hits for 4 calls$
# expect: ^strategy for the f-string pipeline: dynamic$
# expect: trace stop: .*jit_ensemble\.py:\d+: Python formatted .*the output of node 'draft'

from __future__ import annotations

import threading
import time

import ember_xcs as xcs

LATENCY = 0.01  # seconds per simulated LLM call


class SimulatedLLM(xcs.Operator):
    """A leaf operator standing in for an LLM: sleeps, then answers deterministically."""

    def __init__(self, name: str):
        self.label = name
        self.lock = threading.Lock()
        self.calls = 0

    @property
    def name(self) -> str:  # node ids and errors use it
        return self.label

    def forward(self, prompt: str) -> str:
        with self.lock:
            self.calls += 1
        time.sleep(LATENCY)
        return f"{self.label}: {len(prompt) % 7}"


class Judge(xcs.Operator):
    """A leaf that picks the most common answer."""

    def forward(self, answers: list[str], question: str) -> str:
        time.sleep(LATENCY)
        return max(sorted(set(answers)), key=answers.count)


class Ensemble(xcs.Operator):
    """A composite: its fields hold operators, so jit traces into it."""

    def __init__(self, units: list[xcs.Operator], judge: xcs.Operator):
        self.units = units
        self.judge = judge

    def forward(self, question: str) -> str:
        answers = [unit(question) for unit in self.units]
        return self.judge(answers, question=question)


def nested(width: int = 10) -> Ensemble:
    inner = [
        Ensemble([SimulatedLLM(f"model{j}") for j in range(width)], Judge())
        for _ in range(width)
    ]
    return Ensemble(inner, Judge())


draft = SimulatedLLM("draft")
review = SimulatedLLM("review")


@xcs.jit
def draft_and_review(question: str) -> list[str]:
    first = draft(question)
    second = review(question)  # independent of `first`: the two calls overlap
    return [review(f"Review this draft: {first}"), second]


def main() -> None:
    tree = nested()
    start = time.perf_counter()
    tree("warm-up question")  # plain Python: one call after another
    plain_ms = (time.perf_counter() - start) * 1000
    print(f"plain: 111 calls in {plain_ms:.0f} ms")

    jitted = xcs.jit(tree)
    questions = ["Why is the sky blue?", "What is XLA?", "How do tides work?"]
    with xcs.execution_options(scheduler="parallel"):
        answers = [jitted(q) for q in questions]
        start = time.perf_counter()
        jitted("one more question")
        call_ms = (time.perf_counter() - start) * 1000
    same = answers == [tree.forward(q) for q in questions]
    print(f"jit: same answers on 3 new questions: {same}")
    stats = xcs.get_jit_stats(jitted)
    print(
        f"jit: {stats.leaf_calls} leaf calls, critical path {stats.critical_path}, "
        f"{stats.max_in_flight} in flight at once, {call_ms:.0f} ms per call"
    )
    print(
        f"cache: {stats.traces} trace, {stats.cache_hits} hits for {stats.calls} calls"
    )

    draft_and_review("What is a compound AI system?")
    strategy = xcs.get_jit_strategy_used(draft_and_review)
    print(f"strategy for the f-string pipeline: {strategy.value}")
    print(xcs.explain_jit_selection(draft_and_review))


if __name__ == "__main__":
    main()
