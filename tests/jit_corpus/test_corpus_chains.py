"""Corpus: LangChain- and DSPy-style chains, written the way their users write them.

Prompt-template objects with `.format(**vars)` and `textwrap.dedent` templates; an output
parser turning `key: value` lines into a dataclass and raising its own error on prose; an
LCEL-like `Runnable` whose `|` builds sequences (a dict on the left becomes a parallel
step through `__ror__`), `.batch()`, fallbacks and a branch table; `functools.partial`,
`operator.itemgetter` / `attrgetter`; hand-written retry, logging (`functools.wraps`) and
timing decorators; `functools.lru_cache` prompt helpers; a tool registry dispatched on a
model's answer; callback lists; DSPy-style `Signature`s with `Predict` and
`ChainOfThought` operators holding their predictors, and a plain `Module` whose
`__call__` calls `forward`; class-level config, `typing.NamedTuple` outputs,
keyword-only arguments, `*args` fan-out, dict and set comprehensions, `sorted(key=)` by
parsed confidence, `zip(strict=True)`, `enumerate(start=1)`, `collections.ChainMap`,
`json.dumps(dataclasses.asdict(result))`, and a run config in a `ContextVar`.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import dataclasses
import functools
import io
import json
import logging
import operator
import re
import textwrap
import time
from typing import Any, NamedTuple

import pytest
from corpus_harness import Program, cases, check, leaf, model

import ember_xcs as xcs

# --- leaves ----------------------------------------------------------------------------------


def _tail(prompt: str, n: int = 3) -> str:
    return " ".join(prompt.replace(":", " ").split()[-n:])


@leaf
def llm(prompt: str) -> str:
    """A chat model told to answer in `key: value` lines; it rambles in prose when the
    prompt asks it to ramble (unless it is asked to reformat)."""
    if "ramble" in prompt and "Reformat" not in prompt:
        return f"Well, it depends on {_tail(prompt)} and much else..."
    confidence = (sum(map(ord, prompt)) % 90 + 10) / 100
    return f"answer: {_tail(prompt)} ok\nconfidence: {confidence:.2f}\nreasoning: {len(prompt)}"


@leaf
def styled(prompt: str, style: str = "plain") -> str:
    return f"{style}<{_tail(prompt, 2)}>"


@leaf
def critic(text: str) -> str:
    return "GOOD" if len(text) % 3 else "WEAK"


@leaf
def rate(text: str) -> str:
    return f" {(sum(map(ord, text)) % 97) / 10:.1f} "


@leaf
def classify(text: str) -> str:
    return " math\n" if any(ch.isdigit() for ch in text) else "general"


@leaf
def choose_tool(question: str) -> str:
    """A ReAct-style model picking a tool: `Action: name` and `Input: ...` lines."""
    tool = "calculator" if any(ch.isdigit() for ch in question) else "search"
    return f"Thought: I should use {tool}\nAction: {tool}\nInput: {question[-12:]}"


@leaf
def search(query: str) -> str:
    return f"[doc: {query.strip()[:16]}]"


@leaf
def calculator(expression: str) -> str:
    return str(sum(int(tok) for tok in re.findall(r"\d+", expression)))


CHAT = model("chat", responses=lambda p, s: f"  chat says {len(p)} ")


# --- a small LCEL ------------------------------------------------------------------------------


class Runnable:
    def invoke(self, value: Any) -> Any:
        raise NotImplementedError

    def __or__(self, other: Any) -> RunnableSequence:
        return RunnableSequence(self, coerce(other))

    def __ror__(self, other: Any) -> RunnableSequence:
        return RunnableSequence(coerce(other), self)

    def batch(self, values: list[Any]) -> list[Any]:
        return [self.invoke(v) for v in values]

    def with_fallbacks(self, fallbacks: list[Runnable]) -> RunnableWithFallbacks:
        return RunnableWithFallbacks(self, fallbacks)


class RunnableLambda(Runnable):
    def __init__(self, fn):
        self.fn = fn

    def invoke(self, value):
        return self.fn(value)


class RunnableSequence(Runnable):
    def __init__(self, *steps: Runnable):
        self.steps = steps

    def __or__(self, other):
        return RunnableSequence(*self.steps, coerce(other))

    def invoke(self, value):
        for step in self.steps:
            value = step.invoke(value)
        return value


class RunnableParallel(Runnable):
    def __init__(self, steps: dict[str, Any]):
        self.steps = {key: coerce(step) for key, step in steps.items()}

    def invoke(self, value):
        return {key: step.invoke(value) for key, step in self.steps.items()}


class RunnableWithFallbacks(Runnable):
    def __init__(self, primary, fallbacks):
        self.runnables = [primary, *fallbacks]

    def invoke(self, value):
        error = None
        for runnable in self.runnables:
            try:
                return runnable.invoke(value)
            except OutputParserError as exc:
                error = exc
        raise error


def coerce(thing: Any) -> Runnable:
    if isinstance(thing, Runnable):
        return thing
    if isinstance(thing, dict):
        return RunnableParallel(thing)
    if callable(thing):
        return RunnableLambda(thing)
    raise TypeError(f"cannot make a Runnable of {thing!r}")


class PromptTemplate(Runnable):
    def __init__(self, template: str):
        self.template = textwrap.dedent(template).strip()

    @classmethod
    def from_template(cls, template: str) -> PromptTemplate:
        return cls(template)

    def format(self, **variables: Any) -> str:
        return self.template.format(**variables)

    def invoke(self, value):
        if isinstance(value, dict):
            return self.format(**value)
        return self.format(input=value)


class ChatModel(Runnable):
    def __init__(self, client):
        self.client = client

    def invoke(self, prompt):
        return self.client.complete(prompt).text


class StrOutputParser(Runnable):
    def invoke(self, value):
        return value.strip()


class OutputParserError(ValueError):
    """The model did not answer in the requested format."""


@dataclasses.dataclass
class Parsed:
    answer: str
    confidence: float
    reasoning: str = ""


class KeyValueParser(Runnable):
    required = ("answer", "confidence")

    def parse(self, text: str) -> Parsed:
        fields = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip().lower()] = value.strip()
        missing = [key for key in self.required if key not in fields]
        if missing:
            raise OutputParserError(f"missing {missing} in {text!r}")
        return Parsed(fields["answer"], float(fields["confidence"]), fields.get("reasoning", ""))

    def invoke(self, value):
        return self.parse(value)


PARSER = KeyValueParser()
QA_PROMPT = PromptTemplate.from_template("Answer briefly.\nQuestion: {input}")


# --- DSPy-style modules ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Signature:
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    instructions: str = ""

    @classmethod
    def parse(cls, spec: str, instructions: str = "") -> Signature:
        left, right = spec.split("->")
        names = lambda side: tuple(name.strip() for name in side.split(","))  # noqa: E731
        return cls(names(left), names(right), instructions)


class Prediction(dict):
    __getattr__ = dict.__getitem__


def parse_fields(text: str) -> dict[str, str]:
    return {
        key.strip().lower(): value.strip()
        for key, sep, value in (line.partition(":") for line in text.splitlines())
        if sep
    }


class Predict(xcs.Operator):
    def __init__(self, signature: Signature | str, lm=llm):
        if isinstance(signature, str):
            signature = Signature.parse(signature)
        self.signature = signature
        self.lm = lm

    def forward(self, **inputs):
        lines = [self.signature.instructions]
        lines += [f"{name}: {inputs[name]}" for name in self.signature.inputs]
        lines.append("Respond with: " + ", ".join(self.signature.outputs))
        fields = parse_fields(self.lm("\n".join(lines)))
        return Prediction({name: fields.get(name, "?") for name in self.signature.outputs})


class ChainOfThought(xcs.Operator):
    def __init__(self, signature: str, instructions: str = "Think step by step."):
        base = Signature.parse(signature, instructions)
        self.predict = Predict(dataclasses.replace(base, outputs=("reasoning", *base.outputs)))

    def forward(self, **inputs):
        return self.predict(**inputs)


class Module:
    """A DSPy-like module base: calling it runs `forward`."""

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)


# --- decorators and cached helpers ------------------------------------------------------------

log = logging.getLogger("corpus.chains")
TIMINGS: list[float] = []


def retry(times: int = 3):
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            error = None
            for attempt in range(times):
                try:
                    return fn(*args, attempt=attempt, **kwargs)
                except OutputParserError as exc:
                    error = exc
            raise error

        return wrapper

    return decorate


def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        log.info("calling %s with %r", fn.__name__, args)
        result = fn(*args, **kwargs)
        log.info("%s returned %r", fn.__name__, result)
        return result

    return wrapper


def timed(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMINGS.append(time.perf_counter() - start)

    return wrapper


@functools.lru_cache(maxsize=32)
def system_prompt(role: str) -> str:
    return textwrap.dedent(f"""
        You are a {role}.
        Answer in `key: value` lines.
    """).strip()


@functools.lru_cache(maxsize=256)
def normalize(question: str) -> str:
    return " ".join(question.lower().split()).rstrip("?") + "?"


# --- programs: templates and LCEL chains -------------------------------------------------------


TEMPLATES = {
    "eli5": PromptTemplate("Explain like I'm five: {question}"),
    "expert": PromptTemplate("""
        You are an expert.
        Question: {question}
        Be precise."""),
    "skeptic": PromptTemplate.from_template("What is wrong with asking {question!r}?"),
}


def prompt_template_fanout(question: str) -> dict[str, str]:
    return {name: llm(t.format(question=question)) for name, t in TEMPLATES.items()}


def lcel_two_chains(question: str) -> dict:
    answer_chain = QA_PROMPT | llm | PARSER
    critique_chain = PromptTemplate("Critique the question: {input}") | llm | KeyValueParser()
    return {"answer": answer_chain.invoke(question), "critique": critique_chain.invoke(question)}


def lcel_parallel_then_merge(question: str) -> str:
    chain = {
        "summary": PromptTemplate("Summarize: {input}") | llm,
        "keywords": PromptTemplate("Keywords of: {input}") | styled,
        "title": RunnableLambda(lambda q: f"Title for {q}") | llm,
    } | PromptTemplate("Write it up.\n{title}\n{summary}\n{keywords}")
    return (chain | llm | StrOutputParser()).invoke(question)


def lcel_batch_parsed(questions: list[str]) -> list[Parsed]:
    chain = QA_PROMPT | llm | PARSER
    return chain.batch(questions)


def lcel_batch_then_parse(questions: list[str]) -> list[dict]:
    raw = (QA_PROMPT | llm).batch(questions)
    good = []
    for text in raw:
        try:
            good.append(dataclasses.asdict(PARSER.parse(text)))
        except OutputParserError as error:
            good.append({"error": str(error)[:20]})
    return good


def parser_fix_retry(questions: list[str]) -> list[Parsed]:
    raw = [llm(QA_PROMPT.format(input=q)) for q in questions]
    parsed = []
    for question, text in zip(questions, raw, strict=True):
        try:
            parsed.append(PARSER.parse(text))
        except OutputParserError:
            fixed = llm(f"Reformat as `key: value` lines: {question}")
            parsed.append(PARSER.parse(fixed))
    return parsed


def with_fallbacks_batch(questions: list[str]) -> list[Parsed]:
    primary = QA_PROMPT | llm | PARSER
    strict = PromptTemplate("Reformat strictly, key: value lines. {input}") | llm | PARSER
    return primary.with_fallbacks([strict]).batch(questions)


BRANCHES = {
    "math": PromptTemplate("Solve step by step: {input}") | llm,
    "general": PromptTemplate("Answer kindly: {input}") | styled,
}


def branch_table(questions: list[str]) -> list[str]:
    labels = (RunnableLambda(classify) | StrOutputParser()).batch(questions)
    return [BRANCHES[label].invoke(q) for q, label in zip(questions, labels, strict=True)]


def map_reduce_document(document: str) -> str:
    chunks = textwrap.wrap(document, 24)
    summaries = (PromptTemplate("Summarize this part: {input}") | llm).batch(chunks)
    combine = PromptTemplate("""
        Combine these summaries:
        {parts}
    """)
    return llm(combine.format(parts="\n".join(summaries)))


def chat_model_personas(question: str) -> dict:
    personas = {
        name: PromptTemplate(f"As a {name}: {{input}}") | ChatModel(CHAT) | StrOutputParser()
        for name in ("pirate", "poet", "lawyer")
    }
    return RunnableParallel(personas).invoke(question)


# --- programs: partials, getters, decorators, caches ------------------------------------------


def partial_styles(question: str) -> list[str]:
    askers = [functools.partial(styled, style=s) for s in ("formal", "casual", "terse")]
    return [ask(f"Reply to: {question}") for ask in askers]


def itemgetter_records(questions: list[str]) -> dict:
    records = [{"question": q, "answer": llm(q), "label": classify(q)} for q in questions]
    answers = list(map(operator.itemgetter("answer"), records))
    pairs = [operator.itemgetter("question", "label")(r) for r in records]
    firsts = [a.splitlines()[0] for a in answers]
    return {"firsts": firsts, "pairs": pairs}


def attrgetter_best(questions: list[str]) -> str:
    preds = [PARSER.parse(llm(f"Q: {q}")) for q in questions]
    best = sorted(preds, key=operator.attrgetter("confidence"), reverse=True)[0]
    return llm(f"Expand on: {best.answer}")


@retry(times=2)
def ask_parsed(question: str, attempt: int = 0) -> Parsed:
    prompt = question if attempt == 0 else f"Reformat strictly: {question}"
    return PARSER.parse(llm(prompt))


def retry_decorator(questions: list[str]) -> list[Parsed]:
    return [ask_parsed(q) for q in questions]


@logged
def summarize(text: str) -> str:
    return llm(f"Summarize: {text}")


def logging_decorator(questions: list[str]) -> list[str]:
    return [summarize(q) for q in questions]


@timed
def draft(question: str, n: int) -> str:
    return styled(f"Draft {n} for {question}")


def timing_decorator(questions: list[str]) -> list[str]:
    drafts = [draft(q, i) for i, q in enumerate(questions)]
    return [d.upper() for d in drafts]


def lru_cache_prompts(questions: list[str]) -> list[str]:
    return [llm(system_prompt("tutor") + "\n" + normalize(q)) for q in questions]


# --- programs: tools, callbacks ----------------------------------------------------------------

TOOLS = {"search": search, "calculator": calculator}
ACTION = re.compile(r"Action: (\w+)\nInput: (.*)")


def tool_registry_agent(questions: list[str]) -> list[str]:
    observations = []
    for question in questions:
        decision = choose_tool(question)
        name, tool_input = ACTION.search(decision).groups()
        observations.append(TOOLS[name](tool_input))
    return observations


def tool_registry_decide_first(questions: list[str]) -> dict:
    decisions = {q: choose_tool(q) for q in questions}
    calls = {q: ACTION.search(d).groups() for q, d in decisions.items()}
    return {q: TOOLS[name](arg) for q, (name, arg) in calls.items()}


class Collector:
    def __init__(self):
        self.seen = []

    def __call__(self, answer):
        self.seen.append(answer)


class Printer:
    def __init__(self, stream):
        self.stream = stream

    def __call__(self, answer):
        print(f"[llm] {answer.splitlines()[0]}", file=self.stream)


def callbacks_per_answer(questions: list[str]) -> tuple:
    collector, buffer = Collector(), io.StringIO()
    callbacks = [collector, Printer(buffer)]
    answers = []
    for question in questions:
        answer = llm(question)
        for callback in callbacks:
            callback(answer)
        answers.append(answer)
    return answers, collector.seen, buffer.getvalue()


def callbacks_after_batch(questions: list[str]) -> tuple:
    collector = Collector()
    callbacks = [collector, lambda a: None]
    answers = [styled(q, style="brief") for q in questions]
    for answer in answers:
        for callback in callbacks:
            callback(answer)
    return collector.seen


# --- programs: DSPy-style ----------------------------------------------------------------------


QA = Predict("question -> answer, confidence")


def dspy_predict_batch(questions: list[str]) -> list[tuple]:
    preds = [QA(question=q) for q in questions]
    return [(p.answer, p.confidence) for p in preds]


class ThreeWayCoT(Module):
    def __init__(self):
        self.cots = [
            ChainOfThought("question -> answer, confidence", instructions=f"Approach {i}.")
            for i in range(3)
        ]
        self.check = Predict("question, answer -> verdict, confidence")

    def forward(self, question):
        drafts = [cot(question=question) for cot in self.cots]
        best = max(drafts, key=lambda d: float(d.confidence))
        verdict = self.check(question=question, answer=best.answer)
        return Prediction(answer=best.answer, reasoning=best.reasoning, verdict=verdict.confidence)


PIPELINE = ThreeWayCoT()


def dspy_module_call(question: str) -> dict:
    return dict(PIPELINE(question))


class Summarizer(xcs.Operator):
    """A DSPy-style composite returning its predictor's output as it is."""

    def __init__(self):
        self.lm = styled

    def forward(self, text: str, *, style: str = "plain"):
        return self.lm(f"Summarize: {text}", style=style)


