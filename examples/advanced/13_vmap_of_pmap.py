"""`vmap(pmap(f))`: an outer batch of inner batches, each inner batch split over devices.

Purpose: three experiments, each a batch of 8 samples. `pmap` splits an experiment's 8
samples over 8 simulated devices (one each, so `axis_name` collectives work); `vmap`
maps that over the 3 experiments. `jax.lax.pmean` over the device axis turns each
sample into its experiment's mean, computed across devices.

Features: `xcs.vmap` of an `xcs.pmap` with `axis_name`, a cross-device `pmean`.

How to run:

    python examples/advanced/13_vmap_of_pmap.py
"""

# expect: ^input: \(3, 8\) = 3 experiments x 8 samples$
# expect: ^output: \(3, 8\); each row is its experiment's mean: True$
# expect: ^means: \[ *3\.5 +11\.5 +19\.5\]$

import os

os.environ.setdefault(
    "XLA_FLAGS", "--xla_force_host_platform_device_count=8"
)  # before JAX

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import ember_xcs as xcs  # noqa: E402


def centre(sample):
    return jax.lax.pmean(
        sample, "devices"
    )  # the mean over the 8 devices' samples


experiments = jnp.arange(24.0).reshape(3, 8)
print(f"input: {experiments.shape} = 3 experiments x 8 samples")

means = xcs.vmap(xcs.pmap(centre, axis_name="devices"))(experiments)
rows_constant = bool(
    jnp.allclose(means, experiments.mean(axis=1, keepdims=True))
)
print(
    f"output: {means.shape}; each row is its experiment's mean: {rows_constant}"
)
print("means:", means[:, 0])
