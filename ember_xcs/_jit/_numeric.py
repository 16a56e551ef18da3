"""Numeric segments: runs of numeric leaves compiled into one XLA executable.

**Which leaves form a segment.** A plan node is numeric when its operator is (`@op(numeric=
True)` or `numeric = True` on the class), it is not stochastic, and the jit was not asked
to `preserve_stochasticity` (`jax.jit` would freeze any Python-level randomness at trace
time). Each node gets a *level*: the largest number of Python nodes on a path from the
inputs to it. Numeric nodes on the same level joined by numeric→numeric edges form one
segment. Two nodes on the same level never have a Python node between them, so the
segments can be contracted into single plan nodes without creating a cycle, and no numeric
node ends up waiting for a Python call it does not depend on through another member.

**How a segment runs.** `NumericSegment.forward(*externals)` receives the values flowing
in from outside (inputs, outputs of Python nodes). Their array leaves are traced by
`jax.jit`; every other leaf (Python numbers, strings, `None`, the pytree structure) is a
static argument, part of the cache key by value, because numeric code uses Python ints
as sizes (`jnp.argsort(-s)[:k]`, `jnp.zeros(n)`, `jax.lax.top_k(x, k)`): a new `k`
compiles once more, a new array with the same shape does not. The segment's
members run in order inside that one trace and the outputs other nodes need come back as a
tuple. `jax.jit` caches one executable per shape/dtype/static signature, so the Python
body of each numeric function runs once per new shape, not once per call; `compiles`
counts those traces.

**What `jax.jit` would change on the way out.** A member may return a Python number JAX
never traced (`len(x)`, the `k` it was given, a flag), or a dict. `jax.jit` hands the
number back as a 0-d array and the dict with its keys sorted, which the plain call never
does (`json.dumps` refuses the array; iterating the dict formats its items in another
order). A number JAX never traced depends only on the static arguments and shapes, so it
is the same for every call of that executable; the segment carries it, and each dict's
key order, in the output's tree structure (aux data, which `jax.jit` returns as traced)
and rebuilds the plain values from it.

If a member turns out not to be traceable by JAX (it converts a tracer to a Python value,
or any other error while tracing), the segment runs its members as written: when that
works it stays eager from then on and says why in `eager_reason`; when it raises too, that
is the plain function's error and reaches the caller as such.

**Outside a plan.** Code that runs with concrete values (the dynamic strategy, opaque
composites) has no segments to build ahead of time, so `NumericLeaves` makes them on
demand: one single-member segment per (operator, call shape: positional count and keyword
names), held for as long as the cache entry that owns it. `jax.jit` inside it caches per
shape as above, so §3.6 holds there too: a numeric function's Python body runs once per
new shape, not once per call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from .._errors import summarize_value
from .._options import current_options, hook_calls
from ..operators import FunctionOperator, Operator
from ._templates import Getter

__all__ = ["NumericLeaves", "NumericSegment", "numeric_groups"]

_ARRAYS = (jax.Array, np.ndarray, np.generic)

Member = tuple[Operator, tuple[Getter, ...], tuple[tuple[str, Getter], ...]]


def numeric_groups(numeric: Sequence[bool], deps: Sequence[Sequence[int]]) -> list[int]:
    """For each node, the index of its segment's first member (itself if Python).

    `deps[i]` lists the nodes node `i` reads from; nodes are in topological order.
    """
    n = len(numeric)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    level = [0] * n
    for i in range(n):
        level[i] = max((level[d] + (0 if numeric[d] else 1) for d in deps[i]), default=0)
        if numeric[i]:
            for d in deps[i]:
                if numeric[d] and level[d] == level[i]:
                    a, b = find(i), find(d)
                    parent[max(a, b)] = min(a, b)
    return [find(i) for i in range(n)]


class NumericSegment(Operator):
    """One plan node running several numeric leaves under a single `jax.jit`."""

    numeric = True
    composite = False  # holds its members as data; a plan node, never traced into

    def __init__(
        self, name: str, members: Sequence[Member], num_externals: int, outputs: Sequence[int]
    ):
        self._name = name
        self._members = tuple(members)
        self._operators = tuple(member[0] for member in self._members)
        # operator classes may hold weights and get new ones; `@op` functions hold none
        # (what they close over is fixed, as under jax.jit), so they need not be flattened
        self._weighted = tuple(
            i for i, op in enumerate(self._operators) if not isinstance(op, FunctionOperator)
        )
        self._num_externals = num_externals
        self._outputs = tuple(outputs)
        self.compiles = 0
        self._rebuild = False  # an output needs `_Plain` (a number or a dict, see above)
        self.eager_reason: str | None = None
        self._lock = threading.Lock()
        self._compiled = jax.jit(self._traced, static_argnums=(0, 1))

    @property
    def name(self) -> str:
        return self._name

    def forward(self, *externals: Any) -> tuple[Any, ...]:
        if self.eager_reason is not None:
            return self._evaluate(externals, self._operators)
        # the members go in as arguments too: their arrays (weights) are traced inputs, not
        # constants baked into the executable, so new weights take effect on the next call
        weighted = tuple(self._operators[i] for i in self._weighted)
        leaves, treedef = jax.tree_util.tree_flatten((externals, weighted))
        # Python scalars are static (part of the cache key), as sizes must be:
        # `jnp.argsort(-s)[:k]`, `jnp.zeros(n)`, `x.reshape(k, -1)`, `jax.lax.top_k(x, k)`
        dynamic = [leaf for leaf in leaves if isinstance(leaf, _ARRAYS)]
        static = tuple((i, leaf) for i, leaf in enumerate(leaves) if not isinstance(leaf, _ARRAYS))
        try:
            hash(static)
        except TypeError:
            return self._evaluate(externals, self._operators)
        before, start = self.compiles, time.perf_counter()
        try:
            out = self._compiled(treedef, static, dynamic)
        except Exception as exc:
            if self.compiles == before:  # it failed running, not tracing: the error is real
                raise
            return self._eager_after(exc, externals)
        if self.compiles != before:
            self._report_compile(time.perf_counter() - start, dynamic)
        return _Plain.restore(out) if self._rebuild else out

    def _eager_after(self, exc: Exception, externals: Sequence[Any]) -> tuple[Any, ...]:
        """JAX could not trace a member: run the members as written. If that works, stay
        eager (and say why); if it raises too, the error is the plain function's."""
        out = self._evaluate(externals, self._operators)
        self.eager_reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return out

    def _traced(self, treedef: Any, static: tuple[tuple[int, Any], ...], dynamic: list[Any]) -> Any:
        with self._lock:  # a Python side effect: runs once per new shape, not per call
            self.compiles += 1
        leaves = list(dynamic)
        for i, value in static:
            leaves.insert(i, value)
        externals, weighted = treedef.unflatten(leaves)
        operators = list(self._operators)
        for i, operator in zip(self._weighted, weighted, strict=True):
            operators[i] = operator
        out = self._evaluate(externals, operators)
        self._rebuild = self._rebuild or _Plain.needed(out)
        return _Plain.keep(out)

    def _evaluate(self, externals: Sequence[Any], operators: Sequence[Operator]) -> tuple[Any, ...]:
        env = [*externals, *([None] * len(self._members))]
        base = self._num_externals
        for j, (operator, (_, args, kwargs)) in enumerate(
            zip(operators, self._members, strict=True)
        ):
            env[base + j] = operator.forward(
                *[g(env, env) for g in args], **{k: g(env, env) for k, g in kwargs}
            )
        return tuple(env[base + p] for p in self._outputs)

    def _report_compile(self, seconds: float, dynamic: list[Any]) -> None:
        shapes = ", ".join(summarize_value(a) for a in dynamic) or "no arrays"
        for hook in hook_calls(current_options(), "on_compile"):
            hook(target=self._name, seconds=seconds, detail=f"XLA compile + first run for {shapes}")

    def __repr__(self) -> str:
        names = ", ".join(m[0].name for m in self._members)
        return f"NumericSegment({names})"