SUMMARIZER = Summarizer()


def composite_fanout_kwonly(text: str) -> list[str]:
    return [SUMMARIZER(text, style=s) for s in ("short", "medium", "long")]


# --- programs: configs and output structures ---------------------------------------------------


class Config:
    style = "concise"
    drafts = 3
    template = "({style}) draft {i}: {question}"


class Drafter:
    config = Config

    def run(self, question: str) -> list[str]:
        c = self.config
        return [
            styled(c.template.format(style=c.style, i=i, question=question), style=c.style)
            for i in range(c.drafts)
        ]


def class_config(question: str) -> list[str]:
    return Drafter().run(question)


class Scored(NamedTuple):
    question: str
    answer: str
    score: str


def namedtuple_outputs(questions: list[str]) -> dict:
    scored = [Scored(q, llm(q), rate(q)) for q in questions]
    best = max(scored, key=lambda s: float(s.score))
    return {"best": best._asdict(), "all": [s._replace(score=s.score.strip()) for s in scored]}


def ask_many(question: str, *, styles: tuple[str, ...] = ("plain",), prefix: str = "") -> list:
    return [styled(f"{prefix}{question}", style=s) for s in styles]


def keyword_only_args(question: str) -> list[str]:
    return ask_many(question, styles=("plain", "poetic", "legal"), prefix="Q: ")


