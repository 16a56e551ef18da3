"""A helper that gets real values and cannot reach an operator runs as written (`_inert`).

Whether a helper ran rewritten or as written is read inside it: the frame's code object
is the function's own only when it runs as written. Everything else is the plain answer,
the exact calls and the overlap, as for any helper.
"""

from __future__ import annotations

import json
import math
import threading
from typing import Any

import ember_xcs as xcs
from tests.in_flight import InFlight

SEEN: list[bool] = []  # per helper call: did it run as written?
STOP_WORDS = ("a", "the", "of")
flight = InFlight(0.02)
TRANSFORM: Any = str.upper  # rebound to an operator by a test


def _as_written(names: dict[str, Any]) -> None:  # a helper calling a helper: inert too
    SEEN.append("__xcs_call" not in names)  # rewritten code holds jit's helpers


def bag_of_words(text: str, size: int = 8) -> list[float]:
    _as_written(locals())  # locals() runs in the helper's own frame either way
    vec = [0.0] * size
    for word in text.lower().split():
        if word not in STOP_WORDS:
            vec[sum(map(ord, word)) % size] += math.sqrt(1.0)
    return vec


def asks_twice(text: str) -> list[str]:
    _as_written(locals())  # locals() runs in the helper's own frame either way
    return [flight.op(text), flight.op(text + "?")]  # reaches an operator: rewritten


def parse(reply: str) -> dict:
    _as_written(locals())  # locals() runs in the helper's own frame either way
    return json.loads(reply)


def transformed(text: str) -> str:
    _as_written(locals())  # locals() runs in the helper's own frame either way
    return TRANSFORM(text)


def imports_inside(text: str) -> str:
    _as_written(locals())  # locals() runs in the helper's own frame either way
    import textwrap

    return textwrap.shorten(text, 20)


def test_a_helper_given_real_values_and_no_operator_runs_as_written() -> None:
    def body(question: str) -> list[Any]:
        answer = flight.op(question)
        return [bag_of_words(question), bag_of_words(f"{answer} of the day", 4)]

    SEEN.clear()
    assert xcs.jit(body, mode="dynamic")("the cat sat") == body("the cat sat")
    assert SEEN == [True, True, True, True]  # jit's two calls, then the plain ones


def test_a_helper_that_can_reach_an_operator_is_rewritten_and_its_calls_overlap() -> None:
    SEEN.clear()
    flight.peak = 0
    jitted = xcs.jit(lambda q: asks_twice(q), mode="dynamic")
    assert jitted("q") == ["q", "q?"]
    assert SEEN == [False]
    assert flight.peak == 2


def test_a_helper_given_a_pending_result_is_rewritten() -> None:
    encode = xcs.op(lambda x: json.dumps({"x": x}), name="encode")

    def body(x: str) -> dict:
        return parse(encode(x))

    SEEN.clear()
    assert xcs.jit(body, mode="dynamic")("v") == {"x": "v"}
    assert SEEN == [False]


def test_a_global_rebound_to_an_operator_makes_the_helper_rewritten_again() -> None:
    global TRANSFORM
    jitted = xcs.jit(lambda q: [transformed(q), flight.op(q)], mode="dynamic")
    SEEN.clear()
    assert jitted("a") == ["A", "a"]
    old, TRANSFORM = TRANSFORM, flight.op
    try:
        flight.peak = 0
        assert jitted("b") == ["b", "b"]
        assert flight.peak == 2  # the helper's call overlaps the body's: it was dispatched
    finally:
        TRANSFORM = old
    assert SEEN == [True, False]


def test_a_helper_that_imports_is_rewritten() -> None:
    SEEN.clear()
    assert xcs.jit(lambda q: imports_inside(q), mode="dynamic")("a b c") == "a b c"
    assert SEEN == [False]


def test_helpers_run_as_written_from_many_threads_give_the_plain_answers() -> None:
    jitted = xcs.jit(lambda q: bag_of_words(q))
    out: list[Any] = [None] * 8
    threads = [
        threading.Thread(target=lambda i=i: out.__setitem__(i, jitted(f"w{i} x{i}")))
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [bag_of_words(f"w{i} x{i}") for i in range(8)]


ROUTES = {"up": str.upper}
LOOKUP: Any = ROUTES.get  # a C method of a dict: what it returns is not known


def via_lookup(text: str) -> str:
    _as_written(locals())
    return LOOKUP("up")(text)


def via_globals(text: str) -> str:
    _as_written(locals())
    return globals()["TRANSFORM"](text)


def test_a_helper_reaching_values_through_a_dict_method_or_globals_is_rewritten() -> None:
    SEEN.clear()
    assert xcs.jit(lambda q: [via_lookup(q), via_globals(q)], mode="dynamic")("a") == [
        "A",
        "A",
    ]
    assert SEEN == [False, False]
