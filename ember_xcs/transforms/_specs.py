"""`PartitionSpec` trees checked against a mesh and against the values they describe.

`mesh_sharded` takes `in_specs` / `out_specs` as `jax.shard_map` does: a tree whose
leaves are `PartitionSpec`s (or `None`, read as `PartitionSpec()`: replicated), and which
is a prefix of the arguments / outputs. JAX's own errors for bad specs name `args[0]` and
internal shapes; these checks name the argument (`x`, `params['w']`) and the mesh axis:

- when the transform is built: every axis a spec names exists in the mesh (with a
  did-you-mean), and no axis appears twice in one spec;
- when JAX traces (once per input shape): a spec is not longer than the value's rank,
  and every sharded dimension divides evenly by the mesh axes it is split over.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator, Mapping
from typing import Any

import jax
from jax.sharding import Mesh, PartitionSpec

from .._errors import TransformError, with_article
from ._names import describe, join_path

__all__ = ["check_spec_tree", "check_values", "normalize_specs", "spec_axes"]


def spec_axes(spec: PartitionSpec) -> list[str]:
    """Mesh axis names a spec uses, in order (entries may be a name, a tuple or None)."""
    names: list[str] = []
    for entry in spec:
        if entry is None:
            continue
        names.extend(entry if isinstance(entry, tuple) else (entry,))
    return names


def normalize_specs(tree: Any) -> Any:
    """`None` leaves become `PartitionSpec()`; containers keep their structure."""
    if tree is None:
        return PartitionSpec()
    if isinstance(tree, PartitionSpec):
        return tree
    if isinstance(tree, list | tuple):
        return type(tree)(normalize_specs(t) for t in tree)
    if isinstance(tree, Mapping):
        return {k: normalize_specs(v) for k, v in tree.items()}
    return tree  # checked by check_spec_tree


def check_spec_tree(tree: Any, mesh: Mesh, label: str, where: str) -> None:
    """Raise unless every leaf is a `PartitionSpec`/None naming axes of `mesh` once each."""
    if tree is None:
        return
    if isinstance(tree, PartitionSpec):
        _check_spec(tree, mesh, label, where)
    elif isinstance(tree, list | tuple):
        for i, t in enumerate(tree):
            check_spec_tree(t, mesh, label, join_path(where, i))
    elif isinstance(tree, Mapping):
        for k, t in tree.items():
            check_spec_tree(t, mesh, label, join_path(where, k))
    else:
        raise TransformError(
            f"{label}: {where} is {tree!r} ({type(tree).__name__}); specs must be "
            "PartitionSpec(...) or None (replicated), or a tuple/list/dict of those"
        )


def _check_spec(spec: PartitionSpec, mesh: Mesh, label: str, where: str) -> None:
    names = spec_axes(spec)
    for name in names:
        if name not in mesh.shape:
            close = difflib.get_close_matches(str(name), list(mesh.axis_names), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TransformError(
                f"{label}: {where} is {spec} and names mesh axis {name!r}{hint}, but the "
                f"mesh has axes {_mesh_text(mesh)}"
            )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TransformError(
            f"{label}: {where} is {spec} and uses mesh axis {repeated[0]!r} twice; a mesh "
            "axis can split at most one dimension of a value"
        )


def _mesh_text(mesh: Mesh) -> str:
    return ", ".join(f"{name!r} (size {size})" for name, size in mesh.shape.items())


# --- values ------------------------------------------------------------------------------


def check_values(
    values: Any, specs: Any, mesh: Mesh, label: str, path: str, what: str, *, blocks: bool = False
) -> None:
    """Rank and divisibility of every array under each spec of the prefix tree `specs`.

    `blocks=True` checks per-device blocks (outputs of the mapped function), whose
    sharded dimensions are multiplied, not divided, so only the rank is checked.
    """
    for leaf_path, leaf, spec in _pairs(values, specs, path, label, what):
        _check_leaf(leaf, spec, mesh, label, leaf_path, what, blocks)


def _pairs(
    values: Any, specs: Any, path: str, label: str, what: str
) -> Iterator[tuple[str, Any, PartitionSpec]]:
    if isinstance(specs, PartitionSpec):
        leaves, _ = jax.tree_util.tree_flatten_with_path(values)
        for keypath, leaf in leaves:
            yield path + jax.tree_util.keystr(keypath), leaf, specs
    elif isinstance(specs, list | tuple):
        if not isinstance(values, list | tuple) or len(values) != len(specs):
            raise TransformError(
                f"{label}: {what} for {path} is {with_article(type(specs).__name__)} of "
                f"{len(specs)} specs but {path} is {with_article(describe(values))}; shape "
                f"{what} like the value, or give one PartitionSpec for all of it"
            )
        for i, (v, s) in enumerate(zip(values, specs, strict=True)):
            yield from _pairs(v, s, join_path(path, i), label, what)
    else:
        if not isinstance(values, Mapping) or set(values) != set(specs):
            raise TransformError(
                f"{label}: {what} for {path} is a dict with keys "
                f"{', '.join(sorted(map(repr, specs)))} but {path} is "
                f"{with_article(describe(values))}"
                f"{' with keys ' + ', '.join(sorted(map(repr, values))) if isinstance(values, Mapping) else ''}; "
                f"give {what} the same keys, or one PartitionSpec for all of it"
            )
        for k in specs:
            yield from _pairs(values[k], specs[k], join_path(path, k), label, what)


def _check_leaf(
    leaf: Any, spec: PartitionSpec, mesh: Mesh, label: str, path: str, what: str, blocks: bool
) -> None:
    shape = tuple(getattr(leaf, "shape", ()))
    if len(spec) > len(shape):
        raise TransformError(
            f"{label}: {what} for {path} is {spec} ({len(spec)} entries) but {path} is "
            f"{describe(leaf)} (rank {len(shape)}); a spec has at most one entry per dimension"
        )
    if blocks:
        return
    for dim, entry in enumerate(spec):
        if entry is None:
            continue
        axes = entry if isinstance(entry, tuple) else (entry,)
        parts = math.prod(mesh.shape[a] for a in axes)
        if shape[dim] % parts:
            over = " x ".join(f"{a!r} ({mesh.shape[a]})" for a in axes)
            raise TransformError(
                f"{label}: {path} has size {shape[dim]} in dimension {dim}, which {what} "
                f"{spec} splits over mesh axis {over} = {parts} devices; {shape[dim]} is "
                f"not divisible by {parts}. Pad {path} to a multiple of {parts}, or "
                "shard that dimension over fewer devices"
            )
