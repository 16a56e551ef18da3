"""A generator function's body runs as its caller iterates, after a jitted call returned.

jit refuses such bodies when it is applied (as it refuses `async def` ones), instead of
handing back a generator holding trace placeholders (`auto`, `trace`, `structural`: the
first `next()` raised "a jit placeholder ... was used after its trace ended") or one that
makes its calls outside any run (`dynamic`). A leaf operator that yields is one call whose
value is a generator, and stays jittable.
"""

from __future__ import annotations

from typing import Any

import pytest

import ember_xcs as xcs

MODES = ["auto", "trace", "dynamic", "structural"]


@xcs.op
def shout(text: str) -> str:
    return text.upper()


def drafts(text: str) -> Any:
    yield shout(text)
    yield shout(text + "!")


class Drafts(xcs.Operator):
    def __init__(self) -> None:
        self.step = shout

    def forward(self, text: str) -> Any:
        yield self.step(text)


class Notes:
    def lines(self, text: str) -> Any:
        yield shout(text)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "body", [drafts, Drafts(), Notes().lines], ids=["function", "composite", "method"]
)
def test_a_generator_body_is_refused_when_jit_is_applied(body: Any, mode: str) -> None:
    with pytest.raises(xcs.TraceError, match=r"is a generator \(it has `yield`\)"):
        xcs.jit(body, mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_a_leaf_operator_that_yields_still_jits(mode: str) -> None:
    @xcs.op
    def letters(text: str) -> Any:
        yield from text

    jitted = xcs.jit(letters, mode=mode)
    assert list(jitted("ab")) == ["a", "b"]
    assert list(jitted("cd")) == ["c", "d"]


@pytest.mark.parametrize("mode", MODES)
def test_a_body_that_consumes_a_generator_of_calls_matches_the_plain_function(mode: str) -> None:
    def collect(text: str) -> list[str]:
        return list(drafts(text))

    jitted = xcs.jit(collect, mode=mode)
    assert jitted("a") == collect("a") == ["A", "A!"]
    assert jitted("b") == ["B", "B!"]
