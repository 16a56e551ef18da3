"""`Transformed`: what `vmap`, `pmap` and `mesh_sharded` return.

A transformed callable is an `Operator` (so `jit` sees it as one leaf call, numeric or
Python, and graphs can hold it) that builds one of two runners on its first call (not at
decoration time, so JAX's backend does not start before the user sets its device count):

- the **numeric** runner, a cached `jax.jit` callable built once, so a call costs one
  Python frame on top of JAX's own dispatch and compiles once per input shape;
- the **Python** runner, which runs the function per item on the scheduler.

The choice comes from `ember_xcs.operators.classify`. A plain function is numeric
*provisionally*: its numeric trace runs under `guard_numeric`, and if it calls a Python
operator, that call is stopped before it runs and this object switches itself to the
Python runner for good (then runs the call there with the real values). When the outer
caller is itself a JAX trace, the switch is reported upward instead, so the outer
transform switches too and no Python operator ever receives a tracer.

A provisionally numeric function called with values JAX cannot trace (a `str`, an
arbitrary object) fails in `jax.jit` before anything is traced; that one call is then
run on the Python path, and the classification stays numeric for array calls.

The wrapped callable is held out of sight of the pytree registration (`_Hidden`), so a
transformed operator is a leaf, never a composite that `jit` would trace into.
"""

from __future__ import annotations

import abc
import inspect
import re
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from .._errors import AxisNameError, TransformError, TransformTypeError
from ..operators import (
    Classification,
    Operator,
    PythonOperatorCall,
    classify,
    current_call_handler,
)
from ._names import callable_name

_current_handler = current_call_handler  # the ContextVar's bound `get`: no extra frame

__all__ = ["Transformed", "holds_arrays"]


