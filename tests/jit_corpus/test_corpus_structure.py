"""Corpus: how people *structure* programs around LLM calls.

Stateful operators holding a history list, per-request memo dicts and `functools` caches,
`super().forward`, `@staticmethod`/`@classmethod` helpers, a jitted function calling
another, generators consumed by `list()` or a `for` with `break`, early `return` from a
loop, `while True` on a parsed reply, nested functions mapped over inputs, named lambdas,
a model as a default argument, `**kwargs` prompts, `NamedTuple._replace`, `enum.Enum`
lookups, `try/except/finally` fallbacks, `contextlib.ExitStack`, a user's own thread pool
and `asyncio.run` inside the body, inline `jnp`/`numpy` on parsed scores, helpers that
mutate a list argument, module-level counters, recursion over sub-questions and
`getattr` dispatch tables.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import enum
import functools
import json
import math
import typing

import jax.numpy as jnp
import numpy as np
import pytest
from corpus_harness import Program, cases, check, leaf, made, model, serial

import ember_xcs as xcs


@leaf
def generate(prompt: str, style: str = "plain") -> str:
    return f"{style}<{prompt[-18:]}>"


@leaf
def classify(text: str) -> str:
    if "?" in text:
        return " question\n"
    return "math" if any(ch.isdigit() for ch in text) else "chat"


@leaf
def score(text: str) -> str:
    return f"{(sum(map(ord, text)) % 97) / 10:.1f}"


@leaf
def verify(text: str) -> str:
    return "yes" if sum(map(ord, text)) % 3 == 0 else "no"


@leaf
def checked(text: str) -> str:
    if "bad" in text:
        raise ValueError(f"refused: {text}")
    return text.upper()


@leaf
def draft_number(task: str, attempt: int) -> str:
    if attempt < len(task) % 3:
        return f"I think it is about {task}"
    return f"The answer is {len(task) * (attempt + 1)}"


@leaf
def decompose(question: str) -> str:
    words = question.split()
    if len(words) <= 2:
        return "[]"
    mid = len(words) // 2
    return json.dumps([" ".join(words[:mid]), " ".join(words[mid:])])


@leaf
def plan(task: str) -> str:
    steps = [("search" if len(w) % 2 else "answer", w) for w in task.split()]
    return json.dumps(steps)


# --- stateful operators, inheritance --------------------------------------------------------


class ChatBot(xcs.Operator):
    """A user's chat operator: `forward` appends each turn to `self.history`."""

    def __init__(self, persona: str):
        self.persona = persona
        self.llm = generate
        self.history: list[str] = []

    def forward(self, message: str) -> str:
        context = " | ".join(self.history[-2:])
        reply = self.llm(f"[{self.persona}] {context} user: {message}")
        self.history.append(f"user: {message}")
        self.history.append(f"bot: {reply}")
        return reply


def memory_chat(text: str) -> dict:
    bot = ChatBot("tutor")
    for turn in text.split(";"):
        bot(turn.strip())
    summaries = [generate(f"summarise: {line}") for line in bot.history[1::2]]
    return {"history": bot.history, "summaries": summaries}


class Counting(xcs.Operator):
    """Each forward counts itself in a field: the shared-counter idiom."""

    def __init__(self):
        self.llm = generate
        self.calls = 0

    def forward(self, prompt: str) -> str:
        self.calls += 1
        return self.llm(f"#{self.calls} {prompt}")


def counting_operator(question: str) -> dict:
    op = Counting()
    answers = [op(f"{question} {i}") for i in range(3)]
    return {"answers": answers, "calls": op.calls}


class Base(xcs.Operator):
    def __init__(self, style: str = "plain"):
        self.llm = generate
        self.style = style

    def forward(self, question: str) -> str:
        return self.llm(question, style=self.style)


class Polite(Base):
    def forward(self, question: str) -> str:
        answer = super().forward(f"please, {question}")
        return answer + " :)"


class Checked(Polite):
    def forward(self, question: str) -> str:
        answer = super().forward(question)
        return f"{answer} [{verify(answer)}]"


def super_forward(question: str) -> list[str]:
    ops = [Checked(style=s) for s in ("short", "long", "formal")]
    return [op(question) for op in ops]


class Prompts:
    prefix = "Answer briefly"

    @staticmethod
    def render(question: str, i: int) -> str:
        return f"{question} (take {i})"

    @classmethod
    def ask(cls, question: str, i: int) -> str:
        return generate(f"{cls.prefix}: {cls.render(question, i)}")

    @classmethod
    def ask_all(cls, question: str, n: int = 3) -> list[str]:
        return [cls.ask(question, i) for i in range(n)]


