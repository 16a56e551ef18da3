"""jit returns what the plain function returns, calling every operator exactly once.

Each pipeline (in `jit_user_code/pipeline.py`, a module named like user code) is called
plainly and jitted, with a new input each time, in every mode: the answers and the
per-operator call counts must match on the 1st, 2nd and 10th call (and all between).
"""

from __future__ import annotations

import importlib.util
import pathlib
import runpy
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jit_user_code import pipeline as p

import ember_xcs as xcs

MODES = ["auto", "trace", "structural", "dynamic"]
QUESTIONS = [f"question {i}" for i in range(10)]


def assert_same_as_plain(fn, jitted, calls) -> None:
    """Call both with each argument tuple; answers and call counts must agree."""
    for args in calls:
        before = p.all_counters()
        expected = fn(*args)
        plain_counts = _delta(before, p.all_counters())
        before = p.all_counters()
        got = jitted(*args)
        assert got == expected, f"call with {args!r}"
        assert _delta(before, p.all_counters()) == plain_counts, f"call counts for {args!r}"


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in before}


def one_arg(values):
    return [(v,) for v in values]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "fn",
    [p.chain, p.fstring_chain, p.containers, p.branching],
    ids=["chain", "fstring", "containers", "branching"],
)
def test_jit_matches_plain_function_on_every_call(fn, mode):
    assert_same_as_plain(fn, xcs.jit(fn, mode=mode), one_arg(QUESTIONS))


@pytest.mark.parametrize("mode", MODES)
def test_jit_handles_keyword_arguments_and_defaults(mode):
    def call(q, **kw):
        return p.with_kwargs(q, **kw)

    jitted = xcs.jit(p.with_kwargs, mode=mode)
    for i, q in enumerate(QUESTIONS):
        kwargs = [{}, {"style": f"long {i}"}, {"style": "s", "extra": f"x{i}"}][i % 3]
        before = p.all_counters()
        expected = p.with_kwargs(q, **kwargs)
        plain = _delta(before, p.all_counters())
        before = p.all_counters()
        assert jitted(q, **kwargs) == expected
        assert _delta(before, p.all_counters()) == plain


@pytest.mark.parametrize("mode", MODES)
def test_jit_of_a_closure_uses_the_captured_operator(mode):
    closed = p.make_closure(p.critic)
    assert_same_as_plain(closed, xcs.jit(closed, mode=mode), one_arg(QUESTIONS))


@pytest.mark.parametrize("mode", MODES)
def test_jit_recursion_over_input_structure(mode):
    calls = [([f"d{i}", f"e{i}", f"f{i}"][: 1 + i % 3],) for i in range(10)]
    assert_same_as_plain(p.summarize, xcs.jit(p.summarize, mode=mode), calls)


def test_jitted_method_keeps_one_cache_per_instance():
    a, b = p.Agent(p.llm), p.Agent(p.critic)
    for q in QUESTIONS[:3]:
        assert a.run(q) == p.critic(p.llm(q))
        assert b.run(q) == p.critic(p.critic(q))
    assert a.run is a.run  # the bound jitted method is cached per instance
    assert xcs.get_jit_stats(a.run).cache_misses == 1


def test_nested_jit_flattens_into_the_outer_plan():
    for q in QUESTIONS[:3]:
        assert p.nested(q) == [p.chain(q), p.chain(p.critic(q))]
    assert xcs.get_jit_strategy_used(p.nested) == xcs.JITMode.TRACE
    assert xcs.get_jit_stats(p.nested).leaf_calls == 5


@pytest.mark.parametrize("mode", MODES)
def test_jit_of_operator_instance_matches_forward(mode):
    ensemble = p.nested_ensemble(width=3, depth=2)
    jitted = xcs.jit(ensemble, mode=mode)
    assert isinstance(jitted, xcs.Operator)
    for q in QUESTIONS:
        assert jitted(q) == ensemble.forward(q)


