"""Corpus: programs written with `ember_xcs.models` the way docs/models.md shows it.

Direct `model.complete(...)` calls (`.text`, `sample=`, `temperature=`, the response's
other fields), `LLMOperator`s, the ensemble blocks (`UniformEnsemble`, `MostCommon`,
`JudgeSynthesis`, `Verifier`, `Sequential`, `nested_ensemble`) called from a body, a model
passed as an argument, held in an operator's field, in a dict or behind a bound method, a
user's own `Model`-protocol class, several models in one body, `track_usage()` inside a
body, and model errors handled by the body. The HTTP model is in
`tests/test_models_jit_http_corpus.py`.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import pytest
from corpus_harness import RECORDER, Program, cases, check, model

import ember_xcs as xcs
from ember_xcs import models

QUESTIONS = [("What is 6 x 7?",), ("Name a prime",), ("Why is the sky blue?",)]

LLM = model("llm", responses=lambda p, s: f"ans-{(len(p) + s) % 3}")
CRITIC = model("critic", responses=lambda p, s: f"critique of {len(p)} chars")
JUDGE = model("judge", responses=lambda p, s: f"Reasoning...\nFinal answer: {p.count('ans-1')}")
CHECKER = model(
    "checker",
    responses=lambda p, s: (
        "Verdict: PASS\nExplanation: fine" if "ans-1" in p else "Verdict: FAIL\nExplanation: no"
    ),
)


def _flaky(prompt: str, sample: int) -> str:
    if "fail" in prompt:
        raise models.RateLimitError(
            "simulated 429", model="flaky", endpoint="simulated:flaky", status=429
        )
    return f"ok {len(prompt)}"


FLAKY = model("flaky", responses=_flaky)
BACKUP = model("backup", responses=lambda p, s: f"backup {len(p)}")


# --- direct model calls ----------------------------------------------------------------------


def samples_with_temperature(question: str) -> list[str]:
    return [LLM.complete(question, sample=i, temperature=0.7).text for i in range(4)]


def response_fields(question: str) -> list[tuple]:
    replies = [LLM.complete(f"{question} #{i}", sample=i) for i in range(3)]
    return [(r.text, r.model, r.usage.total_tokens, r.texts, r.cached) for r in replies]


def response_as_str(question: str) -> str:
    replies = [LLM.complete(question, sample=i) for i in range(3)]
    return " | ".join(f"{r}" for r in replies) + " / " + str(replies[0])


def params_dict(question: str) -> list[str]:
    settings = [{"temperature": t, "max_tokens": 20} for t in (0.0, 0.5, 1.0)]
    return [LLM.complete(question, sample=i, **p).text for i, p in enumerate(settings)]


def bound_method(question: str) -> list[str]:
    ask = LLM.complete
    return [ask(f"{question} v{i}").text for i in range(3)]


def partial_of_complete(question: str) -> list[str]:
    ask = functools.partial(LLM.complete, temperature=0.2)
    return [ask(question, sample=i).text for i in range(3)]


def getattr_complete(question: str) -> list[str]:
    return [getattr(LLM, "complete")(question, sample=i).text for i in range(3)]  # noqa: B009


REGISTRY = {"fast": LLM, "careful": CRITIC}


def model_registry(question: str) -> dict[str, str]:
    return {name: m.complete(question).text for name, m in REGISTRY.items()}


def model_as_argument(llm: Any, question: str) -> list[str]:
    return [llm.complete(question, sample=i).text for i in range(3)]


OTHER = model("other", responses=lambda p, s: f"other-{s}")


def two_models_chained(question: str) -> list[str]:
    drafts = [LLM.complete(f"Draft: {question}", sample=i).text for i in range(3)]
    notes = [CRITIC.complete(f"Critique: {d}").text for d in drafts]
    return [f"{d} ({n})" for d, n in zip(drafts, notes, strict=True)]


class Shout:
    """A user's own model (the protocol, no base class), as docs/models.md writes one."""

    name = "shout"

    def complete(self, prompt: str, *, sample: int = 0, **params: Any) -> models.ModelResponse:
        RECORDER.enter("shout.complete", (prompt, sample))
        try:
            time.sleep(RECORDER.latency)  # a slow call, as every leaf of the corpus
            return models.ModelResponse(text=prompt.upper() + f"!{sample}", model=self.name)
        finally:
            RECORDER.leave()

    async def acomplete(self, prompt: str, *, sample: int = 0, **params: Any):
        return self.complete(prompt, sample=sample, **params)


