"""Tutorial 4, going parallel with `pmap` on a simulated 8-device mesh.

Purpose: split a batch over devices. Eight CPU devices are simulated with `XLA_FLAGS`
(set below, before JAX starts), so this runs on a laptop and unchanged on eight GPUs.
`pmap` is built on `jax.shard_map` over a 1-D mesh: each device runs `vmap(f)` over its
contiguous block, and the result stays sharded over the devices. For Python operators
`num_workers` caps how many calls run at once.

Features: `xcs.pmap` with the default devices, `num_workers`, `axis_name` with
`jax.lax.psum`; a Python operator under `pmap(num_workers=...)`; the uneven-batch error.

How to run (page: docs/tutorials/04-pmap.md):

    python examples/basic/04_pmap_devices.py
"""

# expect: ^devices: 8$
# expect: ^16 rows over 8 devices: 2 rows each, spec P\('pmap',\)$
# expect: ^num_workers=4: 4 devices, matches vmap: True$
# expect: ^psum over 8 devices: \[28\. 28\. 28\. 28\. 28\. 28\. 28\. 28\.\]$
# expect: ^python pmap: \['Q0', 'Q1', 'Q2', 'Q3', 'Q4', 'Q5'\], at most 2 in flight$
# expect: ^TransformError: .*10 items.*8 devices.*num_workers=5 or 2

# --8<-- [start:devices]
import os

os.environ.setdefault(
    "XLA_FLAGS", "--xla_force_host_platform_device_count=8"
)  # before JAX

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import ember_xcs as xcs  # noqa: E402

print("devices:", jax.device_count())
# --8<-- [end:devices]


# --8<-- [start:split]
def normalize(row):
    return row / jnp.linalg.norm(row)


rows = jnp.arange(1.0, 16 * 4 + 1).reshape(16, 4)
out = xcs.pmap(normalize)(rows)
blocks = {shard.data.shape[0] for shard in out.addressable_shards}
print(
    f"16 rows over {len(out.sharding.device_set)} devices: {blocks.pop()} rows each,"
    f" spec {out.sharding.spec}"
)
# --8<-- [end:split]

# --8<-- [start:workers]
half = xcs.pmap(normalize, num_workers=4)(rows)
same = bool(jnp.allclose(half, xcs.vmap(normalize)(rows)))
print(
    f"num_workers=4: {len(half.sharding.device_set)} devices, matches vmap: {same}"
)


def share(x):
    return jax.lax.psum(x, "i")  # a collective across the devices


print("psum over 8 devices:", xcs.pmap(share, axis_name="i")(jnp.arange(8.0)))
# --8<-- [end:workers]

# --8<-- [start:python]
import time  # noqa: E402


@xcs.op
def shout(question: str) -> str:
    time.sleep(0.02)  # an LLM call
    return question.upper()


timeline = xcs.Timeline()
with xcs.execution_options(hooks=(timeline,)):
    answers = xcs.pmap(shout, num_workers=2)([f"q{i}" for i in range(6)])
print(
    f"python pmap: {answers}, at most {timeline.max_concurrency()} in flight"
)
# --8<-- [end:python]

# --8<-- [start:error]
try:
    xcs.pmap(normalize)(jnp.ones((10, 4)))
except xcs.TransformError as error:
    print(f"TransformError: {error}")
# --8<-- [end:error]
