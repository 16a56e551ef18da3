"""The containers jit looks inside: one definition of how to open and rebuild them.

A value passed to or returned from a jitted body may hold operator outputs anywhere in
lists, tuples, namedtuples, dicts (and subclasses), `dict.values()` and `dict.items()`
views, sets, dataclasses and registered JAX pytrees. `open_container` says how to take one apart and put it back together; the
dynamic strategy uses it to find the calls an argument depends on and to hand real
values back. Plain objects are not containers: a trace stops when one hides a traced
value, and the dynamic strategy resolves what a returned object holds in place
(`resolve_attributes`), because it cannot rebuild an arbitrary class.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax

from ..operators import Operator

__all__ = ["ATOMS", "open_container", "resolve_attributes"]

ATOMS = frozenset({str, int, float, bool, bytes, complex, type(None)})

Opened = tuple[Sequence[Any], Callable[[list[Any]], Any]]


def open_container(value: Any) -> Opened | None:
    """`(items, rebuild)` for a container (`rebuild(new_items)` makes a new one of the same
    kind, leaving `value` untouched), or `None` for anything else."""
    kind = type(value)
    if kind in ATOMS:
        return None
    if kind is list:
        return value, list
    if kind is tuple:
        return value, tuple
    if kind is dict:
        keys = list(value)
        return list(value.values()), lambda items: dict(zip(keys, items, strict=True))
    # `kind` alone is asked (never `isinstance(value, ...)`): a trace's placeholder answers
    # isinstance by stopping the trace
    if issubclass(kind, tuple) and hasattr(kind, "_fields"):
        return value, lambda items: kind(*items)
    if kind in (set, frozenset):
        return list(value), kind
    if kind is _VALUES:  # a view is rebuilt as a view of a new dict, never the user's
        return list(value), lambda items: dict(zip(value.mapping, items, strict=True)).values()
    if kind is _ITEMS:
        return list(value), lambda items: dict(items).items()
    if issubclass(kind, dict):
        return list(value.values()), lambda items: _rebuild_dict(value, items)
    if dataclasses.is_dataclass(kind):
        names = [f.name for f in dataclasses.fields(value)]
        return [getattr(value, n) for n in names], lambda items: _rebuild_fields(
            value, names, items
        )
    if kind in _leaf_types or issubclass(kind, _NOT_CONTAINERS) or kind is type:
        return None
    children, treedef = jax.tree.flatten(value, is_leaf=lambda x: x is not value)
    if jax.tree_util.treedef_is_leaf(treedef):
        _leaf_types.add(kind)  # a registered pytree type never flattens to a leaf
        return None
    return children, treedef.unflatten


_VALUES, _ITEMS = type({}.values()), type({}.items())
# values that are never containers here: operators are pytrees, but an operator is a
# value to jit, never rebuilt; iterators would be consumed (and JAX warns about them)
_NOT_CONTAINERS = (Operator, Iterator)
_leaf_types: set[type] = set()  # types JAX flattened to a leaf once: not asked again


def _rebuild_dict(proto: dict[Any, Any], items: list[Any]) -> dict[Any, Any]:
    out = copy.copy(proto)
    for key, item in zip(list(proto), items, strict=True):
        out[key] = item
    return out


def _rebuild_fields(proto: Any, names: list[str], items: list[Any]) -> Any:
    out = copy.copy(proto)
    for name, item in zip(names, items, strict=True):
        object.__setattr__(out, name, item)
    return out


def resolve_attributes(value: Any, resolve: Callable[[Any], Any]) -> None:
    """Replace, in place, each attribute of a plain object that `resolve` changes (the
    caller's `resolve` decides how deep to go)."""
    if type(value) in ATOMS or isinstance(value, type):
        return
    try:
        fields = vars(value)
    except TypeError:
        return
    for name, item in list(fields.items()):
        new = resolve(item)
        if new is not item:
            try:
                object.__setattr__(value, name, new)
            except (AttributeError, TypeError):
                return  # a read-only object: leave it as it is