class _Hidden:
    """Holds the wrapped callable as static data that `sub_operators()` does not see."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


class Transformed(Operator):
    """Base class of transformed callables; subclasses provide the two runners."""

    transform_name = "transform"

    def __init__(self, fn: Any, numeric: bool | None):
        if not callable(fn):
            raise TransformTypeError(
                f"{self.transform_name}() needs a function or operator, got {type(fn).__name__}"
            )
        if numeric is not None and not isinstance(numeric, bool):
            raise TransformTypeError(
                f"{self.transform_name}(numeric=...) must be True, False or None (decide from "
                f"the function), got {numeric!r}"
            )
        self._target = _Hidden(fn)
        # help(), IDEs and Jupyter show the function's own docs, as for jax.vmap(f)
        self.__doc__ = getattr(fn, "__doc__", None)
        self._classification: Classification = classify(fn, numeric)
        self.numeric = self._classification.numeric
        self._label = f"{self.transform_name}({callable_name(fn)})"
        self._run: Callable[..., Any] = self._lazy
        self._python_run: Callable[..., Any] | None = None

    # --- subclass hooks ---------------------------------------------------------------------

    @abc.abstractmethod
    def _numeric_runner(self) -> Callable[..., Any]:
        """Build the cached `jax.jit` runner."""

    @abc.abstractmethod
    def _python_runner(self) -> Callable[..., Any]:
        """Build the runner that maps the function over the scheduler."""

    # --- calling --------------------------------------------------------------------------

    @property
    def wrapped(self) -> Any:
        """The function or operator this transform was applied to."""
        return self._target.value

    @property
    def __wrapped__(self) -> Any:
        """The wrapped callable, as `functools.wraps` would set it (`inspect.unwrap`)."""
        return self._target.value

    @property
    def name(self) -> str:
        return self._label

    @property
    def __signature__(self) -> inspect.Signature | None:
        """The wrapped function's signature, so graphs can feed a transformed callable by
        parameter name and `autograph` can name its arguments."""
        try:
            return inspect.signature(self.wrapped)
        except (TypeError, ValueError):
            return None

    @property
    def classification(self) -> Classification:
        """Why this callable runs numeric or Python (see `ember_xcs.operators.classify`)."""
        return self._classification

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        handler = _current_handler()
        if handler is not None:  # a jit trace or a numeric guard is watching
            return handler(self, args, kwargs)
        try:
            return self._run(*args, **kwargs)
        except PythonOperatorCall as call:
            return self._switch_to_python(call, args, kwargs)
        except TypeError:
            if not self._untraceable_call(args, kwargs):
                raise
            return self._python(*args, **kwargs)
        except NameError as exc:
            self._raise_axis_name_error(exc)
            raise

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._run(*args, **kwargs)
        except PythonOperatorCall as call:
            return self._switch_to_python(call, args, kwargs)
        except NameError as exc:
            self._raise_axis_name_error(exc)
            raise

    def _raise_axis_name_error(self, exc: NameError) -> None:
        """JAX's unbound-axis `NameError`, said in our words; other `NameError`s pass."""
        unbound = _UNBOUND_AXIS.search(str(exc))
        if unbound is None or isinstance(exc, AxisNameError):
            return
        bound = getattr(self, "axis_name", None)
        binds = (
            f"{self._label} binds only {bound!r} (axis_name={bound!r})"
            if bound is not None
            else f"{self._label} binds no axis name; pass axis_name={unbound[1]!r}"
        )
        raise AxisNameError(
            f"{self._label}: a collective in the function uses axis name {unbound[1]!r}, which "
            f"no enclosing transform binds; {binds}"
        ) from None

    def _untraceable_call(self, args: Any, kwargs: Any) -> bool:
        """A provisionally numeric function called with values JAX cannot trace."""
        return (
            self.numeric
            and self._classification.provisional
            and not all(isinstance(x, _TRACEABLE) for x in jax.tree.leaves((args, kwargs)))
        )

    def _python(self, *args: Any, **kwargs: Any) -> Any:
        # this one call goes to the scheduler; the classification stays numeric
        if self._python_run is None:
            self._python_run = self._python_runner()
        return self._python_run(*args, **kwargs)

    def _lazy(self, *args: Any, **kwargs: Any) -> Any:
        # built on first call, not at decoration time: building may look at devices,
        # and JAX's backend must not start before the user sets its device count
        self._run = self._numeric_runner() if self.numeric else self._python_runner()
        return self._run(*args, **kwargs)

    def _switch_to_python(self, call: PythonOperatorCall, args: Any, kwargs: Any) -> Any:
        if self.numeric and not self._classification.provisional:
            raise TransformError(
                f"{self._label}: {callable_name(self.wrapped)} is numeric "
                f"({self._classification.reason}) but calls the Python operator "
                f"{call.operator.name!r} while JAX traces it; that call was stopped before "
                f"it ran. Pass numeric=False to {self.transform_name} to run it on the "
                f"scheduler, or mark {call.operator.name!r} numeric if it is array code"
            ) from call
        if self.numeric:
            self.numeric = False
            self._classification = Classification(
                False, False, f"it calls the Python operator {call.operator.name!r}"
            )
            self._run = self._python_runner()
        if _has_tracer(args, kwargs):  # an enclosing JAX trace: let it switch too
            raise PythonOperatorCall(self) from call
        return self._run(*args, **kwargs)

    def __repr__(self) -> str:
        kind = "numeric" if self.numeric else "python"
        return f"{self._label}<{kind}>"


def holds_arrays(fn: Any) -> bool:
    """True for an operator whose fields hold arrays (weights): its pytree has leaves."""
    if not isinstance(fn, Operator):
        return False
    try:
        return bool(jax.tree.leaves(fn))
    except TypeError:  # an operator JAX cannot flatten is closed over instead
        return False


_UNBOUND_AXIS = re.compile(r"unbound axis name: ([^\s.]+)")
_TRACEABLE = (jax.Array, np.ndarray, np.generic, int, float, complex, bool)


def _has_tracer(args: Any, kwargs: Any) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves((args, kwargs)))
