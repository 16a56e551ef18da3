"""Transforms: `vmap`, `pmap`, `mesh_sharded` and device meshes (the JAX boundary).

Numeric functions go to JAX (`jax.vmap`, `jax.shard_map`, `jax.jit` with
`NamedSharding`); Python/LLM operators go to the scheduler, one node per item or chunk.
`ember_xcs.operators.classify` decides which, without calling the function. Every
transform returns a `Transformed` operator: one leaf call for `jit`, `numeric` set.
"""

from ._mesh import DeviceMesh as DeviceMesh
from ._mesh import PartitionSpec as PartitionSpec
from ._mesh_sharded import mesh_sharded as mesh_sharded
from ._pmap import pmap as pmap
from ._transformed import Transformed as Transformed
from ._vmap import vmap as vmap