SHOUT = Shout()


def protocol_model(question: str) -> list[str]:
    return [SHOUT.complete(question, sample=i).text for i in range(3)]


# --- operators over a model ------------------------------------------------------------------

ASK = models.LLMOperator(LLM, "Q: {question}\nA:", params={"temperature": 0.3})
SCORE = models.LLMOperator(LLM, "Score {answer}", parse=lambda t: int(t[-1]))


def operator_with_parse(question: str) -> int:
    answers = [ASK(f"{question} ({i})") for i in range(3)]
    return sum(SCORE(answer=a) for a in answers)


class Drafter(xcs.Operator):
    """An operator holding a model in a field (a leaf: it holds no operators)."""

    def __init__(self, llm: Any):
        self.llm = llm

    def forward(self, question: str) -> str:
        return self.llm.complete(f"Draft: {question}").text


DRAFTER = Drafter(LLM)


def operator_field_model(question: str) -> list[str]:
    return [DRAFTER(f"{question} {i}") for i in range(3)]


def field_model_reached_directly(question: str) -> list[str]:
    return [DRAFTER.llm.complete(question, sample=i).text for i in range(3)]


class DraftAndCritique(xcs.Operator):
    """A composite (it holds an `LLMOperator`) that also calls its model directly."""

    def __init__(self, llm: Any):
        self.llm = llm
        self.critic = models.LLMOperator(llm, "Critique: {draft}")

    def forward(self, question: str) -> list[str]:
        drafts = [self.llm.complete(question, sample=i).text for i in range(3)]
        return [self.critic(draft=d) for d in drafts]


DRAFT_AND_CRITIQUE = DraftAndCritique(LLM)


def composite_with_model_field(question: str) -> list[str]:
    return DRAFT_AND_CRITIQUE(question)


# --- ensemble blocks -------------------------------------------------------------------------

VOTE = models.Sequential([models.UniformEnsemble(5, LLM, "Vote: {question}"), models.MostCommon()])


def ensemble_vote(question: str) -> str:
    return VOTE(question)


ENSEMBLE = models.UniformEnsemble(4, LLM, "Q: {question}")
JUDGE_OP = models.JudgeSynthesis(JUDGE)


def ensemble_then_judge(question: str) -> str:
    answers = ENSEMBLE(question)
    return JUDGE_OP(answers, question)


def judge_over_direct_calls(question: str) -> str:
    texts = [LLM.complete(question, sample=i).text for i in range(3)]
    return JUDGE_OP(texts, question=question)


VERIFY = models.Verifier(CHECKER)


def verify_then_branch(question: str) -> str:
    answers = ENSEMBLE(question)
    verdicts = [VERIFY(a, question) for a in answers]
    passed = [v.answer for v in verdicts if v.passed]
    return passed[0] if passed else BACKUP.complete(question).text


MAJORITY = models.MostCommon(normalize=str.lower)


def most_common_over_texts(question: str) -> str:
    texts = [LLM.complete(f"{question}", sample=i).text.upper() for i in range(5)]
    return MAJORITY(texts)


NESTED = models.nested_ensemble(LLM, width=3, depth=2, judge_model=JUDGE)


def nested_small(question: str) -> str:
    return NESTED(question)


UNITS = models.UniformEnsemble.from_units(
    [models.LLMOperator(LLM, t) for t in ("A {question}", "B {question}", "C {question}")]
)


def from_units_then_judge(question: str) -> str:
    return models.Sequential([UNITS, JUDGE_OP])(question=question)


# --- usage and errors ------------------------------------------------------------------------


def usage_inside_body(question: str) -> tuple:
    with models.track_usage() as usage:
        texts = [LLM.complete(question, sample=i).text for i in range(3)]
    return texts, usage.calls, usage.prompt_tokens, usage.completion_tokens


def rate_limit_fallback(question: str) -> list[str]:
    out = []
    for prompt in (question, f"fail {question}", f"{question}?"):
        try:
            out.append(FLAKY.complete(prompt).text)
        except models.RateLimitError:
            out.append(BACKUP.complete(prompt).text)
    return out


