"""Corpus: DSPy-style composite operators, batch loops, one pipeline from 8 threads,
results as dicts and dataclasses serialised with `json.dumps`."""

from __future__ import annotations

import dataclasses
import json

import pytest
from corpus_harness import Program, cases, check, leaf

import ember_xcs as xcs


@leaf
def generate(prompt: str) -> str:
    return f"gen<{prompt[-24:]}>"


@leaf
def critique(prompt: str) -> str:
    return "OK" if len(prompt) % 2 else "REVISE"


class Predict(xcs.Operator):
    """A DSPy-like signature module: renders its template and calls the LM."""

    def __init__(self, template: str):
        self.template = template

    def forward(self, **fields):
        return generate(self.template.format(**fields))


class ChainOfThought(xcs.Operator):
    def __init__(self):
        self.reason = Predict("Reason about: {question}")
        self.answer = Predict("Given {reasoning}, answer: {question}")

    def forward(self, question):
        reasoning = self.reason(question=question)
        return self.answer(question=question, reasoning=reasoning)


class SelfRefine(xcs.Operator):
    """Draft, critique, revise when asked: f-strings and a branch in forward."""

    def __init__(self, drafts: int = 3):
        self.generate = generate  # DSPy style: the module holds its predictors
        self.critique = critique
        self.drafts = drafts

    def forward(self, question):
        candidates = [self.generate(f"Draft {i}: {question}") for i in range(self.drafts)]
        verdicts = [self.critique(f"Critique: {c}") for c in candidates]
        kept = [c for c, v in zip(candidates, verdicts, strict=True) if v == "OK"]
        if not kept:
            return self.generate(f"Revise all: {' / '.join(candidates)}")
        return kept[0]


class MultiHop(xcs.Operator):
    def __init__(self, hops: int = 2):
        self.cots = [ChainOfThought() for _ in range(3)]
        self.hops = hops

    def forward(self, question):
        answers = [cot(question) for cot in self.cots]
        return generate(f"Pick the best of: {'; '.join(answers)}")


@dataclasses.dataclass
class Report:
    question: str
    answers: list
    verdict: str
    confidence: float


def batch_loop(questions: list[str]) -> list[str]:
    results = []
    for q in questions:
        results.append(generate(f"Answer concisely: {q}"))
    return results


def batch_dict(questions: list[str]) -> str:
    answers = {q: generate(f"Q: {q}") for q in questions}
    return json.dumps(answers, sort_keys=True)


def dataclass_report(question: str) -> str:
    answers = [generate(f"{question} (view {i})") for i in range(4)]
    verdict = critique("\n".join(answers))
    report = Report(question, answers, verdict, confidence=len(verdict) / 10)
    return json.dumps(dataclasses.asdict(report))


def dict_result(question: str) -> dict:
    answers = [generate(f"{question} #{i}") for i in range(3)]
    return {"question": question, "answers": answers, "n": len(answers)}


def threaded_pipeline(question: str) -> str:
    drafts = [generate(f"{question} / {i}") for i in range(2)]
    return critique(f"{drafts[0]} vs {drafts[1]}")


def _jit_instance(op_class: type, *a):
    return lambda fn, mode: xcs.jit(op_class(*a), mode=mode)


QUESTIONS = [("What is XLA?",), ("Who wrote Hamlet?",), ("Why sleep?",)]
BATCHES = [(["a", "bb", "ccc", "dd"],), (["x", "y", "z", "w", "v"],), (["q1", "q2", "q3"],)]
PROGRAMS = [
    Program(
        "chain_of_thought_module",
        ChainOfThought(),
        QUESTIONS,
        width=1,
        depth=2,
        traces=True,
        jit=_jit_instance(ChainOfThought),
    ),
    Program(
        "self_refine_module",
        SelfRefine(),
        QUESTIONS,
        width=3,
        depth=lambda calls: 3 if sum(calls.values()) == 7 else 2,
        jit=_jit_instance(SelfRefine),
    ),
    Program(
        "multi_hop_module", MultiHop(), QUESTIONS, width=3, depth=3, jit=_jit_instance(MultiHop)
    ),
    Program("batch_loop", batch_loop, BATCHES, width=5, depth=1),
    Program("batch_dict", batch_dict, BATCHES, width=5, depth=1),
    Program("dataclass_report", dataclass_report, QUESTIONS, width=4, depth=2),
    Program("dict_result", dict_result, QUESTIONS, width=3, depth=1),
    # eight threads call the jitted pipeline at once: their 16 drafts can overlap
    Program("threaded_pipeline", threaded_pipeline, QUESTIONS, width=8, depth=2, threads=8),
]


@pytest.mark.parametrize("program, mode", cases(PROGRAMS))
def test_program_gives_plain_result_calls_and_overlap(program, mode):
    check(program, mode)
