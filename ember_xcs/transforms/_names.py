"""The user's names for things, so transform errors can speak them.

Errors say `vmap(score): x has size 3 along axis 0, y['b'] has size 4`, not
`args[0]`/`leaf 3`. A callable's parameter names come from its signature (read once, when
the transform is built); a value inside an argument is named by its path in Python syntax.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from .._errors import TransformError, TransformTypeError
from ..operators import Operator, operator_signature

__all__ = ["ArgNames", "callable_name", "describe", "join_path"]


def callable_name(fn: Any) -> str:
    """A short readable name: an operator's `name`, a function's `__name__`."""
    if isinstance(fn, Operator):
        return fn.name
    if isinstance(fn, functools.partial):
        return callable_name(fn.func)
    return getattr(fn, "__name__", None) or type(fn).__name__


def join_path(base: str, key: Any) -> str:
    """`x` + 0 -> `x[0]`; `x` + 'b' -> `x['b']`."""
    return f"{base}[{key!r}]"


def describe(value: Any) -> str:
    """`float32[3,4]` for arrays (and tracers), the type name for anything else."""
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"{dtype}[{','.join(map(str, shape))}]"
    if isinstance(value, list | tuple):
        return f"{type(value).__name__} of {len(value)} items"
    return type(value).__name__


class ArgNames:
    """Names of positional arguments, from the callable's signature when it has one."""

    def __init__(self, fn: Any):
        self._positional: list[str] = []
        self._varargs: str | None = None
        self.signature: inspect.Signature | None = None
        try:
            sig = operator_signature(fn) if isinstance(fn, Operator) else inspect.signature(fn)
        except (TypeError, ValueError):  # builtins and C callables may have none
            return
        self.signature = sig
        for p in sig.parameters.values():
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                self._positional.append(p.name)
            elif p.kind is p.VAR_POSITIONAL:
                self._varargs = p.name
                break

    def positional(self, index: int) -> str:
        """The name of positional argument `index` (`args[i]` when unknown)."""
        if index < len(self._positional):
            return self._positional[index]
        if self._varargs is not None:
            return f"{self._varargs}[{index - len(self._positional)}]"
        return f"args[{index}]"

    def all(self, count: int) -> list[str]:
        """Names for `count` positional arguments."""
        return [self.positional(i) for i in range(count)]

    def bind(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], label: str
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Move keyword arguments into positional slots where the signature allows.

        Returns the positional arguments and what stays keyword-only.
        """
        if not kwargs:
            return args, kwargs
        if self.signature is None:
            raise TransformError(
                f"{label}: cannot read the function's signature, so pass arguments positionally"
            )
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TransformTypeError(f"{label}: {exc}") from None
        return tuple(bound.args), dict(bound.kwargs)

    @property
    def parameters(self) -> list[str]:
        """Named positional parameters, in order."""
        return list(self._positional)
