"""Cache keys: the structure of a call's inputs, never their payloads.

A call's `(args, kwargs)` are flattened as a JAX pytree (operators stay whole leaves). The
key is the tree structure plus, per leaf:

| leaf | key part | in the trace |
|---|---|---|
| `str`, `bytes`, numbers, `bool` | the type | a symbol |
| array (`jax.Array`, `np.ndarray`, NumPy scalar) | type, shape, dtype, weak type | a symbol |
| operator, model, function, class, module | the object itself | the object |
| anything else | the type | a symbol |

plus the values of declared static arguments, by equality. So a new prompt string is a
cache hit, a new array shape is a miss, and a different operator passed as an argument is
a miss. Operators and functions are held by the key itself, never by `id()`, so a
collected object's id can never be mistaken for a new one.

A model (`operators.is_model`: `name`, `complete`, `acomplete`) is code, not data: which
model a call reaches is part of the graph, as which operator is. Passed as itself, its
`complete` is one leaf of the plan (`method_leaf`), as a global model's is; a symbol in
its place would stop the trace at the first `model.complete`. A second model is
therefore a second plan, each calling its own model; the same model, call after call,
is a hit. (A model built anew for every call traces every call, as an operator would:
build it once.)
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from ..operators import Operator, is_model

__all__ = ["KeyMaker", "StructureGuard", "is_constant_leaf"]

_ATOMS = frozenset({str, bytes, int, float, bool, complex})
_ARRAYS = (jax.Array, np.ndarray, np.generic)
_CONSTANTS = (
    Operator,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    type,
)


def _is_operator(x: Any) -> bool:
    return isinstance(x, Operator)


def is_constant_leaf(leaf: Any) -> bool:
    """Leaves passed to the trace as themselves (structure, not data)."""
    kind = type(leaf)
    if kind is _Static:
        return True
    if kind in _ATOMS or isinstance(leaf, _ARRAYS):
        return False
    return isinstance(leaf, _CONSTANTS) or is_model(leaf)


def _all_atoms(values: Any) -> bool:
    for value in values:
        if type(value) not in _ATOMS:
            return False
    return True


def _leaf_key(leaf: Any) -> Any:
    kind = type(leaf)
    if kind in _ATOMS:
        return kind
    if isinstance(leaf, _ARRAYS):
        return (kind, leaf.shape, leaf.dtype, getattr(leaf, "weak_type", False))
    if isinstance(leaf, _CONSTANTS) or is_model(leaf):
        return ("const", leaf)
    return kind


class StructureGuard:
    """An identity snapshot of a jitted operator's composites, taken when it was traced.

    A plan calls its leaf operators live, so a changed leaf field is seen on replay. But
    composites were traced into: which operators their fields held, how many (a unit
    appended to an ensemble) and their other field values (a flag `forward` branches on)
    decided the graph. `holds()` checks that every traced composite still has the same
    field objects, and the same items in its list and dict fields, by identity; when it
    does not, the jit traces again instead of replaying a graph of the old structure.
    Leaves are never scanned, so the check costs ~0.2 us per sub-operator, not a walk of
    every leaf's fields. (A setting object mutated in place, rather than reassigned, is
    not seen: reassign it.)
    """

    __slots__ = ("_checks",)

    def __init__(self, root: Operator):
        self._checks: list[tuple[dict[str, Any], int, tuple[tuple[str, Any, Any], ...]]] = []
        self._snapshot(root, set())

    def _snapshot(self, operator: Operator, seen: set[int]) -> None:
        if id(operator) in seen or not operator.is_composite:
            return
        seen.add(id(operator))
        fields = vars(operator)
        self._checks.append(
            (fields, len(fields), tuple((k, v, _items(v)) for k, v in fields.items()))
        )
        for _, sub in operator.sub_operators():
            self._snapshot(sub, seen)

    def holds(self) -> bool:
        """True when every traced composite still holds what it held during the trace."""
        for fields, count, snapshot in self._checks:
            if len(fields) != count:
                return False
            for name, value, items in snapshot:
                current = fields.get(name)
                if current is not value or (items is not None and not _same_items(current, items)):
                    return False
        return True


def _items(value: Any) -> tuple[Any, ...] | None:
    """A mutable container's items (`None` for anything else), compared by identity."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        return tuple(item for pair in value.items() for item in pair)
    return None


def _same_items(current: Any, items: tuple[Any, ...]) -> bool:
    now = current if isinstance(current, list) else [x for p in current.items() for x in p]
    return len(now) == len(items) and all(a is b for a, b in zip(now, items, strict=True))


class _Static:
    """Marks where a static argument sat in the flattened call."""

    __slots__ = ()


STATIC = _Static()