class NumericLeaves:
    """Compiled stand-ins for numeric leaves called with concrete values; see the module
    docstring. Thread-safe: dynamic dispatch calls `leaf` from the body's thread while
    workers run earlier segments."""

    def __init__(self) -> None:
        self._leaves: dict[tuple[int, int, tuple[str, ...]], tuple[Operator, CompiledLeaf]] = {}
        self._lock = threading.Lock()

    def leaf(self, operator: Operator, num_args: int, names: tuple[str, ...]) -> CompiledLeaf:
        """The compiled stand-in for `operator(*num_args positionals, **names)`."""
        key = (id(operator), num_args, names)
        found = self._leaves.get(key)
        if found is not None and found[0] is operator:
            return found[1]
        with self._lock:
            found = self._leaves.get(key)
            if found is None or found[0] is not operator:  # ids are held: never reused
                found = self._leaves[key] = (operator, CompiledLeaf(operator, num_args, names))
        return found[1]

    def segments(self) -> list[NumericSegment]:
        with self._lock:
            return [leaf.segment for _, leaf in self._leaves.values()]


class CompiledLeaf(Operator):
    """`operator(*args, **kwargs)` as a one-member `NumericSegment` (name and errors are the
    operator's own)."""

    numeric = True
    composite = False

    def __init__(self, operator: Operator, num_args: int, names: tuple[str, ...]):
        args = tuple(_external(k) for k in range(num_args))
        kwargs = tuple((n, _external(num_args + k)) for k, n in enumerate(names))
        self._operator = operator
        self.segment = NumericSegment(
            f"numeric({operator.name})", [(operator, args, kwargs)], num_args + len(names), [0]
        )

    @property
    def name(self) -> str:
        return self._operator.name

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.segment.forward(*args, *kwargs.values())[0]


_NUMBERS = (int, float, bool, complex)