def static_and_class_methods(question: str) -> str:
    answers = Prompts.ask_all(question)
    return " / ".join(answers)


class Agent:
    """A tool agent dispatching plan steps to `do_<action>` with `getattr`."""

    def __init__(self, name: str):
        self.name = name

    def do_search(self, arg: str) -> str:
        return generate(f"search for {arg}", style="search")

    def do_answer(self, arg: str) -> str:
        return generate(f"answer {arg}", style="answer")

    def run(self, task: str) -> list[str]:
        steps = json.loads(plan(task))
        return [getattr(self, f"do_{action}")(arg) for action, arg in steps]


def getattr_dispatch(task: str) -> list[str]:
    return Agent("bob").run(task)


# --- caches and memos ------------------------------------------------------------------------


def memo_dict(text: str) -> list[str]:
    memo: dict[str, str] = {}

    def define(term):
        if term not in memo:
            memo[term] = generate(f"define {term}")
        return memo[term]

    return [define(t) for t in text.split()]


@functools.lru_cache(maxsize=64)
def _expand(term: str) -> str:
    return generate(f"expand {term}")


def lru_cache_helper(text: str) -> list[str]:
    _expand.cache_clear()  # a per-request cache
    return [_expand(t) for t in text.split()]


@functools.cache
def _cached_score(text: str) -> str:
    return score(text)


def functools_cache_scores(text: str) -> str:
    _cached_score.cache_clear()
    words = text.split()
    answers = [generate(w) for w in words]
    scores = [_cached_score(a) for a in answers]
    return max(zip(scores, answers, strict=True))[1]


class Document:
    def __init__(self, text: str):
        self.text = text

    @functools.cached_property
    def summary(self) -> str:
        return generate(f"summarise {self.text}")


def cached_property_docs(text: str) -> list[str]:
    docs = [Document(part) for part in text.split()]
    firsts = [d.summary for d in docs]
    again = [d.summary for d in docs]  # cached: no second call
    return [a + b for a, b in zip(firsts, again, strict=True)]


# --- jitted helpers --------------------------------------------------------------------------


def _views(question: str) -> list[str]:
    return [generate(f"{question} view {i}") for i in range(2)]


views = xcs.jit(_views)


def jit_calls_jit(text: str) -> str:
    all_views = [views(q) for q in text.split(";")]
    return " || ".join(" & ".join(v) for v in all_views)


def _fill(out: list, question: str) -> int:
    for i in range(3):
        out.append(generate(f"{question} part {i}"))
    return len(out)


def mutates_list_arg(question: str) -> dict:
    out: list[str] = []
    n = _fill(out, question)
    return {"n": n, "out": out}


def _jit_fill(fn, mode):
    """A user's plain code calling a *jitted* helper that mutates the list it is given."""
    jitted = xcs.jit(_fill, mode=mode)

    def outer(question):
        out: list[str] = ["seed"]
        n = jitted(out, question)
        return {"n": n, "out": out, "types": sorted({type(x).__name__ for x in out})}

    return outer


class Transcript(xcs.Operator):
    """A user's operator keeping every raw reply in `self.replies`, jitted directly."""

    def __init__(self):
        self.llm = generate
        self.replies: list[str] = []

    def forward(self, message: str) -> str:
        reply = self.llm(message)
        self.replies.append(reply)
        return reply


def transcript(text: str) -> dict:
    op = Transcript()
    answers = [op(turn) for turn in text.split(";")]
    return {
        "answers": answers,
        "replies": op.replies,
        "types": [type(r).__name__ for r in op.replies],
    }


def _jit_transcript(fn, mode):
    """Plain code calling a jitted stateful operator once per turn."""

    def outer(text):
        op = Transcript()
        jitted = xcs.jit(op, mode=mode)
        answers = [jitted(turn) for turn in text.split(";")]
        types = [type(r).__name__ for r in op.replies]
        return {"answers": answers, "replies": op.replies, "types": types}

    return outer


LOG: list[str] = []


def global_log(question: str) -> dict:
    start = len(LOG)
    answers = [generate(f"{question} ({i})") for i in range(3)]
    for answer in answers:
        LOG.append(answer)
    return {"logged": LOG[start:], "types": sorted({type(x).__name__ for x in LOG[start:]})}


def plain_fill(question: str) -> dict:
    out: list[str] = ["seed"]
    n = _fill(out, question)
    return {"n": n, "out": out, "types": sorted({type(x).__name__ for x in out})}


# --- generators, loops, early exits ----------------------------------------------------------