def model_error_escapes(question: str) -> list[str]:
    texts = [FLAKY.complete(f"{question} {i}").text for i in range(2)]
    return [*texts, FLAKY.complete(f"fail {question}").text]


LIMITED = model("limited", failure_rate=1.0, failure_kind="429")


def error_fields(question: str) -> list[tuple]:
    out = []
    for i in range(2):
        try:
            out.append(LIMITED.complete(f"{question} {i}").text)
        except models.RateLimitError as error:
            out.append((error.status, error.model, error.retryable, error.attempts, error.args))
    return out


SLOW = model("slow", failure_rate=1.0, failure_kind="timeout")


def timeout_as_builtin(question: str) -> str:
    answers = [LLM.complete(question, sample=i).text for i in range(3)]
    try:
        extra = SLOW.complete(question).text
    except TimeoutError:
        extra = "timed out"
    return " ".join([*answers, extra])


CAPPED = model("capped", max_concurrency=2, responses=lambda p, s: f"c{s}")


def capped_model(question: str) -> list[str]:
    return [CAPPED.complete(question, sample=i).text for i in range(6)]


class Tagged(models.LLMOperator):
    """An `LLMOperator` subclass changing what is asked and returned (docs/models.md)."""

    def prompt(self, question: str, tag: str = "x") -> str:
        return f"[{tag}] {question}"

    def finish(self, text: str, question: str, tag: str = "x") -> dict:
        return {"tag": tag, "text": text}


TAGGED = Tagged(LLM, "{question}")


def operator_subclass(question: str) -> list[dict]:
    return [TAGGED(question, tag=t) for t in "abc"]


LABEL = models.LLMOperator(LLM, "Label: {ticket}")


def vmap_in_body(question: str) -> list[str]:
    return xcs.vmap(LABEL)([f"{question} {i}" for i in range(4)])


VERIFIERS = [models.Verifier(CHECKER, sample=i) for i in range(3)]


def verdicts_replaced(question: str) -> list[tuple]:
    verdicts = [v(f"ans-{i}", question) for i, v in enumerate(VERIFIERS)]
    fixed = [v if v.passed else dataclasses.replace(v, answer=v.answer + "?") for v in verdicts]
    return [(v.passed, v.answer, v.explanation) for v in fixed]


STATEFUL = model("stateful")


def stats_after_calls(question: str) -> tuple:
    before = STATEFUL.stats()["calls"]
    texts = [STATEFUL.complete(question, sample=i).text for i in range(3)]
    return texts, STATEFUL.stats()["calls"] - before


def calls_property(question: str) -> tuple:
    before = STATEFUL.calls
    texts = [STATEFUL.complete(f"{question} {i}").text for i in range(3)]
    return texts, STATEFUL.calls - before


class CountUsage(xcs.ExecutionHooks):
    def __init__(self) -> None:
        self.calls = 0

    def on_model_usage(self, *, model: str, usage: Any, cached: bool) -> None:
        self.calls += 1


def hooks_in_body(question: str) -> tuple:
    hook = CountUsage()
    with xcs.execution_options(hooks=(hook,)):
        texts = [LLM.complete(question, sample=i).text for i in range(3)]
    return texts, hook.calls


def retry_loop(question: str) -> str:
    prompt = f"fail {question}"
    for _attempt in range(3):
        try:
            return FLAKY.complete(prompt).text
        except xcs.ModelError:
            prompt = prompt.removeprefix("fail ")
    return "gave up"


