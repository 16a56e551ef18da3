"""`mesh_sharded`: run a function over a device mesh with `PartitionSpec`s.

**Numeric functions** get `jax.shard_map` semantics: `fn` sees one *block* of each
argument per device (the block `in_specs` selects), may use collectives over the mesh's
axis names (`jax.lax.psum(x, "model")`), and its block outputs are assembled by
`out_specs`. The whole thing is one `jax.jit` with `NamedSharding(mesh, spec)` as
`in_shardings` and `out_shardings`, built once per argument count and compiled once per
input shape, so outputs carry exactly the sharding asked for. Inputs already placed
elsewhere (committed to other devices or another layout) are moved with
`jax.device_put` first: jit refuses committed arrays whose sharding differs. On a mesh
with Explicit axes, inputs are also `jax.sharding.reshard`-ed inside the jitted function,
because shard_map checks sharding *types* and NumPy inputs arrive typed unsharded. The
checks that give errors in the user's names (`_specs`) run at build and trace time.

**Python operators** cannot be partitioned by a compiler and must not be run twice for
replicated blocks (an LLM call costs money). They are split the way a batch is: the
leading axis of every argument whose spec names a mesh axis is cut into one contiguous
chunk per device of the mesh (so a 2x4 mesh gives 8 workers), `fn` runs once per chunk
on the scheduler (node ids `fn[a:b]`), and the chunk outputs are joined in order: lists
and tuples concatenated, arrays concatenated along axis 0, dicts per key. Arguments with
replicated specs go whole to every chunk; `out_specs` are checked against the mesh but
the joined result lives wherever the operator put it.

`in_specs` may be one spec for every argument, a tuple with one entry per positional
argument (JAX's convention), or, as a convenience, a dict keyed by parameter name
(parameters it leaves out are replicated).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from .._errors import AxisNameError, TransformError, with_article
from ..operators import guard_numeric
from ._names import ArgNames, callable_name, describe
from ._python import as_operator, run_calls
from ._specs import check_spec_tree, check_values, normalize_specs, spec_axes
from ._transformed import Transformed, holds_arrays

__all__ = ["MeshSharded", "mesh_sharded"]


class MeshSharded(Transformed):
    """The callable `mesh_sharded` returns; see `mesh_sharded`."""

    transform_name = "mesh_sharded"

    def __init__(self, fn: Any, mesh: Mesh, in_specs: Any, out_specs: Any, numeric: bool | None):
        super().__init__(fn, numeric)
        if not isinstance(mesh, Mesh):
            raise TransformError(
                f"{self._label}: mesh must be a DeviceMesh / jax.sharding.Mesh, got "
                f"{type(mesh).__name__}; build one with xcs.DeviceMesh((2, 4), ('data', 'model'))"
            )
        self.mesh = mesh
        self._names = ArgNames(fn)
        self.in_specs = self._checked_in_specs(in_specs)
        check_spec_tree(out_specs, mesh, self._label, "out_specs")
        self.out_specs = normalize_specs(out_specs)

    def _checked_in_specs(self, in_specs: Any) -> Any:
        if isinstance(in_specs, Mapping):
            known = self._names.parameters
            for name in in_specs:
                if name not in known:
                    raise TransformError(
                        f"{self._label}: in_specs names {name!r}, which is not a parameter "
                        f"of {callable_name(self.wrapped)} ({', '.join(known) or 'none'})"
                    )
                check_spec_tree(in_specs[name], self.mesh, self._label, f"in_specs for {name}")
            return {k: normalize_specs(v) for k, v in in_specs.items()}
        if isinstance(in_specs, list | tuple) and not isinstance(in_specs, PartitionSpec):
            for i, spec in enumerate(in_specs):
                where = f"in_specs for {self._names.positional(i)}"
                check_spec_tree(spec, self.mesh, self._label, where)
            return tuple(normalize_specs(s) for s in in_specs)
        check_spec_tree(in_specs, self.mesh, self._label, "in_specs")
        return normalize_specs(in_specs)

    def _arg_specs(self, count: int) -> tuple[Any, ...]:
        """One spec tree per positional argument of a call with `count` of them."""
        if isinstance(self.in_specs, Mapping):
            names = self._names.all(count)
            return tuple(self.in_specs.get(name, PartitionSpec()) for name in names)
        if isinstance(self.in_specs, tuple):
            if len(self.in_specs) != count:
                called = ", ".join(self._names.all(count)) or "none"
                raise TransformError(
                    f"{self._label}: in_specs has {len(self.in_specs)} entries but the call "
                    f"passed {count} positional argument(s) ({called}); give one spec per "
                    "argument, one spec for all, or a dict keyed by parameter name"
                )
            return self.in_specs
        return (self.in_specs,) * count

    # --- numeric -----------------------------------------------------------------------------

    def _numeric_runner(self) -> Callable[..., Any]:
        compiled: dict[int, Callable[..., Any]] = {}

        def run(*args: Any, **kwargs: Any) -> Any:
            if kwargs:
                args, rest = self._names.bind(args, kwargs, self._label)
                if rest:
                    raise TransformError(
                        f"{self._label}: keyword-only argument(s) {', '.join(rest)} cannot be "
                        "sharded; pass them positionally or bind them with functools.partial"
                    )
            call = compiled.get(len(args))
            if call is None:
                call = compiled[len(args)] = self._compile(self._arg_specs(len(args)))
            return call(*args)

        return run

    def _compile(self, specs: tuple[Any, ...]) -> Callable[..., Any]:
        mesh, label, out_specs, fn = self.mesh, self._label, self.out_specs, self.wrapped
        shardings = _shardings(mesh, specs)
        replicated = NamedSharding(mesh, PartitionSpec())
        # An operator's arrays (weights) are inputs replicated on every device, not constants
        # baked into the executable: replacing them takes effect on the next call.
        weights = fn if holds_arrays(fn) else None

        def per_block(w: Any, *blocks: Any) -> Any:
            out = guard_numeric(fn if w is None else w)(*blocks)
            check_values(out, out_specs, mesh, label, "output", "out_specs", blocks=True)
            return out

        per_block.__name__ = callable_name(fn)
        mapped = jax.shard_map(
            per_block, mesh=mesh, in_specs=(PartitionSpec(), *specs), out_specs=out_specs
        )

        explicit = all(t == AxisType.Explicit for t in mesh.axis_types)

        def sharded(w: Any, *args: Any) -> Any:
            self._check_args(args, specs)
            if explicit:  # NumPy inputs arrive unsharded in the types; shard_map checks types
                args = _reshard(args, shardings)
            return mapped(w, *args)

        sharded.__name__ = per_block.__name__
        jitted = jax.jit(
            sharded,
            in_shardings=(replicated, *shardings),
            out_shardings=_shardings(mesh, out_specs),
        )

        def call(*args: Any) -> Any:
            w = weights
            if w is not None:  # each array leaf of the operator, replicated
                w = jax.tree.map(lambda leaf: _place_one(leaf, replicated), w)
            try:
                return jitted(w, *_place(args, shardings))
            except ValueError as exc:  # JAX's own check fired first: say it in our words
                self._check_args(args, specs, cause=exc)
                raise
            except AssertionError:  # shard_map's vma check meets an axis no mesh binds
                unbound = _unbound_axis(per_block, mesh, specs, out_specs, w, args)
                if unbound is None:
                    raise
                name = _UNBOUND_NAME.search(str(unbound))
                raise AxisNameError(
                    f"{label}: a collective in the function uses axis name "
                    f"{name[1] if name else '?'!r}, which the mesh does not have; its axes are "
                    f"{tuple(mesh.axis_names)}"
                ) from None

        return call

    def _check_args(self, args: tuple[Any, ...], specs: tuple[Any, ...], cause: Any = None) -> None:
        try:
            for i, (value, spec) in enumerate(zip(args, specs, strict=True)):
                name = self._names.positional(i)
                check_values(value, spec, self.mesh, self._label, name, "in_specs")
        except TransformError as error:
            raise error from cause

    # --- Python ------------------------------------------------------------------------------

    def _python_runner(self) -> Callable[..., Any]:
        name = callable_name(self.wrapped)
        operator = as_operator(self.wrapped, name)
        workers = self.mesh.devices.size

        def run(*args: Any, **kwargs: Any) -> Any:
            args, rest = self._names.bind(args, kwargs, self._label)
            split = self._split_positions(args)
            if not split:  # everything replicated: one call, not one per device
                return run_calls(operator, [name], [(args, rest)])[0]
            size = self._leading_size(args, split)
            bounds = _chunks(size, workers)
            calls = [
                (tuple(_slice(a, lo, hi) if i in split else a for i, a in enumerate(args)), rest)
                for lo, hi in bounds
            ]
            outputs = run_calls(operator, [f"{name}[{lo}:{hi}]" for lo, hi in bounds], calls)
            return _join(outputs, bounds, self._label)

        return run

    def _split_positions(self, args: tuple[Any, ...]) -> set[int]:
        split = set()
        for i, spec in enumerate(self._arg_specs(len(args))):
            name = self._names.positional(i)
            if not isinstance(spec, PartitionSpec):
                raise TransformError(
                    f"{self._label}: in_specs for {name} is "
                    f"{with_article(type(spec).__name__)}; a Python operator takes one "
                    "PartitionSpec per argument (its leading axis is split)"
                )
            if not spec_axes(spec):
                continue
            if spec[0] is None or any(entry is not None for entry in spec[1:]):
                raise TransformError(
                    f"{self._label}: in_specs for {name} is {spec}; a Python operator is split "
                    "along the leading axis only, so give specs like PartitionSpec('data') "
                    "or pass numeric=True if the function is array code"
                )
            split.add(i)
        return split

    def _leading_size(self, args: tuple[Any, ...], split: set[int]) -> int:
        names = {i: self._names.positional(i) for i in sorted(split)}
        sizes = {names[i]: _length(args[i], self._label, names[i]) for i in names}
        if len(set(sizes.values())) > 1:
            listed = ", ".join(f"{n} has {s}" for n, s in sizes.items())
            raise TransformError(
                f"{self._label}: sharded arguments disagree on their leading size: {listed}; "
                "give them the same number of items"
            )
        return next(iter(sizes.values()))


def _shardings(mesh: Mesh, specs: Any) -> Any:
    return jax.tree.map(
        lambda spec: NamedSharding(mesh, spec),
        specs,
        is_leaf=lambda x: isinstance(x, PartitionSpec),
    )


def _reshard(args: tuple[Any, ...], shardings: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        jax.tree.map(
            lambda s, v: jax.tree.map(lambda leaf: jax.sharding.reshard(leaf, s), v),
            sharding,
            value,
            is_leaf=lambda x: isinstance(x, NamedSharding),
        )
        for value, sharding in zip(args, shardings, strict=True)
    )


def _place(args: tuple[Any, ...], shardings: tuple[Any, ...]) -> tuple[Any, ...]:
    """Move jax arrays whose sharding differs; jit would refuse committed ones."""
    return tuple(_place_one(a, s) for a, s in zip(args, shardings, strict=True))


def _place_one(value: Any, sharding: Any) -> Any:
    if not isinstance(sharding, NamedSharding):  # a subtree of specs
        return jax.tree.map(
            _place_one, value, sharding, is_leaf=lambda x: isinstance(x, NamedSharding)
        )
    # duck-typed on purpose: isinstance(x, jax.Array) is an ABC check costing ~0.6 us;
    # tracers (an enclosing jit places them) and NumPy arrays have no `.sharding`
    current = getattr(value, "sharding", None)
    if current is None:
        if isinstance(value, list | tuple | dict):
            return jax.tree.map(lambda leaf: _place_one(leaf, sharding), value)
        return value
    if current is sharding or current == sharding:
        return value
    return jax.device_put(value, sharding)


# --- Python chunks ---------------------------------------------------------------------------


def _length(value: Any, label: str, name: str) -> int:
    if isinstance(value, list | tuple):
        return len(value)
    shape = getattr(value, "shape", None)
    if shape:
        return int(shape[0])
    raise TransformError(
        f"{label}: {name} is {with_article(describe(value))}, which has no leading axis to "
        "split; pass a list or an array, or give it a replicated spec (None)"
    )


def _chunks(size: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous, near-equal `(lo, hi)` ranges, one per worker, none empty."""
    count = min(workers, size)
    return [(i * size // count, (i + 1) * size // count) for i in range(count)]


def _slice(value: Any, lo: int, hi: int) -> Any:
    return value[lo:hi]


def _join(outputs: list[Any], bounds: list[tuple[int, int]], label: str) -> Any:
    if not outputs:
        return []
    first = outputs[0]
    if isinstance(first, Mapping):
        return {k: _join([o[k] for o in outputs], bounds, label) for k in first}
    for out, (lo, hi) in zip(outputs, bounds, strict=True):
        _check_rows(out, hi - lo, lo, hi, label)
    if isinstance(first, list | tuple):
        return type(first)(item for out in outputs for item in out)
    if any(isinstance(o, jax.Array) for o in outputs):
        return jnp.concatenate(outputs, axis=0)
    return np.concatenate(outputs, axis=0)


def _check_rows(out: Any, rows: int, lo: int, hi: int, label: str) -> None:
    if isinstance(out, list | tuple):
        have = len(out)
    elif getattr(out, "shape", None):
        have = int(out.shape[0])
    else:
        raise TransformError(
            f"{label}: the chunk for items {lo}:{hi} returned {with_article(describe(out))}, "
            "which cannot be joined along the leading axis; return a list, an array or a dict "
            "of those, with one row per input item"
        )
    if have != rows:
        raise TransformError(
            f"{label}: the chunk for items {lo}:{hi} returned {have} rows for {rows} inputs; "
            "return one row per input item so chunks join back in order"
        )


def mesh_sharded(
    fn: Callable[..., Any] | None = None,
    mesh: Mesh | None = None,
    *,
    in_specs: Any,
    out_specs: Any,
    numeric: bool | None = None,
) -> Any:
    """Run `fn` over `mesh` with inputs split by `in_specs` and outputs by `out_specs`.

    **Arguments:**

    - `fn`: a numeric function (array code) or a Python function / operator.
    - `mesh`: a `DeviceMesh` (any `jax.sharding.Mesh`).
    - `in_specs`: a `PartitionSpec` for every argument, a tuple with one entry per
      positional argument (each a spec, `None` for replicated, or a tuple/list/dict of
      specs shaped like the argument), or a dict `{parameter name: spec}`.
    - `out_specs`: a `PartitionSpec` or a tree of them shaped like the output.
    - `numeric`: force the classification (see `ember_xcs.operators.classify`).

    **Numeric functions** follow `jax.shard_map`: `fn` receives each device's block and
    may call collectives over mesh axis names. It runs as one `jax.jit` with
    `NamedSharding` in and out shardings, so outputs carry `NamedSharding(mesh,
    out_specs)`. Compiled once per input shape.

    **Python operators**: the leading axis of every argument whose spec names a mesh
    axis is cut into one contiguous chunk per device of the mesh; `fn` runs once per
    chunk, concurrently on the scheduler (node ids `fn[a:b]`), and the chunk outputs are
    joined in order (lists/tuples concatenated, arrays along axis 0, dicts per key).
    With every spec replicated, `fn` runs once. An empty batch returns `[]`.

    **Errors** (`TransformError`, in the argument's name): a spec naming an axis the mesh
    lacks (with a did-you-mean), an axis used twice, a spec longer than the value's rank,
    a dimension not divisible by the devices it is split over, `in_specs` entries that
    do not match the arguments.

    **Returns:** a leaf `Operator`; numeric results carry
    `NamedSharding(mesh, out_specs)`. Without `fn`, a decorator.

    **Raises:** `TransformError` as listed above (spec errors when `mesh_sharded` is
    called, shape errors when the returned operator is).

    !!! example
        ```python
        mesh = xcs.DeviceMesh((2, 4), ("data", "model"))  # 8 devices
        P = xcs.PartitionSpec
        project = xcs.mesh_sharded(
            lambda x, w: x @ w,
            mesh,
            in_specs=(P("data", None), P(None, "model")),
            out_specs=P("data", "model"),
        )
        x, w = jnp.ones((8, 16)), jnp.ones((16, 8))
        y = project(x, w)
        assert y.sharding.spec == P("data", "model")
        ```
    """
    if fn is None:
        return lambda f: mesh_sharded(
            f, mesh, in_specs=in_specs, out_specs=out_specs, numeric=numeric
        )
    return MeshSharded(fn, mesh, in_specs, out_specs, numeric)


_UNBOUND_NAME = re.compile(r"unbound axis name: (\w+)")


def _unbound_axis(
    per_block: Any, mesh: Any, specs: Any, out_specs: Any, w: Any, args: Any
) -> NameError | None:
    """JAX's own `NameError` for a collective over an axis the mesh does not have.

    With its varying-manual-axes check on, `jax.shard_map` stops such a function with a
    bare `AssertionError`; tracing it once more with the check off (shapes only, nothing
    runs) gets the `NameError` that names the axis, or `None` if that was not the cause.
    """
    probe = jax.shard_map(
        per_block, mesh=mesh, in_specs=(PartitionSpec(), *specs), out_specs=out_specs,
        check_vma=False,
    )  # fmt: skip
    try:
        jax.eval_shape(probe, w, *args)
    except NameError as exc:
        return exc
    except Exception:  # noqa: BLE001 - some other fault: the caller re-raises the original
        return None
    return None
