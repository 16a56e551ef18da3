"""Device meshes: `DeviceMesh` builds a `jax.sharding.Mesh`; `PartitionSpec` is JAX's.

`DeviceMesh(...)` returns a plain `jax.sharding.Mesh`, so everything JAX accepts a mesh
for accepts it, and `isinstance(mesh, DeviceMesh)` is true for any JAX mesh (so meshes
made with `jax.make_mesh` work wherever ember_xcs asks for a `DeviceMesh`). What the
constructor adds is checking in the user's terms, above all the error when a shape needs
more devices than JAX sees, which says how to simulate more CPU devices.

**Axis types: Auto by default.** Since JAX 0.9, `jax.make_mesh` makes *Explicit* axes:
shardings become part of array types, and `jax.shard_map` refuses an input whose sharding
does not already match its `in_specs`. ember_xcs is called with whatever arrays a
pipeline has (NumPy from a tokenizer, single-device results, outputs of an earlier
sharded step), and its own transforms place their inputs with `NamedSharding` at the
boundary, so the Explicit type discipline buys nothing there and turns ordinary code
downstream (`scores @ weights` on two differently sharded arrays) into sharding-type
errors. Auto axes let XLA propagate and reshard. Pass `axis_types="explicit"` (or a
tuple of `jax.sharding.AxisType`) to opt in; `mesh_sharded` and `pmap` work with both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, PartitionSpec

from .._errors import TransformError, TransformTypeError

__all__ = ["DeviceMesh", "PartitionSpec", "available_devices", "simulate_hint"]

_AXIS_TYPES = {"auto": AxisType.Auto, "explicit": AxisType.Explicit}


def simulate_hint(needed: int) -> str:
    """How to get `needed` simulated CPU devices (the advice every device error gives)."""
    return (
        f"to simulate {needed} CPU devices set "
        f"XLA_FLAGS=--xla_force_host_platform_device_count={needed} before JAX starts, or "
        f"call jax.config.update('jax_num_cpu_devices', {needed}) after `import jax` and "
        "before the first JAX operation"
    )


def available_devices(needed: int, what: str) -> list[Any]:
    """The first `needed` devices, or a `TransformError` saying how to get more."""
    devices = jax.devices()
    if needed > len(devices):
        raise TransformError(
            f"{what} needs {needed} devices but JAX sees {len(devices)} "
            f"({devices[0].platform}); {simulate_hint(needed)}"
        )
    return devices[:needed]


class _MeshMeta(type):
    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, Mesh)


class DeviceMesh(metaclass=_MeshMeta):
    """Build a `jax.sharding.Mesh` from a shape and axis names, or from devices.

    Returns the JAX mesh itself (`isinstance(m, jax.sharding.Mesh)`); any JAX mesh is an
    instance of `DeviceMesh`.

    **Arguments:**

    - `shape`: mesh shape, e.g. `(2, 4)` or `8`. With `devices`, defaults to their count
      (or their array's shape); without, to all devices in one axis.
    - `axis_names`: one name per mesh axis, e.g. `("data", "model")`.
    - `devices`: the devices to use (default: the first `prod(shape)` of `jax.devices()`).
    - `axis_types`: `"auto"` (default; see the module docs for why), `"explicit"`, or a
      tuple of `jax.sharding.AxisType`, one per axis.

    **Returns:** a `jax.sharding.Mesh`.

    **Raises:** `TransformError` when the shape needs more devices than exist (saying how
    to simulate more), when names and shape disagree, or when names repeat.

    !!! example
        ```python
        mesh = xcs.DeviceMesh((2, 4), ("data", "model"))  # needs 8 devices
        one_d = xcs.DeviceMesh(devices=jax.devices()[:4], axis_names=("workers",))
        assert dict(mesh.shape) == {"data": 2, "model": 4}
        assert isinstance(one_d, jax.sharding.Mesh) and one_d.size == 4
        ```
    """

    def __new__(  # type: ignore[misc]
        cls,
        shape: int | Sequence[int] | None = None,
        axis_names: str | Sequence[str] = ("data",),
        *,
        devices: Sequence[Any] | np.ndarray | None = None,
        axis_types: str | tuple[AxisType, ...] = "auto",
    ) -> Mesh:
        names = (
            (axis_names,) if isinstance(axis_names, str) else _as_tuple(axis_names, "axis_names")
        )
        dims = _shape(shape, devices, names)
        _check_names(names, dims)
        types = _axis_types(axis_types, len(dims))
        label = f"DeviceMesh(shape={dims}, axis_names={names})"
        grid = _device_grid(devices, dims, label)
        return Mesh(grid, names, axis_types=types)


def _shape(
    shape: int | Sequence[int] | None, devices: Any, names: tuple[str, ...]
) -> tuple[int, ...]:
    if shape is None:
        if devices is not None and isinstance(devices, np.ndarray):
            return tuple(devices.shape)
        count = len(devices) if devices is not None else len(jax.devices())
        return (count,) if len(names) == 1 else _ask_for_shape(names)
    dims = (shape,) if isinstance(shape, int) else _as_tuple(shape, "shape")
    if not dims or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
        raise TransformError(f"DeviceMesh: shape must be positive ints, got {shape!r}")
    return dims


def _as_tuple(value: Any, what: str) -> tuple[Any, ...]:
    try:
        return tuple(value)
    except TypeError:
        raise TransformTypeError(
            f"DeviceMesh: {what} must be a tuple (or one value for a one-axis mesh), got {value!r}"
        ) from None


def _ask_for_shape(names: tuple[str, ...]) -> tuple[int, ...]:
    raise TransformError(
        f"DeviceMesh: {len(names)} axis names {names} need a shape, e.g. "
        f"shape=({', '.join(['2'] * len(names))}); only a one-axis mesh can default to "
        "every device"
    )


def _check_names(names: tuple[str, ...], dims: tuple[int, ...]) -> None:
    if len(names) != len(dims):
        raise TransformError(
            f"DeviceMesh: shape {dims} has {len(dims)} axes but axis_names {names} has "
            f"{len(names)}; give one name per axis"
        )
    if not all(isinstance(n, str) and n for n in names):
        raise TransformError(f"DeviceMesh: axis names must be non-empty strings, got {names}")
    if len(set(names)) != len(names):
        raise TransformError(f"DeviceMesh: axis names must differ, got {names}")


def _axis_types(axis_types: Any, rank: int) -> tuple[AxisType, ...]:
    if isinstance(axis_types, str):
        if axis_types.lower() not in _AXIS_TYPES:
            raise TransformError(
                f"DeviceMesh: axis_types={axis_types!r}; use 'auto', 'explicit' or a tuple "
                "of jax.sharding.AxisType"
            )
        return (_AXIS_TYPES[axis_types.lower()],) * rank
    types = _as_tuple(axis_types, "axis_types")
    if len(types) != rank or not all(isinstance(t, AxisType) for t in types):
        raise TransformError(
            f"DeviceMesh: axis_types must be 'auto', 'explicit' or {rank} "
            f"jax.sharding.AxisType values, got {axis_types!r}"
        )
    return types


def _device_grid(devices: Any, dims: tuple[int, ...], label: str) -> np.ndarray:
    needed = math.prod(dims)
    if devices is None:
        return np.array(available_devices(needed, label), dtype=object).reshape(dims)
    grid = np.array(list(np.asarray(devices, dtype=object).flat), dtype=object)
    if grid.size != needed:
        raise TransformError(
            f"{label} needs {needed} devices but {grid.size} were given; pass "
            f"{needed} devices or a shape whose product is {grid.size}"
        )
    return grid.reshape(dims)