def star_args_fanout(*questions: str) -> list[str]:
    def fan_out(*prompts, **params):
        return [styled(p, **params) for p in prompts]

    return fan_out(*questions, style="brief")


def comprehensions(questions: list[str]) -> tuple:
    answers = {q: llm(q) for q in questions}
    labels = {q: classify(a) for q, a in answers.items()}
    kinds = {label.strip() for label in labels.values()}
    return answers, labels, sorted(kinds)


def zip_enumerate_report(questions: list[str]) -> str:
    answers = [llm(q) for q in questions]
    verdicts = [critic(a) for a in answers]
    lines = [
        f"{i}. {q} -> {a.splitlines()[0]} [{v}]"
        for i, (q, a, v) in enumerate(zip(questions, answers, verdicts, strict=True), start=1)
    ]
    return "\n".join(lines)


DEFAULTS = {"style": "plain", "drafts": 2, "lang": "en"}
USER = {"drafts": 3}


def chainmap_configs(question: str, overrides: dict) -> list[str]:
    config = collections.ChainMap(overrides, USER, DEFAULTS)
    return [
        styled(f"[{config['lang']}] {question} #{i}", style=config["style"])
        for i in range(config["drafts"])
    ]


REPORT = textwrap.dedent("""
    Pros: {pros}
    Cons: {cons}
    Verdict: {verdict}
""")


