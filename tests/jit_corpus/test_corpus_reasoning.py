"""Corpus: chain-of-thought with regex extraction, self-consistency sampling with a model
called directly, numeric aggregation of floats parsed from answers."""

from __future__ import annotations

import re
import statistics

import jax.numpy as jnp
import pytest
from corpus_harness import Program, cases, check, leaf, model

from ember_xcs.models import LLMOperator


@leaf
def think(prompt: str) -> str:
    n = sum(map(ord, prompt)) % 97
    return f"Let me think step by step. {n} plus 1 is {n + 1}.\nAnswer: {n + 1}"


@leaf
def rate(answer: str, criterion: str) -> str:
    return f"Score: {(len(answer) * 7 + len(criterion)) % 10}.{len(criterion) % 10}"


def cot_extract(question: str) -> int:
    reasoning = think(f"Q: {question}\nThink step by step, then write 'Answer: <n>'.")
    match = re.search(r"Answer:\s*(\d+)", reasoning)
    return int(match.group(1)) if match else -1


def cot_samples_sum(question: str) -> int:
    outs = [think(f"Sample {k}: {question}") for k in range(3)]
    values = [int(re.findall(r"\d+", o)[-1]) for o in outs]
    return sum(values)


sampler = model("sampler", responses=lambda prompt, s: f"The answer is {(len(prompt) + s) % 3}")


def self_consistency_direct(question: str) -> str:
    # the docs' idiom: call the model itself, n samples, keep the most common answer
    answers = [sampler.complete(f"Q: {question}\nA:", sample=i).text for i in range(6)]
    return max(set(answers), key=answers.count)


solver = LLMOperator(
    model("solver", responses=lambda p, s: f"Final: {(len(p) * (s + 2)) % 4}"), "Solve: {question}"
)


def self_consistency_operator(question: str) -> str:
    samples = [solver(question=f"{question} (try {s})") for s in range(5)]
    counts = {}
    for text in samples:
        key = text.split(":")[1].strip()
        counts[key] = counts.get(key, 0) + 1
    return max(counts, key=counts.get)


CRITERIA = ("accuracy", "clarity", "brevity", "tone")


def mean_parsed_scores(answer: str) -> float:
    replies = [rate(answer, c) for c in CRITERIA]
    scores = [float(r.removeprefix("Score: ")) for r in replies]
    return round(statistics.mean(scores), 3)


def jnp_weighted_score(answer: str) -> float:
    replies = [rate(answer, c) for c in CRITERIA]
    scores = jnp.asarray([float(r.split(":")[1]) for r in replies])
    weights = jnp.array([0.4, 0.3, 0.2, 0.1])
    return round(float(jnp.sum(scores * weights)), 3)


QUESTIONS = [("What is 6 x 7?",), ("How many legs has a spider?",), ("Is 91 prime?",)]
PROGRAMS = [
    Program("cot_extract", cot_extract, QUESTIONS, width=1, depth=1),
    Program("cot_samples_sum", cot_samples_sum, QUESTIONS, width=3, depth=1),
    Program("self_consistency_direct", self_consistency_direct, QUESTIONS, width=6, depth=1),
    Program("self_consistency_operator", self_consistency_operator, QUESTIONS, width=5, depth=1),
    Program("mean_parsed_scores", mean_parsed_scores, QUESTIONS, width=4, depth=1),
    Program("jnp_weighted_score", jnp_weighted_score, QUESTIONS, width=4, depth=1),
]


@pytest.mark.parametrize("program, mode", cases(PROGRAMS))
def test_program_gives_plain_result_calls_and_overlap(program, mode):
    check(program, mode)
