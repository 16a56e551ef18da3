"""Failures surface as node-naming errors; trace stops say where, what and why."""

from __future__ import annotations

import contextlib
import json
import pickle
import threading
import time
from typing import Any

import pytest
from jit_user_code import pipeline as p

import ember_xcs as xcs
from ember_xcs import models

leaked: list = []


@xcs.op
def flaky(prompt: str) -> str:
    if "boom" in prompt:
        raise ValueError(f"cannot answer {prompt!r}")
    return f"ok({prompt})"


@xcs.op
def verdict(prompt: str) -> str:
    return "yes" if prompt.startswith("good") else "no"


@xcs.op
def shaped(prompt: str):
    return prompt if prompt.startswith("s") else {"text": prompt}


@pytest.mark.parametrize("mode", ["auto", "trace", "structural", "dynamic"])
def test_a_failing_leaf_raises_an_error_naming_the_node(mode):
    jitted = xcs.jit(lambda q: p.llm(flaky(q)), mode=mode)
    assert jitted("fine") == "llm(ok(fine))"
    with pytest.raises(xcs.NodeExecutionError) as info:
        jitted("boom now")
    error = info.value
    assert error.operator_name in ("flaky", "<lambda>")
    assert "boom now" in error.inputs_summary
    assert isinstance(error.__cause__, ValueError)


def test_first_call_failure_is_the_same_node_error():
    jitted = xcs.jit(lambda q: flaky(q))
    with pytest.raises(xcs.NodeExecutionError, match="node 'flaky'"):
        jitted("boom")
    assert jitted("fine") == "ok(fine)"


def test_data_dependent_branch_follows_each_calls_value():
    def route(q):
        if verdict(q) == "yes":
            return p.llm(q)
        return p.critic(q)

    jitted = xcs.jit(route)
    for q in ["good 1", "bad 2", "good 3", "bad 4"] * 3:
        assert jitted(q) == route(q)
    assert xcs.get_jit_strategy_used(jitted) == xcs.JITMode.DYNAMIC


def test_trace_stop_reason_names_file_line_and_value():
    def route(q):
        if verdict(q) == "yes":  # the line the reason must point at
            return p.llm(q)
        return p.critic(q)

    jitted = xcs.jit(route)
    jitted("good")
    text = xcs.explain_jit_selection(jitted)
    assert "test_jit_errors.py:" in text
    assert "the output of node 'verdict' (verdict)" in text
    assert 'if verdict(q) == "yes"' in text
    assert "applied `==`" in text


def test_strict_mode_raises_the_trace_stop_as_trace_error():
    jitted = xcs.jit(p.fstring_chain, mode="trace", strict=True)
    with pytest.raises(xcs.TraceError, match=r"pipeline\.py:\d+: Python formatted"):
        jitted("q")


def test_a_formatted_input_stops_the_trace_with_the_argument_name():
    jitted = xcs.jit(lambda question: p.llm(f"Q: {question}"))
    assert jitted("a") == "llm(Q: a)"
    assert "argument 'question'" in xcs.explain_jit_selection(jitted)


def test_swallowing_the_stop_in_user_code_cannot_hide_it():
    def careless(q):
        a = p.llm(q)
        try:
            n = len(a)
        except:  # noqa: E722 - deliberately swallows everything
            n = -1
        return p.critic(f"{n}")

    jitted = xcs.jit(careless)
    for q in ["a", "bbb"]:
        assert jitted(q) == careless(q)


def test_isinstance_on_an_output_stops_the_trace_instead_of_guessing():
    def normalise(q):
        out = shaped(q)
        if isinstance(out, dict):
            return p.llm(out["text"])
        return p.critic(out)

    jitted = xcs.jit(normalise, mode="trace")
    for q in ["s1", "d2", "s3", "d4"]:
        assert jitted(q) == normalise(q)


def test_a_placeholder_assigned_to_a_nonlocal_name_stops_the_trace():
    escaped = None

    def leaky(q):
        nonlocal escaped
        a = p.llm(q)
        escaped = a  # a closure's cell outlives the call
        return a

    jitted = xcs.jit(leaky, mode="trace")
    assert jitted("x") == "llm(x)"
    assert type(escaped) is str and escaped == "llm(x)"
    assert xcs.get_jit_strategy_used(jitted) is xcs.JITMode.DYNAMIC


def test_a_placeholder_appended_to_a_global_list_stops_the_trace():
    def leaky(q):
        a = p.llm(q)
        leaked.append(a)
        return a

    leaked.clear()
    jitted = xcs.jit(leaky, mode="trace")
    assert [jitted("x"), jitted("y")] == ["llm(x)", "llm(y)"]
    assert leaked == ["llm(x)", "llm(y)"] and {type(v) for v in leaked} == {str}


def test_a_missing_output_field_names_the_consumer():
    jitted = xcs.jit(lambda q: p.llm(shaped(q)["text"]))
    assert jitted("d") == "llm(d)"
    with pytest.raises(xcs.XCSError, match=r"could not take \['text'\]"):
        jitted("s")  # shaped returns a str here


