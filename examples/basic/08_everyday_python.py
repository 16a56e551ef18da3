"""Tutorial 8, everyday Python under `jit`: a plain program around LLM calls.

Purpose: take a program written the way one writes it on day one (f-string prompts,
three independent calls, `re` and `json` to read the answers, a bounded retry loop
with try/except, a majority vote and an average with `jnp`, a dict serialised with
`json.dumps`) and make it faster with `xcs.jit` without reshaping it. Then ask jit
which path it took and why, and see what a loop that uses each answer before making
the next call costs, and the rewrite that makes every call first.

Features: `xcs.jit`, `xcs.get_jit_stats`, `xcs.explain_jit_selection`, the
`ember_xcs.jit` logger's warning.

How to run (page: docs/tutorials/08-everyday-python.md):

    python examples/basic/08_everyday_python.py
"""

# expect: ^plain: \d+ ms, jit: \d+ ms, same answer: True$
# expect: ^\{"question": "Ship it on Friday\?", "verdict": "yes", "votes": \{"yes": 2, "no": 1\}, "confidence": 0\.\d+\}$
# expect: ^same answers: True$
# expect: ^strategy: dynamic, calls: 5, dynamic calls: 5, in flight: 3$
# expect: ^      trace stop: .*: Python formatted \(f-string or format\(\)\) argument 'question'
# expect: ^    - dynamic: chosen$
# expect: ^ember_xcs\.jit: review_one_by_one: jit: 4 leaf calls ran one at a time \(none overlapped\): .*08_everyday_python\.py:\d+
# expect: ^same answer: True$
# expect: ^review_one_by_one: calls in flight at once: 1$
# expect: ^review: calls in flight at once: 3$

# --8<-- [start:program]
import json
import logging
import re
import sys
import time
from collections import Counter

import jax.numpy as jnp

import ember_xcs as xcs

LATENCY = 0.04  # seconds per simulated LLM call
PERSONAS = ["optimist", "skeptic", "engineer"]


@xcs.op
def ask(prompt: str) -> str:
    """Stands in for an LLM call: slow, chatty, and not always the JSON asked."""
    time.sleep(LATENCY)
    persona = re.search(r"You are an? (\w+)", prompt).group(1)
    if persona == "skeptic" and "JSON only" not in prompt:
        return "Hmm. That depends on too many things to say."
    verdict = "no" if persona == "skeptic" else "yes"
    confidence = 0.5 + len(prompt) % 5 / 10
    return f'Sure! {{"verdict": "{verdict}", "confidence": {confidence}}}'


def read_vote(answer: str, prompt: str, tries: int = 3) -> dict:
    """The JSON object in `answer`; ask again, more firmly, until there is one."""
    for _ in range(tries):
        found = re.search(r"\{.*\}", answer)
        if found:
            try:
                return json.loads(found.group())
            except json.JSONDecodeError:
                pass
        prompt = f"{prompt} Answer in JSON only."
        answer = ask(prompt)
    raise ValueError(f"no JSON after {tries} tries: {answer!r}")


def summarise(question: str, votes: list[dict]) -> str:
    verdicts = Counter(vote["verdict"] for vote in votes)
    confidence = jnp.mean(jnp.array([vote["confidence"] for vote in votes]))
    result = {
        "question": question,
        "verdict": verdicts.most_common(1)[0][0],
        "votes": dict(verdicts),
        "confidence": round(float(confidence), 2),
    }
    return json.dumps(result)


def review(question: str) -> str:
    prompts = [f"You are a {persona}. {question}" for persona in PERSONAS]
    answers = [ask(prompt) for prompt in prompts]  # three independent calls
    votes = [read_vote(a, p) for a, p in zip(answers, prompts, strict=True)]
    return summarise(question, votes)


# --8<-- [end:program]


# --8<-- [start:jit]
fast_review = xcs.jit(review)  # or write @xcs.jit above `def review`


def timed(fn, question):
    start = time.perf_counter()
    value = fn(question)
    return value, (time.perf_counter() - start) * 1000


# a first call pays one-time costs (JAX starting up, jit's first look at
# the function), so warm both up before timing
review("Warm up?")
fast_review("Warm up?")

question = "Ship it on Friday?"
plain, plain_ms = timed(review, question)
fast, jit_ms = timed(fast_review, question)
print(
    f"plain: {plain_ms:.0f} ms, jit: {jit_ms:.0f} ms, same answer: {plain == fast}"
)
print(fast)
# --8<-- [end:jit]

# --8<-- [start:explain]
questions = [
    "Is Python fast enough?",
    "Do we need a GPU?",
    "Rewrite it in Rust?",
]
print(
    "same answers:",
    [fast_review(q) for q in questions] == [review(q) for q in questions],
)
stats = xcs.get_jit_stats(fast_review)
print(
    f"strategy: {stats.last_strategy}, calls: {stats.calls},"
    f" dynamic calls: {stats.dynamic_calls}, in flight: {stats.max_in_flight}"
)
print(xcs.explain_jit_selection(fast_review))
# --8<-- [end:explain]

# --8<-- [start:loop]
# show log records on stdout, with the logger's name
logging.basicConfig(stream=sys.stdout, format="%(name)s: %(message)s")


def review_one_by_one(question: str) -> str:
    votes = []
    for persona in PERSONAS:
        prompt = f"You are a {persona}. {question}"
        answer = ask(prompt)
        votes.append(read_vote(answer, prompt))  # reads it before the next ask
    return summarise(question, votes)


slow_review = xcs.jit(review_one_by_one)
print("same answer:", slow_review(question) == plain)
# --8<-- [end:loop]

# --8<-- [start:rewrite]
for fn in (slow_review, fast_review):
    fn("Add a cache?")
    in_flight = xcs.get_jit_stats(fn).max_in_flight
    print(f"{fn.__name__}: calls in flight at once: {in_flight}")
# --8<-- [end:rewrite]