class _Plain:
    """A Python number or a dict in a segment's output, as a pytree node whose aux data
    keeps what `jax.jit` would change: the number itself, or the dict's key order."""

    __slots__ = ("aux", "children")

    def __init__(self, aux: Any, children: tuple[Any, ...] = ()):
        self.aux, self.children = aux, children

    @staticmethod
    def _changed(x: Any) -> bool:
        return type(x) is dict or type(x) in _NUMBERS

    @staticmethod
    def needed(out: Any) -> bool:
        return any(map(_Plain._changed, jax.tree.leaves(out, is_leaf=_Plain._changed)))

    @staticmethod
    def keep(out: Any) -> Any:
        def one(x: Any) -> Any:
            if type(x) is dict:
                return _Plain(tuple(x), tuple(_Plain.keep(v) for v in x.values()))
            return _Plain(x) if type(x) in _NUMBERS else x

        return jax.tree.map(one, out, is_leaf=_Plain._changed)

    @staticmethod
    def restore(out: Any) -> Any:
        def one(x: Any) -> Any:
            if type(x) is not _Plain:
                return x
            if not x.children and type(x.aux) in _NUMBERS:
                return x.aux
            return dict(zip(x.aux, map(_Plain.restore, x.children), strict=True))

        return jax.tree.map(one, out, is_leaf=lambda x: type(x) is _Plain)


jax.tree_util.register_pytree_node(
    _Plain, lambda p: (p.children, p.aux), lambda aux, children: _Plain(aux, tuple(children))
)


# --- output structure in a trace -------------------------------------------------------


def abstract_value(value: Any) -> Any:
    """`value` as JAX sees its shape: arrays become `jax.ShapeDtypeStruct`s."""
    if isinstance(value, _ARRAYS):
        return jax.ShapeDtypeStruct(np.shape(value), value.dtype)
    return value


def project(structure: Any, key: Any, attr: bool) -> Any:
    """`structure[key]` (or its attribute), `None` when unknown."""
    if structure is None or structure is _UNSHAPED:
        return None
    try:
        if attr:
            return getattr(structure, key)
        if isinstance(structure, jax.ShapeDtypeStruct):
            return jax.eval_shape(lambda x: x[key], structure)
        return structure[key]
    except Exception:  # noqa: BLE001 - an unknown projection is simply not known
        return None


def output_structure(operator: Operator, args: Any, kwargs: Any, tracer: Any) -> Any:
    """The output structure of a numeric leaf recorded in a trace (`jax.eval_shape`), or
    `None` if it is not numeric or an input's shape is unknown. `args`/`kwargs` are its
    argument templates. Python scalars stay static, as when the leaf runs.

    A Python scalar that is a jit *input* is not in the cache key (its type is), so a
    structure derived from its value would not hold for the next call: then only the
    pytree structure is kept, if a second evaluation with the integer moved by one agrees
    (`vals, idx = top_k(sims, k)` unpacks; `for i in idx` still needs the value)."""
    if not getattr(operator, "numeric", False):
        return None
    try:
        seen: list[bool] = []
        first = _eval_shape(operator, args, kwargs, tracer, 0, seen)
        if not seen:
            return first
        second = _eval_shape(operator, args, kwargs, tracer, 1, seen)
        if jax.tree.structure(first) != jax.tree.structure(second):
            return None
        return jax.tree.map(lambda _: _UNSHAPED, first)
    except Exception:  # noqa: BLE001 - unknown: iterating it stops the trace as before
        return None


_UNSHAPED = object()  # an array whose shape depends on an input's value


def _eval_shape(
    operator: Operator, args: Any, kwargs: Any, tracer: Any, bump: int, seen: list[bool]
) -> Any:
    values = (
        [_abstract_of(t, tracer, bump, seen) for t in args],
        {k: _abstract_of(t, tracer, bump, seen) for k, t in kwargs},
    )
    leaves, treedef = jax.tree_util.tree_flatten(values)
    shaped = [i for i, leaf in enumerate(leaves) if isinstance(leaf, jax.ShapeDtypeStruct)]

    def run(*arrays: Any) -> Any:
        full = list(leaves)
        for i, a in zip(shaped, arrays, strict=True):
            full[i] = a
        a, k = treedef.unflatten(full)
        return operator.forward(*a, **k)

    return jax.eval_shape(run, *[leaves[i] for i in shaped])


class _Unknown(Exception):
    pass


def _abstract_of(template: Any, tracer: Any, bump: int, seen: list[bool]) -> Any:
    """A template's value with symbols replaced by their known structure."""
    tag = template[0]
    if tag == "r":
        known = tracer.structure_of(template[1])
        if known is None or known is _UNSHAPED:
            raise _Unknown
        if isinstance(known, jax.ShapeDtypeStruct):
            return known
        if type(known) is int:  # an input's value: not part of the jit cache key
            seen.append(True)
            return known + bump
        raise _Unknown
    if tag == "c":
        return abstract_value(template[1])
    if tag in ("l", "t"):
        items = [_abstract_of(t, tracer, bump, seen) for t in template[1]]
        return items if tag == "l" else tuple(items)
    if tag == "d":
        items = (_abstract_of(t, tracer, bump, seen) for t in template[2])
        return dict(zip(template[1], items, strict=True))
    raise _Unknown


def _external(k: int) -> Getter:
    return lambda R, L: R[k]