def test_partial_results_option_still_raises_for_a_function_value():
    jitted = xcs.jit(lambda q: [flaky(q), p.llm(q)])
    with xcs.execution_options(return_partial_results=True):
        with pytest.raises(xcs.XCSError):
            jitted("boom")


# --- a leaf's error as the plain call would have raised it -----------------------------------


@xcs.op
def parse_json(text: str) -> dict:
    return json.loads(text)


@xcs.op
def read_file(path: str) -> str:
    with open(path) as f:
        return f.read()


@xcs.op
def lookup(table: dict, key: str) -> int:
    return table[key]


class NeedsTwo(Exception):
    def __init__(self, code: int, reason: str):
        super().__init__(code, reason)
        self.code = code


@xcs.op
def refuse(prompt: str) -> str:
    raise NeedsTwo(429, f"slow down {prompt}")


def handles_each_error(text: str) -> list:
    out = []
    try:
        out.append(parse_json(text))
    except json.JSONDecodeError as e:
        out.append((str(e), e.args, e.pos, repr(e)))
    try:
        out.append(lookup({"a": 1}, text))
    except KeyError as e:
        out.append((str(e), e.args, repr(e)))
    try:
        out.append(read_file(f"/nonexistent/{text}"))
    except FileNotFoundError as e:
        out.append((str(e), e.errno, e.filename))
    try:
        out.append(refuse(text))
    except NeedsTwo as e:
        out.append((e.code, e.args))
    return out


@pytest.mark.parametrize("text", ['{"a": 1}', "a", "nope"])
def test_an_except_in_the_body_sees_what_the_plain_call_raised(text):
    assert xcs.jit(handles_each_error)(text) == handles_each_error(text)


def keeps_default_when_the_call_fails(prompts: list) -> tuple:
    result = "default"
    try:
        result = flaky(prompts[0])
    except ValueError:
        pass
    answers = []
    for prompt in prompts:
        try:
            answers.append(flaky(prompt))
        except ValueError as e:
            answers.append(f"error: {e}")
    table = {}
    try:
        table["last"] = flaky(prompts[-1])
    except ValueError as e:
        table["error"] = e.args
    return result, answers, table


@pytest.mark.parametrize("prompts", [["a", "boom", "c"], ["boom 1", "b", "boom 2"]])
def test_a_failed_call_in_a_try_body_binds_and_stores_nothing(prompts):
    """Nothing after the failing call in its statement runs: no name is bound to its
    result, nothing is appended or stored, as with the plain call."""
    plain = keeps_default_when_the_call_fails(prompts)
    assert xcs.jit(keeps_default_when_the_call_fails)(prompts) == plain
    assert plain[0] in ("default", "ok(a)")


def caught_inside_an_outer_try(prompt: str) -> tuple:
    try:
        try:
            first = flaky(prompt)
        except ValueError as e:
            first = f"inner: {e}"
        second = flaky("after")
    except ValueError:
        return ("outer", "caught")
    return first, second


def caught_inside_a_scoping_block(prompt: str) -> tuple:
    with xcs.execution_options(retries=1, retry_on=(TimeoutError,)):
        try:
            first = flaky(prompt)
        except ValueError as e:
            first = f"caught: {e}"
    with models.track_usage() as usage:
        try:
            second = flaky(f"{prompt} again")
        except ValueError:
            second = "caught again"
    return first, second, usage.calls


@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic", "structural"])
@pytest.mark.parametrize("fn", [caught_inside_an_outer_try, caught_inside_a_scoping_block])
def test_an_error_a_nested_try_caught_is_not_raised_again_when_the_outer_block_ends(fn, mode):
    """The end of an outer `try` body, or of an `execution_options`/`track_usage` block,
    waits for the calls made in it; a failure an inner `try` already caught was raised
    once, as the plain call raised it, and is not raised again there."""
    jitted = xcs.jit(fn, mode=mode)
    for prompt in ("boom", "fine", "boom", "boom", "boom", "fine", "boom"):  # serial runs too
        assert jitted(prompt) == fn(prompt), prompt


@pytest.mark.parametrize("mode", ["auto", "dynamic"])
def test_an_uncaught_leaf_error_is_also_of_the_original_type(mode):
    jitted = xcs.jit(lambda text: parse_json(text), mode=mode)
    with pytest.raises(json.JSONDecodeError) as info:
        jitted("nope")
    error = info.value
    assert isinstance(error, xcs.NodeExecutionError)
    assert error.node_id and error.pos == 0
    assert "failed: JSONDecodeError" in str(error)  # its own message names the node
    assert isinstance(error.__cause__, json.JSONDecodeError)


def test_a_node_error_survives_pickling_with_both_types():
    g = xcs.Graph()
    g.add_node(refuse, node_id="refuse")
    with pytest.raises(NeedsTwo) as info:
        xcs.execute_graph(g, {"prompt": "q"})
    copy = pickle.loads(pickle.dumps(info.value))
    assert isinstance(copy, NeedsTwo) and isinstance(copy, xcs.NodeExecutionError)
    assert (copy.node_id, copy.code, str(copy)) == ("refuse", 429, str(info.value))


