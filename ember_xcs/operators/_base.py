"""`Operator`: the unit of work in ember_xcs.

An operator is an object with a `forward(...)` method taking ordinary Python arguments.
Calling it runs `forward`, unless a trace is active (see `_interception`), in which case the
call is recorded instead.

Operators are JAX pytrees, registered automatically for every subclass: fields holding
arrays (directly or inside operators, lists, tuples and dicts) are children, so an operator
with weights passes through `jax.jit` and `jax.grad`; every other field is static auxiliary
data. Fields holding other operators make an operator *composite*; `sub_operators()` lists
them, and `jit` traces into composites while treating leaves as single graph nodes.
"""

from __future__ import annotations

import abc
import inspect
import types
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import jax
import numpy as np

from .._errors import OptionsError, summarize_value
from ._interception import current_call_handler

__all__ = ["Operator", "check_pure_and_stochastic", "operator_signature"]


class Operator(abc.ABC):
    """Base class for operators.

    Subclasses implement `forward` with an ordinary Python signature. Set the class
    attribute `numeric = True` for operators whose `forward` is pure array code (they may
    then be compiled with `jax.jit`), `stochastic = True` for operators whose output
    must never be cached or reused, and `pure = True` for operators whose output depends
    only on their arguments, so a repeated call may be skipped (graph passes then merge
    and fold them; numeric operators count as pure unless stochastic). A class declaring
    both `pure` and `stochastic` (its own or inherited) raises `OptionsError` when it is
    created.

    Instances are JAX pytrees: array fields are leaves (weights pass through `jax.jit`
    and `jax.grad`), every other field is static. An operator whose fields hold other
    operators is *composite* (`jit` traces into it); one without is a *leaf*.

    Calling an instance runs `forward`, unless a trace or a dynamic jit run is active
    in this context, which then records or dispatches the call instead.

    !!! example
        ```python
        @xcs.op
        def shout(question: str) -> str:
            return question.upper()


        @xcs.op
        def longest(answers: list[str]) -> str:
            return max(answers, key=len)


        class Ensemble(xcs.Operator):
            def __init__(self, units, judge):
                self.units = units  # a list of operators: this one is composite
                self.judge = judge

            def forward(self, question):
                return self.judge([unit(question) for unit in self.units])


        ensemble = Ensemble([shout, shout], longest)
        assert ensemble("hi") == "HI"
        assert [path for path, _ in ensemble.sub_operators()][:1] == ["units[0]"]
        ```
    """

    numeric: ClassVar[bool] = False
    stochastic: ClassVar[bool] = False
    composite: ClassVar[bool | None] = None  # False: never traced into, whatever it holds
    pure: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_pure_and_stochastic(
            f"class {cls.__name__}", _class_flag(cls, "pure"), _class_flag(cls, "stochastic")
        )
        jax.tree_util.register_pytree_node(cls, _flatten, lambda aux, ch: _unflatten(cls, aux, ch))

    @abc.abstractmethod
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Compute this operator's output from its inputs."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        handler = current_call_handler()
        if handler is None:
            return self.forward(*args, **kwargs)
        return handler(self, args, kwargs)

    @property
    def name(self) -> str:
        """A readable name used for node ids, errors and renderings."""
        return type(self).__name__

    def sub_operators(self) -> list[tuple[str, Operator]]:
        """The operators held in this operator's fields, as `(path, operator)` pairs.

        Paths read like Python: `judge`, `units[3]`, `experts['math']`. Only direct
        children are listed; recurse to walk the whole tree.
        """
        return list(_iter_sub_operators(vars(self)))

    @property
    def is_composite(self) -> bool:
        """True when this operator holds other operators in its fields."""
        for value in vars(self).values():  # `_iter_sub_operators`, stopping at the first
            if type(value) not in _LEAF_FIELD_TYPES:  # jit asks per operator per call
                for _ in _iter_sub_operators({"": value}):
                    return True
        return False

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{k}={summarize_value(v, 40)}" for k, v in vars(self).items() if not k.startswith("_")
        )
        return f"{type(self).__name__}({fields})"


def check_pure_and_stochastic(owner: str, pure: bool, stochastic: bool) -> None:
    """Refuse an operator declared both pure (its result may be reused) and stochastic (its
    result must never be): `op(..., pure=True, stochastic=True)` and a class with both."""
    if pure and stochastic:
        raise OptionsError(
            f"{owner}: pure=True and stochastic=True contradict each other; a stochastic "
            "result must never be reused, so drop one"
        )


def _class_flag(cls: type, flag: str) -> bool:
    """A flag a class declares (`pure = True`), its own or inherited; a property or other
    descriptor decides per instance, so it declares nothing here."""
    value = inspect.getattr_static(cls, flag)
    return not hasattr(value, "__get__") and bool(value)


def operator_signature(operator: Operator) -> inspect.Signature:
    """The signature callers use: `forward`'s without `self` (or the wrapped function's)."""
    explicit = getattr(operator, "__signature__", None)
    if isinstance(explicit, inspect.Signature):
        return explicit
    return inspect.signature(operator.forward)


# --- structure -----------------------------------------------------------------------


# Field types that are never an operator nor a container of one: skipped without an
# `isinstance` against the `Operator` ABC (three per field otherwise; jit asks per call).
_LEAF_FIELD_TYPES = frozenset(
    {str, int, float, bool, bytes, complex, type(None), types.FunctionType, types.MethodType}
)


def _iter_sub_operators(fields: Mapping[str, Any]) -> Iterator[tuple[str, Operator]]:
    for name, value in fields.items():
        if type(value) in _LEAF_FIELD_TYPES:
            continue
        if isinstance(value, Operator):
            yield name, value
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                if isinstance(item, Operator):
                    yield f"{name}[{i}]", item
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, Operator):
                    yield f"{name}[{key!r}]", item


# --- pytree registration ---------------------------------------------------------------

_ARRAY_TYPES = (jax.Array, np.ndarray, np.generic)


def _is_dynamic(value: Any) -> bool:
    """A field is a pytree child when it is, or contains, an array or an operator."""
    if isinstance(value, (*_ARRAY_TYPES, Operator)):
        return True
    if isinstance(value, list | tuple):
        return any(_is_dynamic(v) for v in value)
    if isinstance(value, dict):
        return any(_is_dynamic(v) for v in value.values())
    return False


class _Static:
    """Wraps a static field so aux data is hashable and compares by value when it can."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Static):
            return NotImplemented
        if self.value is other.value:
            return True
        try:
            return bool(self.value == other.value)
        except Exception:  # arrays and odd objects: fall back to identity
            return False

    def __hash__(self) -> int:
        try:
            return hash(self.value)
        except TypeError:
            return hash(type(self.value))


def _flatten(operator: Operator) -> tuple[list[Any], tuple[Any, ...]]:
    fields = vars(operator)
    dynamic, children, static = [], [], []
    for name, value in fields.items():
        if _is_dynamic(value):
            dynamic.append(name)
            children.append(value)
        else:
            static.append((name, _Static(value)))
    return children, (tuple(dynamic), tuple(static))


def _unflatten(cls: type, aux: tuple[Any, ...], children: list[Any]) -> Operator:
    dynamic, static = aux
    operator = object.__new__(cls)
    fields = {name: holder.value for name, holder in static}
    fields.update(zip(dynamic, children, strict=True))
    operator.__dict__.update(fields)
    return operator
