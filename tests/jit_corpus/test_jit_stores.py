"""Every kind of store that outlives a jitted call holds, once the call returns, what the
plain function left there: a `nonlocal` name, a dict a function returns, a field of an
object held in a list, an augmented `global` list, a class attribute, an entry assigned
over an existing one; what the body returns (a generator, a closure) gives the plain
values after the call; a trace that would keep a placeholder anywhere stops (and says
where) instead of handing it out."""

from __future__ import annotations

import functools
import json

import pytest
from corpus_harness import leaf

import ember_xcs as xcs

MODES = ["auto", "trace", "structural", "dynamic"]


@leaf
def ask(prompt: str) -> str:
    return f"<{prompt}>"


def _kinds(value) -> set[str]:
    """The type names in `value` and its lists and dicts."""
    if isinstance(value, list):
        return set().union(*map(_kinds, value)) if value else set()
    if isinstance(value, dict):
        return set().union(*map(_kinds, value.values())) if value else set()
    return {type(value).__name__}


def _after(mode: str | None, make, read, calls=("a", "b")):
    """(what each call returned, what `read()` sees after them) for a fresh `make()`,
    called plainly (`mode=None`) or jitted."""
    fn = make()
    run = fn if mode is None else xcs.jit(fn, mode=mode)
    outs = [run(q) for q in calls]
    return outs, read(fn)


def _same_as_plain(mode, make, read):
    plain = _after(None, make, read)
    jitted = _after(mode, make, read)
    assert jitted == plain
    assert _kinds(jitted[1]) == _kinds(plain[1]) == {"str"}
    json.dumps(jitted[1])


def nonlocal_last():
    last = None

    def remember(q):
        nonlocal last
        last = ask(q)
        return 1

    remember.read = lambda: last
    return remember


def nonlocal_augmented():
    seen: list = []

    def remember(q):
        nonlocal seen
        seen += [ask(q)]
        return len(seen)

    remember.read = lambda: list(seen)
    return remember


STORE: dict = {}


def get_store() -> dict:
    return STORE


def into_returned_dict():
    STORE.clear()

    def keep(q):
        get_store()[q] = ask(q)
        return 1

    keep.read = lambda: dict(STORE)
    return keep


class Item:
    def __init__(self):
        self.x = "none"


class Holder:
    def __init__(self):
        self.items = [Item()]

    def keep(self, q):
        self.items[0].x = ask(q)
        return 1


def field_of_held_object():
    holder = Holder()
    return _with_read(holder.keep, lambda: holder.items[0].x)


LOG: list = []


def augmented_global():
    LOG.clear()

    def log(q):
        global LOG
        LOG += [ask(q)]
        return len(LOG)

    log.read = lambda: list(LOG)
    return log


class Last:
    answer = "none"


def class_attribute():
    Last.answer = "none"

    def keep(q):
        Last.answer = ask(q)
        return 1

    keep.read = lambda: Last.answer
    return keep


SLOTS = ["first", "second"]


def over_existing_entry():
    SLOTS[:] = ["first", "second"]

    def keep(q):
        SLOTS[0] = ask(q)
        return len(SLOTS)

    keep.read = lambda: list(SLOTS)
    return keep


def annotated_field():
    item = Item()

    def keep(q):
        item.x: str = ask(q)
        return 1

    keep.read = lambda: item.x
    return keep


def _with_read(fn, read):
    def run(q):
        return fn(q)

    run.read = read
    return run


STORES = [
    nonlocal_last,
    nonlocal_augmented,
    into_returned_dict,
    field_of_held_object,
    augmented_global,
    class_attribute,
    over_existing_entry,
    annotated_field,
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("make", STORES, ids=lambda f: f.__name__)
def test_a_store_that_outlives_the_call_holds_the_plain_values(make, mode):
    _same_as_plain(mode, make, lambda fn: fn.read())


def _lines(qs):
    return (ask(q) for q in qs)


def _mapped(qs):
    return map(ask, qs)


def _closure(q):
    answer = ask(q)

    def later():
        return answer

    return later


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fn", [_lines, _mapped], ids=["generator", "map"])
def test_an_iterator_returned_gives_the_plain_values_on_every_call(fn, mode):
    jitted = xcs.jit(fn, mode=mode)
    for qs in (["a", "b"], ["c"], ["d", "e"]):
        got = list(jitted(qs))
        assert got == list(fn(qs)) and _kinds(got) == {"str"}


@pytest.mark.parametrize("mode", MODES)
def test_a_closure_returned_holds_the_plain_value(mode):
    jitted = xcs.jit(_closure, mode=mode)
    for q in ("a", "b"):
        got = jitted(q)()
        assert got == f"<{q}>" and type(got) is str


def test_a_trace_that_returns_a_generator_stops_and_says_why():
    jitted = xcs.jit(_lines, mode="auto")
    assert list(jitted(["a"])) == ["<a>"]
    assert xcs.get_jit_strategy_used(jitted) is xcs.JITMode.DYNAMIC
    assert "generator (an iterator)" in xcs.explain_jit_selection(jitted)


def test_a_trace_that_stores_into_a_nonlocal_stops_at_that_line():
    jitted = xcs.jit(nonlocal_last(), mode="auto")
    jitted("a")
    assert xcs.get_jit_strategy_used(jitted) is xcs.JITMode.DYNAMIC
    assert "last = ask(q)" in xcs.explain_jit_selection(jitted)


def test_a_stopped_trace_puts_an_entry_it_overwrote_back():
    SLOTS[:] = ["first", "second"]
    jitted = xcs.jit(over_existing_entry(), mode="trace")
    assert jitted("a") == 2  # plainly: the list keeps its length
    assert SLOTS == ["<a>", "second"]


@functools.lru_cache(maxsize=8)
def _expand(term: str) -> str:
    return ask(term)


def test_a_trace_never_leaves_a_placeholder_in_a_functools_cache():
    _expand.cache_clear()

    def expand(q):
        return _expand("fixed") + q

    jitted = xcs.jit(expand, mode="trace")
    assert [jitted("a"), jitted("b")] == ["<fixed>a", "<fixed>b"]
    assert _expand("fixed") == "<fixed>"  # a value or a pending one, never a dead placeholder
    assert "functools cache" in xcs.explain_jit_selection(jitted)


@pytest.mark.xfail(
    strict=True,
    reason="a functools cache keeps what the function it wraps returned (a LazyResult in a "
    "dynamic run), in C, where no entry can be replaced",
)
def test_a_functools_cache_holds_the_plain_value_after_a_dynamic_call():
    _expand.cache_clear()
    xcs.jit(lambda q: _expand(q) + "!", mode="dynamic")("x")
    assert type(_expand("x")) is str