def test_an_error_type_that_cannot_be_combined_is_a_plain_node_error():
    class Strict(Exception):
        def __new__(cls, code: int, reason: str):  # a __new__ that wants two arguments
            return super().__new__(cls, code, reason)

    @xcs.op
    def strict(prompt: str) -> str:
        raise Strict(1, prompt)

    with pytest.raises(xcs.NodeExecutionError) as info:
        xcs.jit(lambda q: strict(q))("q")
    assert type(info.value) is xcs.NodeExecutionError
    assert isinstance(info.value.__cause__, Strict)


def test_the_error_an_except_sees_reads_as_the_original_type_and_pickles_so():
    seen = []

    def keep(text: str) -> str:
        try:
            return parse_json(text)
        except json.JSONDecodeError as e:
            seen.append(e)
            return type(e).__name__

    assert xcs.jit(keep)("nope") == "JSONDecodeError" == keep("nope")
    view = seen[0]  # the jitted call's
    names = ("__name__", "__qualname__", "__module__")
    assert [getattr(type(view), n) for n in names] == [
        getattr(json.JSONDecodeError, n) for n in names
    ]
    assert isinstance(view, xcs.NodeExecutionError) and view.node_id == "parse_json"
    copy = pickle.loads(pickle.dumps(view))
    assert (type(copy).__name__, str(copy), repr(copy), copy.pos) == (
        "JSONDecodeError", str(view), repr(view), 0,
    )  # fmt: skip
    assert isinstance(copy, xcs.NodeExecutionError) and copy.node_id == "parse_json"


def test_a_missing_output_field_is_also_the_error_the_plain_lookup_raised():
    jitted = xcs.jit(lambda q: p.llm(shaped(q)["text"]), mode="trace")
    assert jitted("d") == "llm(d)"
    with pytest.raises(TypeError, match=r"could not take \['text'\]") as info:
        jitted("s")  # shaped returns a str here: "s"["text"] raises TypeError plainly
    assert isinstance(info.value, xcs.NodeExecutionError)


def test_a_field_of_a_result_that_fails_in_a_dynamic_run_fails_the_call_not_a_thread(
    monkeypatch: pytest.MonkeyPatch,
):
    crashed: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", crashed.append)

    def reads_a_missing_field(q: str) -> str:
        first = p.llm(q)
        second = p.llm(first.missing)  # AttributeError plainly
        time.sleep(0.05)  # the lone-call starter runs the calls meanwhile (`GRACE`)
        return second

    with pytest.raises(AttributeError) as info:
        reads_a_missing_field("q")
    jitted = xcs.jit(reads_a_missing_field, mode="dynamic")
    for _ in range(3):
        with pytest.raises(AttributeError) as info:
            jitted("q")
        assert isinstance(info.value, xcs.NodeExecutionError)
    assert crashed == []


# --- a failure raised where its result is used, inside a `try` that began after the call ----
# Plain Python raises a failed call's error at the call; a dynamic run raises it where the
# body first uses the result. Only the handlers plain Python would have tried may see it.


@xcs.op
def fetch_page(url: str) -> str:
    if "slow" in url:
        raise TimeoutError(f"{url} timed out")
    return f"<{url}>"


def _handled_after_the_calls(urls: list[str]) -> list[str]:
    pages = [fetch_page(u) for u in urls]  # a failure here ends the plain function
    out = []
    for page in pages:
        try:
            out.append(page.upper())
        except TimeoutError:  # never sees the failure above, plainly
            out.append("timeout")
    return out


def _suppressed_after_the_calls(urls: list[str]) -> list[str]:
    pages = [fetch_page(u) for u in urls]
    out = []
    for page in pages:
        with contextlib.suppress(TimeoutError):
            out.append(page.upper())
    return out


def _handled_around_the_calls(urls: list[str]) -> Any:
    try:
        pages = [fetch_page(u) for u in urls]
        out = []
        for page in pages:
            try:
                out.append(page.upper())
            except TimeoutError:  # began after the calls: not this one
                out.append("inner")
        return out
    except TimeoutError as error:  # began before them: plainly, this one catches it
        return f"outer: {type(error).__name__}"


@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic", "structural"])
@pytest.mark.parametrize("body", [_handled_after_the_calls, _suppressed_after_the_calls])
def test_a_failure_is_not_caught_by_a_try_that_began_after_the_call(body, mode):
    jitted = xcs.jit(body, mode=mode)
    for _ in range(5):  # serial runs too
        assert jitted(["a", "b"]) == body(["a", "b"]) == ["<A>", "<B>"]
        with pytest.raises(TimeoutError, match="slow timed out") as info:
            jitted(["a", "slow"])
        assert isinstance(info.value, xcs.NodeExecutionError)
        assert info.value.operator_name == "fetch_page"


@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic", "structural"])
def test_a_failure_is_caught_by_a_try_that_began_before_the_call(mode):
    jitted = xcs.jit(_handled_around_the_calls, mode=mode)
    for _ in range(5):
        assert jitted(["a", "slow"]) == _handled_around_the_calls(["a", "slow"])
        assert jitted(["a", "slow"]) == "outer: TimeoutError"
        assert jitted(["a"]) == ["<A>"]
