"""Corpus: JAX users mixing LLM calls with arrays.

Floats parsed from answers into `jnp.array`, `jax.nn.softmax`, `jnp.argmax`, `jnp.where`,
`jnp.cumsum`, `jnp.bincount(...).astype(jnp.float32)`; `jax.lax.top_k` and
`jnp.argsort(...)[:k]` with `k` from the input, from `len(...)` or from an answer;
`@xcs.op(numeric=True)` operators taking Python ints, floats and bools (sizes, flags,
thresholds; positional, keyword, defaults) and returning tuples, dicts and dataclass
pytrees that the body unpacks, indexes and iterates; `xcs.vmap` of a numeric operator in
the body; NumPy beside `jnp` (`np.mean`, `np.random.default_rng(seed)`); `.item()`,
`.tolist()`, `int(arr[i])` and `:.2f` of arrays in prompts; retrieval with a numeric
embedding, cosine similarity and one call per top document; arrays built call by call;
`jnp.asarray` of pending results mixed with numbers; `jnp.zeros(len(docs))`; a user's own
`jax.jit` helper; `jax.grad` of a loss over parsed numbers. Every program returns Python
values (rounded floats, lists), as a user comparing outputs would.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from corpus_harness import Program, cases, check, leaf, model

import ember_xcs as xcs

DOCS = [
    "JAX compiles numeric code with XLA.",
    "Paris is the capital of France.",
    "Dask schedules task graphs on clusters.",
    "The Seine flows through Paris.",
    "XLA fuses array operations.",
]
EXAMPLES = [
    "2 + 2 = 4",
    "the sky is blue because of Rayleigh scattering",
    "water boils at 100 C at sea level",
    "XLA is a compiler for linear algebra",
    "Paris is in France",
    "a byte has 8 bits",
]
LABELS = ["yes", "no", "maybe"]


@leaf
def ask(prompt: str) -> str:
    return f"answer({len(prompt)}): {prompt[-20:]}"


@leaf
def rate(text: str) -> str:
    """A judge asked for a 0-10 score."""
    return f"Score: {(sum(map(ord, text)) % 97) / 10:.1f}"


@leaf
def confidence(text: str) -> float:
    return (sum(map(ord, text)) % 89) / 89


@leaf
def how_many(question: str) -> str:
    return f" {1 + len(question.split()) % 3}\n"


@leaf
def classify(text: str) -> str:
    return [" Yes", "No.", "maybe "][sum(map(ord, text)) % 3]


@leaf
def embed(text: str) -> list[float]:
    vec = [0.0] * 8
    for word in text.lower().split():
        vec[sum(map(ord, word)) % 8] += 1.0
    return vec


LLM = model("llm", responses=lambda p, s: f"{(len(p) * 7 + s * 3) % 10}.5")


@xcs.op(numeric=True)
def calibrate(scores, temperature=1.0, *, floor=0.0, clip=True):
    x = scores / temperature
    if clip:
        x = jnp.clip(x, floor, None)
    return jax.nn.softmax(x)


@xcs.op(numeric=True)
def top_k(scores, k):
    return jax.lax.top_k(scores, k)


@xcs.op(numeric=True)
def pick(scores, k, descending=True):
    order = jnp.argsort(-scores) if descending else jnp.argsort(scores)
    return order[:k]


@xcs.op(numeric=True)
def summary(x):
    return {"mean": x.mean(), "std": x.std(), "best": jnp.argmax(x)}


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Ranking:
    order: jax.Array
    scores: jax.Array


@xcs.op(numeric=True)
def rank(scores, descending=True):
    order = jnp.argsort(-scores if descending else scores)
    return Ranking(order=order, scores=scores[order])


@xcs.op(numeric=True)
def hash_embed(ids, dim=16):
    return jax.nn.one_hot(ids % dim, dim).sum(0)


@xcs.op(numeric=True)
def cosine(a, b):
    return a @ b / (jnp.linalg.norm(a) * jnp.linalg.norm(b) + 1e-9)


@xcs.op(numeric=True)
def cosine_lists(doc_vecs, query_vec):
    docs, q = jnp.asarray(doc_vecs), jnp.asarray(query_vec)
    return docs @ q / (jnp.linalg.norm(docs, axis=1) * jnp.linalg.norm(q) + 1e-9)


@xcs.op(numeric=True)
def row_softmax(row, temperature=0.5):
    return jax.nn.softmax(row / temperature)


@xcs.op(numeric=True)
def above(scores, threshold=5.0):
    keep = scores > threshold
    return {"n": len(scores), "kept": keep.sum(), "share": keep.mean(), "threshold": threshold}


@jax.jit
def zscore(x):
    return (x - x.mean()) / (x.std() + 1e-6)


def _loss(w, xs, ys):
    return jnp.mean((w * xs - ys) ** 2)


loss_grad = jax.jit(jax.grad(_loss))


def _score(reply: str) -> float:
    return float(reply.split(":")[1])


def _token_ids(text: str) -> list[int]:
    return [sum(map(ord, word)) for word in text.lower().split()]


def softmax_best_draft(question: str, n: int) -> tuple[str, float]:
    drafts = [ask(f"{question} (draft {i})") for i in range(n)]
    ratings = [rate(d) for d in drafts]
    scores = jnp.array([float(r.split(":")[1]) for r in ratings])
    probs = jax.nn.softmax(scores)
    best = int(jnp.argmax(probs))
    return drafts[best], round(float(probs[best]), 4)


def lax_top_k_answers(question: str, docs: list[str], k: int) -> tuple[list[str], list[float]]:
    ratings = [rate(f"{question} || {d}") for d in docs]
    scores = jnp.array([_score(r) for r in ratings])
    vals, idx = jax.lax.top_k(scores, k)
    answers = [ask(f"Doc: {docs[i]}\nQ: {question}") for i in idx.tolist()]
    return answers, [round(v, 2) for v in vals.tolist()]


def answer_dependent_k(question: str, docs: list[str]) -> list[str]:
    n = how_many(f"How many documents does '{question}' need?")
    ratings = [rate(f"{question} | {d}") for d in docs]
    k = int(n.strip())
    scores = jnp.array([_score(r) for r in ratings])
    order = jnp.argsort(-scores)[:k]
    return [ask(f"Use {docs[int(i)]} for {question}") for i in order]


def calibrated_kwargs(question: str, temperature: float) -> tuple[list[float], str]:
    drafts = [ask(f"{question} v{i}") for i in range(3)]
    confs = jnp.array([confidence(d) for d in drafts])
    probs = calibrate(confs, temperature, floor=0.1)
    raw = calibrate(confs, clip=False)
    return [round(p, 4) for p in probs.tolist()], drafts[int(jnp.argmax(raw))]


def stats_dict_prompt(question: str, n: int) -> tuple[str, float]:
    texts = [LLM.complete(f"Estimate: {question}", sample=i).text for i in range(n)]
    values = jnp.array([float(t) for t in texts])
    s = summary(values)
    msg = ask(f"mean {s['mean']:.2f}, spread {s['std']:.2f}, best sample {s['best'].item()}")
    return msg, round(float(s["mean"]), 3)


def tuple_iterate_prompts(question: str, docs: list[str], k: int) -> list[str]:
    ratings = [rate(f"{question}: {d}") for d in docs]
    scores = jnp.array([_score(r) for r in ratings])
    vals, idx = top_k(scores, k)
    replies = []
    for v, i in zip(vals, idx, strict=True):
        replies.append(ask(f"({v:.2f}) {docs[int(i)]}"))
    return replies


def dataclass_ranking(question: str, docs: list[str], k: int) -> list[str]:
    scores = jnp.asarray([_score(rate(f"{question} ~ {d}")) for d in docs])
    r = rank(scores)
    top = r.order[:k].tolist()
    return [
        ask(f"{docs[i]} scored {s:.1f}") for i, s in zip(top, r.scores[:k].tolist(), strict=True)
    ]


def vmap_cosine_retrieval(question: str, docs: list[str], k: int) -> str:
    q = embed(question)
    vecs = [embed(d) for d in docs]
    sims = xcs.vmap(cosine, in_axes=(0, None))(jnp.array(vecs), jnp.array(q))
    best = jnp.argsort(-sims)[:k]
    answers = [ask(f"Context: {docs[i]}\nQ: {question}") for i in best.tolist()]
    return ask("Combine: " + " | ".join(answers))


def rng_fewshot(question: str, seed: int, n: int) -> tuple[float, str]:
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(EXAMPLES), size=n, replace=False)
    replies = [ask(f"Example: {EXAMPLES[i]}\nQ: {question}") for i in picks]
    confs = [confidence(r) for r in replies]
    return round(float(np.mean(confs)), 4), replies[int(np.argmax(confs))]


def tolist_prompt(question: str, docs: list[str]) -> tuple[str, str]:
    scores = jnp.array([_score(rate(f"{d} vs {question}")) for d in docs])
    order = jnp.argsort(-scores)
    ranking = ask(f"Explain the ranking {order.tolist()} for {question}")
    worst = ask(f"Why is '{docs[int(order[-1])]}' irrelevant?")
    return ranking, worst


def numeric_embed_retrieval(question: str, docs: list[str], k: int) -> str:
    q = hash_embed(jnp.array(_token_ids(question)))
    sims = jnp.array([float(cosine(hash_embed(jnp.array(_token_ids(d))), q)) for d in docs])
    _, idx = jax.lax.top_k(sims, k)
    notes = [ask(f"Notes on: {docs[i]}") for i in idx.tolist()]
    return ask(f"Q: {question}\n" + "\n".join(notes))


def incremental_scores(question: str, docs: list[str]) -> tuple[str, float]:
    scores = jnp.zeros(len(docs))
    for i, d in enumerate(docs):
        scores = scores.at[i].set(float(rate(f"{question} @ {d}").split(":")[1]))
    best = int(jnp.argmax(scores))
    return ask(f"{question} using {docs[best]}"), round(float(scores.sum()), 2)


def append_then_mask(question: str, docs: list[str]) -> str:
    replies = []
    for d in docs:
        replies.append(rate(f"{question}: {d}"))
    scores = jnp.array([float(r.removeprefix("Score: ")) for r in replies])
    mask = jnp.where(scores >= scores.mean(), 1, 0)
    keep = [d for d, m in zip(docs, mask.tolist(), strict=True) if m]
    return ask("Summarize: " + "; ".join(keep))


def mixed_pending_asarray(question: str, prior: float) -> list[float]:
    confs = [confidence(ask(f"{question} #{i}")) for i in range(3)]
    weights = jax.nn.softmax(jnp.asarray(confs + [prior]))
    return [round(w, 4) for w in weights.tolist()]


def vote_bincount(question: str, n: int) -> tuple[str, list[float]]:
    labels = [classify(f"{question} take {i}") for i in range(n)]
    idx = jnp.array([LABELS.index(label.strip(" .").lower()) for label in labels])
    counts = jnp.bincount(idx, length=len(LABELS)).astype(jnp.float32)
    share = counts / n
    return LABELS[int(jnp.argmax(counts))], [round(x, 4) for x in share.tolist()]


def zeros_from_lengths(questions: list[str]) -> tuple[list[int], str]:
    answers = [ask(q) for q in questions]
    lengths = jnp.zeros(len(questions))
    for i, a in enumerate(answers):
        lengths = lengths.at[i].set(len(a))
    longest = ask(f"Expand: {questions[int(jnp.argmax(lengths))]}")
    return [int(x) for x in lengths.astype(jnp.int32)], longest


def user_jax_jit_helper(question: str, n: int) -> tuple[list[float], list[str]]:
    drafts = [ask(f"{question} / {i}") for i in range(n)]
    scores = jnp.array([_score(rate(d)) for d in drafts])
    z = zscore(scores)
    odd = [drafts[i] for i in jnp.nonzero(jnp.abs(z) > 1.0)[0].tolist()]
    return [round(v, 3) for v in z.tolist()], [ask(f"Why odd? {o}") for o in odd]


def grad_calibration(question: str, n: int, steps: int) -> float:
    guesses = [LLM.complete(f"Guess {question} #{i}", sample=i).text for i in range(n)]
    refs = [confidence(f"{question} #{i}") for i in range(n)]
    xs = jnp.array([float(g) for g in guesses])
    ys = jnp.array(refs) * 10
    w = 1.0
    for _ in range(steps):
        w = w - 0.01 * loss_grad(w, xs, ys)
    return round(float(w), 4)


def grad_inline(question: str, n: int) -> tuple[float, float]:
    texts = [LLM.complete(f"Value of {question}?", sample=i).text for i in range(n)]
    target = jnp.array([float(t) for t in texts])
    g = jax.grad(lambda m: jnp.sum((m - target) ** 2))(0.0)
    return round(float(g), 3), round(float(target.mean()), 3)


def where_threshold_followups(question: str, docs: list[str], threshold: float) -> tuple:
    scores = jnp.array([_score(rate(f"{d} ? {question}")) for d in docs])
    (low,) = jnp.where(scores < threshold)
    followups = [ask(f"Clarify {docs[i]}") for i in low.tolist()]
    kept = jnp.where(scores < threshold, 0.0, scores).sum()
    return followups, round(float(kept), 2)


def cumsum_budget(question: str, budget: int) -> tuple[str, int]:
    drafts = [ask(f"{question} part {i}") for i in range(4)]
    lengths = jnp.array([len(d) for d in drafts])
    within = jnp.cumsum(lengths) <= budget
    chosen = [d for d, ok in zip(drafts, within.tolist(), strict=True) if ok]
    return ask("Merge: " + " ".join(chosen)), int(within.sum())


def pick_with_flag(question: str, docs: list[str], k: int, descending: bool) -> list[str]:
    scores = jnp.array([_score(rate(f"{question} # {d}")) for d in docs])
    chosen = pick(scores, k, descending=descending)
    return [ask(f"Discuss {docs[i]}") for i in chosen.tolist()]


def self_consistency_median(question: str, n: int) -> tuple[str, float]:
    texts = [LLM.complete(question, sample=i).text for i in range(n)]
    nums = np.array([float(t) for t in texts])
    median = float(jnp.median(jnp.asarray(nums)))
    verdict = ask(f"median {median:.2f}, std {np.std(nums):.2f}")
    return verdict, round(median, 3)


def prior_weighted_vote(question: str, priors: list[float]) -> tuple[str, list[float]]:
    answers = [ask(f"{question} as expert {i}") for i in range(len(priors))]
    confs = [confidence(a) for a in answers]
    weights = jax.nn.softmax(jnp.array(priors)) * jnp.array(confs)
    best = answers[int(jnp.argmax(weights))]
    return best, [round(w, 4) for w in (weights / weights.sum()).tolist()]


def int_index_prompts(question: str, docs: list[str]) -> tuple[str, str]:
    ratings = [rate(f"{question} -> {d}") for d in docs]
    idx = jnp.argsort(jnp.array([_score(r) for r in ratings]))
    low, high = int(idx[0]), int(idx[-1])
    return ask(f"Contrast {docs[low]} with {docs[high]}"), ask(f"Expand {docs[high]}")


def two_round_tournament(question: str, n: int) -> str:
    drafts = [ask(f"{question} try {i}") for i in range(n)]
    s1 = jnp.array([_score(rate(d)) for d in drafts])
    keep = jnp.argsort(-s1)[: n // 2]
    refined = [ask(f"Improve: {drafts[i]}") for i in keep.tolist()]
    s2 = jnp.array([_score(rate(r)) for r in refined])
    return refined[int(jnp.argmax(s2))]


def numeric_op_on_leaf_lists(question: str, docs: list[str], k: int) -> list[str]:
    sims = cosine_lists([embed(d) for d in docs], embed(question))
    _, idx = top_k(sims, k)
    return [ask(f"Read {docs[int(i)]}") for i in idx]


def vmap_row_softmax(questions: list[str], drafts: list[str]) -> list[str]:
    grid = [[rate(f"{q} / {d}") for d in drafts] for q in questions]
    scores = jnp.array([[_score(r) for r in row] for row in grid])
    probs = xcs.vmap(row_softmax)(scores)
    best = jnp.argmax(probs, axis=1)
    return [ask(f"{q}: {drafts[b]}") for q, b in zip(questions, best.tolist(), strict=True)]


def stats_to_leaf(question: str, n: int) -> str:
    texts = [LLM.complete(f"Rate {question}", sample=i).text for i in range(n)]
    s = summary(jnp.array([float(t) for t in texts]))
    return ask(f"{question}: mean={float(s['mean']):.3f} best={int(s['best'])}")


def normalize_float_list(question: str, k: int) -> dict:
    replies = [ask(f"{question} option {i}") for i in range(4)]
    scores = np.array([confidence(r) for r in replies], dtype=np.float32)
    probs = jax.nn.softmax(jnp.asarray(scores) * 3)
    order = np.argsort(-np.asarray(probs))[:k]
    return {"picked": [replies[i] for i in order], "probs": np.round(probs, 3).tolist()}


def shuffled_judging(question: str, seed: int) -> tuple[list[str], float]:
    drafts = [ask(f"{question} (candidate {i})") for i in range(4)]
    random.Random(seed).shuffle(drafts)  # against position bias in the judge
    scores = jnp.array([confidence(f"{i + 1}. {d}") for i, d in enumerate(drafts)])
    return drafts, round(float(jax.nn.softmax(scores * 4).max()), 4)


def rng_shuffled_pairs(question: str, seed: int) -> list[str]:
    pairs = [(i, ask(f"{question} view {i}")) for i in range(4)]
    np.random.default_rng(seed).shuffle(pairs)
    return [f"{i}:{reply}" for i, reply in pairs]


def numpy_filled_scores(question: str, docs: list[str]) -> tuple[list[float], str]:
    scores = np.zeros(len(docs), dtype=np.float32)
    scores[:] = [confidence(f"{question} :: {d}") for d in docs]
    best = int(np.argmax(scores))
    return np.round(scores, 3).tolist(), ask(f"Answer {question} from {docs[best]}")


def heap_of_confidences(question: str, k: int) -> list[float]:
    confs = [confidence(ask(f"{question} #{i}")) for i in range(5)]
    heapq.heapify(confs)
    return [round(heapq.heappop(confs), 4) for _ in range(k)]


def numeric_dict_report(question: str, docs: list[str], threshold: float) -> str:
    scores = jnp.array([confidence(f"{question} / {d}") for d in docs]) * 10
    stats = above(scores, threshold)
    line = ", ".join(f"{key}={float(value):.2f}" for key, value in stats.items())
    return ask(f"{question}: {line}\n{json.dumps({'n': stats['n']})}")


QUESTION_NS = [("why is the sky blue?", 3), ("what is XLA", 4), ("capital of France", 2)]
DOC_QUERIES = [
    ("capital of France", DOCS, 2),
    ("XLA compiles", DOCS, 3),
    ("rivers", DOCS[:3], 1),
]
DOC_ONLY = [(q, d) for q, d, _ in DOC_QUERIES]
PROGRAMS = [
    Program("softmax_best_draft", softmax_best_draft, QUESTION_NS, width=4, depth=2),
    Program("lax_top_k_answers", lax_top_k_answers, DOC_QUERIES, width=5, depth=2),
    # the count beside every rating
    Program("answer_dependent_k", answer_dependent_k, DOC_ONLY, width=6, depth=2),
    Program(
        "calibrated_kwargs",
        calibrated_kwargs,
        [("why?", 0.5), ("what is XLA", 2.0), ("pick one", 1.0)],
        width=3,
        depth=2,
    ),
    Program("stats_dict_prompt", stats_dict_prompt, QUESTION_NS, width=4, depth=2),
    Program("tuple_iterate_prompts", tuple_iterate_prompts, DOC_QUERIES, width=5, depth=2),
    Program("dataclass_ranking", dataclass_ranking, DOC_QUERIES, width=5, depth=2),
    # the question's and every document's embedding, then one answer per top doc, combine
    Program("vmap_cosine_retrieval", vmap_cosine_retrieval, DOC_QUERIES, width=6, depth=3),
    Program(
        "rng_fewshot",
        rng_fewshot,
        [("why is the sky blue?", 0, 3), ("what is XLA", 7, 4), ("2+2", 42, 2)],
        width=4,
        depth=2,
    ),
    Program("tolist_prompt", tolist_prompt, DOC_ONLY, width=5, depth=2),
    # no call before the numeric ranking: the top documents' notes at once, then the answer
    Program("numeric_embed_retrieval", numeric_embed_retrieval, DOC_QUERIES, width=3, depth=2),
    Program("incremental_scores", incremental_scores, DOC_ONLY, width=5, depth=2),
    Program("append_then_mask", append_then_mask, DOC_ONLY, width=5, depth=2),
    Program(
        "mixed_pending_asarray",
        mixed_pending_asarray,
        [("why?", 0.5), ("what is XLA", 0.0), ("capital of France", 1.5)],
        width=3,
        depth=2,
    ),
    Program("vote_bincount", vote_bincount, QUESTION_NS, width=4, depth=1),
    Program(
        "zeros_from_lengths",
        zeros_from_lengths,
        [(["why?", "how?", "what is XLA"],), (["a", "bb"],), (["one", "two", "three", "four"],)],
        width=4,
        depth=2,
    ),
    Program("user_jax_jit_helper", user_jax_jit_helper, QUESTION_NS, width=4, depth=3),
    # every guess beside every reference
    Program(
        "grad_calibration",
        grad_calibration,
        [("why?", 3, 2), ("what is XLA", 4, 5), ("capital", 2, 1)],
        width=8,
        depth=1,
    ),
    Program("grad_inline", grad_inline, QUESTION_NS, width=4, depth=1),
    Program(
        "where_threshold_followups",
        where_threshold_followups,
        [("capital of France", DOCS, 5.0), ("XLA", DOCS, 3.0), ("rivers", DOCS[:3], 6.5)],
        width=5,
        depth=2,
    ),
    Program(
        "cumsum_budget",
        cumsum_budget,
        [("why is the sky blue?", 80), ("what is XLA", 40), ("pick", 200)],
        width=4,
        depth=2,
    ),
    Program(
        "pick_with_flag",
        pick_with_flag,
        [("capital of France", DOCS, 2, True), ("XLA", DOCS, 3, False), ("r", DOCS[:3], 1, True)],
        width=5,
        depth=2,
    ),
    Program("self_consistency_median", self_consistency_median, QUESTION_NS, width=4, depth=2),
    Program(
        "prior_weighted_vote",
        prior_weighted_vote,
        [("why?", [0.1, 0.5, 0.2]), ("what is XLA", [1.0, 1.0]), ("pick", [0.3, 0.0, 0.9, 2.0])],
        width=4,
        depth=2,
    ),
    Program("int_index_prompts", int_index_prompts, DOC_ONLY, width=5, depth=2),
    Program("two_round_tournament", two_round_tournament, QUESTION_NS, width=4, depth=4),
    # the question's embedding beside the documents'
    Program("numeric_op_on_leaf_lists", numeric_op_on_leaf_lists, DOC_QUERIES, width=6, depth=2),
    Program(
        "vmap_row_softmax",
        vmap_row_softmax,
        [(["why?", "how?"], ["a", "bb", "ccc"]), (["x"], ["p", "q"]), (["u", "v", "w"], ["z"])],
        width=6,
        depth=2,
    ),
    Program("stats_to_leaf", stats_to_leaf, QUESTION_NS, width=4, depth=2),
    Program(
        "shuffled_judging",
        shuffled_judging,
        [("why?", 0), ("what is XLA", 3), ("pick", 11)],
        width=4,
        depth=2,
    ),
    Program(
        "rng_shuffled_pairs",
        rng_shuffled_pairs,
        [("why?", 0), ("what is XLA", 3), ("pick", 11)],
        width=4,
        depth=1,
    ),
    Program("numpy_filled_scores", numpy_filled_scores, DOC_ONLY, width=5, depth=2),
    Program(
        "heap_of_confidences",
        heap_of_confidences,
        [("why?", 2), ("what is XLA", 5), ("pick", 1)],
        width=5,
        depth=2,
    ),
    Program(
        "numeric_dict_report",
        numeric_dict_report,
        [("capital of France", DOCS, 5.0), ("XLA", DOCS, 3.0), ("rivers", DOCS[:3], 6.5)],
        width=5,
        depth=2,
    ),
    Program(
        "normalize_float_list",
        normalize_float_list,
        [("why?", 2), ("what is XLA", 1), ("pick", 3)],
        width=4,
        depth=2,
    ),
]


# (program, mode): why the overlap falls short of the natural width
_HELPER_USES = (
    "a result used before the next call is made (docs/sharp-bits.md): `_score(reply)` "
    "splits each rating"
)
KNOWN_SHORT = {
    **dict.fromkeys(
        [("dataclass_ranking", m) for m in ("auto", "trace", "dynamic")],
        f"`jnp.asarray([_score(rate(...)) for d in docs])`: {_HELPER_USES} before the next "
        "`rate` is made, so the ratings run one at a time",
    ),
    **dict.fromkeys(
        [("tolist_prompt", m) for m in ("auto", "trace", "dynamic")],
        f"`jnp.array([_score(rate(...)) for d in docs])`: {_HELPER_USES} before the next "
        "`rate` is made, so the ratings run one at a time",
    ),
    **dict.fromkeys(
        [("where_threshold_followups", m) for m in ("auto", "trace", "dynamic")],
        f"`jnp.array([_score(rate(...)) for d in docs])`: {_HELPER_USES} before the next "
        "`rate` is made, so the ratings run one at a time",
    ),
    **dict.fromkeys(
        [("pick_with_flag", m) for m in ("auto", "trace", "dynamic")],
        f"`jnp.array([_score(rate(...)) for d in docs])`: {_HELPER_USES} before the next "
        "`rate` is made, so the ratings run one at a time",
    ),
    **dict.fromkeys(
        [("incremental_scores", m) for m in ("auto", "trace", "dynamic")],
        "`scores.at[i].set(float(rate(...).split(':')[1]))` uses each rating before the "
        "loop makes the next call (a result used before the next call is made: "
        "docs/sharp-bits.md)",
    ),
}


@pytest.mark.parametrize("program, mode", cases(PROGRAMS, KNOWN_SHORT))
def test_program_gives_plain_result_calls_and_overlap(program, mode):
    check(program, mode)
