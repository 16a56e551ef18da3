"""The test session simulates eight CPU devices (set in conftest.py before JAX starts)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec


def test_jax_sees_eight_cpu_devices() -> None:
    devices = jax.devices()
    assert len(devices) == 8
    assert {d.platform for d in devices} == {"cpu"}
    mesh = jax.make_mesh((8,), ("data",))
    x = jax.device_put(jnp.arange(16.0), NamedSharding(mesh, PartitionSpec("data")))
    assert len(x.addressable_shards) == 8
    assert float(x.sum()) == 120.0