def dedent_report(question: str) -> str:
    parts = {
        "pros": llm(f"Pros of {question}"),
        "cons": llm(f"Cons of {question}"),
        "verdict": critic(question),
    }
    return llm(REPORT.format(**parts))


@dataclasses.dataclass
class Result:
    question: str
    answer: str
    verdict: str
    score: str
    tags: list[str] = dataclasses.field(default_factory=list)


def json_asdict_result(question: str) -> str:
    result = Result(question, llm(question), critic(question), rate(question))
    result.tags.append(styled(question, style="tag"))
    return json.dumps(dataclasses.asdict(result), sort_keys=True)


RUN_CONFIG: contextvars.ContextVar[dict | None] = contextvars.ContextVar("run_config", default=None)


@leaf
def configured(prompt: str) -> str:
    """A model client that reads the run's config (tags, temperature) from a ContextVar,
    as LangChain's `RunnableConfig` travels."""
    config = RUN_CONFIG.get() or {}
    return f"{'/'.join(config.get('tags', ()))}@{config.get('temperature', 1.0)}<{_tail(prompt)}>"


def contextvar_run_config(questions: list[str], tags: tuple[str, ...]) -> list[str]:
    token = RUN_CONFIG.set({"tags": tags, "temperature": 0.2})
    answers = [configured(f"Answer: {q}") for q in questions]
    RUN_CONFIG.reset(token)
    return answers + [configured("after the run")]


