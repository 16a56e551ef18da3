"""The plan cache keys on structure, never on payloads; it is bounded and invalidatable."""

from __future__ import annotations

import numpy as np
import pytest
from jit_user_code import pipeline as p

import ember_xcs as xcs


class Recorder(xcs.ExecutionHooks):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_cache_hit(self, *, target, key):
        self.events.append("hit")

    def on_cache_miss(self, *, target, key):
        self.events.append("miss")

    def on_compile(self, *, target, seconds, detail=""):
        self.events.append("compile")


@xcs.op
def shape_of(x):
    return tuple(x.shape)


def test_a_new_prompt_string_is_a_cache_hit():
    jitted = xcs.jit(p.chain)
    answers = [jitted(f"prompt {i}") for i in range(5)]
    assert answers == [p.chain(f"prompt {i}") for i in range(5)]
    stats = xcs.get_jit_stats(jitted)
    assert (stats.cache_misses, stats.cache_hits, stats.traces) == (1, 4, 1)


def test_a_new_array_shape_is_a_miss_and_a_new_value_is_a_hit():
    jitted = xcs.jit(lambda x: shape_of(x))
    assert jitted(np.zeros((2, 3))) == (2, 3)
    assert jitted(np.ones((2, 3))) == (2, 3)
    assert jitted(np.zeros((4, 3))) == (4, 3)
    assert jitted(np.zeros((4, 3), np.int32)) == (4, 3)
    stats = xcs.get_jit_stats(jitted)
    assert (stats.cache_misses, stats.cache_hits) == (3, 1)


def test_scalar_arguments_key_on_their_types_and_keyword_names_not_their_values():
    jitted = xcs.jit(lambda *args, **kwargs: (args, kwargs))
    calls = [
        (("a", 1), {}),
        (("b", 2), {}),  # same types: a hit
        (("a", 1.0), {}),  # float for int: a new signature
        (("a", True), {}),  # bool for int too
        (("a", 1), {"k": "x"}),  # a keyword: new
        (("a", 1), {"k": "y"}),  # same keyword, new value: a hit
        (("a", 1), {"j": "x"}),  # another keyword name: new
    ]
    for args, kwargs in calls:
        assert jitted(*args, **kwargs) == (args, kwargs)
    stats = xcs.get_jit_stats(jitted)
    assert (stats.cache_misses, stats.cache_hits) == (5, 2)


def test_a_new_list_length_is_a_new_structure():
    jitted = xcs.jit(lambda qs: [p.llm(q) for q in qs])
    assert jitted(["a", "b"]) == ["llm(a)", "llm(b)"]
    assert jitted(["c", "d", "e"]) == ["llm(c)", "llm(d)", "llm(e)"]
    assert jitted(["f", "g"]) == ["llm(f)", "llm(g)"]
    assert xcs.get_jit_stats(jitted).cache_misses == 2


def test_cache_hits_and_misses_reach_hooks():
    recorder = Recorder()
    jitted = xcs.jit(p.chain)
    with xcs.execution_options(hooks=(recorder,)):
        jitted("a")
        jitted("b")
    assert recorder.events == ["compile", "miss", "hit"]


def test_lru_bound_evicts_the_least_recently_used_signature():
    jitted = xcs.jit(lambda x: shape_of(x), cache_size=2)
    for n in (1, 2, 3, 1):
        jitted(np.zeros(n))
    stats = xcs.get_jit_stats(jitted)
    assert stats.cache_entries == 2
    assert stats.cache_evictions == 2
    assert stats.cache_misses == 4  # n=1 was evicted by n=3


def test_invalidate_forces_a_new_trace_that_sees_new_constants():
    state = {"model": p.llm}
    jitted = xcs.jit(lambda q: state["model"](q))
    assert jitted("q") == "llm(q)"
    state["model"] = p.critic
    assert jitted("q") == "llm(q)"  # documented: a trace reads globals once
    jitted.invalidate()
    assert jitted("q") == "critic(q)"
    assert xcs.get_jit_stats(jitted).traces == 2