def _answers(question: str, n: int):
    for i in range(n):
        yield generate(f"{question} #{i}")


def generator_to_list(question: str) -> list[str]:
    return list(_answers(question, 4))


def generator_break(question: str) -> str:
    for answer in _answers(question, 5):
        if verify(answer) == "yes":
            return answer
    return "none"


def early_return_for(question: str) -> str:
    answers = [generate(f"{question} try {i}") for i in range(4)]
    for answer in answers:
        if verify(answer) == "yes":
            return answer
    return answers[-1]


def while_true_parse(task: str) -> int:
    attempt = 0
    while True:
        reply = draft_number(task, attempt)
        words = reply.split()
        if words[-1].isdigit():
            break
        attempt += 1
    return int(words[-1])


# --- nested functions, lambdas, defaults, kwargs ---------------------------------------------


def nested_fn_mapped(text: str) -> list[str]:
    def translate(word):
        return generate(f"translate {word}", style="fr")

    return list(map(translate, text.split()))


def named_lambda(text: str) -> list[str]:
    shout = lambda w: generate(w.upper(), style="loud")  # noqa: E731 - how users write it
    return [shout(w) for w in text.split()]


LLM = model("llm", responses=lambda prompt, sample: f"llm({len(prompt)},{sample})")


def default_model_arg(question: str, llm=LLM, n: int = 3) -> list[str]:
    return [llm.complete(f"{question} ({i})", sample=i).text for i in range(n)]


TEMPLATE = "Topic: {topic}. Tone: {tone}. Audience: {audience}."


def _render(**fields) -> str:
    fields.setdefault("audience", "everyone")
    return TEMPLATE.format(**fields)


def kwargs_prompts(topic: str) -> list[str]:
    options = [{"tone": t} for t in ("dry", "warm", "wry")]
    return [generate(_render(topic=topic, **o), **{"style": o["tone"]}) for o in options]


# --- records ---------------------------------------------------------------------------------


class Label(enum.Enum):
    QUESTION = "question"
    MATH = "math"
    CHAT = "chat"


class Row(typing.NamedTuple):
    text: str
    label: str | None = None
    answer: str | None = None


def namedtuple_enum(text: str) -> list[tuple]:
    rows = [Row(part) for part in text.split(";")]
    labelled = [r._replace(label=classify(r.text)) for r in rows]
    labels = [Label(r.label.strip()) for r in labelled]
    done = [
        r._replace(answer=generate(r.text, style=lab.name.lower()))
        for r, lab in zip(labelled, labels, strict=True)
    ]
    return [tuple(r) for r in done]


@dataclasses.dataclass
class Result:
    question: str
    answer: str
    label: Label
    meta: dict = dataclasses.field(default_factory=dict)


def enum_dataclass_asdict(text: str) -> list[dict]:
    parts = text.split(";")
    labels = [Label(classify(p).strip()) for p in parts]
    answers = [generate(p) for p in parts]
    results = [
        Result(p, a, lab, {"len": len(a)}) for p, a, lab in zip(parts, answers, labels, strict=True)
    ]
    return [{**dataclasses.asdict(r), "label": r.label.value} for r in results]


# --- exceptions, finally, context managers ---------------------------------------------------


def _safe(text: str) -> str:
    try:
        return checked(text)
    except ValueError:
        return generate(f"fallback for {text}")


def fallback_second_call(text: str) -> list[str]:
    return [_safe(w) for w in text.split()]


def finally_records_state(text: str) -> dict:
    state = {"open": True, "seen": 0}
    answers = [generate(w) for w in text.split()]
    try:
        verdict = checked(" ".join(answers))
    except ValueError as exc:
        verdict = f"error: {exc}"
    finally:
        state["open"] = False
        state["seen"] = len(answers)
    return {"state": state, "verdict": verdict}


def exit_stack(text: str) -> dict:
    log: list[str] = []
    with contextlib.ExitStack() as stack:
        stack.callback(log.append, "closed")
        answers = [generate(w) for w in text.split()]
        log.append(f"made {len(answers)}")
    return {"log": log, "answers": answers}


# --- threads and asyncio inside the body -----------------------------------------------------


def thread_pool_in_body(text: str) -> list[str]:
    words = text.split()
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(generate, w, style="pool") for w in words]
        answers = [f.result() for f in futures]
    return [a.upper() for a in answers]


def thread_pool_map(text: str) -> list[str]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(generate, text.split()))


async def _gather(words):
    tasks = [asyncio.to_thread(generate, w, style="async") for w in words]
    return await asyncio.gather(*tasks)


def asyncio_run_in_body(text: str) -> list[str]:
    answers = asyncio.run(_gather(text.split()))
    return [a.strip("<>") for a in answers]


