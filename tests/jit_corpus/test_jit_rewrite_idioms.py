"""The rewritten body on the idioms of `test_corpus_idioms.py`: decorated wrappers,
generators, lambdas, properties, callable objects, `with` blocks, sort keys, iterators
and dict views each give the plain answer, and keep independent calls overlapped."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import heapq
import inspect
import io
import itertools
import json
import logging
import random
import re
import sys
import threading
import weakref

import numpy as np
import pytest
from corpus_harness import RECORDER, leaf

import ember_xcs as xcs


@leaf
def ask(prompt: str) -> str:
    return f"<{prompt}>"


@leaf
def score(text: str) -> float:
    return float(len(text) % 3)


@leaf
def refuse(text: str) -> str:
    raise KeyError(text)


def _run(jitted, *args, width: int = 0):
    """`jitted(*args)` and the most leaf calls it had in flight (calls that can overlap
    wait up to the harness's patience for `width` peers)."""
    RECORDER.reset()
    RECORDER.target = width
    try:
        return jitted(*args), RECORDER.peak
    finally:
        RECORDER.target = 0


def _plain_and_jit(fn, *args, width: int = 0, mode: str = "dynamic"):
    want = fn(*args)
    got, peak = _run(xcs.jit(fn, mode=mode), *args, width=width)
    assert got == want
    return got, peak


def _shout(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        return fn(*args).upper()

    return wrapper


@_shout
def decorated(q):
    return " ".join([ask(q), ask(f"{q}!")])


@pytest.mark.parametrize("mode", ["auto", "dynamic"])
def test_a_body_behind_a_users_functools_wraps_decorator_is_rewritten(mode):
    jitted = xcs.jit(decorated, mode=mode)
    assert jitted("q") == decorated("q") == "<Q> <Q!>"
    assert "body rewritten" in xcs.explain_jit_selection(jitted)


def _pairs(q):
    for i in range(2):
        answer = ask(f"{q}{i}")
        yield "-".join([answer, answer])  # a C function on a result, inside a generator


def _pairs_of(q):
    return list(_pairs(q))


def test_a_generator_helper_gets_real_values():
    assert _plain_and_jit(_pairs_of, "q")[0] == ["<q0>-<q0>", "<q1>-<q1>"]


HANDLERS = {"both": lambda q: " ".join([ask(q), ask(q * 2)])}


def test_a_lambda_in_a_module_is_rewritten_and_overlaps_its_calls():
    def route(q):
        return HANDLERS["both"](q)

    got, peak = _plain_and_jit(route, "q", width=2)
    assert (got, peak) == ("<q> <qq>", 2)
    jitted = xcs.jit(lambda q: "/".join([ask(q), ask(q)]), mode="dynamic")
    assert jitted("x") == "<x>/<x>"
    assert "body rewritten" in xcs.explain_jit_selection(jitted)


class Note:
    def __init__(self, text):
        self.text = text

    @property
    def lines(self):
        return "\n".join(ask(word) for word in self.text.split())

    def __call__(self, suffix):
        return ", ".join([ask(self.text), ask(suffix)])


def test_a_property_getter_and_a_users_callable_object_are_rewritten():
    got, peak = _plain_and_jit(lambda t: (Note(t).lines, Note(t)("s")), "a b c", width=3)
    assert got == ("<a>\n<b>\n<c>", "<a b c>, <s>")
    assert peak == 3


def test_a_class_made_inside_a_function_is_freed_after_a_jitted_body_read_its_property():
    def make():
        class Local:
            @property
            def shout(self):
                return ask("local")

        return Local

    local = make()
    jitted = xcs.jit(lambda obj: obj.shout, mode="dynamic")
    assert jitted(local()) == "<local>"
    alive = weakref.ref(local)
    del local, jitted
    gc.collect()
    assert alive() is None


@contextlib.contextmanager
def forgiving():
    try:
        yield
    except KeyError:
        pass


@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic"])
def test_a_leaf_error_inside_a_with_block_reaches_its_context_manager(mode):
    def body(q):
        out = "unchanged"
        with contextlib.suppress(KeyError):
            out = refuse(q)
        with forgiving():
            out += refuse(q)
        return out

    assert _plain_and_jit(body, "q", mode=mode)[0] == "unchanged"


def test_calls_inside_a_lock_block_still_overlap():
    lock = threading.Lock()

    def body(q):
        with lock:
            answers = [ask(f"{q}{i}") for i in range(3)]
        return answers

    assert _plain_and_jit(body, "q", width=3)[1] == 3


@leaf
def chatty(prompt: str) -> str:
    print(f"asking {prompt}")  # a leaf that prints: plainly, into the redirected stdout
    return prompt.upper()


def _captured(text):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        answers = [chatty(w) for w in text.split()]
        for answer in answers:
            print(answer)
    return sorted(buf.getvalue().splitlines())


@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic"])
def test_calls_inside_redirect_stdout_overlap_and_print_into_the_buffer(mode):
    got, peak = _plain_and_jit(_captured, "a b c", width=3, mode=mode)
    assert peak == 3 and "asking b" in got


def test_a_leaf_error_inside_redirect_stdout_leaves_the_block_as_plainly():
    def body(text):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            answers = [ask(text), refuse(text), ask(text * 2)]
        return answers

    stdout = sys.stdout
    with pytest.raises(KeyError):
        xcs.jit(body, mode="dynamic")("q")
    assert sys.stdout is stdout


WORDS = "delta alpha charlie bravo echo"


def _sorted(t):
    return sorted(t.split(), key=lambda w: score(w))


def _sorted_reverse(t):  # equal keys keep their order, as plainly
    return sorted(t.split(), key=lambda w: score(w), reverse=True)


def _max_tuple_key(t):
    return max(t.split(), key=lambda w: (score(w), w))


def _min_of_arguments(t):
    return min(*t.split(), key=lambda w: score(w))


def _min_default(t):
    return min([w for w in t.split() if w == "x"], key=lambda w: score(w), default="-")


def _def_key(t):
    def key(w):
        return score(w)

    return sorted(t.split(), key=key)


@pytest.mark.parametrize(
    "fn", [_sorted, _sorted_reverse, _max_tuple_key, _min_of_arguments, _min_default, _def_key]
)
def test_sort_keys_that_call_operators_run_together(fn):
    got, peak = _plain_and_jit(fn, WORDS, width=5)
    assert peak == (0 if got == "-" else 5)


def test_list_sort_with_an_operator_key_sorts_in_place_with_its_calls_together():
    def body(t):
        words = t.split()
        words.sort(key=score)
        return words

    assert _plain_and_jit(body, WORDS, width=5)[1] == 5


def test_a_sort_key_with_a_wrong_argument_raises_as_plainly():
    def body(t):
        return sorted(t.split(), key=lambda w: score(w), bogus=True)

    with pytest.raises(TypeError, match="bogus"):
        xcs.jit(body, mode="dynamic")(WORDS)


def _reversed(q):
    return "".join(reversed([ask(q), ask(q * 2)]))


def _map(q):
    return ", ".join(map(ask, [q, q * 2]))


def _chain(q):
    return "|".join(itertools.chain([ask(q)], [ask(q * 2)]))


def _dict_values(q):
    return "; ".join({i: ask(q * i) for i in (1, 2)}.values())


def _dict_items_to_an_operator(q):
    return ask({i: ask(q * i) for i in (1, 2)}.items())


@pytest.mark.parametrize("fn", [_reversed, _map, _chain, _dict_values, _dict_items_to_an_operator])
def test_iterators_and_dict_views_of_results_reach_c_functions_as_real_values(fn):
    _plain_and_jit(fn, "q")


def _joined(q):
    return ",".join(ask(f"{q}{i}") for i in range(3))


def test_a_generator_consumed_by_join_runs_its_calls_together():
    got, peak = _plain_and_jit(_joined, "q", width=3)
    assert (got, peak) == ("<q0>,<q1>,<q2>", 3)


def test_a_generator_consumed_by_join_raises_the_first_failure_as_plainly():
    def body(q):
        return ",".join(refuse(q) if i == 1 else ask(q) for i in range(3))

    with pytest.raises(KeyError):
        xcs.jit(body, mode="dynamic")("q")


def test_the_serial_warning_names_the_users_line_where_len_waited(caplog):
    def serial(q):
        return [len(ask(f"{q}{i}")) for i in range(3)]

    with caplog.at_level(logging.WARNING, logger="ember_xcs.jit"):
        xcs.jit(serial, mode="dynamic")("q")
    (record,) = [r for r in caplog.records if r.name == "ember_xcs.jit"]
    assert "test_jit_rewrite_idioms.py:" in record.getMessage()
    assert "_rewrite.py" not in record.getMessage()


def _parsed_in_a_try(q):
    out = []
    for i in range(3):
        text = ask(f"{q}{i}")
        try:
            out.append(len(text))  # waits for each call: the line the warning names
        except ValueError:
            pass
    return out


def _parsed_in_a_with(q):
    out = []
    for i in range(3):
        text = ask(f"{q}{i}")
        with contextlib.suppress(KeyError):
            out.append(len(text))  # waits for each call: the line the warning names
    return out


@pytest.mark.parametrize("body", [_parsed_in_a_try, _parsed_in_a_with])
def test_the_serial_warning_names_the_users_line_in_a_try_or_with_body(caplog, body):
    with caplog.at_level(logging.WARNING, logger="ember_xcs.jit"):
        assert xcs.jit(body, mode="dynamic")("q") == body("q")
    (record,) = [r for r in caplog.records if r.name == "ember_xcs.jit"]
    line = inspect.getsourcelines(body)[1] + 5
    assert f"test_jit_rewrite_idioms.py:{line}" in record.getMessage()
    assert "_rewrite.py" not in record.getMessage()


@dataclasses.dataclass(frozen=True)
class Draft:
    text: str
    rating: float | None = None


def _rated(text):
    drafts = [Draft(word) for word in text.split()]
    rated = [dataclasses.replace(d, rating=score(d.text)) for d in drafts]
    return max(rated, key=lambda d: d.rating)


def test_dataclasses_replace_stores_a_pending_result_without_waiting_for_it():
    got, peak = _plain_and_jit(_rated, "ab c def", width=3)
    assert (got, peak) == (Draft("ab", 2.0), 3)


@dataclasses.dataclass(frozen=True)
class Progress:
    done: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()


def _progress(text):
    state = Progress()
    for word in text.split():
        state = dataclasses.replace(
            state, done=(*state.done, word), answers=state.answers + (ask(word),)
        )
    return state


def test_dataclasses_replace_of_a_record_holding_pending_results_does_not_wait_for_them():
    """A state object replaced each step keeps the earlier steps' pending results in its
    fields: the new record stores them, as a constructor does, so the steps overlap."""
    got, peak = _plain_and_jit(_progress, "a bb ccc", width=3)
    assert (got.answers, peak) == (("<a>", "<bb>", "<ccc>"), 3)


def _reversed_answer(q):
    answer = ask(q)
    return (
        "".join(reversed(answer)),
        list(reversed(ask(q * 2))),
        list(zip(ask(q), "xyzw", strict=True)),
    )


def test_a_pending_string_passed_whole_to_reversed_list_or_zip_is_its_value():
    got, _ = _plain_and_jit(_reversed_answer, "ab")
    assert got[0] == ">ba<"


def _answers_as_keys(text):
    words = text.split()
    answers = [ask(w) for w in words]
    by_answer = dict(zip(answers, words, strict=True))
    updated = {}
    updated.update(zip(answers, range(len(words)), strict=True))
    grouped = {}
    for word, answer in zip(words, answers, strict=True):
        grouped.setdefault(answer, []).append(word)
    keys = [*by_answer, *updated, *grouped]
    return json.dumps([by_answer, updated, grouped]), {type(k) for k in keys}, ",".join(grouped)


def test_answers_stored_as_dict_keys_are_their_values_and_still_overlap():
    got, peak = _plain_and_jit(_answers_as_keys, "a b c", width=3)
    assert got[1] == {str} and peak == 3


def test_dict_of_pairs_with_a_pending_key_raises_as_plainly_for_a_bad_call():
    def body(q):
        return dict([(ask(q), 1)], [("x", 2)])

    with pytest.raises(TypeError, match="at most 1 argument"):
        xcs.jit(body, mode="dynamic")("q")


def _top_and_bottom(text):
    words = text.split()
    best = heapq.nlargest(2, words, key=lambda w: score(w))
    worst = heapq.nsmallest(3, iter(words), key=score)
    return best, worst, heapq.nlargest(0, words, key=score)


def test_heapq_keys_that_call_operators_run_together_and_rank_as_plainly():
    got, peak = _plain_and_jit(_top_and_bottom, "ab c def gh ij", width=5)
    assert peak == 5 and got[0] == ["ab", "gh"]


def _expand_match(match):
    return ask(match.group(1))


def _re_callbacks(text):
    def nested(match):
        return ask(match.group(1).upper())

    pattern = re.compile(r"\{(\w+)\}")
    return (
        re.sub(r"\{(\w+)\}", _expand_match, text),
        re.subn(r"\{(\w+)\}", nested, text, count=1),
        pattern.sub(repl=nested, string=text),
        pattern.subn(_expand_match, text),
    )


@pytest.mark.parametrize("mode", ["auto", "trace", "dynamic"])
def test_a_def_that_returns_a_leaf_call_works_as_a_re_sub_callback(mode):
    got, _ = _plain_and_jit(_re_callbacks, "a {b} {c}", mode=mode)
    assert got[0] == "a <b> <c>"


def _first_answers(text):
    answers = (ask(word) for word in text.split())
    return list(itertools.islice(answers, 3))


def test_islice_over_a_generator_of_calls_passes_the_pending_results_on():
    """`itertools.islice` only moves items, as `zip` does: the calls its generator makes
    stay in flight together, and the ones after the slice are never made."""
    got, peak = _plain_and_jit(_first_answers, "a bb ccc dddd", width=3)
    assert (got, peak) == (["<a>", "<bb>", "<ccc>"], 3)
    assert sum(RECORDER.calls.values()) == 3  # the jitted run's: "dddd" was never asked


def _shuffled_and_heaped(question, seed):
    drafts = [ask(f"{question} #{i}") for i in range(5)]
    random.Random(seed).shuffle(drafts)  # against position bias, before a judge reads them
    pairs = [(i, ask(f"{question} ~{i}")) for i in range(4)]
    np.random.default_rng(seed).shuffle(pairs)
    scores = [score(d) for d in drafts]
    heapq.heapify(scores)
    return drafts, pairs, scores


@pytest.mark.parametrize("mode", ["auto", "dynamic"])
def test_library_code_that_changes_a_list_of_results_in_place_changes_the_bodys_list(mode):
    got, peak = _plain_and_jit(_shuffled_and_heaped, "why", 3, width=5, mode=mode)
    assert peak == 5 and got[0] != sorted(got[0])


def _into_numpy(question):
    scores = np.zeros(4)
    scores[:] = [score(f"{question} #{i}") for i in range(4)]
    answers = np.empty(4, dtype=object)
    answers[:] = [ask(f"{question} ~{i}") for i in range(4)]
    answers[0] = ask(question)
    return scores.tolist(), [type(a).__name__ for a in answers], answers.tolist()


@pytest.mark.parametrize("mode", ["auto", "dynamic"])
def test_results_stored_into_a_numpy_array_are_stored_as_values(mode):
    got, peak = _plain_and_jit(_into_numpy, "why", width=4, mode=mode)
    assert peak == 4 and got[1] == ["str"] * 4
