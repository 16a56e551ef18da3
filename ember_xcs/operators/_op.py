"""`op`: turn a plain function (sync or `async def`) into a leaf operator."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, overload

from ._base import Operator, check_pure_and_stochastic

__all__ = ["FunctionOperator", "op"]


class FunctionOperator(Operator):
    """A leaf operator wrapping a function; made by `op`. Keeps the function's signature."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        numeric: bool = False,
        stochastic: bool = False,
        pure: bool = False,
    ):
        if not callable(fn):
            raise TypeError(f"op() needs a function, got {type(fn).__name__}")
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"op(name=...) must be a non-empty string, got {name!r}")
        for flag, value in (("numeric", numeric), ("stochastic", stochastic), ("pure", pure)):
            if not isinstance(value, bool):
                raise TypeError(f"op({flag}=...) must be True or False, got {value!r}")
        check_pure_and_stochastic(f"op({getattr(fn, '__name__', fn)!r})", pure, stochastic)
        self.fn = fn
        self._name = name or getattr(fn, "__name__", type(fn).__name__)
        self.numeric = bool(numeric)
        self.stochastic = bool(stochastic)
        self.pure = bool(pure)
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    @property
    def name(self) -> str:
        return self._name

    @property
    def __name__(self) -> str:  # noqa: PLW3201 - functions are expected to have one
        return self._name

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.fn)

    def __repr__(self) -> str:
        flags = "".join(
            f", {flag}=True" for flag in ("numeric", "stochastic", "pure") if getattr(self, flag)
        )
        return f"op({self._name}{flags})"


@overload
def op(fn: Callable[..., Any], /) -> FunctionOperator: ...


@overload
def op(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    numeric: bool = False,
    stochastic: bool = False,
    pure: bool = False,
) -> Callable[[Callable[..., Any]], FunctionOperator]: ...


def op(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    numeric: bool = False,
    stochastic: bool = False,
    pure: bool = False,
) -> Any:
    """Make a leaf operator from a function; works bare and with arguments.

    **Arguments:**

    - `name`: the operator's name in graphs and errors (default: the function's name).
    - `numeric`: the function is pure array code; `jit` compiles it with `jax.jit` and
      the transforms hand it straight to JAX.
    - `stochastic`: results must never be cached or reused.
    - `pure`: the result depends only on the arguments, so a repeated call may be skipped;
      the graph passes merge and fold pure nodes (see `Graph.fold_constants`).

    **Returns:** a leaf `Operator` (a `FunctionOperator`) with the function's name,
    signature and docstring; calling it calls the function. Without `fn`, a decorator
    that makes one.

    **Raises:** `TypeError` when `fn` is not callable, `name` is not a non-empty string or
    a flag is not `True`/`False`; `OptionsError` when `pure` and `stochastic` are both
    set.

    !!! example
        ```python
        @xcs.op
        def answer(question: str) -> str:
            return f"an answer to {question}"


        @xcs.op(numeric=True)
        def score(embeddings):
            return embeddings @ embeddings.T


        assert answer("why?") == "an answer to why?"
        assert isinstance(answer, xcs.Operator) and score.numeric
        assert score(jnp.ones((2, 3))).shape == (2, 2)
        ```
    """

    def wrap(function: Callable[..., Any]) -> FunctionOperator:
        return FunctionOperator(
            function, name=name, numeric=numeric, stochastic=stochastic, pure=pure
        )

    return wrap if fn is None else wrap(fn)
