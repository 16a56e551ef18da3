"""Inline `jnp` in a jitted body vs the same code in an `@xcs.op(numeric=True)`.

The figures quoted in docs/jit.md ("Inline numeric code"): median microseconds per call,
plain and under `xcs.jit`. Run: `python benchmarks/inline_numeric.py`.
"""

import statistics
import time

import jax
import jax.numpy as jnp

import ember_xcs as xcs

docs = jnp.asarray(jax.random.normal(jax.random.key(0), (64, 32)))


@xcs.op
def ask(prompt):
    return prompt


def inline(q, k):
    sims = docs @ q / (jnp.linalg.norm(docs, axis=1) * jnp.linalg.norm(q))
    idx = jnp.argsort(-sims)[:k]
    return ask(f"{[int(i) for i in idx]}")


@xcs.op(numeric=True)
def rank(docs, q, k):
    sims = docs @ q / (jnp.linalg.norm(docs, axis=1) * jnp.linalg.norm(q))
    return jnp.argsort(-sims)[:k]


def as_op(q, k):
    idx = rank(docs, q, k)
    return ask(f"{[int(i) for i in idx]}")


def bench(fn, n=200):
    q = jnp.ones(32)
    for _ in range(5):
        fn(q, 4)
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn(q, 4)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e6


for name, fn in [
    ("plain inline", inline),
    ("jit inline (dynamic, eager jnp)", xcs.jit(inline)),
    ("plain @op(numeric)", as_op),
    ("jit @op(numeric) (compiled)", xcs.jit(as_op)),
]:
    print(f"{name}: {bench(fn):.0f} us/call")
