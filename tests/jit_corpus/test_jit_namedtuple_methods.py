"""A named tuple's `_replace` and `_make` store pending results as its constructor does:
the calls whose results they store stay in flight together."""

from __future__ import annotations

import typing

import pytest
from corpus_harness import RECORDER, leaf

import ember_xcs as xcs


@leaf
def label(text: str) -> str:
    return f"label:{text}"


class Row(typing.NamedTuple):
    text: str
    label: str | None = None


def replaced(text: str) -> list[Row]:
    rows = [Row(part) for part in text.split()]
    return [row._replace(label=label(row.text)) for row in rows]


def made(text: str) -> list[Row]:
    return [Row._make([part, label(part)]) for part in text.split()]


def bad_replace(text: str) -> Row:
    return Row(text)._replace(colour=label(text))


@pytest.mark.parametrize("fn", [replaced, made])
@pytest.mark.parametrize("mode", ["auto", "dynamic"])
def test_replace_and_make_keep_the_calls_they_store_in_flight(fn, mode):
    want = fn("a b c")
    RECORDER.reset()
    RECORDER.target = 3
    try:
        got = xcs.jit(fn, mode=mode)("a b c")
    finally:
        RECORDER.target = 0
    assert got == want and all(type(r) is Row and type(r.label) is str for r in got)
    assert RECORDER.peak == 3


def test_replace_of_an_unknown_field_raises_as_plainly():
    with pytest.raises(ValueError, match="colour"):
        bad_replace("a")
    with pytest.raises(ValueError, match="colour"):
        xcs.jit(bad_replace, mode="dynamic")("a")
