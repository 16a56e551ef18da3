"""Tutorial 3, batching with `vmap`: one function, a batch of inputs, `in_axes` to say how.

Purpose: write a function for one item and map it over a batch. A numeric function
becomes `jax.jit(jax.vmap(f))`; a Python operator (an LLM call) becomes one scheduler
node per item, run concurrently, results in input order.

Features: `xcs.vmap` with `in_axes` as an int, a tuple with `None` (broadcast), a dict
prefix and a negative axis; `out_axes`; `axis_size` for n samples of one prompt; a
Python operator mapped concurrently; the `TransformError` for a mismatched batch.

How to run (page: docs/tutorials/03-batching-vmap.md):

    python examples/basic/03_vmap_in_axes.py
"""

# expect: ^scores \(0, None\): \(4, 16\)$
# expect: ^columns \(in_axes=1\): \(6,\) equals x.sum\(0\): True$
# expect: ^dict prefix: \(4,\)$
# expect: ^out_axes=1: \(16, 4\)$
# expect: ^drafts: \['a: q0', 'a: q1', 'a: q2', 'a: q3'\], 4 in flight$
# expect: ^samples: \['sample 0 of q', 'sample 1 of q', 'sample 2 of q'\]$
# expect: ^TransformError: vmap\(score\): mapped arguments disagree on the batch size

# --8<-- [start:numeric]
import jax.numpy as jnp

import ember_xcs as xcs


def score(query, keys):
    return keys @ query  # one query against every key


queries = jnp.ones((4, 8))  # 4 queries of dimension 8
keys = jnp.ones((16, 8))  # 16 keys, shared by every query

scores = xcs.vmap(score, in_axes=(0, None))(
    queries, keys
)  # map queries, broadcast keys
print("scores (0, None):", scores.shape)
# --8<-- [end:numeric]

# --8<-- [start:axes]
x = jnp.arange(24.0).reshape(4, 6)
column_sums = xcs.vmap(jnp.sum, in_axes=1)(x)  # one call per column
print(
    "columns (in_axes=1):",
    column_sums.shape,
    "equals x.sum(0):",
    bool((column_sums == x.sum(0)).all()),
)


def shifted(batch):
    return batch["q"].sum() + batch["bias"]


rows = {"q": queries, "bias": jnp.float32(1.0)}
print(
    "dict prefix:",
    xcs.vmap(shifted, in_axes=({"q": 0, "bias": None},))(rows).shape,
)

transposed = xcs.vmap(score, in_axes=(0, None), out_axes=1)(queries, keys)
print("out_axes=1:", transposed.shape)
# --8<-- [end:axes]

# --8<-- [start:python]
import time  # noqa: E402


@xcs.op
def draft(question: str, style: str) -> str:
    time.sleep(0.03)  # an LLM call
    return f"{style}: {question}"


timeline = xcs.Timeline()
with xcs.execution_options(hooks=(timeline,)):
    drafts = xcs.vmap(draft, in_axes=(0, None))(
        [f"q{i}" for i in range(4)], "a"
    )
print(f"drafts: {drafts}, {timeline.max_concurrency()} in flight")


# --8<-- [end:python]

# --8<-- [start:samples]
import itertools  # noqa: E402

sample_numbers = itertools.count()  # stands in for a model's sampling


@xcs.op
def sample(prompt: str) -> str:
    return f"sample {next(sample_numbers)} of {prompt}"


print("samples:", sorted(xcs.vmap(sample, in_axes=None, axis_size=3)("q")))
# --8<-- [end:samples]

# --8<-- [start:error]
try:
    xcs.vmap(score)(jnp.ones((4, 8)), jnp.ones((5, 16, 8)))
except xcs.TransformError as error:
    print(f"TransformError: {error}")
# --8<-- [end:error]
