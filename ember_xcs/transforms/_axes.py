"""`in_axes` / `out_axes`: validation, batch sizes and per-item splitting.

One walker serves every map transform. It pairs an axes *prefix tree* with the arguments,
the way `jax.vmap` does: an int or `None` at a node applies to everything below it; a
tuple, list or dict of axes must match the argument's own structure. Each mapped leaf is
reported with its path in the user's names (`x`, `pair[1]`, `config['items']`), so size
mismatches and bad axes read like `vmap(score): x has size 3 along axis 0, y['b'] has
size 4 along axis 1`.

Two readings of a mapped leaf:

- **numeric** (`python=False`): JAX's rule. Every array leaf below an int is mapped along
  that axis; lists and tuples are containers like any pytree node.
- **Python** (`python=True`): what an LLM pipeline means by a batch. A list or tuple
  reached by an int *is* the batch (one item per call, axis 0); a dict maps each of its
  values; an array is split along its axis. Anything else (a `str`, a number) cannot be
  mapped, and the error says to give it `in_axes=None`.

The checks run when JAX traces (numeric) or once per call (Python), never per item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import TransformError, TransformTypeError, with_article
from ._names import ArgNames, describe, join_path

__all__ = [
    "MappedLeaf",
    "batch_size",
    "check_axes_tree",
    "check_out_axes",
    "mapped_leaves",
    "map_prefix",
    "split_calls",
]

MappedLeaf = tuple[str, Any, int]  # (path in the user's names, value, axis)
_KEYWORD = "keyword argument "  # keyword arguments are always mapped, as in jax.vmap


# --- validating the axes trees -------------------------------------------------------------


def check_axes_tree(axes: Any, label: str, what: str) -> Any:
    """Raise unless `axes` is an int, None, or a tuple/list/dict tree of them.

    A top-level list is read as a tuple, as `jax.vmap` does. A top-level dict `in_axes`
    is refused here, when the transform is built, as `jax.vmap` refuses it: `in_axes`
    lines up with the positional arguments, which have no keys.
    """
    if what == "in_axes" and isinstance(axes, Mapping):
        raise TransformTypeError(
            f"{label}: in_axes is a dict ({axes!r}), but in_axes lines up with the positional "
            "arguments: give an int, None, or a tuple with one entry per positional argument "
            "(an entry may be a dict shaped like a dict argument, e.g. in_axes=({'a': 0},)); "
            "keyword arguments are always mapped along axis 0"
        )
    _check_axes_node(axes, label, what, what)
    return tuple(axes) if isinstance(axes, list) else axes


def _check_axes_node(axes: Any, label: str, what: str, where: str) -> None:
    if axes is None or (isinstance(axes, int) and not isinstance(axes, bool)):
        return
    if isinstance(axes, list | tuple):
        for i, a in enumerate(axes):
            _check_axes_node(a, label, what, f"{where}[{i}]")
        return
    if isinstance(axes, Mapping):
        for k, a in axes.items():
            _check_axes_node(a, label, what, join_path(where, k))
        return
    raise TransformTypeError(
        f"{label}: {where} is {axes!r} ({type(axes).__name__}); {what} entries must be an "
        "int (the axis to map), None (broadcast), or a tuple/list/dict of those shaped like "
        "the arguments"
    )


# --- walking arguments -------------------------------------------------------------------


def mapped_leaves(
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    in_axes: Any,
    names: ArgNames,
    label: str,
    *,
    python: bool,
) -> list[MappedLeaf]:
    """Every mapped leaf of the call, with its path; keyword arguments map along axis 0."""
    if isinstance(in_axes, tuple):
        if len(in_axes) != len(args):
            called = ", ".join(names.all(len(args))) or "no positional arguments"
            raise TransformError(
                f"{label}: in_axes has {len(in_axes)} entries but the call passed "
                f"{len(args)} positional argument(s) ({called}); give one entry per "
                "positional argument, or a single int/None for all of them"
            )
        per_arg = in_axes
    else:
        per_arg = (in_axes,) * len(args)
    out: list[MappedLeaf] = []
    for i, (value, axes) in enumerate(zip(args, per_arg, strict=True)):
        _walk(value, axes, names.positional(i), label, python, out)
    for key, value in kwargs.items():
        _walk(value, 0, f"{_KEYWORD}{key}", label, python, out)
    return out


def _walk(
    value: Any, axes: Any, path: str, label: str, python: bool, out: list, what: str = "in_axes"
) -> None:
    if axes is None:
        return
    if isinstance(axes, int):
        _walk_int(value, axes, path, label, python, out)
    elif isinstance(axes, list | tuple):
        _check_same_kind(value, axes, path, label, python, what)
        for i, (v, a) in enumerate(zip(value, axes, strict=True)):
            _walk(v, a, join_path(path, i), label, python, out, what)
    else:
        _check_same_keys(value, axes, path, label, what)
        for k in axes:
            _walk(value[k], axes[k], join_path(path, k), label, python, out, what)


def _walk_int(value: Any, axis: int, path: str, label: str, python: bool, out: list) -> None:
    if python:
        if isinstance(value, Mapping):
            for k, v in value.items():
                _walk_int(v, axis, join_path(path, k), label, python, out)
        else:
            out.append((path, value, axis))
        return
    leaves, _ = jax.tree_util.tree_flatten_with_path(value)
    for keypath, leaf in leaves:
        out.append((path + jax.tree_util.keystr(keypath), leaf, axis))


def _check_same_kind(
    value: Any, axes: Sequence[Any], path: str, label: str, python: bool, what: str
) -> None:
    kinds = (list, tuple) if python else (type(axes),)
    if isinstance(value, kinds) and len(value) == len(axes):
        return
    raise TransformError(
        f"{label}: {what} for {path} is {with_article(type(axes).__name__)} of {len(axes)} "
        f"entries but {path} is {with_article(describe(value))}; shape {what} like the value, "
        "or give one int/None for all of it"
    )


def _check_same_keys(value: Any, axes: Mapping[Any, Any], path: str, label: str, what: str) -> None:
    if isinstance(value, Mapping) and set(value) == set(axes):
        return
    if not isinstance(value, Mapping):
        have = f"{path} is {with_article(describe(value))}"
    else:
        missing = ", ".join(sorted(map(repr, set(axes) - set(value)))) or "none"
        extra = ", ".join(sorted(map(repr, set(value) - set(axes)))) or "none"
        have = f"{path} lacks keys {missing} and has extra keys {extra}"
    raise TransformError(
        f"{label}: {what} for {path} is a dict with keys {', '.join(sorted(map(repr, axes)))} "
        f"but {have}; give {what} the same keys, or one int/None for all of it"
    )


# --- batch sizes -------------------------------------------------------------------------


def _broadcast_hint(path: str) -> str:
    if path.startswith(_KEYWORD):
        return (
            "keyword arguments are always mapped along axis 0 (as in jax.vmap), so pass it "
            "positionally with in_axes=None, or bind it with functools.partial"
        )
    return f"give {path} in_axes=None to broadcast it"


def _rank_and_size(path: str, value: Any, axis: int, label: str, python: bool) -> int:
    if python and isinstance(value, list | tuple):
        rank, shape = 1, (len(value),)
    elif hasattr(value, "shape") and hasattr(value, "dtype"):
        rank, shape = len(value.shape), tuple(value.shape)
    elif python:
        raise TransformError(
            f"{label}: {path} is {with_article(describe(value))} and cannot be mapped; pass a "
            f"list (one item per call) or an array, or {_broadcast_hint(path)}"
        )
    else:
        rank, shape = np.ndim(value), np.shape(value)
    if rank == 0:
        raise TransformError(
            f"{label}: {path} is {describe(value) if hasattr(value, 'dtype') else repr(value)} "
            f"(rank 0) and cannot be mapped along axis {axis}; {_broadcast_hint(path)}"
        )
    if not -rank <= axis < rank:
        raise TransformError(
            f"{label}: in_axes={axis} for {path}, but {path} is {describe(value)} (rank "
            f"{rank}); valid axes are {-rank}..{rank - 1}, or None to broadcast it"
        )
    return int(shape[axis])


def batch_size(
    leaves: Sequence[MappedLeaf], axis_size: int | None, label: str, *, python: bool
) -> int:
    """The one size every mapped leaf shares along its axis (or `axis_size`)."""
    sizes = [(path, _rank_and_size(path, v, a, label, python), a) for path, v, a in leaves]
    distinct = {s for _, s, _ in sizes}
    if len(distinct) > 1:
        listed = ", ".join(f"{p} has size {s} along axis {a}" for p, s, a in sizes[:8])
        more = f" (and {len(sizes) - 8} more)" if len(sizes) > 8 else ""
        raise TransformError(
            f"{label}: mapped arguments disagree on the batch size: {listed}{more}; every "
            "mapped argument needs the same size, or in_axes=None to broadcast it"
        )
    if not sizes:
        if axis_size is None:
            raise TransformError(
                f"{label}: nothing to map: every argument has in_axes=None; map at least "
                "one argument, or pass axis_size= to call the function that many times"
            )
        return axis_size
    size = sizes[0][1]
    if axis_size is not None and axis_size != size:
        path, _, axis = sizes[0]
        raise TransformError(
            f"{label}: axis_size={axis_size} but {path} has size {size} along axis {axis}; "
            "drop axis_size or make them agree"
        )
    return size


def check_size_arg(axis_size: Any, label: str) -> None:
    """`axis_size` must be None or an int >= 0."""
    if axis_size is None:
        return
    if isinstance(axis_size, str):  # jax.vmap(f, in_axes, out_axes, axis_name) habits
        raise TransformTypeError(
            f"{label}: axis_size must be an int >= 0 or None, got {axis_size!r}. The fourth "
            "positional argument of xcs.vmap is axis_size (jax.vmap's is axis_name): pass "
            f"axis_name={axis_size!r} by keyword"
        )
    if not isinstance(axis_size, int) or isinstance(axis_size, bool):
        raise TransformTypeError(
            f"{label}: axis_size must be an int >= 0 or None, got {axis_size!r}"
        )
    if axis_size < 0:
        raise TransformError(f"{label}: axis_size must be an int >= 0 or None, got {axis_size!r}")


# --- outputs -----------------------------------------------------------------------------


def check_out_axes(out: Any, out_axes: Any, label: str) -> None:
    """Raise if an int in `out_axes` is out of range for the per-item output it maps.

    Runs inside the function `jax.vmap` traces, so `out` holds per-item values; an output
    of rank r gains the batch axis, so valid axes are -(r+1)..r.
    """
    for path, leaf, axis in _out_leaves(out, out_axes, label):
        rank = len(getattr(leaf, "shape", ())) if hasattr(leaf, "shape") else np.ndim(leaf)
        if not -(rank + 1) <= axis <= rank:
            raise TransformError(
                f"{label}: out_axes={axis} for {path}, but each item's {path} is "
                f"{describe(leaf)} (rank {rank}), so the batch axis can go at "
                f"{-(rank + 1)}..{rank}"
            )


def _out_leaves(out: Any, out_axes: Any, label: str) -> list[MappedLeaf]:
    leaves: list[MappedLeaf] = []
    _walk(out, out_axes, "output", label, False, leaves, "out_axes")
    return leaves


def map_prefix(fn: Any, axes: Any, tree: Any) -> Any:
    """`fn(leaf, axis)` for every leaf of `tree`, with `axis` read from the prefix `axes`."""
    if axes is None or isinstance(axes, int):
        return jax.tree.map(lambda leaf: fn(leaf, axes), tree)
    if isinstance(axes, list | tuple):
        return type(tree)(map_prefix(fn, a, t) for a, t in zip(axes, tree, strict=True))
    return {k: map_prefix(fn, axes[k], tree[k]) for k in axes}


# --- splitting a call into per-item calls (Python path) ---------------------------------------


def split_calls(
    args: Sequence[Any], kwargs: Mapping[str, Any], in_axes: Any, size: int
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """The `size` per-item `(args, kwargs)` of a call whose batch has been checked."""
    per_arg = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
    columns = [_split(v, a, size) for v, a in zip(args, per_arg, strict=True)]
    kw_columns = {k: _split(v, 0, size) for k, v in kwargs.items()}
    return [
        (tuple(col[i] for col in columns), {k: col[i] for k, col in kw_columns.items()})
        for i in range(size)
    ]


def _split(value: Any, axes: Any, size: int) -> list[Any]:
    if axes is None:
        return [value] * size
    if isinstance(axes, int):
        if isinstance(value, Mapping):
            return _zip_dicts({k: _split(v, axes, size) for k, v in value.items()}, size)
        if isinstance(value, list | tuple):
            return list(value)
        return _unstack(value, axes)
    if isinstance(axes, list | tuple):
        parts = [_split(v, a, size) for v, a in zip(value, axes, strict=True)]
        return [type(value)(p[i] for p in parts) for i in range(size)]
    return _zip_dicts({k: _split(value[k], axes[k], size) for k in axes}, size)


def _zip_dicts(columns: dict[Any, list[Any]], size: int) -> list[dict[Any, Any]]:
    return [{k: col[i] for k, col in columns.items()} for i in range(size)]


def _unstack(value: Any, axis: int) -> list[Any]:
    if isinstance(value, jax.Array):
        return list(jnp.moveaxis(value, axis, 0))
    return list(np.moveaxis(np.asarray(value), axis, 0))
