"""Tutorial 7, sharding a numeric workload with `mesh_sharded` on a 2x4 mesh.

Purpose: place the rows of an activation matrix over a `data` axis and the columns of a
weight matrix over a `model` axis of a 2x4 device mesh, run one function per device
block, and see where every block lives. Eight CPU devices are simulated (set below,
before JAX starts); the same code runs on eight GPUs.

Features: `xcs.DeviceMesh`, `xcs.PartitionSpec`, `xcs.mesh_sharded` with `in_specs` /
`out_specs`, a contraction split over `model` with `jax.lax.psum`, inputs that start on
one device and are moved, a Python operator over the same mesh (one chunk per device).

How to run (page: docs/tutorials/07-mesh-sharded.md):

    python examples/advanced/17_mesh_sharded_tutorial.py
"""

# expect: ^mesh: \{'data': 2, 'model': 4\}$
# expect: ^x: rows over data -> block \(4, 16\) on each of 8 devices$
# expect: ^w: columns over model -> block \(16, 2\) on each of 8 devices$
# expect: ^y: spec P\('data', 'model'\), block \(4, 2\), matches unsharded: True$
# expect: ^device 5 at mesh \(1, 1\) holds y\[4:8, 2:4\]$
# expect: ^psum: spec P\('data',\), block \(4, 8\), matches unsharded: True$
# expect: ^moved from one device: True$
# expect: ^python chunks: \['x\[0:2\]', 'x\[2:4\]', 'x\[4:6\]', .*'x\[14:16\]'\] \(8 chunks\)$

# --8<-- [start:mesh]
import os

os.environ.setdefault(
    "XLA_FLAGS", "--xla_force_host_platform_device_count=8"
)  # before JAX

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402

import ember_xcs as xcs  # noqa: E402

P = xcs.PartitionSpec
mesh = xcs.DeviceMesh((2, 4), ("data", "model"))
print("mesh:", dict(mesh.shape))
# --8<-- [end:mesh]

# --8<-- [start:place]
x = jax.random.normal(jax.random.key(0), (8, 16))  # activations: 8 rows
w = jax.random.normal(jax.random.key(1), (16, 8))  # weights: 8 columns


def describe(name, array, spec, what):
    placed = jax.device_put(array, NamedSharding(mesh, spec))
    block = placed.addressable_shards[0].data.shape
    print(
        f"{name}: {what} -> block {block} on each of {len(placed.sharding.device_set)} devices"
    )


describe("x", x, P("data", None), "rows over data")
describe("w", w, P(None, "model"), "columns over model")
# --8<-- [end:place]

# --8<-- [start:project]
project = xcs.mesh_sharded(
    lambda x, w: jnp.tanh(x @ w),
    mesh,
    in_specs=(P("data", None), P(None, "model")),
    out_specs=P("data", "model"),
)
y = project(x, w)
same = bool(jnp.allclose(y, jnp.tanh(x @ w), atol=1e-5))
print(
    f"y: spec {y.sharding.spec}, block {y.addressable_shards[0].data.shape}, matches unsharded: {same}"
)

shard = next(s for s in y.addressable_shards if s.device == mesh.devices[1, 1])
rows, cols = shard.index
print(
    f"device {shard.device.id} at mesh (1, 1) holds"
    f" y[{rows.start}:{rows.stop}, {cols.start}:{cols.stop}]"
)
# --8<-- [end:project]

# --8<-- [start:psum]
row_dot = xcs.mesh_sharded(
    lambda x, w: jax.lax.psum(
        x @ w, "model"
    ),  # partial sums per model block, then added
    mesh,
    in_specs=(P("data", "model"), P("model", None)),
    out_specs=P("data"),
)
z = row_dot(x, w)
same = bool(jnp.allclose(z, x @ w, atol=1e-4))
print(
    f"psum: spec {z.sharding.spec}, block {z.addressable_shards[0].data.shape}, matches unsharded: {same}"
)
# --8<-- [end:psum]

# --8<-- [start:moved]
on_one_device = jax.device_put(x, jax.devices()[0])  # committed to device 0
print(
    "moved from one device:", bool(jnp.allclose(project(on_one_device, w), y))
)
# --8<-- [end:moved]


# --8<-- [start:python]
@xcs.op
def label(items: list) -> list:
    return [f"x[{items[0]}:{items[-1] + 1}]"] * len(
        items
    )  # one row per input item


chunks = xcs.mesh_sharded(
    label, mesh, in_specs=P("data"), out_specs=P("data")
)(list(range(16)))
distinct = list(dict.fromkeys(chunks))
print(f"python chunks: {distinct} ({len(distinct)} chunks)")
# --8<-- [end:python]
