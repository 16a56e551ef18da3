"""`pmap`: map a function over a batch split across devices (or workers).

**Numeric functions** keep `vmap`'s per-item semantics (same `in_axes` / `out_axes`),
but the batch is split evenly over a 1-D mesh of devices with `jax.shard_map`, not
`jax.pmap` (in maintenance mode since JAX 0.8): each device runs `jax.vmap(fn)` over its
contiguous block of items. So a batch may be any multiple of the device count, not only
equal to it. It is all one `jax.jit`, built once and compiled once per input shape; the
outputs come back sharded over the mesh axis (`NamedSharding(mesh, P(axis))` on the batch
dimension).

*Not divisible: error, not padding.* A batch of 10 on 8 devices could be padded to 16 and
sliced back, but the sliced result can no longer be evenly sharded (JAX returns it
replicated, gathered onto every device), which silently defeats the point of `pmap`. The
error names the batch size and device count and lists the `num_workers` values that do
divide the batch.

*Collectives.* With `axis_name`, the mesh axis gets that name and `fn` may call
`jax.lax.psum(x, axis_name)` and friends. These reduce across devices, so they mean what
`jax.pmap` means only with one item per device; `axis_name` therefore requires the batch
to equal the device count, and says so when it does not.

*Varying-axes check off.* `jax.shard_map` runs here with `check_vma=False`, as
`jax.pmap` itself does: with the check on, a `lax.scan` whose carry starts as a constant
and picks up `lax.axis_index(axis_name)` fails with a carry-type error ("manual axis
types do not match") that `jax.pmap` does not raise. With it off, a collective naming an
axis that is not bound is a `NameError` (our `AxisNameError`), as under `jax.pmap`.

**Python operators** ignore devices: the batch is split into items as by `vmap` and run
on the scheduler with at most `num_workers` calls in flight, results gathered in input
order, every failing item reported (never a silently missing shard).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, PartitionSpec

from .._errors import TransformError, TransformTypeError
from ..operators import guard_numeric
from ._axes import (
    MappedLeaf,
    batch_size,
    check_axes_tree,
    check_out_axes,
    map_prefix,
    mapped_leaves,
)
from ._mesh import available_devices
from ._names import ArgNames, callable_name
from ._transformed import Transformed, holds_arrays
from ._vmap import python_map

__all__ = ["Pmapped", "pmap"]

DEFAULT_AXIS = "pmap"


class Pmapped(Transformed):
    """The callable `pmap` returns; see `pmap`."""

    transform_name = "pmap"

    def __init__(
        self,
        fn: Any,
        num_workers: int | None,
        devices: Sequence[Any] | None,
        in_axes: Any,
        out_axes: Any,
        axis_name: str | None,
        numeric: bool | None,
    ):
        super().__init__(fn, numeric)
        if num_workers is not None and (
            not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 1
        ):
            error = TransformError if isinstance(num_workers, int) else TransformTypeError
            raise error(
                f"{self._label}: num_workers must be a positive int or None, got {num_workers!r}"
            )
        if axis_name is not None and not isinstance(axis_name, str):
            raise TransformTypeError(f"{self._label}: axis_name must be a str, got {axis_name!r}")
        self.num_workers = num_workers
        self.devices = _device_list(devices, self._label)
        self.in_axes = check_axes_tree(in_axes, self._label, "in_axes")
        self.out_axes = check_axes_tree(out_axes, self._label, "out_axes")
        self.axis_name = axis_name
        self._names = ArgNames(fn)

    def _mesh(self) -> Mesh:
        devices = self.devices
        if devices is not None:
            if not devices:
                raise TransformError(f"{self._label}: devices is empty")
            if self.num_workers is not None and self.num_workers != len(devices):
                raise TransformError(
                    f"{self._label}: num_workers={self.num_workers} but {len(devices)} devices "
                    "were given; pass one of them, or make them agree"
                )
        else:
            count = self.num_workers or len(jax.devices())
            devices = available_devices(count, f"{self._label} with num_workers={count}")
        axis = self.axis_name or DEFAULT_AXIS
        return Mesh(np.array(devices, dtype=object), (axis,), axis_types=(AxisType.Auto,))

    def _numeric_runner(self) -> Callable[..., Any]:
        mesh = self._mesh()
        fn, in_axes, out_axes, label = self.wrapped, self.in_axes, self.out_axes, self._label
        axis = mesh.axis_names[0]
        # each device's block is vmapped with the batch axis first; moved after shard_map
        block_out_axes = _tree(out_axes, lambda a: None if a is None else 0)
        out_specs = _tree(out_axes, lambda a: PartitionSpec() if a is None else PartitionSpec(axis))

        def block(target: Any) -> Callable[..., Any]:
            guarded = guard_numeric(target)

            def per_item(*args: Any, **kwargs: Any) -> Any:
                out = guarded(*args, **kwargs)
                check_out_axes(out, out_axes, label)
                return out

            return jax.vmap(per_item, in_axes=in_axes, out_axes=block_out_axes)

        def split(weights: Any, *args: Any, **kwargs: Any) -> Any:
            leaves = mapped_leaves(args, kwargs, in_axes, self._names, label, python=False)
            size = batch_size(leaves, None, label, python=False)
            self._check_split(size, mesh.devices.size, leaves)
            specs = (PartitionSpec(), _in_specs(args, in_axes, axis), _in_specs(kwargs, 0, axis))
            sharded = jax.shard_map(
                lambda w, a, k: block(fn if w is None else w)(*a, **k),
                mesh=mesh,
                in_specs=specs,
                out_specs=out_specs,
                check_vma=False,  # as jax.pmap: see "Varying-axes check off" above
            )
            return map_prefix(_batch_axis_to, out_axes, sharded(weights, args, kwargs))

        split.__name__ = callable_name(fn)
        if holds_arrays(fn):
            # weights are inputs (replicated on every device), not constants baked into the
            # executable: replacing an operator's arrays takes effect on the next call
            return functools.partial(jax.jit(split), fn)

        return functools.partial(jax.jit(split), None)  # a function: nothing to pass

    def _check_split(self, size: int, devices: int, leaves: list[MappedLeaf]) -> None:
        path, _, axis = leaves[0]
        where = f"{path} along axis {axis}"
        if self.axis_name is not None and size != devices:
            raise TransformError(
                f"{self._label}: axis_name={self.axis_name!r} makes collectives reduce across "
                f"devices, which needs exactly one item per device, but the batch has {size} "
                f"items ({where}) for {devices} devices; {self._one_item_per_device(size, devices)}"
            )
        if size % devices:
            fits = [d for d in range(devices - 1, 1, -1) if size % d == 0][:3] or [1]
            raise TransformError(
                f"{self._label}: the batch has {size} items ({where}), which does not split "
                f"evenly over {devices} devices; pad the batch to a multiple of {devices}, "
                f"pass num_workers={' or '.join(map(str, fits))} (they divide {size}), or "
                "use xcs.vmap on one device"
            )

    def _one_item_per_device(self, size: int, devices: int) -> str:
        """How to give each of the devices one item of a batch of `size`, with the devices
        JAX has: fewer devices, or (for a batch larger than them all) fewer, bigger items."""
        if size == 0:
            return "pass at least one item, or drop axis_name to map an empty batch"
        seen = len(jax.devices())
        fits = max(n for n in range(1, min(size, seen) + 1) if size % n == 0)
        use = f"{fits} devices" if self.devices is not None else f"num_workers={fits}"
        if fits == size:
            return f"pass {use}, or drop axis_name to split larger batches"
        if fits == 1:  # no device count JAX has divides it
            return (
                f"JAX sees {seen} devices, so call it on at most {seen} items at a time, or "
                "drop axis_name to split larger batches"
            )
        also = "" if fits == devices else f" and pass {use}"
        return (
            f"JAX sees {seen} devices, so reshape the batch axis into {fits} items of "
            f"{size // fits}{also} (fn then sees {size // fits} at a time), or drop axis_name "
            "to split larger batches"
        )

    def _python_runner(self) -> Callable[..., Any]:
        return python_map(
            self.wrapped,
            self.in_axes,
            self.out_axes,
            self._names,
            self._label,
            None,
            max_workers=self.num_workers,
        )


def _device_list(devices: Any, label: str) -> list[Any] | None:
    if devices is None:
        return None
    if isinstance(devices, str) or not isinstance(devices, Sequence | np.ndarray):
        raise TransformTypeError(
            f"{label}: devices must be a list of devices such as jax.devices()[:4], or None "
            f"for all of them, got {devices!r}"
        )
    return list(devices)


def _tree(axes: Any, leaf: Callable[[int | None], Any]) -> Any:
    """`axes` with every int and None leaf replaced by `leaf(value)`."""
    return jax.tree.map(leaf, axes, is_leaf=lambda a: a is None)


def _in_specs(value: Any, axes: Any, axis: str) -> Any:
    """Shard-map specs mirroring `value`: each mapped leaf split along its own axis."""
    if axes is None:
        return PartitionSpec()
    if isinstance(axes, int):
        return jax.tree.map(lambda leaf: _leaf_spec(leaf, axes, axis), value)
    if isinstance(axes, list | tuple):
        return type(value)(_in_specs(v, a, axis) for v, a in zip(value, axes, strict=True))
    return {k: _in_specs(value[k], axes[k], axis) for k in axes}


def _leaf_spec(leaf: Any, axis_index: int, axis: str) -> PartitionSpec:
    return PartitionSpec(*([None] * (axis_index % np.ndim(leaf))), axis)


def _batch_axis_to(x: Any, out_axis: int | None) -> Any:
    return x if out_axis in (None, 0) else jnp.moveaxis(x, 0, out_axis)


def pmap(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    num_workers: int | None = None,
    devices: Sequence[Any] | None = None,
    in_axes: Any = 0,
    out_axes: Any = 0,
    axis_name: str | None = None,
    numeric: bool | None = None,
) -> Any:
    """Map `fn` over a batch split across devices (numeric) or workers (Python).

    Works bare (`@xcs.pmap`) and with arguments (`@xcs.pmap(num_workers=4)`).

    **Arguments:**

    - `fn`: a numeric function, or a Python function / operator.
    - `num_workers`: numeric: use the first `num_workers` devices (default: all);
      Python: at most this many calls in flight (default: `execution_options`).
    - `devices`: numeric: the exact devices to use (a 1-D mesh over them).
    - `in_axes`, `out_axes`: as in `vmap`; `fn` sees one item at a time.
    - `axis_name`: name of the device axis, for collectives inside `fn`
      (`jax.lax.psum(x, axis_name)`); requires one item per device.
    - `numeric`: force the classification (see `ember_xcs.operators.classify`).

    **Numeric functions** run under `jax.shard_map` over a 1-D mesh (not `jax.pmap`):
    each device vmaps `fn` over its contiguous block, in one `jax.jit` compiled once per
    input shape. As in `jax.pmap`, shard_map's varying-manual-axes check is off
    (`check_vma=False`), so a `lax.scan` carry that picks up `lax.axis_index` works. The
    batch must split evenly over the devices; otherwise a `TransformError` names the size,
    the device count and the `num_workers` values that would divide it (no padding: see
    the module docs). Outputs are sharded over the
    devices along the batch axis. An empty batch returns empty outputs.

    **Python operators** run once per item on the scheduler, at most `num_workers` at a
    time, results in input order; errors name the failing index (`fn[3]`).

    **Returns:** a leaf `Operator` taking the batched arguments; numeric results are
    sharded over the devices along the batch axis. Without `fn`, a decorator.

    **Raises:** `TransformError` when called with a batch that does not split evenly
    over the devices, with `axis_name` and a batch other than the device count, with
    more `num_workers` than devices, or with mismatched batch sizes (as `vmap`).

    !!! example
        ```python
        normalize = xcs.pmap(lambda x: x / jnp.linalg.norm(x))
        y = normalize(jnp.ones((16, 128)))  # 2 rows per device on 8 devices
        assert y.shape == (16, 128) and len(y.sharding.device_set) == jax.device_count()
        ```
    """
    if fn is None:
        return functools.partial(
            pmap,
            num_workers=num_workers,
            devices=devices,
            in_axes=in_axes,
            out_axes=out_axes,
            axis_name=axis_name,
            numeric=numeric,
        )
    return Pmapped(fn, num_workers, devices, in_axes, out_axes, axis_name, numeric)
