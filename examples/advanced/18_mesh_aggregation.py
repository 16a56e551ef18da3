"""Aggregating over a device mesh: per-block partial results, then collectives.

Purpose: score 64 candidate answers for each of 8 questions; the (8, 64) score matrix is
split over a 2x4 mesh (questions over `data`, candidates over `model`). Each device sees
a (4, 16) block. The best candidate per question and a softmax-weighted consensus need
the whole row, so each device reduces its block and `jax.lax.pmax` / `psum` over
`model` combine the partial results; a global mean needs both axes. Only per-row
numbers cross devices, never the blocks.

Features: `xcs.mesh_sharded` with `out_specs` dropping an axis, `jax.lax.pmax` and
`jax.lax.psum` over one and over two mesh axes, comparison with unsharded NumPy-style JAX.

How to run:

    python examples/advanced/18_mesh_aggregation.py
"""

# expect: ^scores: \(8, 64\) over \{'data': 2, 'model': 4\}, block \(4, 16\)$
# expect: ^best score per question: \(8,\), spec P\('data',\), matches: True$
# expect: ^softmax consensus: \(8,\), matches: True$
# expect: ^global mean: matches: True$

import os

os.environ.setdefault(
    "XLA_FLAGS", "--xla_force_host_platform_device_count=8"
)  # before JAX

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import ember_xcs as xcs  # noqa: E402

P = xcs.PartitionSpec
mesh = xcs.DeviceMesh((2, 4), ("data", "model"))
scores = jax.random.normal(jax.random.key(0), (8, 64))
values = jnp.arange(
    64.0
)  # what each candidate would contribute to a consensus
print(f"scores: {scores.shape} over {dict(mesh.shape)}, block (4, 16)")


def best(block):
    return jax.lax.pmax(
        block.max(axis=1), "model"
    )  # per-row max, then across devices


top = xcs.mesh_sharded(
    best, mesh, in_specs=P("data", "model"), out_specs=P("data")
)(scores)
print(
    f"best score per question: {top.shape}, spec {top.sharding.spec}, matches: {bool(jnp.allclose(top, scores.max(1)))}"
)


def consensus(block, vals):
    row_max = jax.lax.pmax(
        block.max(axis=1, keepdims=True), "model"
    )  # stable softmax
    weights = jnp.exp(block - row_max)
    total = jax.lax.psum(weights.sum(axis=1), "model")
    return jax.lax.psum(weights @ vals, "model") / total


weighted = xcs.mesh_sharded(
    consensus,
    mesh,
    in_specs=(P("data", "model"), P("model")),
    out_specs=P("data"),
)(scores, values)
expected = jax.nn.softmax(scores, axis=1) @ values
print(
    f"softmax consensus: {weighted.shape}, matches: {bool(jnp.allclose(weighted, expected, rtol=1e-4))}"
)


def mean_all(block):
    return jax.lax.psum(block.sum(), ("data", "model")) / scores.size


overall = xcs.mesh_sharded(
    mean_all, mesh, in_specs=P("data", "model"), out_specs=P()
)(scores)
print(
    f"global mean: matches: {bool(jnp.allclose(overall, scores.mean(), atol=1e-6))}"
)
