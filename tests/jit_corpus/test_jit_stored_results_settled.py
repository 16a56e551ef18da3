"""Results stored into containers that outlive the jitted call (a list argument, a global
cache or log, an operator's history, an object's field) hold real values once it returns:
a dynamic run settles its `LazyResult`s there; a trace that would leave a placeholder
there stops (a replayed plan would store nothing) and takes its placeholders back out."""

from __future__ import annotations

import collections
import json

import pytest
from corpus_harness import leaf

import ember_xcs as xcs


@leaf
def ask(prompt: str) -> str:
    return f"<{prompt}>"


@leaf
def refuse(prompt: str) -> str:
    raise KeyError(prompt)


def fill(out: list, question: str) -> int:
    for i in range(2):
        out.append(ask(f"{question}{i}"))
    out.extend([ask(f"{question}+")])
    return len(out)


CACHE: dict = {}


def cached(question: str) -> str:
    if question not in CACHE:
        CACHE[question] = ask(question)
    return CACHE[question]


class Note:
    def __init__(self) -> None:
        self.last = None
        self.turns: list = []


def annotate(note: Note, question: str) -> None:
    note.last = ask(question)
    note.turns += [{"q": question, "a": ask(f"again {question}")}]


class Bot(xcs.Operator):
    def __init__(self) -> None:
        self.llm = ask
        self.history: collections.deque = collections.deque(maxlen=4)

    def forward(self, message: str) -> str:
        reply = self.llm(message)
        self.history.append(reply)
        return reply


MODES = ["auto", "trace", "structural", "dynamic"]


def _types(values) -> set[str]:
    return {type(v).__name__ for v in values}


@pytest.mark.parametrize("mode", MODES)
def test_a_list_argument_holds_real_values_after_the_call(mode):
    out: list = ["seed"]
    jitted = xcs.jit(fill, mode=mode)
    assert jitted(out, "q") == 4 and jitted(out, "r") == 7
    assert out == ["seed", "<q0>", "<q1>", "<q+>", "<r0>", "<r1>", "<r+>"]
    assert _types(out) == {"str"}
    json.dumps(out)


@pytest.mark.parametrize("mode", MODES)
def test_a_global_cache_holds_real_values_after_the_call(mode):
    CACHE.clear()
    jitted = xcs.jit(cached, mode=mode)
    assert [jitted("a"), jitted("b"), jitted("a")] == ["<a>", "<b>", "<a>"]
    assert _types(CACHE.values()) == {"str"}
    assert json.dumps(CACHE, sort_keys=True) == '{"a": "<a>", "b": "<b>"}'


@pytest.mark.parametrize("mode", MODES)
def test_fields_and_nested_records_of_an_argument_hold_real_values(mode):
    note = Note()
    xcs.jit(annotate, mode=mode)(note, "q")
    assert type(note.last) is str and note.last == "<q>"
    assert note.turns == [{"q": "q", "a": "<again q>"}]
    assert _types(note.turns[0].values()) == {"str"}


@pytest.mark.parametrize("mode", MODES)
def test_a_jitted_operators_history_holds_real_values(mode):
    bot = Bot()
    jitted = xcs.jit(bot, mode=mode)
    assert [jitted("x"), jitted("y")] == ["<x>", "<y>"]
    assert list(bot.history) == ["<x>", "<y>"] and _types(bot.history) == {"str"}


def test_a_stored_failed_call_raises_as_the_plain_call_would():
    def keep(out: list, question: str) -> str:
        out.append(refuse(question))
        return "kept"

    with pytest.raises(KeyError):
        keep([], "q")
    with pytest.raises(xcs.NodeExecutionError, match="'refuse'"):  # names the node,
        xcs.jit(keep, mode="dynamic")([], "q")  # as a failure the body never used does


LOG: list = []


def logged(question: str) -> str:
    answer = ask(question)
    LOG.append(answer)
    return answer


@pytest.mark.parametrize("mode", MODES)
def test_a_global_log_gets_one_real_value_per_call(mode):
    LOG.clear()
    jitted = xcs.jit(logged, mode=mode)
    assert [jitted("x"), jitted("y"), jitted("z")] == ["<x>", "<y>", "<z>"]
    assert LOG == ["<x>", "<y>", "<z>"] and _types(LOG) == {"str"}


@leaf
def judge(answers: list) -> str:
    return " ".join(answers)


def local_list(question: str) -> str:
    answers = []
    for _ in range(3):
        answers.append(ask(question))
    notes = {}
    notes["first"] = ask(question)
    return judge([*answers, notes["first"]])


def local_returned(question: str) -> dict:
    out: dict = {"answers": []}
    out["answers"].append(ask(question))
    return out


@pytest.mark.parametrize("fn", [local_list, local_returned])
def test_containers_the_body_makes_still_trace(fn):
    jitted = xcs.jit(fn, mode="auto")
    assert jitted("q") == fn("q")
    assert xcs.get_jit_strategy_used(jitted) is xcs.JITMode.TRACE


def test_the_stop_names_the_line_that_stored_the_placeholder():
    LOG.clear()
    jitted = xcs.jit(logged, mode="auto")
    jitted("x")
    assert "LOG.append(answer)" in xcs.explain_jit_selection(jitted)


LAST = None


def remember(question: str):
    global LAST
    previous = LAST
    LAST = ask(question)
    return previous


@pytest.mark.parametrize("mode", MODES)
def test_a_global_name_assigned_a_result_holds_the_real_value(mode):
    global LAST
    LAST = None
    jitted = xcs.jit(remember, mode=mode)
    assert jitted("a") is None and type(LAST) is str and LAST == "<a>"
    assert jitted("b") == "<a>" and type(LAST) is str and LAST == "<b>"
