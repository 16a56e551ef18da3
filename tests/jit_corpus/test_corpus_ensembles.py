"""Corpus: ensembles with f-string prompts, judges over joined answers, majority votes."""

from __future__ import annotations

import collections

import pytest
from corpus_harness import Program, cases, check, leaf

PERSONAS = ("a physicist", "a poet", "a lawyer", "a child")


@leaf
def ask(prompt: str) -> str:
    return f"<{len(prompt) % 3}> {prompt.split(':')[-1].strip()}"


@leaf
def judge(prompt: str) -> str:
    return "Best answer: " + prompt.splitlines()[-1]


@leaf
def vote(question: str, sample: int) -> str:
    return ("yes", "no", "yes", "maybe", "yes")[(len(question) + sample) % 5]


def persona_ensemble(question: str) -> str:
    answers = [ask(f"You are {p}. Answer briefly: {question}") for p in PERSONAS]
    listing = "\n".join(f"{i + 1}. {a}" for i, a in enumerate(answers))
    return judge(f"Question: {question}\nCandidates:\n{listing}")


def ensemble_then_judge_list(question: str) -> dict:
    drafts = []
    for i in range(5):
        drafts.append(ask(f"Draft #{i}: {question}"))
    verdict = judge("\n".join(drafts))
    return {"question": question, "drafts": drafts, "verdict": verdict}


def majority_vote(question: str) -> str:
    ballots = [vote(question, s) for s in range(5)]
    winner, count = collections.Counter(ballots).most_common(1)[0]
    return f"{winner} ({count}/5)"


def normalised_vote(question: str) -> tuple[str, int]:
    raw = [vote(question.upper(), s) for s in range(4)]
    cleaned = [r.strip().lower() for r in raw]
    best = max(set(cleaned), key=cleaned.count)
    return best, cleaned.count(best)


def traced_ensemble(question: str) -> str:
    answers = [ask(question) for _ in range(3)]
    return judge(answers[0])


QUESTIONS = [("What is 2+2?",), ("Why is the sky blue?",), ("Name a prime",)]
PROGRAMS = [
    Program("persona_ensemble", persona_ensemble, QUESTIONS, width=4, depth=2),
    Program("ensemble_then_judge_list", ensemble_then_judge_list, QUESTIONS, width=5, depth=2),
    Program("majority_vote", majority_vote, QUESTIONS, width=5, depth=1),
    Program("normalised_vote", normalised_vote, QUESTIONS, width=4, depth=1),
    Program("traced_ensemble", traced_ensemble, QUESTIONS, width=3, depth=2, traces=True),
]


@pytest.mark.parametrize("program, mode", cases(PROGRAMS))
def test_program_gives_plain_result_calls_and_overlap(program, mode):
    check(program, mode)
