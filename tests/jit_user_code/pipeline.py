"""Application-style pipelines used by the jit tests.

This module is deliberately named like user code: jit must behave identically wherever a
function is defined. Every operator here counts its calls, so tests can check that each
leaf runs exactly once per call.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import ember_xcs as xcs


class Echo(xcs.Operator):
    """A deterministic stand-in for an LLM: `tag(prompt)`, counting calls."""

    def __init__(self, tag: str = "llm"):
        self.tag = tag
        self.counter = CallCounter()

    def forward(self, prompt: Any) -> str:
        self.counter.tick()
        return f"{self.tag}({prompt})"


class CallCounter:
    """A thread-safe call counter (not a pytree field worth comparing)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def tick(self) -> None:
        with self._lock:
            self.count += 1


class Join(xcs.Operator):
    """A judge stand-in: joins the answers it was given."""

    def __init__(self) -> None:
        self.counter = CallCounter()

    def forward(self, answers: list[str], question: str = "") -> str:
        self.counter.tick()
        return f"judge[{question}]({'|'.join(answers)})"


class Ensemble(xcs.Operator):
    """Composite: every unit answers, the judge combines."""

    def __init__(self, units: list[xcs.Operator], judge: xcs.Operator):
        self.units = units
        self.judge = judge

    def forward(self, question: str) -> str:
        answers = [unit(question) for unit in self.units]
        return self.judge(answers, question=question)


def nested_ensemble(width: int = 10, depth: int = 2) -> Ensemble:
    """`depth` levels of `width`-unit ensembles: width**depth + width**(depth-1) + ... leaves."""
    if depth == 1:
        return Ensemble([Echo(f"u{i}") for i in range(width)], Join())
    return Ensemble([nested_ensemble(width, depth - 1) for _ in range(width)], Join())


llm = Echo("llm")
critic = Echo("critic")
judge = Join()


def all_counters() -> dict[str, int]:
    return {"llm": llm.counter.count, "critic": critic.counter.count, "judge": judge.counter.count}


# --- pipelines -----------------------------------------------------------------------------


def chain(question: str) -> str:
    b = llm(question)
    return llm(b)


def fstring_chain(question: str) -> str:
    draft = llm(f"Q: {question}")
    review = critic(f"review this: {draft}")
    return llm(f"improve {draft} using {review}")


@dataclasses.dataclass
class Report:
    question: str
    answer: str
    reviews: list[str]


def containers(question: str) -> dict[str, Any]:
    a = llm(question)
    reviews = [critic(a), critic(question)]
    return {
        "answer": a,
        "pair": (a, reviews[0]),
        "list": reviews,
        "report": Report(question, a, reviews),
        "constant": 3,
    }


def with_kwargs(question: str, *, style: str = "short", extra: str | None = None) -> tuple:
    a = llm(prompt=question)
    b = critic(prompt=style)
    c = judge([a, b], question=extra or "none")
    return a, c


def make_closure(prefix_model: xcs.Operator):
    def closed(question: str) -> str:
        return judge([prefix_model(question), llm(question)], question=question)

    return closed


class Agent:
    """A plain class whose method is jitted."""

    def __init__(self, model: xcs.Operator):
        self.model = model

    @xcs.jit
    def run(self, question: str) -> str:
        return critic(self.model(question))


inner = xcs.jit(chain)


@xcs.jit
def nested(question: str) -> list[str]:
    return [inner(question), inner(critic(question))]


def summarize(docs: list[str]) -> str:
    """Recursion over the input's structure (its length is known while tracing)."""
    if len(docs) == 1:
        return llm(docs[0])
    mid = len(docs) // 2
    return judge([summarize(docs[:mid]), summarize(docs[mid:])])


def branching(question: str) -> str:
    """Data-dependent control flow: the branch depends on an operator's output."""
    verdict = critic(question)
    if verdict.endswith("(yes))"):
        return llm("accepted")
    return judge([verdict], question="rejected")


def unpacking(question: str) -> str:
    first, second = llm(question), critic(question)
    parts = [first, second]
    return " + ".join(parts)
