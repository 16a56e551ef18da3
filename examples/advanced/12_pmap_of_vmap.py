"""`pmap(vmap(f))`: split the outer batch over devices, vectorise the inner one on each.

Purpose: a batch of 16 documents, each of 4 sentences, is scored sentence by sentence.
`vmap` maps the per-sentence function over a document's sentences; `pmap` splits the 16
documents over 8 simulated devices, 2 per device. The result equals plain JAX
`jax.vmap(jax.vmap(f))` and stays sharded over the devices.

Features: `xcs.pmap` of an `xcs.vmap`, output sharding, comparison with plain JAX.

How to run:

    python examples/advanced/12_pmap_of_vmap.py
"""

# expect: ^input: \(16, 4, 8\) = 16 documents x 4 sentences x 8 features$
# expect: ^output: \(16, 4\), sharded over 8 devices, 2 documents per device$
# expect: ^matches jax\.vmap\(jax\.vmap\(f\)\): True$

import os

os.environ.setdefault(
    "XLA_FLAGS", "--xla_force_host_platform_device_count=8"
)  # before JAX

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import ember_xcs as xcs  # noqa: E402

direction = jnp.linspace(-1.0, 1.0, 8)


def sentence_score(sentence):
    """One sentence (8 features) -> one score."""
    return jnp.tanh(sentence @ direction)


documents = jax.random.normal(jax.random.key(0), (16, 4, 8))
print(f"input: {documents.shape} = 16 documents x 4 sentences x 8 features")

scores = xcs.pmap(xcs.vmap(sentence_score))(documents)
per_device = scores.addressable_shards[0].data.shape[0]
devices = len(scores.sharding.device_set)
print(
    f"output: {scores.shape}, sharded over {devices} devices, {per_device} documents per device"
)

reference = jax.vmap(jax.vmap(sentence_score))(documents)
print(
    "matches jax.vmap(jax.vmap(f)):",
    bool(jnp.allclose(scores, reference, atol=1e-6)),
)
