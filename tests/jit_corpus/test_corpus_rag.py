"""Corpus: retrieval mixes with inline `jnp` (embeddings, cosine similarity, `top_k` with
a Python int, tuple unpacking), a call per top-k document, map-reduce summarisation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from corpus_harness import Program, cases, check, leaf

import ember_xcs as xcs

DOCS = [
    "JAX compiles numeric code with XLA.",
    "Paris is the capital of France.",
    "Dask schedules task graphs on clusters.",
    "The Seine flows through Paris.",
    "XLA fuses array operations.",
    "Threads overlap slow I/O calls.",
]


def _bag(text: str) -> list[float]:
    vec = [0.0] * 16
    for word in text.lower().split():
        vec[sum(map(ord, word)) % 16] += 1.0
    return vec


@leaf
def embed(text: str) -> list[float]:
    return _bag(text)


@leaf
def answer(prompt: str) -> str:
    return f"answer[{len(prompt)}]: {prompt.splitlines()[-1]}"


@leaf
def relevance(doc: str, question: str) -> float:
    return (len(doc) * 3 + len(question)) % 7 / 7


@xcs.op(numeric=True)
def top(scores, k):
    return jnp.argsort(-scores)[:k]


@xcs.op(numeric=True)
def top_k(scores, k):
    return jax.lax.top_k(scores, k)


@xcs.op(numeric=True)
def cosine(doc_vecs, query_vec):
    doc_vecs = doc_vecs / (jnp.linalg.norm(doc_vecs, axis=1, keepdims=True) + 1e-9)
    return doc_vecs @ (query_vec / (jnp.linalg.norm(query_vec) + 1e-9))


def rag_inline_jnp(question: str, k: int) -> str:
    doc_vecs = jnp.asarray([embed(d) for d in DOCS])
    q = jnp.asarray(embed(question))
    sims = doc_vecs @ q / (jnp.linalg.norm(doc_vecs, axis=1) * jnp.linalg.norm(q) + 1e-9)
    best = jnp.argsort(-sims)[:k]
    context = " | ".join(DOCS[int(i)] for i in best)
    return answer(f"Context: {context}\nQuestion: {question}")


def rag_numeric_top(question: str, k: int) -> list[int]:
    sims = cosine(jnp.asarray([_bag(d) for d in DOCS]), jnp.asarray(_bag(question)))
    return [int(i) for i in top(sims, k)]


def rag_top_k_unpack(question: str, k: int) -> dict:
    sims = cosine(jnp.asarray([_bag(d) for d in DOCS]), jnp.asarray(_bag(question)))
    vals, idx = top_k(sims, k)
    return {"docs": [DOCS[int(i)] for i in idx], "scores": [round(float(v), 4) for v in vals]}


def rerank_per_doc(question: str, k: int) -> str:
    sims = cosine(jnp.asarray([_bag(d) for d in DOCS]), jnp.asarray(_bag(question)))
    top_docs = [DOCS[int(i)] for i in top(sims, k)]
    ratings = jnp.asarray([relevance(doc, question) for doc in top_docs])
    best = top_docs[int(jnp.argmax(ratings))]
    return answer(f"Use: {best}\nQ: {question}")


def answer_per_top_doc(question: str, k: int) -> list[str]:
    sims = cosine(jnp.asarray([_bag(d) for d in DOCS]), jnp.asarray(_bag(question)))
    return [answer(f"Doc: {DOCS[int(i)]}\nQ: {question}") for i in top(sims, k)]


@leaf
def summarize(text: str) -> str:
    return text[:12] + "..."


def map_reduce_summary(text: str, chunk_words: int) -> str:
    words = text.split()
    chunks = [" ".join(words[i : i + chunk_words]) for i in range(0, len(words), chunk_words)]
    partials = [summarize(f"Summarize: {c}") for c in chunks]
    return summarize("Combine:\n" + "\n".join(partials))


QUERIES = [("capital of France", 2), ("XLA compiles", 3)]
TEXTS = [(" ".join(DOCS), 6), (" ".join(DOCS) * 2, 10)]
PROGRAMS = [
    # the documents' and the question's embeddings at once, then the answer
    Program("rag_inline_jnp", rag_inline_jnp, QUERIES, width=7, depth=2),
    Program("rag_numeric_top", rag_numeric_top, QUERIES, width=0, depth=0, traces=True),
    Program("rag_top_k_unpack", rag_top_k_unpack, QUERIES, width=0, depth=0),
    Program("rerank_per_doc", rerank_per_doc, QUERIES, width=3, depth=2),
    Program("answer_per_top_doc", answer_per_top_doc, QUERIES, width=3, depth=1),
    Program("map_reduce_summary", map_reduce_summary, TEXTS, width=7, depth=2),
]


# (program, mode): why the overlap falls short of the natural width
KNOWN_SHORT = dict.fromkeys(
    [("rag_inline_jnp", m) for m in ("auto", "trace", "dynamic")],
    "`jnp.asarray([embed(d) for d in DOCS])` uses the six document embeddings before "
    "`embed(question)` is made (a result used before the next call is made: "
    "docs/sharp-bits.md)",
)


@pytest.mark.parametrize("program, mode", cases(PROGRAMS, KNOWN_SHORT))
def test_program_gives_plain_result_calls_and_overlap(program, mode):
    check(program, mode)