def test_static_arguments_are_keyed_by_value_and_concrete_while_tracing():
    @xcs.jit(static_argnames="n")
    def repeat(q: str, n: int) -> list[str]:
        return [p.llm(f"{i}") for i in range(n)] + [p.critic(q)]

    assert repeat("a", n=2) == ["llm(0)", "llm(1)", "critic(a)"]
    assert repeat("b", n=2) == ["llm(0)", "llm(1)", "critic(b)"]
    assert repeat("c", n=3)[-1] == "critic(c)"
    stats = xcs.get_jit_stats(repeat)
    assert (stats.cache_misses, stats.cache_hits) == (2, 1)
    assert xcs.get_jit_strategy_used(repeat) == xcs.JITMode.TRACE


def test_unhashable_static_argument_is_a_clear_error():
    jitted = xcs.jit(lambda q, opts: p.llm(q), static_argnums=1)
    with pytest.raises(TypeError, match="must be hashable"):
        jitted("q", ["not", "hashable"])


def test_an_operator_passed_as_argument_is_part_of_the_key():
    jitted = xcs.jit(lambda model, q: model(q))
    assert jitted(p.llm, "a") == "llm(a)"
    assert jitted(p.critic, "a") == "critic(a)"
    assert jitted(p.llm, "b") == "llm(b)"
    assert xcs.get_jit_stats(jitted).cache_misses == 2


def test_stochastic_operators_run_on_every_call():
    draws = iter(range(100))
    sample = xcs.op(lambda prompt: f"{prompt}#{next(draws)}", stochastic=True)
    jitted = xcs.jit(lambda q: [sample(q), sample(q)], preserve_stochasticity=True)
    assert jitted("a") == ["a#0", "a#1"]
    assert jitted("a") == ["a#2", "a#3"]  # same input, fresh samples: nothing is reused


def test_bad_configuration_is_rejected_up_front():
    with pytest.raises(ValueError, match="unknown jit mode"):
        xcs.jit(p.chain, mode="fast")
    with pytest.raises(ValueError, match="cache_size"):
        xcs.jit(p.chain, cache_size=0)
    with pytest.raises(ValueError, match="static_argnames"):
        xcs.jit(p.chain, static_argnames="nope")


class _Unit(xcs.Operator):
    def __init__(self, i):
        self.i = i

    def forward(self, q):
        return f"{q}{self.i}"


@xcs.op
def _join(answers):
    return ",".join(answers)


class _Panel(xcs.Operator):
    def __init__(self, n):
        self.units = [_Unit(i) for i in range(n)]
        self.join = _join
        self.shout = False

    def forward(self, q):
        joined = self.join([unit(q) for unit in self.units])
        return self.join([joined, joined]) if self.shout else joined


@pytest.mark.parametrize("mode", ["auto", "trace", "structural", "dynamic"])
def test_changing_a_jitted_composite_retraces_instead_of_replaying_the_old_graph(mode):
    panel = _Panel(2)
    jitted = xcs.jit(panel, mode=mode)
    assert jitted("q") == "q0,q1"
    panel.units.append(_Unit(7))  # in place: a unit the old graph does not have
    assert jitted("q") == "q0,q1,q7"
    panel.units[0] = _Unit(5)  # a replaced sub-operator
    assert jitted("q") == "q5,q1,q7"
    panel.shout = True  # a setting forward branches on
    assert jitted("q") == "q5,q1,q7,q5,q1,q7"
    panel.units[1].i = 9  # a leaf's own field: leaves run live, no retrace needed
    assert jitted("q") == panel.forward("q")


def test_an_unchanged_jitted_composite_keeps_hitting_its_cache():
    panel = _Panel(3)
    jitted = xcs.jit(panel, mode="trace")
    for q in ("a", "b", "c"):
        assert jitted(q) == panel.forward(q)
    stats = xcs.get_jit_stats(jitted)
    assert stats.traces == 1 and stats.cache_hits == 2
    panel.units.pop()
    assert jitted("d") == "d0,d1"
    assert xcs.get_jit_stats(jitted).traces == 2
