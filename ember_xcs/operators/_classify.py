"""Numeric or Python: where a callable runs, decided without running it.

ember_xcs sends *numeric* callables to JAX (`jax.vmap`, `jax.shard_map`, `jax.jit`) and
*Python* callables (LLM calls, tools, anything with I/O) to the scheduler. The decision is
explicit first and automatic second, and it never calls the callable to find out:

1. an explicit `numeric=` argument (to a transform, or to `classify`) wins;
2. otherwise a boolean `numeric` attribute decides: every `Operator` has one (`False`
   unless the class sets it) and `@op(numeric=True)` sets it on the instance. The
   callables the transforms return carry their whole `Classification`, which is reused,
   so `vmap(vmap(f))` classifies like `vmap(f)`;
3. otherwise the callable is a plain function (a `def`, a lambda, a `functools.partial`,
   a `jax.jit`-wrapped function): it is **numeric**, because handing a function to a map
   transform is JAX's contract. This third rule is *provisional*.

Running a side effect to classify would be a bug (an LLM call made with abstract values,
or made twice), so nothing is probed. Instead, when JAX traces a numeric callable,
`guard_numeric` watches the operator calls it makes, through the same interception seam
`jit` uses: numeric operators run (their `forward` is array code being traced); a Python
operator is stopped *before* it runs, by raising `PythonOperatorCall`. A transform that
classified its function provisionally then switches it to the Python path; one told
explicitly that the function is numeric reports the contradiction instead. Either way the
Python operator never sees a tracer. (The function's own Python statements run once per
new input shape while JAX traces it, exactly as under `jax.jit`.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ._base import Operator
from ._interception import intercept_calls

__all__ = ["Classification", "PythonOperatorCall", "classify", "guard_numeric"]


@dataclasses.dataclass(frozen=True)
class Classification:
    """The outcome of `classify`.

    **Attributes:**

    - `numeric`: run with JAX (`True`) or on the scheduler (`False`).
    - `provisional`: decided by the plain-function default (rule 3), so a Python operator
      met while tracing may still turn it into a Python callable.
    - `reason`: one line saying which rule decided, for error messages and docs.
    """

    numeric: bool
    provisional: bool
    reason: str


def classify(fn: Any, numeric: bool | None = None) -> Classification:
    """Decide whether `fn` is numeric (JAX) or Python (scheduler); see the module docstring.

    Never calls `fn`.
    """
    if not callable(fn):
        raise TypeError(f"expected a function or operator, got {type(fn).__name__}")
    if numeric is not None:
        if not isinstance(numeric, bool):
            raise TypeError(f"numeric must be True, False or None, got {numeric!r}")
        return Classification(numeric, False, f"numeric={numeric} was passed explicitly")
    carried = getattr(fn, "classification", None)
    if isinstance(carried, Classification):  # a transformed callable: keep its rule
        return carried
    flag = getattr(fn, "numeric", None)
    if isinstance(flag, bool):
        kind = "operator" if isinstance(fn, Operator) else "callable"
        return Classification(flag, False, f"the {kind} has numeric={flag}")
    return Classification(True, True, "plain functions are numeric unless marked otherwise")


class PythonOperatorCall(Exception):  # noqa: N818 - a signal, raised on purpose
    """A numeric trace reached a Python operator; it was stopped before it ran.

    **Attributes:**

    - `operator`: the Python operator that was about to be called.
    """

    def __init__(self, operator: Operator):
        self.operator = operator
        super().__init__(
            f"the Python operator {operator.name!r} was called while JAX traced a numeric "
            "function; it was stopped before it ran"
        )


def _numeric_only(
    operator: Operator, args: tuple[Any, ...], kwargs: dict[str, Any], node_id: Any = None
) -> Any:
    if classify(operator).numeric:
        return operator.forward(*args, **kwargs)  # nested calls stay guarded
    raise PythonOperatorCall(operator)


def guard_numeric(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap `fn` so operator calls it makes while JAX traces it are checked.

    `fn` itself is taken as numeric (when it is an operator, its `forward` runs); the
    operators it calls are checked: numeric ones run, a Python one raises
    `PythonOperatorCall` before running.
    The guard is active only inside the wrapper, i.e. while JAX traces it: a cached
    `jax.jit` executable never runs the wrapper again, so it costs nothing per call.
    """

    # `fn` itself was classified numeric (perhaps by an explicit override), so an
    # operator's `forward` runs directly; only the calls it makes are checked
    body = fn.forward if isinstance(fn, Operator) else fn

    def guarded(*args: Any, **kwargs: Any) -> Any:
        with intercept_calls(_numeric_only):
            return body(*args, **kwargs)

    guarded.__name__ = getattr(fn, "__name__", type(fn).__name__)
    guarded.__wrapped__ = fn  # type: ignore[attr-defined]
    return guarded
