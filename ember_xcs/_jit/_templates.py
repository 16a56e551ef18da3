"""Templates: snapshots of the structures a trace passes to operators and returns.

When a traced function calls a leaf operator, its arguments are *snapshotted* at that
moment into a template: a small tree of constants, containers and symbol references. A
snapshot, because the body may mutate a list after passing it on, and the plan must pass
what the operator saw. Containers (lists, tuples, namedtuples, dicts, dataclasses and
registered JAX pytrees) are rebuilt on every call, so no call ever shares a mutable
container with another; constants (strings, numbers, arrays, operators) are reused.

A template is *lowered* into a getter closure `g(R, L)` once, when the plan is built:
`R` holds node results and `L` the call's input leaves. Lowering is where a symbol
reference becomes `L[3]`, `R[7]`, `R[7][1]` (an output of a numeric segment) or a
projection like `R[7]["answer"]`, so replaying a node costs a few closure calls.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from .._errors import NodeExecutionError, with_article
from ..operators import Operator
from ._symbols import InputRef, NodeRef, ProjRef, StopReason, Symbol, TraceStop, describe

__all__ = ["Getter", "Template", "lower", "refs_in", "snapshot"]

Template = tuple  # ("c", value) | ("r", ref) | (container kind, ...)
Getter = Callable[[Any, Any], Any]
Ref = InputRef | NodeRef | ProjRef

_ATOMS = frozenset({str, int, float, bool, bytes, complex, type(None)})
_ARRAYS = (jax.Array, np.ndarray, np.generic)


def snapshot(value: Any, check: Callable[[Symbol], Ref], depth: int = 0) -> Template:
    """The template of `value`; `check` validates each symbol and returns its reference."""
    kind = type(value)
    if kind is Symbol:
        return ("r", check(value))
    if kind in _ATOMS or isinstance(value, (*_ARRAYS, Operator)):
        return ("c", value)
    if kind is list:
        return ("l", tuple(snapshot(v, check, depth) for v in value))
    if kind is tuple:
        return ("t", tuple(snapshot(v, check, depth) for v in value))
    if kind is dict:
        return ("d", tuple(value), tuple(snapshot(v, check, depth) for v in value.values()))
    if isinstance(value, tuple) and hasattr(kind, "_fields"):
        return ("n", kind, tuple(snapshot(v, check, depth) for v in value))
    if isinstance(value, dict):
        return ("D", value, tuple(value), tuple(snapshot(v, check, depth) for v in value.values()))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = tuple(f.name for f in dataclasses.fields(value))
        items = tuple(snapshot(getattr(value, n), check, depth) for n in names)
        return ("o", value, names, items)
    return _snapshot_object(value, check, depth)


def _snapshot_object(value: Any, check: Callable[[Symbol], Ref], depth: int) -> Template:
    children, treedef = jax.tree_util.tree_flatten(value, is_leaf=lambda x: x is not value)
    if not jax.tree_util.treedef_is_leaf(treedef):  # a registered pytree: rebuild it
        return ("p", treedef, tuple(snapshot(c, check, depth) for c in children))
    if _hides_symbol(value, depth):
        raise TraceStop(
            StopReason(
                "error",
                "a traced value is hidden inside",
                f"{with_article(type(value).__name__)} object, which jit cannot rebuild on each "
                "call; use a dict, list, tuple, dataclass or registered pytree",
            )
        )
    return ("c", value)


def _hides_symbol(value: Any, depth: int) -> bool:
    if depth > 3:
        return False
    try:
        fields = vars(value)
    except TypeError:
        return False
    for v in fields.values():
        if type(v) is Symbol:
            return True
        if type(v) in (list, tuple):
            if any(type(x) is Symbol for x in v):
                return True
        elif type(v) is dict:
            if any(type(x) is Symbol for x in v.values()):
                return True
        elif not isinstance(v, (*_ARRAYS, Operator)) and type(v) not in _ATOMS:
            if _hides_symbol(v, depth + 1):
                return True
    return False


def refs_in(template: Template) -> list[Ref]:
    """Every symbol reference in `template`, in order."""
    found: list[Ref] = []
    _collect(template, found)
    return found


def _collect(t: Template, found: list[Ref]) -> None:
    tag = t[0]
    if tag == "r":
        found.append(t[1])
    elif tag in ("l", "t"):
        for item in t[1]:
            _collect(item, found)
    elif tag in ("n", "p"):
        for item in t[2]:
            _collect(item, found)
    elif tag == "d":
        for item in t[2]:
            _collect(item, found)
    elif tag in ("D", "o"):
        for item in t[3]:
            _collect(item, found)


def base_record(ref: Ref) -> NodeRef | None:
    """The node whose output `ref` reads, or `None` for an input leaf."""
    while isinstance(ref, ProjRef):
        ref = ref.base
    return ref if isinstance(ref, NodeRef) else None


# --- lowering ----------------------------------------------------------------------------


def lower(t: Template, resolve: Callable[[Ref], Getter]) -> Getter:
    """A closure `g(R, L)` that builds the value `t` describes."""
    tag = t[0]
    if tag == "c":
        value = t[1]
        return lambda R, L: value
    if tag == "r":
        return resolve(t[1])
    if tag == "l":
        gs = tuple(lower(i, resolve) for i in t[1])
        return lambda R, L: [g(R, L) for g in gs]
    if tag == "t":
        gs = tuple(lower(i, resolve) for i in t[1])
        return lambda R, L: tuple(g(R, L) for g in gs)
    if tag == "n":
        cls, gs = t[1], tuple(lower(i, resolve) for i in t[2])
        return lambda R, L: cls(*(g(R, L) for g in gs))
    if tag == "d":
        keys, gs = t[1], tuple(lower(i, resolve) for i in t[2])
        return lambda R, L: {k: g(R, L) for k, g in zip(keys, gs, strict=True)}
    if tag == "D":
        return _lower_dict_subclass(t, resolve)
    if tag == "o":
        return _lower_dataclass(t, resolve)
    if tag == "p":
        treedef, gs = t[1], tuple(lower(i, resolve) for i in t[2])
        return lambda R, L: treedef.unflatten([g(R, L) for g in gs])
    raise AssertionError(f"unknown template tag {tag!r}")


def _lower_dict_subclass(t: Template, resolve: Callable[[Ref], Getter]) -> Getter:
    proto, keys, gs = t[1], t[2], tuple(lower(i, resolve) for i in t[3])

    def build(R: Any, L: Any) -> Any:
        out = copy.copy(proto)
        out.clear()
        for k, g in zip(keys, gs, strict=True):
            out[k] = g(R, L)
        return out

    return build


def _lower_dataclass(t: Template, resolve: Callable[[Ref], Getter]) -> Getter:
    proto, names, gs = t[1], t[2], tuple(lower(i, resolve) for i in t[3])

    def build(R: Any, L: Any) -> Any:
        out = copy.copy(proto)
        for name, g in zip(names, gs, strict=True):
            object.__setattr__(out, name, g(R, L))
        return out

    return build


def resolver(
    node_slot: Callable[[NodeRef], tuple[Any, int | None]], consumer: str
) -> Callable[[Ref], Getter]:
    """Map references to getters: inputs read `L`, nodes read `R` at `node_slot(ref)`."""

    def resolve(ref: Ref) -> Getter:
        if isinstance(ref, InputRef):
            k = ref.index
            return lambda R, L: L[k]
        if isinstance(ref, NodeRef):
            slot, pos = node_slot(ref)
            if pos is None:
                return lambda R, L: R[slot]
            return lambda R, L: R[slot][pos]
        return _projection(ref, resolve(ref.base), consumer)

    return resolve


def _projection(ref: ProjRef, base: Getter, consumer: str) -> Getter:
    key = ref.key

    def project(R: Any, L: Any) -> Any:
        value = base(R, L)
        try:
            return getattr(value, key) if ref.attr else value[key]
        except Exception as exc:  # also of exc's type: `except KeyError:` as without jit
            raise NodeExecutionError.wrapping(
                exc,
                f"{consumer}: could not take {describe(ref)}: {type(exc).__name__}: {exc}",
                operator_name=consumer,
            ) from exc

    return project