SPAN: contextvars.ContextVar[str] = contextvars.ContextVar("span", default="root")


@contextlib.contextmanager
def span(name: str):
    """A tracing span, as OpenTelemetry keeps the current one: in a ContextVar."""
    token = SPAN.set(f"{SPAN.get()}/{name}")
    try:
        yield
    finally:
        SPAN.reset(token)


@leaf
def traced_llm(prompt: str) -> str:
    return f"{SPAN.get()}:{_tail(prompt, 2)}"


def tracing_spans(questions: list[str]) -> dict:
    with span("batch"):
        answers = {q: traced_llm(q) for q in questions}
        with span("judge"):
            verdict = traced_llm("judge " + " ".join(answers.values()))
    return {"answers": answers, "verdict": verdict, "after": traced_llm("done")}


# --- programs: more LCEL plumbing --------------------------------------------------------------


class RunnablePassthrough(Runnable):
    def invoke(self, value):
        return value

    @staticmethod
    def assign(**steps: Any) -> Runnable:
        parallel = RunnableParallel(steps)
        return RunnableLambda(lambda value: {**value, **parallel.invoke(value)})


def passthrough_assign(question: str) -> str:
    chain = (
        {"question": RunnablePassthrough(), "context": RunnableLambda(search)}
        | RunnablePassthrough.assign(
            draft=PromptTemplate("{context} -> {question}") | llm,
            style=RunnableLambda(lambda v: styled(v["question"], style="brief")),
        )
        | PromptTemplate("Polish: {draft} ({style})")
        | llm
    )
    return chain.invoke(question)