PROGRAMS = [
    Program("samples_with_temperature", samples_with_temperature, QUESTIONS, width=4, traces=True),
    Program("response_fields", response_fields, QUESTIONS, width=3),
    Program("response_as_str", response_as_str, QUESTIONS, width=3),
    Program("params_dict", params_dict, QUESTIONS, width=3, traces=True),
    Program("bound_method", bound_method, QUESTIONS, width=3),
    Program("partial_of_complete", partial_of_complete, QUESTIONS, width=3, traces=True),
    Program("getattr_complete", getattr_complete, QUESTIONS, width=3, traces=True),
    Program("model_registry", model_registry, QUESTIONS, width=2, traces=True),
    # a model passed as an argument is a placeholder to the trace: `.complete` stops it
    Program(
        "model_as_argument",
        model_as_argument,
        [(LLM, "q1"), (OTHER, "q2"), (LLM, "q3"), (OTHER, "q1")],
        width=3,
    ),
    Program("two_models_chained", two_models_chained, QUESTIONS, width=3, depth=2),
    Program("protocol_model", protocol_model, QUESTIONS, width=3, traces=True),
    Program("operator_with_parse", operator_with_parse, QUESTIONS, width=3, depth=2),
    # Drafter holds a model, not operators: a leaf, its body one node (docs/models.md)
    Program("operator_field_model", operator_field_model, QUESTIONS, width=3),
    Program("field_model_reached_directly", field_model_reached_directly, QUESTIONS, width=3),
    Program("ensemble_vote", ensemble_vote, QUESTIONS, width=5, traces=True),
    # three threads call the jitted vote at once: 15 calls of one model can overlap
    Program("ensemble_vote_threads", ensemble_vote, QUESTIONS, width=15, traces=True, threads=3),
    Program(
        "composite_with_model_field",
        composite_with_model_field,
        QUESTIONS,
        width=3,
        depth=2,
        traces=True,
    ),
    Program("ensemble_then_judge", ensemble_then_judge, QUESTIONS, width=4, depth=2, traces=True),
    Program("judge_over_direct_calls", judge_over_direct_calls, QUESTIONS, width=3, depth=2),
    Program("verify_then_branch", verify_then_branch, QUESTIONS, width=4, depth=2),
    Program("most_common_over_texts", most_common_over_texts, QUESTIONS, width=5),
    Program("nested_small", nested_small, QUESTIONS, width=9, depth=3, traces=True),
    Program("from_units_then_judge", from_units_then_judge, QUESTIONS, width=3, depth=2),
    Program("usage_inside_body", usage_inside_body, QUESTIONS, width=3),
    Program("rate_limit_fallback", rate_limit_fallback, QUESTIONS, width=3, depth=2),
    Program("model_error_escapes", model_error_escapes, QUESTIONS, width=3),
    Program("retry_loop", retry_loop, QUESTIONS, width=1, depth=2),
    Program("error_fields", error_fields, QUESTIONS, width=2),
    Program("timeout_as_builtin", timeout_as_builtin, QUESTIONS, width=4, depth=1),
    # the model's max_concurrency=2 is the width any scheduler can reach: six calls, 3 waves
    Program("capped_model", capped_model, QUESTIONS, width=2, depth=3, traces=True),
    Program("operator_subclass", operator_subclass, QUESTIONS, width=3, traces=True),
    Program("vmap_in_body", vmap_in_body, QUESTIONS, width=4),
    Program("verdicts_replaced", verdicts_replaced, QUESTIONS, width=3),
    Program("stats_after_calls", stats_after_calls, QUESTIONS, width=3),
    Program("calls_property", calls_property, QUESTIONS, width=3),
    Program("hooks_in_body", hooks_in_body, QUESTIONS, width=3),
]


# (program, mode): why the overlap falls short of the natural width
KNOWN_SHORT = {
    **dict.fromkeys(
        [("most_common_over_texts", m) for m in ("auto", "trace", "dynamic")],
        "`.text.upper()` calls a method of each pending reply before the next call is made "
        "(a method of a pending result waits at its line: docs/sharp-bits.md)",
    ),
    **dict.fromkeys(
        [
            (p, m)
            for p in ("rate_limit_fallback", "error_fields")
            for m in ("auto", "trace", "dynamic")
        ],
        "each call in a `try` body waits for its result (docs/sharp-bits.md), though the "
        "calls are independent",
    ),
}


@pytest.mark.parametrize("program, mode", cases(PROGRAMS, KNOWN_SHORT))
def test_program_gives_plain_result_calls_and_overlap(program, mode):
    check(program, mode)


def test_the_flaky_model_raises_the_error_its_callers_catch():
    """`retry_loop` and `rate_limit_fallback` catch the model's `RateLimitError`: building
    it must not fail first (a `TypeError` would end every program before its fallback)."""
    assert retry_loop("why?") == "ok 4"
    with pytest.raises(models.RateLimitError):
        FLAKY.complete("fail now")