# --- numbers ---------------------------------------------------------------------------------


def jnp_mean_scores(question: str) -> float:
    answers = [generate(f"{question} #{i}") for i in range(4)]
    scores = [score(a) for a in answers]
    mean = jnp.array([float(s) for s in scores]).mean()
    return round(float(mean), 3)


def numpy_argmax(question: str) -> str:
    answers = [generate(f"{question} ~{i}") for i in range(4)]
    scores = np.array([float(score(a)) for a in answers])
    return answers[int(np.argmax(scores))]


# --- module state, recursion -----------------------------------------------------------------

LABEL_COUNTS: collections.Counter[str] = collections.Counter()


def global_counter(text: str) -> dict:
    before = dict(LABEL_COUNTS)
    labels = [classify(w) for w in text.split()]
    for label in labels:
        LABEL_COUNTS[label.strip()] += 1
    return {k: LABEL_COUNTS[k] - before.get(k, 0) for k in sorted(LABEL_COUNTS)}


REGISTRY: dict[str, str] = {}


def registry() -> dict[str, str]:
    return REGISTRY


def registry_store(text: str) -> dict:
    """Answers kept in a module's registry reached through a function, and the last one
    in an enclosing function's variable (`nonlocal`)."""
    last = None

    def keep(word):
        nonlocal last
        registry()[word] = last = generate(f"define {word}")

    for word in text.split():
        keep(word)
    return last


def _registry_after(store):
    def outer(text):
        REGISTRY.clear()
        last = store(text)
        kept = dict(REGISTRY)
        return {
            "last": last,
            "kept": kept,
            "types": sorted({type(v).__name__ for v in kept.values()}),
        }

    return outer


registry_state = _registry_after(registry_store)  # plain code reading the registry after


def _jit_registry(fn, mode):
    """The same plain code around a jitted `registry_store`."""
    return _registry_after(xcs.jit(registry_store, mode=mode))


def _solve_tree(question: str, depth: int = 0) -> str:
    subs = json.loads(decompose(question))
    if not subs or depth >= 2:
        return generate(question)
    parts = [_solve_tree(s, depth + 1) for s in subs]
    return generate(" + ".join(parts), style="combine")


def recursive_subquestions(question: str) -> str:
    return _solve_tree(question)


QUESTIONS = [("What is XLA?",), ("add 2 and 3",), ("tell me a story",)]
TEXTS = [("alpha beta gamma delta",), ("one two 3 four",), ("x y z",)]
REPEATS = [("alpha beta alpha gamma beta",), ("a a a",), ("one two three two",)]
TURNS = [("hi;what is 2+2?;thanks",), ("hello;bye",), ("one turn",)]
PARTS = [("what?;add 1;hello",), ("why?;how?",), ("12;chat",)]
MIXED = [("good bad day",), ("all fine here",), ("bad",)]
TREE = [("what is the capital of france and why",), ("a b c d e f g h",), ("short one",)]
TASKS = [("abc",), ("abcd",), ("hello world",)]