def reduce_steps(question: str) -> str:
    steps = [PromptTemplate("Step one: {input}"), RunnableLambda(styled), RunnableLambda(llm)]
    return functools.reduce(lambda value, step: step.invoke(value), steps, question)


def map_invoke(questions: list[str]) -> list[str]:
    chain = PromptTemplate("Q: {input}") | styled
    return list(map(chain.invoke, questions))


class StreamingChain(Runnable):
    def __init__(self, *prompts: PromptTemplate):
        self.prompts = prompts

    def stream(self, value):
        for prompt in self.prompts:
            yield styled(prompt.invoke(value), style="chunk")

    def invoke(self, value):
        return " ".join(self.stream(value))


def generator_stream(question: str) -> str:
    chain = StreamingChain(*(PromptTemplate(f"Part {i}: {{input}}") for i in range(3)))
    return chain.invoke(question)


class Tool:
    registry: dict[str, type[Tool]] = {}

    def __init_subclass__(cls, *, name: str, **kwargs):
        super().__init_subclass__(**kwargs)
        Tool.registry[name] = cls

    def run(self, text: str) -> str:
        raise NotImplementedError


class SearchTool(Tool, name="search"):
    def run(self, text):
        return search(text)


class CalculatorTool(Tool, name="calculator"):
    def run(self, text):
        return calculator(text)


def subclass_registry(questions: list[str]) -> list[str]:
    decisions = [choose_tool(q) for q in questions]
    return [
        Tool.registry[name]().run(arg)
        for name, arg in (ACTION.search(d).groups() for d in decisions)
    ]


@functools.singledispatch
def render(value) -> str:
    return repr(value)


@render.register
def _(value: str) -> str:
    return value.splitlines()[0]


@render.register
def _(value: list) -> str:
    return " | ".join(render(v) for v in value)


def singledispatch_render(questions: list[str]) -> str:
    answers = [llm(q) for q in questions]
    return render([answers[0], answers[1:]])


class CallableChain(RunnableSequence):
    __call__ = RunnableSequence.invoke


def call_alias(questions: list[str]) -> list[str]:
    chain = CallableChain(PromptTemplate("Alias: {input}"), RunnableLambda(styled))
    return [chain(q) for q in questions]


def thread_pool_batch(questions: list[str]) -> list[Parsed]:
    import concurrent.futures

    chain = QA_PROMPT | llm | PARSER
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(chain.invoke, questions))


# --- the corpus --------------------------------------------------------------------------------