class KeyMaker:
    """Computes `(key, leaves)` for a call, honouring declared static arguments."""

    def __init__(
        self,
        fn: Callable[..., Any],
        static_argnums: Sequence[int] = (),
        static_argnames: Sequence[str] = (),
    ):
        self.static_argnums = tuple(static_argnums)
        self.static_argnames = tuple(static_argnames)
        self._signature = _signature_or_none(fn) if static_argnames else None
        self._treedefs: dict[tuple[int, tuple[str, ...]], Any] = {}  # see `_atoms_key`
        if self.static_argnames and self._signature is not None:
            params = list(self._signature.parameters)
            for name in self.static_argnames:
                if name not in params:
                    raise ValueError(
                        f"static_argnames names {name!r}, but the function takes "
                        f"({', '.join(params)})"
                    )
            self.static_argnums += tuple(
                params.index(n) for n in self.static_argnames if n in params
            )

    def __call__(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, list[Any], tuple[Any, ...], dict[str, Any]]:
        """Return `(key, leaves, args, kwargs)`; statics are replaced by a marker."""
        statics: tuple[Any, ...] = ()
        if self.static_argnums or self.static_argnames:
            args, kwargs, statics = self._split(args, kwargs)
        elif _all_atoms(args) and (not kwargs or _all_atoms(kwargs.values())):
            return self._atoms_key(args, kwargs)
        leaves, treedef = jax.tree_util.tree_flatten((args, kwargs), is_leaf=_is_operator)
        key = (treedef, tuple(_leaf_key(leaf) for leaf in leaves), statics)
        return key, leaves, args, kwargs

    def _atoms_key(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, list[Any], tuple[Any, ...], dict[str, Any]]:
        """The key `__call__` computes, for the common call of strings and numbers only:
        the leaves are the arguments themselves (keywords in sorted order, as JAX flattens
        a dict), and the structure depends only on the count and the keyword names, so it
        is flattened once per shape (a flatten costs ~4 µs of a ~100 µs jitted call)."""
        names = tuple(sorted(kwargs)) if kwargs else ()
        shape = (len(args), names)
        treedef = self._treedefs.get(shape)
        if treedef is None:
            treedef = self._treedefs[shape] = jax.tree_util.tree_structure((args, kwargs))
        leaves = [*args, *(kwargs[name] for name in names)] if names else list(args)
        return (treedef, tuple(map(type, leaves)), ()), leaves, args, kwargs

    def _split(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any], tuple[Any, ...]]:
        statics = []
        new_args = list(args)
        for i in self.static_argnums:
            if i < len(args):
                statics.append((i, _hashable(args[i], f"argument {i}")))
                new_args[i] = STATIC
        new_kwargs = dict(kwargs)
        for name in self.static_argnames:
            if name in kwargs:
                statics.append((name, _hashable(kwargs[name], f"argument {name!r}")))
                new_kwargs[name] = STATIC
        return tuple(new_args), new_kwargs, tuple(statics)


def restore_statics(
    args: tuple[Any, ...], kwargs: dict[str, Any], statics: tuple[Any, ...]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Put the static values back where `KeyMaker` left markers."""
    new_args, new_kwargs = list(args), dict(kwargs)
    for where, value in statics:
        if isinstance(where, int):
            new_args[where] = value
        else:
            new_kwargs[where] = value
    return tuple(new_args), new_kwargs


def _hashable(value: Any, what: str) -> Any:
    try:
        hash(value)
    except TypeError:
        raise TypeError(
            f"static {what} must be hashable (it is part of the jit cache key), got "
            f"{type(value).__name__}; pass a tuple instead of a list, or make it non-static"
        ) from None
    return value


def _signature_or_none(fn: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def input_labels(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[str]:
    """`argument 'question'`, `argument 'docs'[2]`, ... for each flattened leaf."""
    names = _positional_names(fn, len(args))
    paths, _ = jax.tree_util.tree_flatten_with_path((args, kwargs), is_leaf=_is_operator)
    labels = []
    for path, _leaf in paths:
        side, first, *rest = path
        if side.idx == 0:
            name = names[first.idx] if first.idx < len(names) else f"#{first.idx}"
        else:
            name = first.key
        suffix = jax.tree_util.keystr(tuple(rest)) if rest else ""
        labels.append(f"argument {name!r}{suffix}")
    return labels


def _positional_names(fn: Callable[..., Any], count: int) -> list[str]:
    sig = _signature_or_none(fn)
    if sig is None:
        return [f"#{i}" for i in range(count)]
    names = []
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            names += [f"{p.name}[{i}]" for i in range(count - len(names))]
            break
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
    return names + [f"#{i}" for i in range(len(names), count)]