PROGRAMS = [
    # the turns chain through the history, then the last turn's summary: turns + 1
    Program("memory_chat", memory_chat, TURNS, width=3, depth=lambda c: serial(c) // 2 + 1),
    Program("counting_operator", counting_operator, QUESTIONS, width=3, depth=1),
    # each `forward` uses its answer (`+`) before returning: `auto` runs the three
    # untraceable composites as plan nodes at once; `trace`/`dynamic` run them inline
    Program("super_forward", super_forward, QUESTIONS, width=3, depth=2),
    Program("static_and_class_methods", static_and_class_methods, QUESTIONS, width=3, depth=1),
    Program("getattr_dispatch", getattr_dispatch, TEXTS, width=4, depth=2),
    Program("memo_dict", memo_dict, REPEATS, width=3, depth=1),
    Program("lru_cache_helper", lru_cache_helper, REPEATS, width=3, depth=1),
    Program("functools_cache_scores", functools_cache_scores, TEXTS, width=4, depth=2),
    Program("cached_property_docs", cached_property_docs, TEXTS, width=4, depth=1),
    Program("jit_calls_jit", jit_calls_jit, [("a;b;c",), ("why;how",)], width=6, depth=1),
    Program("mutates_list_arg", mutates_list_arg, QUESTIONS, width=3, depth=1),
    Program("jitted_helper_mutates_arg", plain_fill, QUESTIONS, width=3, jit=_jit_fill),
    # plain code outside jit calls the jitted operator once per turn, each for its answer
    Program(
        "jitted_stateful_operator", transcript, TURNS, width=1, depth=serial, jit=_jit_transcript
    ),
    Program("global_log", global_log, QUESTIONS, width=3, depth=1),
    Program("generator_to_list", generator_to_list, QUESTIONS, width=4, depth=1),
    # `verify` of each answer decides whether the generator is pulled again
    Program("generator_break", generator_break, QUESTIONS, width=1, depth=serial),
    # the answers at once; each `verify` is made only if the one before said no
    Program(
        "early_return_for",
        early_return_for,
        QUESTIONS,
        width=4,
        depth=lambda c: 1 + made(c, "verify"),
    ),
    Program("while_true_parse", while_true_parse, TASKS, width=1, depth=serial),
    Program("nested_fn_mapped", nested_fn_mapped, TEXTS, width=4, depth=1),
    Program("named_lambda", named_lambda, TEXTS, width=4, depth=1),
    Program("default_model_arg", default_model_arg, QUESTIONS, width=3, depth=1),
    Program("kwargs_prompts", kwargs_prompts, QUESTIONS, width=3, depth=1),
    Program("namedtuple_enum", namedtuple_enum, PARTS, width=3, depth=2),
    # the labels and the answers are independent: every call at once
    Program("enum_dataclass_asdict", enum_dataclass_asdict, PARTS, width=6, depth=1),
    # the words' checks are independent; a refused word's fallback follows its check
    Program(
        "fallback_second_call",
        fallback_second_call,
        MIXED,
        width=3,
        depth=lambda c: 1 + min(1, made(c, "fallback")),
    ),
    Program("finally_records_state", finally_records_state, MIXED, width=3, depth=2),
    Program("exit_stack", exit_stack, TEXTS, width=4, depth=1),
    Program("thread_pool_in_body", thread_pool_in_body, TEXTS, width=4, depth=1),
    Program("thread_pool_map", thread_pool_map, TEXTS, width=4, depth=1),
    Program("asyncio_run_in_body", asyncio_run_in_body, TEXTS, width=4, depth=1),
    Program("jnp_mean_scores", jnp_mean_scores, QUESTIONS, width=4, depth=2),
    # the answers, then their scores (jit's chain is 5: `float(score(a))` waits for each
    # score before the next is asked for)
    Program("numpy_argmax", numpy_argmax, QUESTIONS, width=4, depth=2),
    Program("global_counter", global_counter, TEXTS, width=4, depth=1),
    Program("registry_store", registry_state, TEXTS, width=4, depth=1, jit=_jit_registry),
    # `decompose` down each level of a full binary tree (2**levels - 1 calls), the leaves'
    # `generate`, then `combine` back up: 2 calls per level; the 4 subtrees of the last
    # level run at once
    Program(
        "recursive_subquestions",
        recursive_subquestions,
        TREE,
        width=4,
        depth=lambda c: 2 * int(math.log2(made(c, "decompose") + 1)),
    ),
]


# (program, mode): why the overlap falls short of the natural width
KNOWN_SHORT = {
    **dict.fromkeys(
        [("super_forward", "trace"), ("super_forward", "dynamic")],
        "composites called from the body run inline, so a forward that uses its own "
        "answer makes the next composite's calls wait",
    ),
    **dict.fromkeys(
        [("exit_stack", m) for m in ("auto", "trace", "dynamic")],
        "calls in a `with ExitStack()` body wait one by one (a manager that may see "
        "errors: docs/sharp-bits.md)",
    ),
    **dict.fromkeys(
        [("enum_dataclass_asdict", m) for m in ("auto", "trace", "dynamic")],
        "`Label(classify(p).strip())` calls a method of each pending label before the next "
        "`classify` is made, so the labels run one at a time and the answers after them "
        "(a result used before the next call is made: docs/sharp-bits.md)",
    ),
    **dict.fromkeys(
        [("fallback_second_call", m) for m in ("auto", "trace", "dynamic")],
        "`return checked(text)` sits in `_safe`'s `try` body, where each call waits for its "
        "result (docs/sharp-bits.md): the words' checks run one at a time",
    ),
    **dict.fromkeys(
        [("recursive_subquestions", m) for m in ("auto", "trace", "dynamic")],
        "`json.loads(decompose(question))` uses each decomposition before the recursion "
        "makes the next call, so sibling subtrees do not overlap (a result used before the "
        "next call is made: docs/sharp-bits.md)",
    ),
}


@pytest.mark.parametrize("program, mode", cases(PROGRAMS, KNOWN_SHORT))
def test_program_gives_plain_result_calls_and_overlap(program, mode):
    check(program, mode)
