"""Corpus: the text and data handling people write around LLM answers.

`string.Template`, `%`-formatting, `str.format`/`format_map`, `format()`, `repr()`;
`textwrap`; `re.sub` with a callback that calls a leaf and `re.findall` over joined
answers; `json.dumps`/`json.loads` round trips; `csv` into `io.StringIO`;
`defaultdict`/`setdefault`/`dict(zip(...))` grouping with answers as keys; `heapq`
with a key that calls a leaf; `sorted(key=len)`; splitting an answer and fanning out per
part; `reversed`; `any`/`all`; `dict.get` routing; `.encode()`, `hashlib`, `base64`;
numbered prompts and `zip(strict=True)`; `print` into a buffer and `logging`; chained
comparisons, `in`, `isinstance`, walrus in comprehensions; leaf errors caught as
`except ValueError as e`; `assert`; `getattr` by an answer; and a model's `.complete()`.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import csv
import hashlib
import heapq
import io
import json
import logging
import re
import string
import textwrap

import pytest
from corpus_harness import Program, cases, check, leaf, made, model


@leaf
def generate(prompt: str) -> str:
    return f"<{prompt[-18:]}>" + "!" * (len(prompt) % 3)


@leaf
def classify(text: str) -> str:
    if "?" in text:
        return " Question\n"
    return "MATH" if any(ch.isdigit() for ch in text) else "chat"


@leaf
def score(text: str) -> str:
    return f" {(sum(map(ord, text)) % 89) / 10:.1f} "


@leaf
def summarize(text: str) -> str:
    return text[: max(3, len(text) * 2 // 3)]


@leaf
def expand(word: str) -> str:
    return word.upper() + "-" + str(len(word))


@leaf
def outline(topic: str) -> str:
    n = 2 + len(topic) % 3
    return "; ".join(f"{topic.split()[0]} part {i}" for i in range(n))


@leaf
def extract(text: str) -> str:
    """A model asked for JSON: a dict or a list or, when it rambles, prose."""
    words = text.split()
    if "prose" in words:
        return f"Sorry, I cannot parse {text!r}"
    if len(words) % 2 == 0:
        return json.dumps({"first": words[0], "n": len(words)})
    return json.dumps(words[::-1])


@leaf
def items_of(text: str) -> list[str]:
    """A leaf returning a list: one item per word, except that it drops digits."""
    return [w.upper() for w in text.split() if not w.isdigit()]


@leaf
def checked(text: str) -> str:
    if "bad" in text:
        raise ValueError(f"refused: {text}")
    return text.upper()


@leaf
def pick_tool(question: str) -> str:
    return "calculator" if any(ch.isdigit() for ch in question) else "search"


# --- formatting of results -------------------------------------------------------------------


def template_report(question: str) -> str:
    answer = generate(question)
    label = classify(question)
    rating = score(question)
    head = string.Template("Q: $q\nA: $a").substitute(q=question, a=answer)
    safe = string.Template("$a / $missing").safe_substitute({"a": label.strip()})
    line = "%-8s|%s|%5.1f" % (label.strip(), rating.strip(), float(rating))  # noqa: UP031
    box = "[{:>30}] [{!r}]".format(answer, label)  # noqa: UP032
    return "\n".join([head, safe, line, box, format(rating.strip(), ">10"), f"{answer!r:.12}"])


class SafeDict(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def format_map_missing(question: str) -> str:
    fields = SafeDict(answer=generate(question), label=classify(question).strip())
    named = "%(answer)s is %(label)s" % fields  # noqa: UP031 - as users write
    return "{answer} ({label}) {unknown}".format_map(fields) + " / " + named


def repr_str_format(question: str) -> list[str]:
    answer = generate(question)
    llm = model("writer")
    out = llm.complete(question)
    return [
        str(answer),
        repr(answer),
        ascii(answer),
        format(answer, "*^30"),
        f"{answer!r}|{out.text!s:>12}",
        "%r" % (out.text,),  # noqa: UP031
        repr(out.text.upper()),
    ]


def textwrap_results(question: str) -> dict:
    answers = [generate(f"{question} {i}") for i in range(2)]
    body = " ".join(answers * 3)
    return {
        "indented": textwrap.indent("\n".join(answers), "> "),
        "filled": textwrap.fill(body, width=24),
        "wrapped": textwrap.wrap(body, width=30)[:2],
        "dedented": textwrap.dedent(f"""
            answer: {answers[0]}
            other:  {answers[1]}
        """),
    }


# --- regular expressions -----------------------------------------------------------------------


def regex_callback(text: str) -> str:
    # re.sub calls the callback, which needs each expansion before the next match
    return re.sub(r"\{(\w+)\}", lambda m: expand(m.group(1)), text)


def _expand_match(match: re.Match) -> str:
    return expand(match.group(1))


def regex_def_callbacks(text: str) -> tuple:
    def shout(match):
        return expand(match.group(1)) + "!"

    pattern = re.compile(r"\{(\w+)\}")
    return re.sub(r"\{(\w+)\}", _expand_match, text), pattern.subn(shout, text)


def findall_over_answers(question: str) -> dict:
    answers = [generate(f"{question} #{i}") for i in range(4)]
    joined = "\n".join(answers)
    bracketed = re.findall(r"<([^>]*)>", joined)
    shouts = len(re.findall(r"!", joined))
    return {"bracketed": bracketed, "shouts": shouts, "split": re.split(r"[<>]+", answers[0])}


# --- json, csv ---------------------------------------------------------------------------------


def json_round_trip(question: str) -> tuple:
    record = {"answer": generate(question), "label": classify(question), "score": score(question)}
    text = json.dumps(record, sort_keys=True)
    back = json.loads(text)
    back["label"] = back["label"].strip()
    return text, back, json.dumps(back, indent=2, sort_keys=True)


def json_parse_types(text: str) -> list:
    parsed = [json.loads(extract(f"{text} {w}")) for w in ("a", "a b", "a b c")]
    kinds = []
    for value in parsed:
        if isinstance(value, dict):
            kinds.append(f"dict:{sorted(value)}")
        elif isinstance(value, list):
            kinds.append(f"list:{len(value)}")
    return kinds


def csv_export(text: str) -> str:
    words = text.split()
    rows = [[w, classify(w), summarize(w)] for w in words]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["word", "label", "summary"])
    writer.writerows(rows)
    dict_buf = io.StringIO()
    dict_writer = csv.DictWriter(dict_buf, fieldnames=["word", "label"], lineterminator="\n")
    dict_writer.writeheader()
    for row in rows:
        dict_writer.writerow({"word": row[0], "label": row[1].strip()})
    return buf.getvalue() + dict_buf.getvalue()


# --- answers as keys, grouping -----------------------------------------------------------------


def defaultdict_grouping(text: str) -> dict:
    words = text.split()
    labels = [classify(w) for w in words]
    groups = collections.defaultdict(list)
    for word, label in zip(words, labels, strict=True):
        groups[label.strip()].append(word)
    return dict(groups)


def setdefault_grouping(text: str) -> str:
    words = text.split()
    labels = [classify(w) for w in words]
    groups = {}
    for word, label in zip(words, labels, strict=True):
        groups.setdefault(label, []).append(word)
    return json.dumps(groups, sort_keys=True)


def dict_of_zip(text: str) -> dict:
    words = text.split()
    summaries = [summarize(w) for w in words]
    by_summary = dict(zip(summaries, words, strict=True))
    return {
        "json": json.dumps(by_summary, sort_keys=True),
        "keys": ",".join(by_summary),
        "types": sorted({type(k).__name__ for k in by_summary}),
    }


def dict_update_pairs(text: str) -> list:
    words = text.split()
    expansions = [expand(w) for w in words]
    table = {}
    table.update(zip(expansions, words, strict=True))
    return sorted(table.items())


def percent_and_spec_formatting(text: str) -> list[str]:
    words = text.split()
    sizes = [len(summarize(w)) for w in words]
    rating = score(text)
    return [
        "%d words, %05.1f avg, %x max" % (len(sizes), sum(sizes) / len(sizes), max(sizes)),  # noqa: UP031
        f"{rating.strip():>{max(sizes) + 4}}|{float(rating):07.2f}",
        "{0:<8}|{1:^6}".format(*words[:2]),  # noqa: UP030
    ]


def ordered_and_counted_keys(text: str) -> dict:
    words = text.split()
    labels = [classify(w) for w in words]
    first_seen = collections.OrderedDict(zip(labels, words, strict=True))
    defaults = dict.fromkeys(labels, 0)
    return {
        "ordered": json.dumps(first_seen),
        "defaults": json.dumps(defaults, sort_keys=True),
        "counted": collections.Counter(labels).most_common(),
    }


def answers_as_keys_and_members(text: str) -> dict:
    words = text.split()
    labels = [classify(w) for w in words]
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    seen, duplicates = set(), []
    for label in labels:
        if label in seen:
            duplicates.append(label)
        seen.add(label)
    return {
        "counts": sorted(counts.items()),
        "dups": duplicates,
        "kinds": sorted(frozenset(labels)),
        "has_math": "MATH" in labels,
    }


# --- ranking -----------------------------------------------------------------------------------


def heapq_top(text: str) -> dict:
    words = text.split()
    best = heapq.nlargest(2, words, key=lambda w: score(w))
    worst = heapq.nsmallest(2, words, key=lambda w: summarize(w))
    return {"best": best, "worst": worst}


def sorted_by_len(question: str) -> dict:
    answers = [generate(f"{question}{'?' * i}") for i in range(3)]
    return {
        "by_len": sorted(answers, key=len),
        "by_lower": sorted(answers, key=str.lower, reverse=True),
        "longest": max(answers, key=len),
        "firsts": [a[:4] for a in sorted(answers)],
    }


def rank_dict_by_value(text: str) -> list:
    words = text.split()
    scores = {w: score(w) for w in words}
    ranked = sorted(scores.items(), key=lambda kv: float(kv[1]), reverse=True)
    top = max(scores, key=scores.get)
    return [top, *(f"{w}={s.strip()}" for w, s in ranked)]


# --- splitting, slicing, reversing -----------------------------------------------------------


def split_fan_out(topic: str) -> list[str]:
    plan = outline(topic)
    parts = [p.strip() for p in plan.split(";")]
    return [expand(p.replace(" ", "_")) for p in parts]


def slice_and_partition(question: str) -> dict:
    answer = generate(question)
    head, _, tail = answer.partition(">")
    pieces = [summarize(head), summarize(tail or "empty"), summarize(answer[1:5])]
    return {"pieces": pieces, "tail": tail, "rest": answer[-3:]}


def reversed_results(text: str) -> dict:
    answers = [generate(w) for w in text.split()]
    return {
        "backwards": "".join(reversed(answers[0])),
        "order": " ".join(reversed(answers)),
        "sliced": answers[::-1][0],
        "chars": list(reversed(answers[-1]))[:3],
    }


def list_and_tuple_of_result(text: str) -> dict:
    items = items_of(text)
    first = generate(text)
    return {
        "list": list(items),
        "tuple": tuple(items)[:2],
        "chars": list(first)[:4],
        "enum": list(enumerate(items, start=1)),
        "iter": next(iter(first)),
    }


# --- any/all, comparisons, membership, isinstance ----------------------------------------------


def any_all_checks(text: str) -> dict:
    words = text.split()
    labels = [classify(w) for w in words]
    lazy_any = any(classify(f"{w}!").strip() == "MATH" for w in words)
    return {
        "any_math": any(label == "MATH" for label in labels),
        "all_chat": all(label == "chat" for label in labels),
        "lazy_any": lazy_any,
    }


def chained_compare_and_in(text: str) -> list[str]:
    words = text.split()
    scores = [score(w) for w in words]
    kept = [w for w, s in zip(words, scores, strict=True) if 2.0 <= float(s) < 6.0]
    label = classify(text)
    route = "human" if label.strip() not in {"chat", "MATH"} else "bot"
    return [*kept, route, str("!" in generate(text))]


def walrus_comprehension(text: str) -> dict:
    words = text.split()
    made = [(y := summarize(w)) for w in words]
    last = y
    kept = [s for w in words if len(s := expand(w)) > 5]
    return {"made": made, "last": last, "kept": kept}


def isinstance_checks(question: str) -> list[str]:
    answer = generate(question)
    llm = model("checker")
    reply = llm.complete(question)
    return [
        type(answer).__name__,
        str(isinstance(answer, str)),
        str(isinstance(reply.text, (bytes, int))),
        str(callable(answer)),
        str(hasattr(reply, "text")),
    ]


# --- routing by an answer ----------------------------------------------------------------------

ROUTES = {"MATH": "calculator", "chat": "smalltalk"}


def dict_get_routing(question: str) -> list[str]:
    raw = ROUTES.get(classify(question), "fallback")
    stripped = ROUTES.get(classify(f"{question} again").strip(), "fallback")
    return [raw, stripped, generate(f"{stripped}: {question}")]


class Tools:
    def calculator(self, question: str) -> str:
        return expand(question.replace(" ", ""))

    def search(self, question: str) -> str:
        return generate(f"search {question}")


TOOLS = Tools()


def getattr_by_answer(question: str) -> str:
    name = pick_tool(question)
    tool = getattr(TOOLS, name)
    missing = getattr(TOOLS, name + "_v2", None)
    return f"{tool(question)} / {missing} / {hasattr(TOOLS, name)}"


# --- bytes and hashes --------------------------------------------------------------------------


def hash_dedupe(text: str) -> dict:
    words = text.split()
    answers = [generate(w) for w in [*words, words[0]]]
    digests = [hashlib.sha256(a.encode()).hexdigest()[:8] for a in answers]
    unique = {}
    for digest, answer in zip(digests, answers, strict=True):
        unique.setdefault(digest, answer)
    first = answers[0]
    return {
        "unique": sorted(unique.values()),
        "b64": base64.b64encode(first.encode("utf-8")).decode(),
        "bytes": len(bytes(first, "utf-8")),
        "md5": hashlib.md5(bytes(answers[1], "utf-8")).hexdigest()[:6],
    }


# --- numbered prompts, strict zip ------------------------------------------------------------


def numbered_strict_zip(text: str) -> list[str]:
    words = text.split()
    prompts = [f"{i}. {w}" for i, w in enumerate(words, start=1)]
    answers = [generate(p) for p in prompts]
    items = items_of(text)  # drops digits: `zip(strict=True)` raises for such inputs
    return [f"{p} -> {a} [{it}]" for p, a, it in zip(prompts, answers, items, strict=True)]


# --- printing and logging ----------------------------------------------------------------------


def print_to_buffer(text: str) -> str:
    answers = [generate(w) for w in text.split()]
    buf = io.StringIO()
    for i, answer in enumerate(answers, start=1):
        print(i, answer, sep=": ", file=buf)
    print(*answers, sep=" | ", file=buf)
    return buf.getvalue()


def redirect_stdout_report(text: str) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        answers = [generate(w) for w in text.split()]
        for answer in answers:
            print(answer.strip("!"))
        print(len(answers), "answers")
    return buf.getvalue()


class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


log = logging.getLogger("corpus.text")
log.setLevel(logging.INFO)
log.propagate = False
HANDLER = ListHandler()
log.addHandler(HANDLER)


def logging_results(question: str) -> list[str]:
    HANDLER.messages = []
    answers = [generate(f"{question} take {i}") for i in range(3)]
    for i, answer in enumerate(answers):
        log.info("answer %d: %s", i, answer)
    log.info("label=%r", classify(question))
    log.debug("never shown %s", answers)
    return list(HANDLER.messages)


# --- errors and asserts ------------------------------------------------------------------------


def leaf_error_caught(text: str) -> list[str]:
    out = []
    for word in text.split():
        try:
            out.append(checked(word))
        except ValueError as e:
            out.append(f"{e} ({type(e).__name__}, {e.args[0][:7]})")
    return out


def leaf_error_escapes(text: str) -> str:
    answers = [checked(w) for w in text.split()]
    return " ".join(answers)


def assert_on_results(question: str) -> str:
    answers = [generate(f"{question} ~{i}") for i in range(3)]
    assert all(isinstance(a, str) for a in answers)
    assert len(answers) == 3, answers
    label = classify(question)
    assert label.strip() != "MATH", f"maths is not allowed: {label!r}"
    return " ".join(answers)


def json_error_message(text: str) -> str:
    raw = extract(text)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        return f"bad json at {e.pos}: {e.msg}"
    return json.dumps(value)


# --- a model's results -------------------------------------------------------------------------

WRITER = model("writer", responses=lambda p, s: f"Draft {s} about {p.split()[0]}: fine. ok.")


def model_text_handling(question: str) -> dict:
    outs = [WRITER.complete(f"{question} #{i}", sample=i) for i in range(3)]
    texts = [o.text for o in outs]
    sentences = [s.strip() for t in texts for s in t.split(".") if s.strip()]
    return {
        "longest": max(texts, key=len),
        "sentences": len(sentences),
        "json": json.dumps({"texts": texts}, sort_keys=True),
        "upper": [t.upper()[:8] for t in texts],
        "numbers": re.findall(r"Draft (\d)", " ".join(texts)),
    }


WORDS = [("alpha beta gamma delta",), ("one two 3 four",), ("x y z w",)]
QUESTIONS = [("What is XLA?",), ("add 2 and 3",), ("tell me a story",)]
TEMPLATES = [("a {one} b {two}",), ("{x}{y}{z}",), ("nothing here",)]
TOPICS = [("jax compilers",), ("rust",), ("tea ceremony in Kyoto",)]
ERRS = [("ok fine",), ("good bad ugly",), ("bad",)]
PROSE = [("a b c",), ("prose here",), ("x y",)]


PROGRAMS = [
    Program("template_report", template_report, QUESTIONS, width=3, depth=1),
    Program("format_map_missing", format_map_missing, QUESTIONS, width=2, depth=1),
    Program("repr_str_format", repr_str_format, QUESTIONS, width=2, depth=1),
    Program("textwrap_results", textwrap_results, QUESTIONS, width=2, depth=1),
    # each match's expansion depends on the template alone: all at once
    Program("regex_callback", regex_callback, TEMPLATES, width=3, depth=1),
    # the two substitutions' expansions (3 matches each) depend on the template alone
    Program("regex_def_callbacks", regex_def_callbacks, TEMPLATES, width=6, depth=1),
    Program("findall_over_answers", findall_over_answers, QUESTIONS, width=4, depth=1),
    Program("json_round_trip", json_round_trip, QUESTIONS, width=3, depth=1),
    Program("json_parse_types", json_parse_types, WORDS, width=3, depth=1),
    Program("csv_export", csv_export, WORDS, width=8, depth=1),
    Program("defaultdict_grouping", defaultdict_grouping, WORDS, width=4, depth=1),
    Program("setdefault_grouping", setdefault_grouping, WORDS, width=4, depth=1),
    Program("dict_of_zip", dict_of_zip, WORDS, width=4, depth=1),
    Program("dict_update_pairs", dict_update_pairs, WORDS, width=4, depth=1),
    # the summaries and the score are independent: all at once
    Program("percent_and_spec_formatting", percent_and_spec_formatting, WORDS, width=5, depth=1),
    Program("ordered_and_counted_keys", ordered_and_counted_keys, WORDS, width=4, depth=1),
    Program("answers_as_keys_and_members", answers_as_keys_and_members, WORDS, width=4),
    # the scores of `nlargest` and the summaries of `nsmallest`: all at once
    Program("heapq_top", heapq_top, WORDS, width=8, depth=1),
    Program("sorted_by_len", sorted_by_len, QUESTIONS, width=3, depth=1),
    Program("rank_dict_by_value", rank_dict_by_value, WORDS, width=4, depth=1),
    Program("split_fan_out", split_fan_out, TOPICS, width=3, depth=2),
    Program("slice_and_partition", slice_and_partition, QUESTIONS, width=3, depth=2),
    Program("reversed_results", reversed_results, WORDS, width=4, depth=1),
    Program("list_and_tuple_of_result", list_and_tuple_of_result, WORDS, width=2, depth=1),
    # the lazy `any` makes each `!` call only if the one before was not MATH; the labels
    # wave runs beside its first call
    Program("any_all_checks", any_all_checks, WORDS, width=5, depth=lambda c: made(c, "!")),
    # the scores, the label and the last answer are independent: all at once
    Program("chained_compare_and_in", chained_compare_and_in, WORDS, width=6, depth=1),
    # every call is made whatever the filter keeps: all independent
    Program("walrus_comprehension", walrus_comprehension, WORDS, width=8, depth=1),
    Program("isinstance_checks", isinstance_checks, QUESTIONS, width=2, depth=1),
    # the two labels at once; the answer needs the second
    Program("dict_get_routing", dict_get_routing, QUESTIONS, width=2, depth=2),
    Program("getattr_by_answer", getattr_by_answer, QUESTIONS, width=1, depth=2),
    Program("hash_dedupe", hash_dedupe, WORDS, width=5, depth=1),
    Program("numbered_strict_zip", numbered_strict_zip, WORDS, width=5, depth=1),
    Program("print_to_buffer", print_to_buffer, WORDS, width=4, depth=1),
    Program("redirect_stdout_report", redirect_stdout_report, WORDS, width=4, depth=1),
    # the answers and the label are independent: all at once
    Program("logging_results", logging_results, QUESTIONS, width=4, depth=1),
    # each word's check is caught on its own: the checks are independent
    Program("leaf_error_caught", leaf_error_caught, ERRS, width=3, depth=1),
    Program("leaf_error_escapes", leaf_error_escapes, ERRS, width=3, depth=1),
    # the answers and the label are independent: all at once
    Program("assert_on_results", assert_on_results, QUESTIONS, width=4, depth=1),
    Program("json_error_message", json_error_message, PROSE, width=1, depth=1),
    Program("model_text_handling", model_text_handling, QUESTIONS, width=3, depth=1),
]


_USED = "(a result used before the next call is made: docs/sharp-bits.md)"

# (program, mode): why the overlap falls short of the natural width
KNOWN_SHORT = {
    (name, mode): why
    for name, why in {
        "regex_callback": "`re.sub` needs each callback's expansion before it calls the "
        f"callback for the next match {_USED}",
        "regex_def_callbacks": "`re.sub` and `pattern.subn` need each callback's expansion "
        f"before they call the callback for the next match, and the first substitution "
        f"ends before the second starts {_USED}",
        "json_parse_types": "`json.loads(extract(...))` parses each extraction before the "
        f"next is asked for {_USED}",
        "percent_and_spec_formatting": "`len(summarize(w))` measures each summary before "
        f"the next is asked for, and `score(text)` is made after them {_USED}",
        "heapq_top": "`heapq.nlargest` compares the scores before `heapq.nsmallest` asks "
        f"for the summaries {_USED}",
        "chained_compare_and_in": "the filter's `float(s)` uses every score before "
        f"`classify` is made, and `label.strip()` the label before `generate` is {_USED}",
        "walrus_comprehension": "the filter's `len(s := expand(w))` uses each expansion "
        f"before the next is asked for {_USED}",
        "dict_get_routing": "`ROUTES.get(classify(question), ...)` hashes the first label "
        f"before the second `classify` is made {_USED}",
        "logging_results": "`log.info(..., answer)` hands each answer to `logging` (library "
        f"code receives real values) before `classify` is made {_USED}",
        "leaf_error_caught": "each `checked(word)` sits in a `try` body, where a call waits "
        "for its result (docs/sharp-bits.md): the checks run one at a time",
        "assert_on_results": "`assert all(isinstance(a, str) for a in answers)` uses every "
        f"answer before `classify` is made {_USED}",
    }.items()
    for mode in ("auto", "trace", "dynamic")
}


@pytest.mark.parametrize("program, mode", cases(PROGRAMS, KNOWN_SHORT))
def test_program_gives_plain_result_calls_and_overlap(program, mode):
    check(program, mode)
