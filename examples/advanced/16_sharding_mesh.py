"""Shard numeric work over a simulated 2x4 device mesh, and map an LLM-like operator.

Runs on a laptop: eight CPU devices are simulated with XLA_FLAGS, set below before JAX
starts. The same code runs unchanged on eight GPUs.

    python examples/advanced/16_sharding_mesh.py
"""

# expect: ^mesh: data=2 model=4 \(8 devices, Auto axes\)$
# expect: ^projection: matches unsharded: True; spec P\('data', 'model'\) over 8 devices; block \(4, 2\)$
# expect: ^pmap: 16 rows over 8 devices, 2 per device; matches vmap: True$
# expect: ^compiled once for 3 calls: True$
# expect: ^vmap\(llm\): \['Q0!', 'Q1!', 'Q2!', 'Q3!'\] in input order$
# expect: ^error: .*8 devices.*num_workers=5 or 2

import os

os.environ["XLA_FLAGS"] = (
    "--xla_force_host_platform_device_count=8"  # before JAX starts
)

import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import ember_xcs as xcs  # noqa: E402

P = xcs.PartitionSpec


def main() -> None:
    mesh = xcs.DeviceMesh((2, 4), ("data", "model"))
    sizes = " ".join(f"{name}={size}" for name, size in mesh.shape.items())
    print(f"mesh: {sizes} ({mesh.devices.size} devices, Auto axes)")

    # data parallel over rows, model parallel over the projection's output columns
    traces = []

    def project(x, w):
        traces.append(x.shape)  # runs while JAX traces: once per new shape
        return jnp.tanh(x @ w)

    sharded = xcs.mesh_sharded(
        project,
        mesh,
        in_specs=(P("data", None), P(None, "model")),
        out_specs=P("data", "model"),
    )
    x = jnp.linspace(-1, 1, 8 * 16).reshape(8, 16)
    w = jnp.linspace(-1, 1, 16 * 8).reshape(16, 8)
    y = sharded(x, w)
    same = bool(np.allclose(y, jnp.tanh(x @ w), atol=1e-6))
    block = y.addressable_shards[0].data.shape
    print(
        f"projection: matches unsharded: {same}; spec {y.sharding.spec} over "
        f"{len(y.sharding.device_set)} devices; block {block}"
    )
    sharded(x * 2, w)
    sharded(x * 3, w)
    print(f"compiled once for 3 calls: {len(traces) == 1}")

    # pmap: a per-row function, batch split evenly over the devices with shard_map
    rows = jnp.arange(1.0, 16 * 4 + 1).reshape(16, 4)
    normalized = xcs.pmap(lambda r: r / jnp.linalg.norm(r))(rows)
    per_device = normalized.addressable_shards[0].data.shape[0]
    matches = bool(
        np.allclose(
            normalized, jax.vmap(lambda r: r / jnp.linalg.norm(r))(rows)
        )
    )
    print(
        f"pmap: {rows.shape[0]} rows over {len(normalized.sharding.device_set)} devices, "
        f"{per_device} per device; matches vmap: {matches}"
    )

    # a Python operator (an LLM call stand-in) maps on the scheduler, concurrently
    @xcs.op
    def llm(prompt: str) -> str:
        time.sleep(0.05 * (4 - int(prompt[1:])))  # later prompts finish first
        return prompt.upper() + "!"

    print(
        f"vmap(llm): {xcs.vmap(llm)(['q0', 'q1', 'q2', 'q3'])} in input order"
    )

    try:
        xcs.pmap(lambda r: r * 2)(rows[:10])
    except xcs.TransformError as error:
        print(f"error: {error}")


if __name__ == "__main__":
    main()