QUESTIONS = [("why is the sky blue",), ("what is 12 * 7",), ("ramble about tea",)]
BATCHES = [
    (["why is the sky blue", "what is 12 * 7", "name a warm color"],),
    (["how do bees fly", "what is 3 + 4"],),
    (["why ask why", "ramble on about tea", "what is 2 ** 8"],),
]
CLEAN = [
    (["why is the sky blue", "what is 12 * 7", "name a warm color"],),
    (["how do bees fly", "what is 3 + 4"],),
    (["why ask why", "what is 2 ** 8", "who wrote it", "where is it"],),
]
DOCUMENTS = [
    ("The quick brown fox jumps over the lazy dog and then runs far away into the woods.",),
    ("Short text here.",),
    ("Chains compose prompts, models and parsers; batches fan out over many inputs at once.",),
]
CONFIGS = [
    ("why is the sky blue", {}),
    ("what is 12 * 7", {"style": "terse", "drafts": 4}),
    ("name a color", {"lang": "fr"}),
]

TAGGED = [
    (["why is the sky blue", "what is 12 * 7", "name a warm color"], ("chain", "v1")),
    (["how do bees fly"], ()),
    (["why ask why", "what is 2 ** 8", "who wrote it", "where is it"], ("eval",)),
]

PROGRAMS = [
    Program("prompt_template_fanout", prompt_template_fanout, QUESTIONS, width=3),
    Program("lcel_two_chains", lcel_two_chains, QUESTIONS, width=2),
    # three branches at once, then the merged write-up
    Program("lcel_parallel_then_merge", lcel_parallel_then_merge, QUESTIONS, width=3, depth=2),
    Program("lcel_batch_parsed", lcel_batch_parsed, BATCHES, width=3),
    Program("lcel_batch_then_parse", lcel_batch_then_parse, BATCHES, width=3),
    # the answers at once; a rambling answer's fix follows it
    Program("parser_fix_retry", parser_fix_retry, BATCHES, width=3, depth=2),
    Program("with_fallbacks_batch", with_fallbacks_batch, BATCHES, width=3, depth=2),
    Program("branch_table", branch_table, CLEAN, width=4, depth=2),
    Program("map_reduce_document", map_reduce_document, DOCUMENTS, width=4, depth=2),
    Program("chat_model_personas", chat_model_personas, QUESTIONS, width=3),
    Program("partial_styles", partial_styles, QUESTIONS, width=3),
    Program("itemgetter_records", itemgetter_records, CLEAN, width=8),
    Program("attrgetter_best", attrgetter_best, CLEAN, width=4, depth=2),
    Program("retry_decorator", retry_decorator, BATCHES, width=3, depth=2),
    Program("logging_decorator", logging_decorator, CLEAN, width=4),
    Program("timing_decorator", timing_decorator, CLEAN, width=4),
    Program("lru_cache_prompts", lru_cache_prompts, CLEAN, width=4),
    # each question's tool follows its choice; the choices are independent
    Program("tool_registry_agent", tool_registry_agent, CLEAN, width=4, depth=2),
    Program("tool_registry_decide_first", tool_registry_decide_first, CLEAN, width=4, depth=2),
    Program("callbacks_per_answer", callbacks_per_answer, CLEAN, width=4),
    Program("callbacks_after_batch", callbacks_after_batch, CLEAN, width=4),
    Program("dspy_predict_batch", dspy_predict_batch, CLEAN, width=4),
    # three chains of thought at once, then the check of the most confident
    Program("dspy_module_call", dspy_module_call, QUESTIONS, width=3, depth=2),
    Program("composite_fanout_kwonly", composite_fanout_kwonly, QUESTIONS, width=3),
    Program("class_config", class_config, QUESTIONS, width=3),
    Program("namedtuple_outputs", namedtuple_outputs, CLEAN, width=8),
    Program("keyword_only_args", keyword_only_args, QUESTIONS, width=3),
    Program(
        "star_args_fanout",
        star_args_fanout,
        [("a", "b", "c"), ("why", "how"), ("one", "two", "three", "four")],
        width=4,
    ),
    Program("comprehensions", comprehensions, CLEAN, width=4, depth=2),
    Program("zip_enumerate_report", zip_enumerate_report, CLEAN, width=4, depth=2),
    Program("chainmap_configs", chainmap_configs, CONFIGS, width=4),
    Program("dedent_report", dedent_report, QUESTIONS, width=3, depth=2),
    Program("json_asdict_result", json_asdict_result, QUESTIONS, width=4),
    # the search, then the draft and the style at once, then the polish
    Program("passthrough_assign", passthrough_assign, QUESTIONS, width=2, depth=3),
    Program("reduce_steps", reduce_steps, QUESTIONS, width=1, depth=2),
    Program("map_invoke", map_invoke, CLEAN, width=4),
    Program("generator_stream", generator_stream, QUESTIONS, width=3),
    Program("subclass_registry", subclass_registry, CLEAN, width=4, depth=2),
    Program("singledispatch_render", singledispatch_render, CLEAN, width=4),
    Program("call_alias", call_alias, CLEAN, width=4),
    Program("thread_pool_batch", thread_pool_batch, CLEAN, width=4),
    # the answers at once, then the judge, then the call after the spans
    Program("tracing_spans", tracing_spans, CLEAN, width=4, depth=3),
    # the calls made under the config at once, then the one after the reset
    Program("contextvar_run_config", contextvar_run_config, TAGGED, width=4),
]