def test_jit_decorating_an_operator_class_gives_each_instance_a_plan():
    @xcs.jit
    class Pair(xcs.Operator):
        def __init__(self, left, right):
            self.left, self.right = left, right

        def forward(self, q):
            return p.judge([self.left(q), self.right(q)], question=q)

    one, two = Pair(p.llm, p.critic), Pair(p.critic, p.critic)
    for q in QUESTIONS[:3]:
        assert one(q) == p.judge([p.llm(q), p.critic(q)], question=q)
        assert two(q) == p.judge([p.critic(q), p.critic(q)], question=q)
    assert xcs.is_jit_compiled(one) and xcs.is_jit_compiled(Pair)
    assert xcs.get_jit_stats(one).cache_misses == 1


def test_str_join_of_outputs_stops_the_trace_and_runs_dynamically_in_auto_mode():
    # the rewritten body stops the trace where str.join needs the values: dynamic dispatch
    jitted = xcs.jit(p.unpacking)
    assert_same_as_plain(p.unpacking, jitted, one_arg(QUESTIONS[:3]))
    assert xcs.get_jit_strategy_used(jitted) == xcs.JITMode.DYNAMIC
    assert "passed to str.join()" in xcs.explain_jit_selection(jitted)


def test_str_join_of_lazy_results_in_dynamic_mode_gets_the_values():
    jitted = xcs.jit(p.unpacking, mode="dynamic")
    assert_same_as_plain(p.unpacking, jitted, one_arg(QUESTIONS[:3]))
    assert "body rewritten" in xcs.explain_jit_selection(jitted)


def test_behaviour_does_not_depend_on_the_module_name(tmp_path, monkeypatch):
    # load the same source under the bare module name `pipeline`, then as `__main__`
    source = pathlib.Path(p.__file__)
    spec = importlib.util.spec_from_file_location("pipeline", source)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "pipeline", module)
    spec.loader.exec_module(module)
    assert module.__name__ == "pipeline"
    jitted = xcs.jit(module.fstring_chain)
    for q in QUESTIONS[:3]:
        before = module.llm.counter.count
        assert jitted(q) == p.fstring_chain(q)
        assert module.llm.counter.count - before == 2

    script = tmp_path / "main_script.py"
    script.write_text(
        "import ember_xcs as xcs\n"
        "from jit_user_code.pipeline import Echo\n"
        "llm = Echo()\n"
        "@xcs.jit\n"
        "def f(q):\n"
        "    return llm(llm(q))\n"
        "results = [f(q) for q in ('a', 'b', 'c')]\n"
    )
    namespace = runpy.run_path(str(script), run_name="__main__")
    assert namespace["results"] == ["llm(llm(a))", "llm(llm(b))", "llm(llm(c))"]
    assert namespace["llm"].counter.count == 6


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=1, max_size=4))
def test_any_prompt_text_gives_the_plain_answer(prompts):
    jitted = _PROPERTY_JIT
    for q in prompts:
        assert jitted(q) == p.fstring_chain(q)
        assert _PROPERTY_CHAIN(q) == p.chain(q)


_PROPERTY_JIT = xcs.jit(p.fstring_chain)
_PROPERTY_CHAIN = xcs.jit(p.chain)


def random_program(steps):
    """A pipeline whose k-th call reads the outputs of earlier calls chosen by `steps`."""

    def program(question: str) -> list[str]:
        values = [question]
        for use_judge, picks in steps:
            chosen = [values[i % len(values)] for i in picks]
            if use_judge:
                values.append(p.judge(chosen, question=question))
            else:
                values.append(p.llm(chosen[0]))
        return values[1:]

    return program


_STEPS = st.lists(
    st.tuples(st.booleans(), st.lists(st.integers(0, 20), min_size=1, max_size=3)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=20, deadline=None)
@given(_STEPS, st.sampled_from(MODES))
def test_random_dataflow_programs_give_the_plain_answers(steps, mode):
    program = random_program(steps)
    assert_same_as_plain(program, xcs.jit(program, mode=mode), one_arg(QUESTIONS[:3]))
