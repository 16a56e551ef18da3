"""A dynamic run's results stored into containers that outlive it (a list argument, a
global cache, an operator's history, an object's field) hold real values, not
`LazyResult`s, once the jitted call returns."""

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


def _types(values) -> set[str]:
    return {type(v).__name__ for v in values}


def test_a_list_argument_holds_real_values_after_the_call():
    out: list = ["seed"]
    assert xcs.jit(fill, mode="dynamic")(out, "q") == 4
    assert out == ["seed", "<q0>", "<q1>", "<q+>"]
    assert _types(out) == {"str"}
    json.dumps(out)


def test_a_global_cache_holds_real_values_after_the_call():
    CACHE.clear()
    jitted = xcs.jit(cached, mode="dynamic")
    assert [jitted("a"), jitted("b"), jitted("a")] == ["<a>", "<b>", "<a>"]
    assert _types(CACHE.values()) == {"str"}
    assert json.dumps(CACHE, sort_keys=True) == '{"a": "<a>", "b": "<b>"}'


def test_fields_and_nested_records_of_an_argument_hold_real_values():
    note = Note()
    xcs.jit(annotate, mode="dynamic")(note, "q")
    assert type(note.last) is str and note.last == "<q>"
    assert note.turns == [{"q": "q", "a": "<again q>"}]
    assert _types(note.turns[0].values()) == {"str"}


@pytest.mark.parametrize("mode", ["dynamic"])
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
    with pytest.raises(KeyError):
        xcs.jit(keep, mode="dynamic")([], "q")