_OVERLAPS = ("auto", "trace", "dynamic")
_USED = "(a result used before the next call is made: docs/sharp-bits.md)"
_TRY = "(a `try` body runs its calls one at a time: docs/sharp-bits.md)"
KNOWN_SHORT: dict[tuple[str, str], str] = {
    **{
        (name, mode): why
        for name, why in {
            "lcel_two_chains": "`KeyValueParser.parse` (`text.splitlines()`) ends the answer "
            f"chain's `invoke`, so the critique chain's call waits for the answer {_USED}",
            "lcel_batch_parsed": "`Runnable.batch` invokes the whole chain per input and the "
            f"chain ends in `parse`, so each input's call waits for the one before {_USED}",
            "with_fallbacks_batch": "`RunnableWithFallbacks.invoke` makes its call inside "
            f"`try: return runnable.invoke(value)`: the inputs run one at a time {_TRY}",
            "chat_model_personas": "each persona's sequence ends in `StrOutputParser` "
            f"(`value.strip()`) before the dict comprehension invokes the next {_USED}",
            "attrgetter_best": f"`PARSER.parse(llm(...))` in the comprehension {_USED}",
            "retry_decorator": f"`retry`'s wrapper makes the call in `try: return fn(...)` {_TRY}",
            "logging_decorator": "`logged` logs each result (`log.info(..., result)`) before "
            f"returning it {_USED}",
            "timing_decorator": "`timed`'s wrapper returns from a `try` body (`try: return "
            f"fn(...) finally:`), and a `return` there waits for the call {_TRY}",
            "tool_registry_agent": "`ACTION.search(decision)` parses each question's choice "
            f"before the next question's `choose_tool` is made {_USED}",
            "callbacks_per_answer": "`Printer.__call__` prints each answer before the loop "
            f"makes the next call {_USED}",
            "dspy_module_call": "`max(drafts, key=lambda d: float(d.confidence))` stops the "
            "trace of `ThreeWayCoT.forward` (the body itself), so the call runs dynamically and "
            "each `Predict` composite, which parses its own answer, runs whole before the next "
            "(docs/sharp-bits.md: a composite that uses its own answer ...)",
        }.items()
        for mode in _OVERLAPS
    },
    **dict.fromkeys(
        [("tracing_spans", m) for m in _OVERLAPS],
        "`with span(...)` is a generator context manager, which may see an error raised in "
        "its body, so the answers in it are made one at a time (a `with` body runs its calls "
        "one at a time: docs/sharp-bits.md)",
    ),
    **dict.fromkeys(
        [("dspy_predict_batch", "trace"), ("dspy_predict_batch", "dynamic")],
        "`Predict.forward` parses its own answer; composites called from a dynamic run run "
        "inline, so each waits for the one before (docs/sharp-bits.md); `auto` runs them as "
        "plan nodes at once",
    ),
}


@pytest.mark.parametrize("program, mode", cases(PROGRAMS, KNOWN_SHORT))
def test_program_gives_plain_result_calls_and_overlap(program, mode):
    check(program, mode)
