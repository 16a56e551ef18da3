"""The rewritten body: where values are resolved, what runs as written, and the warning
when no leaf calls overlapped."""

from __future__ import annotations

import json
import logging
import re

import pytest
from corpus_harness import RECORDER, leaf

import ember_xcs as xcs


@leaf
def ask(prompt: str) -> str:
    return f"{prompt}!"


@leaf
def fail_first(prompt: str, attempt: int) -> str:
    if attempt == 0:
        raise RuntimeError("transient")
    return prompt


def test_c_functions_receive_real_values_from_a_rewritten_body():
    @xcs.jit(mode="dynamic")
    def body(q):
        answers = [ask(f"{q} {i}") for i in range(3)]
        joined = "\n".join(answers)
        return re.findall(r"\d", joined), json.dumps({"a": answers[0]}), float(len(answers[1]))

    RECORDER.reset()
    RECORDER.target = 3  # calls that can overlap wait for their peers (a loaded machine)
    try:
        assert body("x") == (["0", "1", "2"], '{"a": "x 0!"}', 4.0)
    finally:
        RECORDER.target = 0
    assert RECORDER.peak == 3
    assert "body rewritten" in xcs.explain_jit_selection(body)


def test_a_try_around_a_leaf_call_catches_that_calls_error():
    def retry(q):
        for attempt in range(3):
            try:
                out = fail_first(q, attempt)
                break
            except xcs.XCSError:
                out = None
        return out

    for mode in ("auto", "trace", "dynamic"):
        assert xcs.jit(retry, mode=mode)("q") == "q"


def test_closures_defaults_methods_and_nested_functions_are_rewritten():
    suffix = "?"

    class Agent:
        def __init__(self, tag):
            self.tag = tag

        def run(self, q, n=2):
            def fmt(a):
                return f"[{self.tag}:{a}{suffix}]"

            return " ".join(fmt(ask(f"{q}{i}")) for i in range(n))

    agent = Agent("t")
    jitted = xcs.jit(agent.run, mode="dynamic")
    assert jitted("q") == agent.run("q") == "[t:q0!?] [t:q1!?]"


def test_a_function_without_source_runs_as_written_and_explain_says_why():
    body = eval("lambda q: ask(q + '.')")  # noqa: S307 - a function with no source file
    jitted = xcs.jit(body, mode="dynamic")
    assert jitted("a") == "a.!"
    assert "runs as written" in xcs.explain_jit_selection(jitted)


def test_serial_leaf_calls_log_one_warning_naming_the_forcing_line(caplog):
    def serial(q):
        out = []
        for i in range(3):
            a = ask(f"{q} {i}")
            out.append(a.upper())  # uses each answer before the next call
        return out

    jitted = xcs.jit(serial, mode="dynamic")
    with caplog.at_level(logging.WARNING, logger="ember_xcs.jit"):
        assert jitted("x") == serial("x")
        assert jitted("y") == serial("y")
    warnings = [r for r in caplog.records if r.name == "ember_xcs.jit"]
    assert len(warnings) == 1
    assert "test_jit_rewrite.py:" in warnings[0].getMessage()
    assert "no overlap" in xcs.explain_jit_selection(jitted)


def test_a_chain_of_calls_passing_results_on_logs_no_warning(caplog):
    def chain(q):
        return ask(ask(ask(q)))

    with caplog.at_level(logging.WARNING, logger="ember_xcs.jit"):
        assert xcs.jit(chain, mode="dynamic")("c") == "c!!!"
    assert not [r for r in caplog.records if r.name == "ember_xcs.jit"]


@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic"])
def test_numeric_ops_take_python_ints_as_static_sizes(mode):
    import jax
    import jax.numpy as jnp

    @xcs.op(numeric=True)
    def top(s, k):
        return jnp.argsort(-s)[:k]

    @xcs.op(numeric=True)
    def shaped(x, n, k):
        return jnp.tile(x, n).reshape(k, -1) + jnp.zeros(n * x.shape[0] // k)[None, :]

    @xcs.op(numeric=True)
    def top_k(s, k):
        return jax.lax.top_k(s, k)

    def body(s, k):
        vals, idx = top_k(s, k)
        return top(s, k), shaped(s, 2, k), vals, idx

    jitted = xcs.jit(body, mode=mode)
    for k in (2, 4):
        s = jnp.arange(8.0) * (k - 1)
        got, want = jitted(s, k), body(s, k)
        for g, w in zip(got, want, strict=True):
            assert g.tolist() == w.tolist()


def test_unpacking_a_numeric_ops_output_does_not_stop_a_trace():
    import jax
    import jax.numpy as jnp

    @xcs.op(numeric=True)
    def top_k(s, k):
        return jax.lax.top_k(s, k)

    def body(s, k):
        vals, idx = top_k(s, k)
        return {"vals": vals, "idx": idx}

    jitted = xcs.jit(body, mode="trace", strict=True)  # strict: a stop would raise
    for k in (2, 3):
        got = jitted(jnp.arange(6.0), k)
        assert got["idx"].tolist() == body(jnp.arange(6.0), k)["idx"].tolist()
    assert xcs.get_jit_strategy_used(jitted) is xcs.JITMode.TRACE


def test_a_numeric_op_jax_cannot_trace_runs_eagerly_with_the_plain_answer():
    import jax.numpy as jnp
    import numpy as np

    @xcs.op(numeric=True)
    def host_sort(x):
        return jnp.asarray(sorted(np.asarray(x).tolist()))  # needs concrete values

    def body(x):
        return host_sort(x)

    for mode in ("auto", "dynamic"):
        jitted = xcs.jit(body, mode=mode)
        assert jitted(jnp.array([3.0, 1.0, 2.0])).tolist() == [1.0, 2.0, 3.0]
        assert "runs eagerly" in xcs.explain_jit_selection(jitted)
